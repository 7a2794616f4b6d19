/*-------------------------------------------------------------------------
 *
 * throttle.h
 *		Rate limiting of log messages that may repeat at every sample.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_THROTTLE_H
#define DOLON_THROTTLE_H

#include "datatype/timestamp.h"

/*
 * Rate limiting of a repeated log message: at most one report per interval,
 * saying how many were held back since the previous one.
 */
typedef struct DolonLogThrottle
{
	TimestampTz last_report;	/* 0 before the first report */
	int64		suppressed;		/* occurrences held back since then */
} DolonLogThrottle;

extern bool dolon_throttle_permits(DolonLogThrottle *throttle,
								   int64 *suppressed);

#endif							/* DOLON_THROTTLE_H */
