/*-------------------------------------------------------------------------
 *
 * throttle.c
 *		Failures that may repeat at every sample: rate limiting of their log
 *		messages, and the last one, as a status view shows it.
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

#include "utils/builtins.h"
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

/*
 * Record a failure as the last error of a worker's status.
 */
void
dolon_record_error(slock_t *mutex, DolonLastError *last_error,
				   const char *message)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(mutex);
	strlcpy(last_error->message, message, sizeof(last_error->message));
	last_error->time = now;
	SpinLockRelease(mutex);
}

/*
 * The two columns a status view shows of a last error (a copy taken under
 * its mutex): its message and its time, both null if there was none.
 */
void
dolon_last_error_datums(const DolonLastError *last_error, Datum *values,
						bool *nulls)
{
	values[0] = CStringGetTextDatum(last_error->message);
	values[1] = TimestampTzGetDatum(last_error->time);
	nulls[0] = nulls[1] = last_error->time == 0;
}
