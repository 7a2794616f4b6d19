/*-------------------------------------------------------------------------
 *
 * metrics_exposition.h
 *		The metrics of the server, in the Prometheus text format or
 *		OpenMetrics.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_METRICS_EXPOSITION_H
#define DOLON_METRICS_EXPOSITION_H

#include "lib/stringinfo.h"

#include "metrics_request.h"

extern void dolon_write_metrics(StringInfo out, DolonExpositionFormat format);

#endif							/* DOLON_METRICS_EXPOSITION_H */
