/*-------------------------------------------------------------------------
 *
 * collector.h
 *		The collector: an embedded mnemic backend.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_COLLECTOR_H
#define DOLON_COLLECTOR_H

#include "storage/spin.h"

#include "throttle.h"

/* State of the collector in shared memory, for dolon.collector and the metrics */
typedef struct DolonCollectorStatus
{
	slock_t		mutex;
	pid_t		pid;
	bool		waiting_for_extension;
	int64		received;
	int64		stored_runs;
	int64		stored_rows;
	int64		duplicate_runs;
	int64		orphan_rows;
	int64		malformed;
	int64		refused;		/* runs or rows of too many columns */
	int64		dropped;
	int64		batches;
	int64		expired_rows;
	DolonLastError last_error;
} DolonCollectorStatus;


extern Size dolon_collector_shmem_size(void);
extern void dolon_collector_shmem_init(void);
extern void dolon_register_collector(void);
extern void dolon_read_collector_status(DolonCollectorStatus *status);
extern PGDLLEXPORT void dolon_collector_main(Datum main_arg);

#endif							/* DOLON_COLLECTOR_H */
