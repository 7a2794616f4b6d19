/*-------------------------------------------------------------------------
 *
 * metrics_request.c
 *		What the metrics endpoint answers to a request: its method, path
 *		(the metrics, or the live page's files, status and charts), token
 *		and the format the scraper accepts.
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

#include "common/base64.h"
#include "dolon_common.h"
#include "metrics_request.h"

#define BEARER_PREFIX "Bearer "
#define BASIC_PREFIX "Basic "

/* The longest user name of Basic credentials that is read */
#define BASIC_MAX_USER_BYTES 256
#define BASIC_MAX_DECODED_BYTES (BASIC_MAX_USER_BYTES + 1 + DOLON_MAX_TOKEN_BYTES)
#define BASIC_MAX_ENCODED_BYTES (4 * ((BASIC_MAX_DECODED_BYTES + 2) / 3))

/* The paths of the live page's files, in the order of DolonPageFileId */
static const char *const page_paths[DOLON_PAGE_FILES] = {"/", "/dolon.css", "/dolon.js"};

#define RUN_CHART_PREFIX "/runs/"
#define RUN_CHART_SUFFIX ".svg"
#define UUID_TEXT_LENGTH 36

/*
 * The password given by an Authorization header: the text after "Bearer "
 * (as scrapers send it), or the password of "Basic" credentials (as a
 * browser asks for it, any user name): into password, at most
 * DOLON_MAX_TOKEN_BYTES + 1 bytes of it.  False if the header gives none.
 */
static bool
given_password(const char *authorization, char *password, size_t *length)
{
	size_t		encoded_length;
	char		decoded[BASIC_MAX_DECODED_BYTES + 1];
	int			decoded_length;
	const char *colon;

	if (authorization == NULL)
		return false;
	if (pg_strncasecmp(authorization, BEARER_PREFIX, strlen(BEARER_PREFIX)) == 0)
	{
		authorization += strlen(BEARER_PREFIX);
		*length = strnlen(authorization, DOLON_MAX_TOKEN_BYTES + 1);
		memcpy(password, authorization, *length);
		return true;
	}
	if (pg_strncasecmp(authorization, BASIC_PREFIX, strlen(BASIC_PREFIX)) != 0)
		return false;
	authorization += strlen(BASIC_PREFIX);
	encoded_length = strnlen(authorization, BASIC_MAX_ENCODED_BYTES + 1);
	if (encoded_length > BASIC_MAX_ENCODED_BYTES)
		return false;
	/* the decoded bytes are char before PostgreSQL 18, uint8 since */
	decoded_length = pg_b64_decode(authorization, (int) encoded_length,
								   (void *) decoded, sizeof(decoded));
	colon = decoded_length < 0 ? NULL : memchr(decoded, ':', decoded_length);
	if (colon != NULL)
	{
		colon++;
		*length = Min((size_t) (decoded + decoded_length - colon),
					  DOLON_MAX_TOKEN_BYTES + 1);
		memcpy(password, colon, *length);
	}
	/* what a client sent as its password stays nowhere it need not */
	explicit_bzero(decoded, sizeof(decoded));
	return colon != NULL;
}

/*
 * Does the Authorization header carry the token, as "Bearer <token>" or as
 * the password of Basic credentials?  The comparison runs over
 * DOLON_MAX_TOKEN_BYTES whatever the lengths, so that its time tells a
 * client neither how much of a guess is right nor how long the token is.
 */
static bool
token_matches(const char *authorization, const char *token)
{
	char		given[DOLON_MAX_TOKEN_BYTES + 1];
	size_t		given_length;
	size_t		token_length = strlen(token);
	unsigned char difference;
	size_t		i;

	if (!given_password(authorization, given, &given_length))
		return false;
	/* longer than any token: the client's own length */
	difference = given_length != token_length ||
		given_length > DOLON_MAX_TOKEN_BYTES;
	for (i = 0; i < DOLON_MAX_TOKEN_BYTES; i++)
	{
		unsigned char given_byte = i < given_length ? given[i] : 0;
		unsigned char expected = i < token_length ? token[i] : 0;

		difference |= given_byte ^ expected;
	}
	explicit_bzero(given, sizeof(given));
	return difference == 0;
}

/* The value of a hexadecimal digit, or -1 */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Is path the chart of a run, /runs/<uuid>.svg, with the uuid in its
 * canonical form (8-4-4-4-12 hexadecimal digits)?  Its bytes into run.
 */
static bool
parse_run_chart_path(const char *path, pg_uuid_t *run)
{
	const char *uuid = path + strlen(RUN_CHART_PREFIX);
	int			byte = 0;
	int			i;

	if (strncmp(path, RUN_CHART_PREFIX, strlen(RUN_CHART_PREFIX)) != 0 ||
		strnlen(uuid, UUID_TEXT_LENGTH) != UUID_TEXT_LENGTH ||
		strcmp(uuid + UUID_TEXT_LENGTH, RUN_CHART_SUFFIX) != 0)
		return false;
	for (i = 0; i < UUID_TEXT_LENGTH;)
	{
		int			high;
		int			low;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (uuid[i++] != '-')
				return false;
			continue;
		}
		high = hex_value(uuid[i]);
		low = hex_value(uuid[i + 1]);
		if (high < 0 || low < 0)
			return false;
		run->data[byte++] = (unsigned char) (high << 4 | low);
		i += 2;
	}
	return byte == UUID_LEN;
}

/*
 * The answer to a request, given the token a client must present (empty:
 * none), with the file or run it names set in request.  A client without
 * the token learns nothing else, not even which paths exist.
 */
DolonMetricsAnswer
dolon_metrics_answer(DolonMetricsRequest *request, const char *token)
{
	int			f;

	if (token != NULL && token[0] != '\0' &&
		!token_matches(request->authorization, token))
		return DOLON_ANSWER_UNAUTHORIZED;
	if (strcmp(request->method, "GET") != 0 &&
		strcmp(request->method, "HEAD") != 0)
		return DOLON_ANSWER_METHOD_NOT_ALLOWED;
	if (strcmp(request->path, "/metrics") == 0)
		return DOLON_ANSWER_METRICS;
	if (strcmp(request->path, "/status.json") == 0)
		return DOLON_ANSWER_PAGE_STATUS;
	if (parse_run_chart_path(request->path, &request->run))
		return DOLON_ANSWER_RUN_CHART;
	for (f = 0; f < DOLON_PAGE_FILES; f++)
		if (strcmp(request->path, page_paths[f]) == 0)
		{
			request->page_file = (DolonPageFileId) f;
			return DOLON_ANSWER_PAGE_FILE;
		}
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
