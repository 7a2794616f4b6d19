/*-------------------------------------------------------------------------
 *
 * host.c
 *		Fuzzing harness of the check of dolon.host, dolon_host_is_valid() in
 *		src/guc.c.
 *
 * Each input is the text of the setting (it ends at a NUL there).  The check
 * runs in check hooks, so it must not raise an error; a host it accepts is
 * shorter than DOLON_MAX_HOST_BYTES and made of the characters of DNS names
 * and of IPv4 and IPv6 addresses only.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "guc.h"
#include "support.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *host = fuzz_input_string(data, size);
	DolonFailure failure = {0};

	if (!dolon_host_is_valid(host, &failure))
	{
		if (failure.message == NULL || failure.detail == NULL)
			fuzz_finding("a host is refused without a message and a detail");
	}
	else
	{
		const char *c;

		if (strlen(host) >= DOLON_MAX_HOST_BYTES)
			fuzz_finding("an accepted host is too long");
		for (c = host; *c != '\0'; c++)
		{
			if (!isalnum((unsigned char) *c) && strchr(".-_:%", *c) == NULL)
				fuzz_finding("an accepted host has a character of no host name");
		}
	}

	fuzz_reset_memory();
	return 0;
}
