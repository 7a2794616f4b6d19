/*-------------------------------------------------------------------------
 *
 * host.c
 *		Fuzzing harness of the parse of a tracer's host (dolon.host and
 *		start_tracer()'s host), dolon_parse_backend() in src/backends.c.
 *
 * Each input is the text of the setting (it ends at a NUL there).  The parse
 * runs in check hooks, so it must not raise an error.  A host it accepts is
 * shorter than DOLON_MAX_HOST_BYTES; its scheme, if any, is one of dolon's
 * protocols, whose name the host starts with; its address ends the host and
 * is made of the characters of DNS names and of IPv4 and IPv6 addresses only.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "backends.h"
#include "support.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *host = fuzz_input_string(data, size);
	DolonFailure failure = {0};
	DolonBackend backend;

	if (!dolon_parse_backend(host, &backend, &failure))
	{
		if (failure.message == NULL || failure.detail == NULL)
			fuzz_finding("a host is refused without a message and a detail");
	}
	else
	{
		size_t		length = strlen(host);
		size_t		address_length = strlen(backend.address);
		const char *c;

		if (length >= DOLON_MAX_HOST_BYTES)
			fuzz_finding("an accepted host is too long");
		if (address_length == 0 || address_length > length ||
			strcmp(host + length - address_length, backend.address) != 0)
			fuzz_finding("the address of an accepted host does not end it");
		if (backend.protocol < DOLON_PROTOCOL_MNEMIC ||
			backend.protocol > DOLON_PROTOCOL_STATSD)
			fuzz_finding("an accepted host has no protocol of dolon's");
		else if (address_length < length &&
				 strcmp(host, psprintf("%s://%s",
									   dolon_protocol_name(backend.protocol),
									   backend.address)) != 0)
			fuzz_finding("an accepted host is not its protocol's scheme and its address");
		for (c = backend.address; *c != '\0'; c++)
		{
			if (!isalnum((unsigned char) *c) && strchr(".-_:%", *c) == NULL)
				fuzz_finding("an accepted host has a character of no host name");
		}
	}

	fuzz_reset_memory();
	return 0;
}
