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

#include <ctype.h>

#include "dolon_common.h"
#include "metrics_request.h"

#define BEARER_PREFIX "Bearer "

/*
 * Does the Authorization header carry the token, as "Bearer <token>"?  The
 * comparison runs over DOLON_MAX_TOKEN_BYTES whatever the lengths, so that
 * its time tells a client neither how much of a guess is right nor how long
 * the token is.
 */
static bool
token_matches(const char *authorization, const char *token)
{
	size_t		prefix = strlen(BEARER_PREFIX);
	size_t		given_length;
	size_t		token_length = strlen(token);
	unsigned char difference;
	size_t		i;

	if (authorization == NULL ||
		pg_strncasecmp(authorization, BEARER_PREFIX, prefix) != 0)
		return false;
	authorization += prefix;
	given_length = strnlen(authorization, DOLON_MAX_TOKEN_BYTES + 1);
	if (given_length > DOLON_MAX_TOKEN_BYTES)
		return false;			/* longer than any token: the client's own length */

	difference = given_length != token_length;
	for (i = 0; i < DOLON_MAX_TOKEN_BYTES; i++)
	{
		unsigned char given = i < given_length ? authorization[i] : 0;
		unsigned char expected = i < token_length ? token[i] : 0;

		difference |= given ^ expected;
	}
	return difference == 0;
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
 * The weight ("q") of a media range of an Accept header, between its start
 * and end: 1 unless a parameter q says otherwise; 0 if that is malformed.
 */
static double
range_weight(const char *start, const char *end)
{
	const char *c;

	for (c = start; c < end; c++)
	{
		if (*c != ';')
			continue;
		c++;
		while (c < end && isspace((unsigned char) *c))
			c++;
		if (c + 1 < end && (c[0] == 'q' || c[0] == 'Q') && c[1] == '=')
		{
			char		number[8];
			size_t		length = Min((size_t) (end - c - 2), sizeof(number) - 1);
			char	   *stop;
			double		weight;

			memcpy(number, c + 2, length);
			number[length] = '\0';
			weight = strtod(number, &stop);
			if (stop == number || weight < 0 || weight > 1)
				return 0;
			return weight;
		}
	}
	return 1;
}

/*
 * The format of the metrics for an Accept header: OpenMetrics when the
 * scraper names it with a weight above zero and at least that of the text
 * format (Prometheus names it first), and the Prometheus text format
 * otherwise.
 */
DolonExpositionFormat
dolon_metrics_format(const char *accept)
{
	const char *openmetrics = "application/openmetrics-text";
	const char *text = "text/plain";
	double		openmetrics_weight = 0;
	double		text_weight = 0;
	const char *start = accept;

	while (start != NULL && *start != '\0')
	{
		const char *end = strchr(start, ',');
		const char *type = start;

		if (end == NULL)
			end = start + strlen(start);
		while (type < end && isspace((unsigned char) *type))
			type++;
		if ((size_t) (end - type) >= strlen(openmetrics) &&
			pg_strncasecmp(type, openmetrics, strlen(openmetrics)) == 0)
			openmetrics_weight = Max(openmetrics_weight, range_weight(type, end));
		else if ((size_t) (end - type) >= strlen(text) &&
				 pg_strncasecmp(type, text, strlen(text)) == 0)
			text_weight = Max(text_weight, range_weight(type, end));
		start = *end == ',' ? end + 1 : end;
	}
	return openmetrics_weight > 0 && openmetrics_weight >= text_weight ?
		DOLON_FORMAT_OPENMETRICS : DOLON_FORMAT_PROMETHEUS;
}
