/*-------------------------------------------------------------------------
 *
 * metrics_exposition.h
 *		This server's metrics in the Prometheus text exposition format.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_METRICS_EXPOSITION_H
#define DOLON_METRICS_EXPOSITION_H

#include "lib/stringinfo.h"

/* The formats a scraper may ask for */
typedef enum DolonMetricsFormat
{
	DOLON_METRICS_PROMETHEUS,	/* text format 0.0.4 */
	DOLON_METRICS_OPENMETRICS	/* OpenMetrics 1.0.0 text */
} DolonMetricsFormat;

extern void dolon_metrics_exposition(StringInfo buf, DolonMetricsFormat format);

#endif							/* DOLON_METRICS_EXPOSITION_H */
