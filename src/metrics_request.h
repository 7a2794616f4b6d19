/*-------------------------------------------------------------------------
 *
 * metrics_request.h
 *		What the metrics endpoint answers to a request.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_METRICS_REQUEST_H
#define DOLON_METRICS_REQUEST_H

/* The formats of the metrics */
typedef enum DolonExpositionFormat
{
	DOLON_FORMAT_PROMETHEUS,	/* text format 0.0.4 */
	DOLON_FORMAT_OPENMETRICS	/* OpenMetrics 1.0.0 */
} DolonExpositionFormat;

/* What a request is answered with */
typedef enum DolonMetricsAnswer
{
	DOLON_ANSWER_METRICS,		/* 200, the metrics */
	DOLON_ANSWER_UNAUTHORIZED,	/* 401, the token is missing or wrong */
	DOLON_ANSWER_NOT_FOUND,		/* 404 */
	DOLON_ANSWER_METHOD_NOT_ALLOWED /* 405 */
} DolonMetricsAnswer;

typedef struct DolonMetricsRequest
{
	const char *method;
	const char *path;
	const char *accept;			/* the Accept header, or NULL */
	const char *authorization;	/* the Authorization header, or NULL */
} DolonMetricsRequest;

extern DolonMetricsAnswer dolon_metrics_answer(const DolonMetricsRequest *request,
											   const char *token);
extern DolonExpositionFormat dolon_metrics_format(const char *accept);

#endif							/* DOLON_METRICS_REQUEST_H */
