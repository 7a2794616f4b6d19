/*-------------------------------------------------------------------------
 *
 * http.c
 *		Fuzzing harness of what the metrics endpoint answers to a request,
 *		dolon_metrics_answer() and dolon_metrics_format() in
 *		src/metrics_request.c.
 *
 * libmicrohttpd parses the requests; what reaches dolon are the fields it
 * parsed, which a client chooses.  Each input is five of them, separated by
 * NUL bytes: method, path, Accept, Authorization and the token the server
 * asks for (an empty one: none); a field left out is empty, and an empty
 * Accept or Authorization is a header not sent.  The properties:
 *
 * - with a token set, only "Bearer " (in any case) and the token, exactly,
 *   or "Basic " and base64 of a user name, a colon and the token, is let
 *   in: anything else is answered 401, whatever the method or path;
 * - the metrics are answered only to GET or HEAD of /metrics;
 * - a run's chart only to a path /runs/<uuid>.svg, the uuid in its
 *   canonical form, whose bytes are those of the uuid;
 * - OpenMetrics is chosen only if Accept names it, and always when it names
 *   nothing else.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"
#include "metrics_request.h"
#include "support.h"

#define FIELDS 5

/* Does text contain what, ASCII case aside? */
static bool
contains_caseless(const char *text, const char *what)
{
	size_t		length = strlen(what);

	for (; *text != '\0'; text++)
		if (pg_strncasecmp(text, what, length) == 0)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *fields[FIELDS] = {"", "", "", "", ""};
	size_t		offset = 0;
	int			n = 0;
	DolonMetricsRequest request;
	DolonMetricsAnswer answer;
	const char *token;

	/* The fields, NUL-separated */
	while (n < FIELDS && offset <= size)
	{
		char	   *field = palloc(size - offset + 1);
		size_t		length = 0;

		while (offset + length < size && data[offset + length] != '\0')
			length++;
		memcpy(field, data + offset, length);
		field[length] = '\0';
		fields[n++] = field;
		offset += length + 1;
	}

	request.method = fields[0];
	request.path = fields[1];
	request.accept = fields[2][0] != '\0' ? fields[2] : NULL;
	request.authorization = fields[3][0] != '\0' ? fields[3] : NULL;
	token = fields[4];

	answer = dolon_metrics_answer(&request, token);
	if (token[0] != '\0')
	{
		bool		presented = request.authorization != NULL &&
			strlen(request.authorization) == strlen("Bearer ") + strlen(token) &&
			pg_strncasecmp(request.authorization, "Bearer ", strlen("Bearer ")) == 0 &&
			strcmp(request.authorization + strlen("Bearer "), token) == 0;

		if (request.authorization != NULL &&
			pg_strncasecmp(request.authorization, "Basic ", strlen("Basic ")) == 0)
		{
			const char *encoded = request.authorization + strlen("Basic ");
			int			length = strlen(encoded);
			char	   *decoded = palloc(length + 1);
			int			decoded_length;
			char	   *colon;

			decoded_length = pg_b64_decode(encoded, length, (void *) decoded, length + 1);
			colon = decoded_length > 0 ? memchr(decoded, ':', decoded_length) : NULL;
			presented = colon != NULL &&
				decoded + decoded_length - (colon + 1) == (long) strlen(token) &&
				memcmp(colon + 1, token, strlen(token)) == 0;
		}

		if (!presented && answer != DOLON_ANSWER_UNAUTHORIZED)
			fuzz_finding("a request without the token is let in");
		if (presented && answer == DOLON_ANSWER_UNAUTHORIZED)
			fuzz_finding("a request with the token is refused");
	}
	else if (answer == DOLON_ANSWER_UNAUTHORIZED)
		fuzz_finding("a token is asked for where none is set");
	if (answer == DOLON_ANSWER_METRICS &&
		(strcmp(request.path, "/metrics") != 0 ||
		 (strcmp(request.method, "GET") != 0 && strcmp(request.method, "HEAD") != 0)))
		fuzz_finding("the metrics are answered to another method or path");

	if (answer == DOLON_ANSWER_RUN_CHART)
	{
		char		expected[64];
		const unsigned char *b = request.run.data;

		snprintf(expected, sizeof(expected),
				 "/runs/%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x.svg",
				 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
				 b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
		if (pg_strcasecmp(request.path, expected) != 0)
			fuzz_finding("a chart is answered to a path that is not its run's");
	}

	if (dolon_metrics_format(request.accept) == DOLON_FORMAT_OPENMETRICS &&
		(request.accept == NULL ||
		 !contains_caseless(request.accept, "application/openmetrics-text")))
		fuzz_finding("OpenMetrics is chosen where Accept does not name it");
	if (request.accept != NULL &&
		pg_strcasecmp(request.accept, "application/openmetrics-text") == 0 &&
		dolon_metrics_format(request.accept) != DOLON_FORMAT_OPENMETRICS)
		fuzz_finding("OpenMetrics is not chosen where Accept names it alone");

	fuzz_reset_memory();
	return 0;
}
