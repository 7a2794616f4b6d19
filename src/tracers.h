/*-------------------------------------------------------------------------
 *
 * tracers.h
 *		The tracers of the server: their slots in shared memory.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_TRACERS_H
#define DOLON_TRACERS_H

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/uuid.h"
#include "backends.h"
#include "dolon_common.h"
#include "throttle.h"

/*
 * State of one tracer, kept in shared memory so that dolon.tracers can show
 * it.  Written by the tracer's worker, read by any backend, under mutex.
 */
typedef struct DolonTracerStatus
{
	slock_t		mutex;
	pid_t		pid;			/* 0 when the worker is not running */
	bool		off;			/* the configured tracer, turned off */
	bool		has_run;		/* false until the first run starts */
	pg_uuid_t	run_uuid;
	TimestampTz run_started;
	DolonProtocol protocol;
	char		host[DOLON_MAX_HOST_BYTES];	/* its address, without scheme */
	int			port;
	int			frequency_ms;
	int			columns;
	int64		samples;
	int64		rows_sent;
	int64		send_errors;
	int64		profiler_errors;
	DolonLastError last_error;
	double		last_sample_us;
	double		total_sample_us;
} DolonTracerStatus;

/* The columns of a tracer's last row that shared memory keeps */
#define DOLON_MAX_LATEST_COLUMNS 128

/*
 * The last row of a tracer, for the metrics endpoint and its page: its run,
 * the names of the run's first DOLON_MAX_LATEST_COLUMNS columns, written
 * when the run starts, and their values, written after each sample.
 * Emptied when a worker takes the slot.  Written by the tracer's worker
 * alone, with no lock: as PostgreSQL's backend status entries are, it
 * makes changecount odd while it writes, and a reader copies the row again
 * until changecount was even and unchanged over its copy, so that a
 * sample never waits for a reader.  Apart from the status, so that
 * reading the status never copies the row.
 */
typedef struct DolonTracerLatest
{
	uint32		changecount;	/* odd while the worker writes */
	pg_uuid_t	run;			/* the run of the names and values */
	int			columns;		/* kept, at most DOLON_MAX_LATEST_COLUMNS */
	TimestampTz sampled;		/* 0 until the run's first sample */
	char		names[DOLON_MAX_LATEST_COLUMNS][DOLON_MAX_COLUMN_BYTES];
	double		values[DOLON_MAX_LATEST_COLUMNS];
	bool		nulls[DOLON_MAX_LATEST_COLUMNS];
} DolonTracerLatest;

/*
 * A slot for one tracer in shared memory.  Slot 0 is the tracer configured
 * in postgresql.conf; the others hold tracers started with
 * dolon.start_tracer().  The definition is written under the slots lock
 * when the slot is taken and does not change while it is in use.
 */
typedef struct DolonTracerSlot
{
	bool		in_use;
	uint64		ticket;			/* identifies this use of the slot */
	char		name[DOLON_MAX_TRACER_NAME_BYTES];
	char		host[DOLON_MAX_HOST_BYTES];
	int			port;
	int			frequency_ms;
	char		profilers[DOLON_MAX_PROFILERS_BYTES];
	Oid			started_by;		/* InvalidOid for the configured tracer */
	pg_uuid_t	first_run_uuid;
	TransactionId start_xid;	/* the worker waits for it to commit */
	TransactionId record_xid;	/* wrote its row; invalid once it is seen */
	TransactionId stop_xid;		/* the worker stops when it commits */
	bool		dropped;		/* its row is gone or changed: it stops */
	DolonTracerStatus status;
	DolonTracerLatest latest;
} DolonTracerSlot;

typedef struct DolonSharedState
{
	LWLock	   *lock;			/* protects the slots' definitions */
	pg_atomic_uint32 announce_requests; /* see dolon_request_announcements() */
	int			max_tracers;
	DolonTracerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} DolonSharedState;

/* The slot of the tracer configured in postgresql.conf */
#define CONFIGURED_TRACER_SLOT 0

extern DolonSharedState *dolon_shared;
extern Size dolon_tracers_shmem_size(void);
extern void dolon_tracers_shmem_init(void);
extern char *dolon_restore_tracers(void);
extern void dolon_request_announcements(void);
extern void dolon_register_configured_tracer(void);
extern bool dolon_launch_tracer(int slot, uint64 ticket);
extern bool dolon_read_tracer(int slot_index, char *name, char *profilers,
							  DolonTracerStatus *status);
extern bool dolon_read_tracer_latest(int slot_index,
									 const DolonTracerStatus *status,
									 DolonTracerLatest *latest);
extern void dolon_begin_latest_write(DolonTracerLatest *latest);
extern void dolon_end_latest_write(DolonTracerLatest *latest);

#endif							/* DOLON_TRACERS_H */
