/*-------------------------------------------------------------------------
 *
 * metrics_request.c
 *		What the metrics endpoint answers to a request: its method, path,
 *		bearer token and the format the scraper accepts.
 *
 * libmicrohttpd parses the requests (metrics_server.c); what is decided
 * here from the parsed fields touches no server state, so that anything a
 * client may send can be tried on it alone.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "metrics_request.h"

#define BEARER_PREFIX "Bearer "

/*
 * Does the Authorization header carry the token, as "Bearer <token>"?  The
 * comparison takes the same time wherever the first difference is, so that
 * its time does not tell a client how much of a guess is right.
 */
static bool
token_matches(const char *authorization, const char *token)
{
	size_t		prefix = strlen(BEARER_PREFIX);
	size_t		length = strlen(token);

	if (authorization == NULL ||
		pg_strncasecmp(authorization, BEARER_PREFIX, prefix) != 0)
		return false;
	authorization += prefix;
	if (strlen(authorization) != length)
		return false;
	return timingsafe_bcmp(authorization, token, length) == 0;
}

/*
 * The answer to a request, given the token a scraper must present (empty:
 * none).  A client without the token learns nothing else, not even which
 * paths exist.
 */
DolonMetricsAnswer
dolon_metrics_answer(const DolonMetricsRequest *request, const char *token)
{
	if (token != NULL && token[0] != '\0' &&
		!token_matches(request->authorization, token))
		return DOLON_ANSWER_UNAUTHORIZED;
	if (strcmp(request->method, "GET") != 0 &&
		strcmp(request->method, "HEAD") != 0)
		return DOLON_ANSWER_METHOD_NOT_ALLOWED;
	if (strcmp(request->path, "/metrics") == 0)
		return DOLON_ANSWER_METRICS;
	return DOLON_ANSWER_NOT_FOUND;
}

/*
 * The format of the metrics for an Accept header: OpenMetrics when the
 * scraper names it (Prometheus does, before the text format), and the
 * Prometheus text format otherwise.
 */
DolonExpositionFormat
dolon_metrics_format(const char *accept)
{
	const char *c;
	const char *name = "application/openmetrics-text";
	size_t		length = strlen(name);

	if (accept == NULL)
		return DOLON_FORMAT_PROMETHEUS;
	for (c = accept; *c != '\0'; c++)
		if (pg_strncasecmp(c, name, length) == 0)
			return DOLON_FORMAT_OPENMETRICS;
	return DOLON_FORMAT_PROMETHEUS;
}
