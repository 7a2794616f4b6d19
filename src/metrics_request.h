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

#include "utils/uuid.h"

/* The formats of the metrics */
typedef enum DolonExpositionFormat
{
	DOLON_FORMAT_PROMETHEUS,	/* text format 0.0.4 */
	DOLON_FORMAT_OPENMETRICS	/* OpenMetrics 1.0.0 */
} DolonExpositionFormat;

/* The files of the live page, by path */
typedef enum DolonPageFileId
{
	DOLON_PAGE_HTML,			/* / */
	DOLON_PAGE_STYLE,			/* /dolon.css */
	DOLON_PAGE_SCRIPT,			/* /dolon.js */
	DOLON_PAGE_FILES
} DolonPageFileId;

/* What a request is answered with */
typedef enum DolonMetricsAnswer
{
	DOLON_ANSWER_METRICS,		/* 200, the metrics */
	DOLON_ANSWER_PAGE_FILE,		/* 200, the file request->page_file */
	DOLON_ANSWER_PAGE_STATUS,	/* 200, the page's status.json */
	DOLON_ANSWER_RUN_CHART,		/* 200, the chart of request->run, or 404 */
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
	/* Set by dolon_metrics_answer(), as the answer says */
	DolonPageFileId page_file;
	pg_uuid_t	run;
} DolonMetricsRequest;

extern DolonMetricsAnswer dolon_metrics_answer(DolonMetricsRequest *request,
											   const char *token);
extern DolonExpositionFormat dolon_metrics_format(const char *accept);

#endif							/* DOLON_METRICS_REQUEST_H */
