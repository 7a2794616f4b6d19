/*-------------------------------------------------------------------------
 *
 * backends.c
 *		The backend a tracer sends to: the protocol named by the scheme of
 *		its host ("influx://127.0.0.1"), and the host name or address.
 *
 * Without a scheme, or with mnemic://, a tracer speaks mnemic's protocol.
 * The other schemes name the line protocols of the time-series engines
 * (line_protocols.c): influx:// (InfluxDB line protocol over UDP),
 * graphite:// (Graphite plaintext over TCP) and statsd:// (StatsD gauges
 * over UDP).  The port is given apart, as for mnemic.
 *
 * Only the text is checked here: this runs in check hooks, in every
 * backend and in the postmaster.  The tracer's worker resolves the name.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "backends.h"

/* The schemes, in the order of DolonProtocol */
static const char *const protocol_names[] = {
	"mnemic", "influx", "graphite", "statsd"
};

#define VALID_SCHEMES "mnemic://, influx://, graphite:// and statsd://"

const char *
dolon_protocol_name(DolonProtocol protocol)
{
	Assert(protocol >= 0 && protocol < lengthof(protocol_names));
	return protocol_names[protocol];
}

/*
 * Does the protocol go over a TCP stream, rather than in datagrams?
 */
bool
dolon_protocol_is_stream(DolonProtocol protocol)
{
	return protocol == DOLON_PROTOCOL_GRAPHITE;
}

/*
 * Parse a tracer's host: an optional scheme, then a DNS name or an IPv4 or
 * IPv6 address literal (with an optional zone), whose form alone is
 * checked.  Returns false, with the failure, if it is not valid.
 */
bool
dolon_parse_backend(const char *host, DolonBackend *backend,
					DolonFailure *failure)
{
	const char *address = host;
	const char *separator;
	const char *c;
	char	   *detail = NULL;
	char	   *hint = NULL;

	backend->protocol = DOLON_PROTOCOL_MNEMIC;
	backend->address[0] = '\0';

	separator = host != NULL ? strstr(host, "://") : NULL;
	if (separator != NULL)
	{
		int			scheme_length = separator - host;
		int			i;

		for (i = 0; i < lengthof(protocol_names); i++)
		{
			if (strlen(protocol_names[i]) == scheme_length &&
				strncmp(host, protocol_names[i], scheme_length) == 0)
				break;
		}
		if (i == lengthof(protocol_names))
		{
			dolon_set_failure(failure, ERRCODE_INVALID_PARAMETER_VALUE,
							  pstrdup("invalid host"),
							  psprintf("\"%.*s\" is not a protocol of dolon.",
									   scheme_length, host),
							  pstrdup("The valid schemes are " VALID_SCHEMES
									  "; a host without one speaks mnemic."));
			return false;
		}
		backend->protocol = (DolonProtocol) i;
		address = separator + 3;
	}

	if (host == NULL || address[0] == '\0')
		detail = pstrdup("The host of the backend must not be empty.");
	else if (strlen(host) >= DOLON_MAX_HOST_BYTES)
		detail = psprintf("A host has at most %d characters.",
						  DOLON_MAX_HOST_BYTES - 1);
	else
	{
		for (c = address; *c != '\0'; c++)
		{
			if (!(isalnum((unsigned char) *c) || strchr(".-_:%", *c) != NULL))
			{
				detail = psprintf("\"%s\" is not a valid host name or address.",
								  address);
				if (*c == '[' || *c == ']')
					hint = pstrdup("Write IPv6 addresses without brackets, as in ::1.");
				else if (*c == '/')
					hint = pstrdup("A host is an optional scheme (" VALID_SCHEMES
								   ") and a DNS name or an IPv4 or IPv6 address; the port is set apart.");
				else
					hint = pstrdup("A host is a DNS name or an IPv4 or IPv6 address.");
				break;
			}
		}
	}
	if (detail != NULL)
	{
		dolon_set_failure(failure, ERRCODE_INVALID_PARAMETER_VALUE,
						  pstrdup("invalid host"), detail, hint);
		return false;
	}
	strlcpy(backend->address, address, sizeof(backend->address));
	return true;
}
