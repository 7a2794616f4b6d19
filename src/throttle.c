/*-------------------------------------------------------------------------
 *
 * throttle.c
 *		Rate limiting of log messages that may repeat at every sample.
 *
 * A backend that stays unreachable, or a profiler that keeps failing, would
 * otherwise write one message per sample.  A DolonLogThrottle lets the first
 * occurrence through and then at most one per DOLON_LOG_INTERVAL_MS; the
 * report that gets through says how many were held back before it.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "throttle.h"

/* At most one report of a kind per minute */
#define DOLON_LOG_INTERVAL_MS 60000

/*
 * Should this occurrence be logged?  If so, *suppressed is set to the number
 * of occurrences held back since the previous report.
 */
bool
dolon_throttle_permits(DolonLogThrottle *throttle, int64 *suppressed)
{
	TimestampTz now = GetCurrentTimestamp();

	if (throttle->last_report != 0 &&
		!TimestampDifferenceExceeds(throttle->last_report, now,
									DOLON_LOG_INTERVAL_MS))
	{
		throttle->suppressed++;
		return false;
	}

	*suppressed = throttle->suppressed;
	throttle->suppressed = 0;
	throttle->last_report = now;
	return true;
}
