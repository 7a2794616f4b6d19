/*-------------------------------------------------------------------------
 *
 * metrics_exposition.c
 *		This server's metrics in the Prometheus text exposition format.
 *
 * The caller runs in a transaction.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "metrics_exposition.h"

/*
 * Append the exposition of this server's metrics to buf, in the format
 * asked for
 */
void
dolon_metrics_exposition(StringInfo buf, DolonMetricsFormat format)
{
	appendStringInfoString(buf,
						   "# HELP pg_up Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).\n"
						   "# TYPE pg_up gauge\n"
						   "pg_up 1\n");
	if (format == DOLON_METRICS_OPENMETRICS)
		appendStringInfoString(buf, "# EOF\n");
}
