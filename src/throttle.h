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
#include "storage/spin.h"

#include "dolon_common.h"

/*
 * Rate limiting of a repeated log message: at most one report per interval,
 * saying how many were held back since the previous one.
 */
typedef struct DolonLogThrottle
{
	TimestampTz last_report;	/* 0 before the first report */
	int64		suppressed;		/* occurrences held back since then */
} DolonLogThrottle;

/*
 * The last failure a worker met, as its status view shows it; kept in
 * shared memory under the mutex of the status it belongs to.
 */
typedef struct DolonLastError
{
	char		message[DOLON_MAX_ERROR_BYTES];
	TimestampTz time;			/* 0 when there was no error */
} DolonLastError;

extern bool dolon_throttle_permits(DolonLogThrottle *throttle,
								   int64 *suppressed);
extern void dolon_record_error(slock_t *mutex, DolonLastError *last_error,
							   const char *message);
extern void dolon_last_error_datums(const DolonLastError *last_error,
									Datum *values, bool *nulls);

#endif							/* DOLON_THROTTLE_H */
