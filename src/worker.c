/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The tracer background worker: every interval it takes a sample of
 *		its profilers and sends it as a row of the current run to its mnemic
 *		backend.
 *
 * There is one worker per tracer.  The tracer configured in postgresql.conf
 * runs in the static worker "dolon tracer", registered at server start; it
 * follows the dolon.* settings through reloads, and when it starts it also
 * starts the tracers recorded by dolon.start_tracer() (see tracers.c).  Each
 * of those runs in a dynamic worker of the same kind, with the definition
 * held in its slot; the worker first waits for the transaction that started
 * it to end, and goes away if it rolled back, and it stops once the
 * transaction that called dolon.stop_tracer() on it commits.
 *
 * The worker keeps a fixed schedule: sample k is due at start + k * interval,
 * whatever each sample took, and samples missed while a slow one ran are
 * skipped rather than taken in a burst.  Between samples it sleeps on its
 * latch, which a reload (SIGHUP), a stop or a shutdown (SIGTERM) sets.
 *
 * A run is one uuid with one app_name and one list of columns.  A reload
 * that changes the tracer name or the profilers, and any change to the set
 * of profiled functions, starts a new run at the next sample; a reload that
 * changes the backend keeps the run and announces it to the new backend.
 * The announcement (create_trace_run) is sent again when sending recovers
 * from a failure, when the collector of this server asks for it, and every
 * DOLON_ANNOUNCE_INTERVAL_MS in any case, so that a backend that starts
 * late, restarts or lost the first datagram still learns the run; a backend
 * ignores a run it already knows.
 *
 * A sample reads shared memory, and most samples take no transaction: its
 * start and commit would cost more than the reads.  A sample takes one only
 * when it has catalogs to read: to start a run, to convert the names of a
 * line protocol, to check the role of the custom profilers, or to scan
 * pg_class or pg_database again after they changed.  Before each sample the
 * worker processes the catalog invalidations that came since the last, as
 * the start of a transaction would, so that such a change is seen as soon.
 * The statistics are read with stats_fetch_consistency = none, so that no
 * sample keeps a snapshot of them for the next.  An error in a sample is
 * caught and logged (rate-limited), the row is sent with nulls, and the
 * worker goes on.  The
 * tracer never runs custom profilers itself: its profiler runner does, and
 * the tracer waits for their values at most dolon.profiler_timeout a call,
 * and at most three quarters of its interval, so that its rows keep their
 * schedule whatever the profilers do (see profiler_runner.c).
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "backends.h"
#include "custom_profilers.h"
#include "function_profiling.h"
#include "guc.h"
#include "line_protocols.h"
#include "profiler_runner.h"
#include "profilers.h"
#include "protocol.h"
#include "sampling.h"
#include "throttle.h"
#include "tracers.h"
#include "transaction.h"
#include "transport.h"
#include "worker.h"

/* Announce the current run again at least this often */
#define DOLON_ANNOUNCE_INTERVAL_MS 30000

/* While a profiler runner starts, look at it this often */
#define DOLON_RUNNER_START_POLL_MS 10

/* While a stop waits for its transaction, look at it this often */
#define DOLON_STOP_POLL_MS 100

/*
 * The configured tracer brings the running tracers in line with
 * dolon.tracer_definitions this often
 */
#define DOLON_RESTORE_INTERVAL_MS 10000

typedef struct Tracer
{
	int			slot_index;
	DolonTracerSlot *slot;
	bool		configured;		/* the tracer of postgresql.conf? */
	bool		off;			/* configured, with an empty dolon.host */
	TimestampTz next_restore;	/* configured: see restore_started_tracers() */

	/* The definition in force */
	char		name[DOLON_MAX_TRACER_NAME_BYTES];
	DolonProfilerList *profilers;	/* in TopMemoryContext */
	char	   *host;			/* as given, with its scheme */
	DolonBackend backend;		/* host, parsed */
	int			port;
	int			frequency_ms;
	Oid			started_by;		/* InvalidOid for the configured tracer */

	/* A sample outside a transaction allocates here; reset after each */
	MemoryContext sample_context;

	/* The current run, allocated in run_context */
	MemoryContext run_context;
	bool		run_outdated;	/* start a new run at the next sample */
	bool		have_first_uuid;	/* the uuid start_tracer() returned */
	pg_uuid_t	run_uuid;
	char		run_uuid_text[DOLON_UUID_TEXT_LEN + 1];
	uint64		function_set_generation;
	DolonColumns *columns;		/* NULL until a run starts */
	const char **column_names;	/* theirs */
	double	   *values;
	bool	   *nulls;
	DolonLineFormat *line_format;	/* for a line protocol, once needed */
	TimestampTz sample_time;	/* when the last sample was taken */

	/* The backend, and what it has been told */
	DolonSender sender;
	bool		announce_pending;
	TimestampTz last_announce;
	uint32		announce_requests;	/* as last seen in shared memory */
	bool		sending_fails;	/* did a datagram of the last sample fail? */

	TimestampTz next_sample;
	DolonSampleHistory history;
	DolonProfilerRunner runner; /* runs the custom profilers */
	StringInfoData message;
	DolonLogThrottle send_throttle;
	DolonLogThrottle recovery_throttle;
	DolonLogThrottle sample_throttle;
	DolonLogThrottle role_throttle;
	DolonLogThrottle restore_throttle;
	char	   *restore_skipped;	/* what the last restore skipped, and why */
	DolonLogThrottle profiler_throttle;
} Tracer;

static void apply_settings(Tracer *tracer);
static void take_sample(Tracer *tracer);
static void send_sample(Tracer *tracer);

static void
status_record_error(Tracer *tracer, const char *error)
{
	dolon_record_error(&tracer->slot->status.mutex,
					   &tracer->slot->status.last_error, error);
}

/*
 * on_shmem_exit callback: the worker is gone, unless another one has taken
 * the slot since, and so is the runner of its custom profilers.
 */
static void
tracer_status_detach(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);
	DolonTracerStatus *status = &dolon_shared->slots[slot].status;
	bool		ours;

	SpinLockAcquire(&status->mutex);
	ours = status->pid == MyProcPid;
	if (ours)
		status->pid = 0;
	SpinLockRelease(&status->mutex);
	if (ours)
		dolon_runner_terminate(slot);
}

/*
 * on_proc_exit callback: close the socket to the backend ourselves, so that
 * a stream cut in the middle of a line is reset (see transport.c) rather
 * than ended by the kernel as the process goes.
 */
static void
close_sender(int code, Datum arg)
{
	dolon_sender_close((DolonSender *) DatumGetPointer(arg));
}

/*
 * Take the slot and reset its status.  A tracer started from SQL checks
 * that the slot still holds the definition it was started for: after a
 * crash, shared memory is new, and the configured tracer starts the
 * recorded tracers afresh.
 */
static bool
attach_slot(Tracer *tracer, uint64 ticket)
{
	DolonTracerStatus *status = &tracer->slot->status;
	bool		ours;

	LWLockAcquire(dolon_shared->lock, LW_SHARED);
	ours = tracer->configured ||
		(tracer->slot->in_use && tracer->slot->ticket == ticket);
	LWLockRelease(dolon_shared->lock);
	if (!ours)
		return false;

	/* Emptied: no run of this worker yet */
	dolon_begin_latest_write(&tracer->slot->latest);
	memset(&tracer->slot->latest.run, 0, sizeof(pg_uuid_t));
	tracer->slot->latest.columns = 0;
	tracer->slot->latest.sampled = 0;
	dolon_end_latest_write(&tracer->slot->latest);

	SpinLockAcquire(&status->mutex);
	status->pid = MyProcPid;
	status->samples = 0;
	status->rows_sent = 0;
	status->send_errors = 0;
	status->profiler_errors = 0;
	memset(&status->last_error, 0, sizeof(status->last_error));
	status->last_sample_us = 0;
	status->total_sample_us = 0;
	SpinLockRelease(&status->mutex);
	on_shmem_exit(tracer_status_detach, Int32GetDatum(tracer->slot_index));
	return true;
}

/*
 * Free the slot of a tracer started from SQL, and exit without being
 * restarted.
 */
static void
release_slot_and_exit(Tracer *tracer)
{
	LWLockAcquire(dolon_shared->lock, LW_EXCLUSIVE);
	tracer->slot->in_use = false;
	LWLockRelease(dolon_shared->lock);
	proc_exit(0);
}

/*
 * Read the definition of a tracer started from SQL from its slot, and wait
 * for the transaction that started it: it may still roll back.
 */
static void
load_started_tracer(Tracer *tracer)
{
	DolonTracerSlot *slot = tracer->slot;
	TransactionId start_xid;
	char		profilers[DOLON_MAX_PROFILERS_BYTES];
	MemoryContext oldcontext;
	bool		parsed;
	DolonFailure failure;
	int			i;

	LWLockAcquire(dolon_shared->lock, LW_SHARED);
	strlcpy(tracer->name, slot->name, sizeof(tracer->name));
	tracer->host = MemoryContextStrdup(TopMemoryContext, slot->host);
	tracer->port = slot->port;
	tracer->frequency_ms = slot->frequency_ms;
	tracer->started_by = slot->started_by;
	strlcpy(profilers, slot->profilers, sizeof(profilers));
	start_xid = slot->start_xid;
	LWLockRelease(dolon_shared->lock);

	oldcontext = MemoryContextSwitchTo(TopMemoryContext);
	parsed = dolon_parse_profilers(profilers, &tracer->profilers, &failure);
	MemoryContextSwitchTo(oldcontext);
	if (!parsed)
	{
		failure.message = psprintf("dolon tracer \"%s\" does not start: its profilers are invalid",
								   tracer->name);
		dolon_report_failure(LOG, &failure);
		release_slot_and_exit(tracer);
	}

	if (TransactionIdIsValid(start_xid))
	{
		bool		committed;

		StartTransactionCommand();
		XactLockTableWait(start_xid, NULL, NULL, XLTW_None);
		committed = TransactionIdDidCommit(start_xid);
		CommitTransactionCommand();
		if (!committed)
		{
			ereport(LOG,
					(errmsg("dolon tracer \"%s\" does not start: the transaction that started it rolled back",
							tracer->name)));
			release_slot_and_exit(tracer);
		}
	}

	/*
	 * The first run has the uuid that dolon.start_tracer() returned, if
	 * any; a worker that restarts begins a new run.
	 */
	LWLockAcquire(dolon_shared->lock, LW_EXCLUSIVE);
	tracer->run_uuid = slot->first_run_uuid;
	memset(&slot->first_run_uuid, 0, sizeof(pg_uuid_t));
	slot->start_xid = InvalidTransactionId;
	LWLockRelease(dolon_shared->lock);
	for (i = 0; i < UUID_LEN; i++)
		tracer->have_first_uuid |= tracer->run_uuid.data[i] != 0;
}

/*
 * Must this tracer stop?  When the transaction that stopped it has
 * committed, or its row of dolon.tracer_definitions is gone; a stop that
 * rolled back is forgotten.  *pending is set while a stop's transaction is
 * still running.
 */
static bool
stop_committed(Tracer *tracer, bool *pending)
{
	TransactionId stop_xid;
	bool		dropped;

	*pending = false;
	if (tracer->configured)
		return false;

	LWLockAcquire(dolon_shared->lock, LW_SHARED);
	stop_xid = tracer->slot->stop_xid;
	dropped = tracer->slot->dropped;
	LWLockRelease(dolon_shared->lock);
	if (dropped)
	{
		ereport(LOG,
				(errmsg("dolon tracer \"%s\" stopped", tracer->name),
				 errdetail("Its row of dolon.tracer_definitions was deleted or changed.")));
		release_slot_and_exit(tracer);
	}
	if (!TransactionIdIsValid(stop_xid))
		return false;

	if (TransactionIdIsInProgress(stop_xid))
	{
		*pending = true;
		return false;
	}
	if (TransactionIdDidCommit(stop_xid))
		return true;

	LWLockAcquire(dolon_shared->lock, LW_EXCLUSIVE);
	if (tracer->slot->stop_xid == stop_xid)
		tracer->slot->stop_xid = InvalidTransactionId;
	LWLockRelease(dolon_shared->lock);
	return false;
}

/*
 * Bring the tracers started from SQL in line with dolon.tracer_definitions
 * (see dolon_restore_tracers()).  What could not be started, and why, is
 * logged when it changes; an error is logged, and the configured tracer
 * goes on.
 */
static void
restore_step(void *arg)
{
	char	  **skipped = (char **) arg;
	char	   *result = dolon_restore_tracers();

	*skipped = result ? MemoryContextStrdup(TopMemoryContext, result) : NULL;
}

static void
restore_started_tracers(Tracer *tracer)
{
	char	   *skipped = NULL;
	char	   *error = dolon_run_in_transaction(restore_step, &skipped, true);
	int64		suppressed;

	if (error != NULL)
	{
		if (dolon_throttle_permits(&tracer->restore_throttle, &suppressed))
			ereport(WARNING,
					(errmsg("dolon could not start the tracers recorded by dolon.start_tracer(): %s",
							error)));
		pfree(error);
		return;
	}

	if (skipped != NULL &&
		(tracer->restore_skipped == NULL ||
		 strcmp(skipped, tracer->restore_skipped) != 0))
		ereport(WARNING,
				(errmsg("dolon does not run some tracers of dolon.tracer_definitions"),
				 errdetail("%s", skipped),
				 errhint("They are tried again every %d seconds; dolon.stop_tracer() removes one.",
						 DOLON_RESTORE_INTERVAL_MS / 1000)));
	if (tracer->restore_skipped != NULL)
		pfree(tracer->restore_skipped);
	tracer->restore_skipped = skipped;
}

/*
 * The system clock stepped back if a deadline is further ahead than it was
 * set: the sample and the restore pass that were due are due now, rather
 * than after as long as the step.  (A step forward makes them due at once,
 * and the schedule skips the samples in between.)
 */
static void
follow_clock_step(Tracer *tracer, TimestampTz now)
{
	if (tracer->next_sample != DT_NOEND &&
		tracer->next_sample - now > (int64) tracer->frequency_ms * 1000)
		tracer->next_sample = now;
	if (tracer->next_restore - now > (int64) DOLON_RESTORE_INTERVAL_MS * 1000)
		tracer->next_restore = now;
}

/*
 * Entry point of a tracer worker; the argument is its slot.
 */
void
dolon_tracer_main(Datum main_arg)
{
	/*
	 * Static: the exit callbacks that read it also run after an error that
	 * left this function (StartBackgroundWorker() catches it).
	 */
	static Tracer tracer;
	uint64		ticket;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	memset(&tracer, 0, sizeof(tracer));
	tracer.slot_index = DatumGetInt32(main_arg);
	tracer.slot = &dolon_shared->slots[tracer.slot_index];
	tracer.configured = tracer.slot_index == CONFIGURED_TRACER_SLOT;
	memcpy(&ticket, MyBgworkerEntry->bgw_extra, sizeof(ticket));
	if (!attach_slot(&tracer, ticket))
		proc_exit(0);

	BackgroundWorkerInitializeConnection(dolon_database, NULL, 0);

	/*
	 * Read each statistics entry afresh rather than keep a copy of all that
	 * were read until the end of the transaction: see sampling.c.
	 */
	SetConfigOption("stats_fetch_consistency", "none",
					PGC_SUSET, PGC_S_OVERRIDE);

	tracer.run_context = AllocSetContextCreate(TopMemoryContext,
											   "dolon tracer run",
											   ALLOCSET_SMALL_SIZES);
	tracer.sample_context = AllocSetContextCreate(TopMemoryContext,
												  "dolon tracer sample",
												  ALLOCSET_DEFAULT_SIZES);
	dolon_sender_init(&tracer.sender);
	on_proc_exit(close_sender, PointerGetDatum(&tracer.sender));
	initStringInfo(&tracer.message);
	dolon_runner_init(&tracer.runner, tracer.slot_index, tracer.name);

	if (!tracer.configured)
		load_started_tracer(&tracer);

	apply_settings(&tracer);
	tracer.next_sample = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz watch;
		TimestampTz retry_at;
		bool		stop_pending;
		long		timeout;
		pgsocket	sock;
		int			events;

		follow_clock_step(&tracer, now);

		if (stop_committed(&tracer, &stop_pending))
		{
			ereport(LOG,
					(errmsg("dolon tracer \"%s\" stopped", tracer.name),
					 errdetail("dolon.stop_tracer() was called on it.")));
			release_slot_and_exit(&tracer);
		}

		if (tracer.configured && now >= tracer.next_restore)
		{
			restore_started_tracers(&tracer);
			now = GetCurrentTimestamp();
			tracer.next_restore = TimestampTzPlusMilliseconds(now,
															  DOLON_RESTORE_INTERVAL_MS);
		}

		if (tracer.off)
			tracer.next_sample = DT_NOEND;
		else if (now >= tracer.next_sample)
		{
			TimestampTz due = tracer.next_sample;
			int64		interval_us = (int64) tracer.frequency_ms * 1000;

			take_sample(&tracer);
			send_sample(&tracer);

			/* Keep to the schedule; skip the samples that are past already */
			now = GetCurrentTimestamp();
			tracer.next_sample = due + interval_us;
			if (tracer.next_sample <= now)
				tracer.next_sample += ((now - tracer.next_sample) / interval_us + 1) *
					interval_us;
		}

		timeout = (Min(tracer.next_sample, tracer.configured ?
					   tracer.next_restore : DT_NOEND) - now + 999) / 1000;
		if (stop_pending)
			timeout = Min(timeout, DOLON_STOP_POLL_MS);
		watch = dolon_runner_watch(&tracer.runner);
		if (watch != 0)
			timeout = Min(timeout, (watch - now + 999) / 1000);
		/* A stream's lines go out as its socket takes them */
		sock = dolon_sender_wait_socket(&tracer.sender, &retry_at);
		if (retry_at != 0)
			timeout = Min(timeout, (retry_at - now + 999) / 1000);
		timeout = Max(timeout, 0);
		events = WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH;
		/* WaitLatch() reuses a wait set that WaitLatchOrSocket() would make */
		if (sock != PGINVALID_SOCKET)
			events = WaitLatchOrSocket(MyLatch, events | WL_SOCKET_WRITEABLE,
									   sock, timeout, PG_WAIT_EXTENSION);
		else
			events = WaitLatch(MyLatch, events, timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if ((events & WL_SOCKET_WRITEABLE) ||
			(retry_at != 0 && GetCurrentTimestamp() >= retry_at))
			dolon_sender_flush(&tracer.sender);

		if (dolon_between_steps())
			apply_settings(&tracer);
	}
}

/*
 * Bring the tracer in line with its definition: at start, and for the
 * configured tracer after each reload.
 */
static void
apply_settings(Tracer *tracer)
{
	DolonTracerStatus *status = &tracer->slot->status;
	DolonBackend backend;
	DolonFailure failure;

	if (tracer->configured)
	{
		const char *name = dolon_effective_tracer_name();
		int			old_frequency_ms = tracer->frequency_ms;

		if (tracer->profilers == NULL ||
			strcmp(tracer->name, name) != 0 ||
			!dolon_same_profilers(tracer->profilers, dolon_profiler_list))
		{
			Size		size = DolonProfilerListSize(dolon_profiler_list->count);

			if (tracer->profilers != NULL)
				pfree(tracer->profilers);
			tracer->profilers = MemoryContextAlloc(TopMemoryContext, size);
			memcpy(tracer->profilers, dolon_profiler_list, size);
			strlcpy(tracer->name, name, sizeof(tracer->name));
			tracer->run_outdated = true;

			LWLockAcquire(dolon_shared->lock, LW_EXCLUSIVE);
			strlcpy(tracer->slot->name, tracer->name, sizeof(tracer->slot->name));
			strlcpy(tracer->slot->profilers, dolon_profilers,
					sizeof(tracer->slot->profilers));
			LWLockRelease(dolon_shared->lock);
		}
		tracer->host = dolon_host;
		tracer->port = dolon_port;
		tracer->frequency_ms = dolon_frequency_ms;

		/* Move the next sample to one interval after the last one */
		if (old_frequency_ms != 0 && !tracer->off)
			tracer->next_sample += ((int64) tracer->frequency_ms -
									old_frequency_ms) * 1000;

		/* An empty host turns the configured tracer off */
		if (dolon_host[0] == '\0')
		{
			if (!tracer->off || old_frequency_ms == 0)
				ereport(LOG,
						(errmsg("dolon tracer \"%s\" is off: dolon.host is empty",
								tracer->name)));
			tracer->off = true;
			SpinLockAcquire(&status->mutex);
			status->off = true;
			SpinLockRelease(&status->mutex);
			dolon_runner_terminate(tracer->slot_index);
			return;
		}
		if (tracer->off)
		{
			tracer->off = false;
			tracer->run_outdated = true;
			tracer->next_sample = GetCurrentTimestamp();
			old_frequency_ms = 0;
		}
		if (old_frequency_ms == 0)
			ereport(LOG,
					(errmsg("dolon tracer \"%s\" started, sending to \"%s\" port %d every %d ms",
							tracer->name, tracer->host, tracer->port,
							tracer->frequency_ms)));
	}
	else
	{
		tracer->run_outdated = tracer->columns == NULL;
		ereport(LOG,
				(errmsg("dolon tracer \"%s\" started, sending to \"%s\" port %d every %d ms",
						tracer->name, tracer->host, tracer->port,
						tracer->frequency_ms)));
	}

	/* Checked already, by dolon.host's check hook or by start_tracer() */
	if (!dolon_parse_backend(tracer->host, &backend, &failure))
		dolon_report_failure(ERROR, &failure);

	/* A new backend must learn the run */
	if (dolon_sender_set_target(&tracer->sender, backend.address, tracer->port,
								dolon_protocol_is_stream(backend.protocol)) ||
		backend.protocol != tracer->backend.protocol)
		tracer->announce_pending = true;
	tracer->backend = backend;

	SpinLockAcquire(&status->mutex);
	status->off = false;
	status->protocol = backend.protocol;
	strlcpy(status->host, backend.address, sizeof(status->host));
	status->port = tracer->port;
	status->frequency_ms = tracer->frequency_ms;
	SpinLockRelease(&status->mutex);
}

/*
 * Start a new run: a new uuid and the columns of the current profilers and
 * profiled functions.  Called in the sample's transaction.
 */
static void
start_run(Tracer *tracer)
{
	DolonTracerStatus *status = &tracer->slot->status;
	DolonTracerLatest *latest = &tracer->slot->latest;
	MemoryContext oldcontext;
	uint64		generation = dolon_profiled_functions_generation();
	int			i;

	tracer->columns = NULL;
	tracer->line_format = NULL;
	MemoryContextReset(tracer->run_context);
	oldcontext = MemoryContextSwitchTo(tracer->run_context);
	tracer->columns = dolon_build_columns(tracer->profilers, false);
	tracer->column_names = palloc(tracer->columns->count * sizeof(char *));
	for (i = 0; i < tracer->columns->count; i++)
		tracer->column_names[i] = tracer->columns->items[i].name;
	tracer->values = palloc(tracer->columns->count * sizeof(double));
	tracer->nulls = palloc(tracer->columns->count * sizeof(bool));
	MemoryContextSwitchTo(oldcontext);

	if (!tracer->have_first_uuid)
		mnemic_new_run_uuid(&tracer->run_uuid);
	tracer->have_first_uuid = false;
	mnemic_uuid_text(&tracer->run_uuid, tracer->run_uuid_text);
	tracer->function_set_generation = generation;
	tracer->run_outdated = false;
	tracer->announce_pending = true;

	SpinLockAcquire(&status->mutex);
	status->has_run = true;
	status->run_uuid = tracer->run_uuid;
	status->run_started = GetCurrentTimestamp();
	status->columns = tracer->columns->count;
	SpinLockRelease(&status->mutex);

	dolon_begin_latest_write(latest);
	latest->run = tracer->run_uuid;
	latest->columns = Min(tracer->columns->count, DOLON_MAX_LATEST_COLUMNS);
	latest->sampled = 0;
	for (i = 0; i < latest->columns; i++)
		strlcpy(latest->names[i], tracer->column_names[i],
				DOLON_MAX_COLUMN_BYTES);
	dolon_end_latest_write(latest);

	ereport(LOG,
			(errmsg("dolon tracer \"%s\" started run %s with %d columns",
					tracer->name, tracer->run_uuid_text,
					tracer->columns->count)));
}

/*
 * Can the custom profilers run?  Not without a fit dolon.profiler_role
 * whose privileges the tracer's starter has: a warning says so.  Needs a
 * transaction.
 */
static bool
custom_profilers_can_run(Tracer *tracer)
{
	DolonFailure failure;
	int64		suppressed;

	if (!dolon_has_custom_profilers(tracer->profilers))
		return false;
	if (OidIsValid(dolon_profiler_role_oid(dolon_profiler_role,
										   tracer->started_by, &failure)))
		return true;
	if (dolon_throttle_permits(&tracer->role_throttle, &suppressed))
	{
		failure.message = psprintf("dolon tracer \"%s\" does not run its custom profilers",
								   tracer->name);
		dolon_report_failure(WARNING, &failure);
	}
	return false;
}

/*
 * Report the failures of custom profilers in a sample: how many, and the
 * message of the last.
 */
static void
report_profiler_failures(Tracer *tracer, int failures, const char *error)
{
	DolonTracerStatus *status = &tracer->slot->status;
	int64		suppressed;

	if (failures == 0)
		return;

	SpinLockAcquire(&status->mutex);
	status->profiler_errors += failures;
	SpinLockRelease(&status->mutex);
	status_record_error(tracer, error);

	if (dolon_throttle_permits(&tracer->profiler_throttle, &suppressed))
		ereport(WARNING,
				(errmsg("dolon tracer \"%s\": %s", tracer->name, error),
				 errdetail("The value is null in this row; the other profilers are unaffected."),
				 suppressed > 0 ?
				 errhint("%lld more profiler failures were not logged since the last report.",
						 (long long) suppressed) : 0));
}

/*
 * Is the line format of the run missing, or that of another protocol?  It
 * is made by a sample's transaction, for send_lines().
 */
static bool
line_format_outdated(Tracer *tracer)
{
	return tracer->backend.protocol != DOLON_PROTOCOL_MNEMIC &&
		(tracer->line_format == NULL ||
		 tracer->line_format->protocol != tracer->backend.protocol);
}

/* What a sample step works on */
typedef struct SampleStep
{
	Tracer	   *tracer;
	DolonSample *sample;
	bool		run_custom;		/* are there custom profilers to run? */
} SampleStep;

static void
sample_step(void *arg)
{
	SampleStep *step = (SampleStep *) arg;
	Tracer	   *tracer = step->tracer;

	if (tracer->run_outdated ||
		tracer->function_set_generation != dolon_profiled_functions_generation())
		start_run(tracer);
	step->sample->time = GetCurrentTimestamp();
	tracer->sample_time = step->sample->time;

	/*
	 * The names of a line protocol, in UTF-8: a conversion from the
	 * database's encoding needs a transaction
	 */
	if (line_format_outdated(tracer))
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(tracer->run_context);

		tracer->line_format = dolon_line_format(tracer->backend.protocol,
												tracer->name,
												tracer->column_names,
												tracer->columns->count);
		MemoryContextSwitchTo(oldcontext);
	}

	step->run_custom = custom_profilers_can_run(tracer);
	dolon_sample_row(step->sample, tracer->columns, tracer->values,
					 tracer->nulls);
}

static void
accept_invalidations(void *arg)
{
	AcceptInvalidationMessages();
}

/*
 * Does the next sample need a transaction (see the header comment)?  The
 * catalog invalidations that came since the last sample are processed
 * first, outside a transaction, as the start of one would; if that fails,
 * the start of a transaction processes them again, and reports its error.
 */
static bool
sample_needs_transaction(Tracer *tracer)
{
	char	   *error = dolon_run_outside_transaction(accept_invalidations, NULL,
													  tracer->sample_context);

	if (error != NULL)
	{
		pfree(error);
		return true;
	}
	return tracer->columns == NULL || tracer->run_outdated ||
		tracer->function_set_generation != dolon_profiled_functions_generation() ||
		line_format_outdated(tracer) ||
		dolon_has_custom_profilers(tracer->profilers) ||
		dolon_row_needs_transaction(tracer->columns);
}

/*
 * Has dolon.stop_tracer() been called on this tracer, committed or not?
 */
static bool
stop_requested(Tracer *tracer)
{
	TransactionId stop_xid;

	if (tracer->configured)
		return false;
	LWLockAcquire(dolon_shared->lock, LW_SHARED);
	stop_xid = tracer->slot->stop_xid;
	LWLockRelease(dolon_shared->lock);
	return TransactionIdIsValid(stop_xid);
}

/*
 * Wait for the profiler runner at most timeout ms.  Returns false if a
 * reload or a stop came meanwhile, for the worker's loop to act on at once;
 * a shutdown ends the worker here.
 */
static bool
wait_for_runner(Tracer *tracer, long timeout)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 timeout, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	dolon_handle_interrupts();
	if (ConfigReloadPending || stop_requested(tracer))
	{
		SetLatch(MyLatch);
		return false;
	}
	return true;
}

/*
 * Have the runner call the custom profilers, and wait for their values at most
 * dolon.profiler_timeout a call, and never past three quarters of the interval
 * after the sample was due (the rest is for the sample and its send, before
 * the next one is due): a round of several slow calls would otherwise hold the
 * row past the next sample's time, and the schedule would lose the samples in
 * between.  The calls left go on in the runner, and the next samples go out
 * without custom values until the round is over.  The worker stays responsive
 * while it waits: a shutdown ends it, and a reload or a stop ends the wait,
 * the row going out with the values that came.
 */
static void
run_custom_profilers(Tracer *tracer, int *failures, char *error)
{
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz latest = TimestampTzPlusMilliseconds(tracer->next_sample,
													 tracer->frequency_ms * 3 / 4);

	/* A runner that is starting is waited for, as its calls would be */
	dolon_runner_start_round(&tracer->runner, tracer->columns);
	while (tracer->runner.starting &&
		   !TimestampDifferenceExceeds(started, GetCurrentTimestamp(),
									   dolon_profiler_timeout_ms))
	{
		if (!wait_for_runner(tracer, DOLON_RUNNER_START_POLL_MS))
			break;
		dolon_runner_start_round(&tracer->runner, tracer->columns);
	}
	while (!dolon_runner_round_over(&tracer->runner))
	{
		TimestampTz watch = dolon_runner_watch(&tracer->runner);
		TimestampTz until = Min(dolon_runner_deadline(&tracer->runner), latest);
		long		timeout;

		if (watch != 0)
			until = Min(until, watch);
		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);
		if (timeout <= 0 || !wait_for_runner(tracer, Min(timeout, INT_MAX)))
			break;
	}
	dolon_runner_finish_round(&tracer->runner, tracer->columns,
							  tracer->values, tracer->nulls, failures, error);
}

/*
 * Compute the values of the current run's columns into tracer->values, in a
 * transaction of its own if it needs one, starting a new run first if one is
 * due.  An error leaves every value null.
 */
static void
take_sample(Tracer *tracer)
{
	DolonTracerStatus *status = &tracer->slot->status;
	DolonSample sample;
	SampleStep	step = {tracer, &sample, false};
	instr_time	start;
	instr_time	duration;
	double		duration_us;
	char	   *error;
	bool		in_transaction;
	int			profiler_failures = 0;
	char		profiler_error[DOLON_MAX_ERROR_BYTES];

	memset(&sample, 0, sizeof(sample));
	sample.history = &tracer->history;

	INSTR_TIME_SET_CURRENT(start);
	in_transaction = sample_needs_transaction(tracer);
	if (in_transaction)
		error = dolon_run_in_transaction(sample_step, &step, false);
	else
		error = dolon_run_outside_transaction(sample_step, &step,
											  tracer->sample_context);
	if (error != NULL)
	{
		int64		suppressed;
		int			i;

		for (i = 0; tracer->columns != NULL && i < tracer->columns->count; i++)
			tracer->nulls[i] = true;

		status_record_error(tracer, error);
		if (dolon_throttle_permits(&tracer->sample_throttle, &suppressed))
			ereport(LOG,
					(errmsg("dolon tracer \"%s\" could not take a sample: %s",
							tracer->name, error),
					 suppressed > 0 ?
					 errdetail("%lld more failed samples were not logged since the last report.",
							   (long long) suppressed) : 0));
		pfree(error);
	}
	else if (step.run_custom)
		run_custom_profilers(tracer, &profiler_failures, profiler_error);
	else
		dolon_runner_retire(&tracer->runner);

	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	duration_us = INSTR_TIME_GET_MICROSEC(duration);

	SpinLockAcquire(&status->mutex);
	status->last_sample_us = duration_us;
	status->total_sample_us += duration_us;
	status->samples++;
	SpinLockRelease(&status->mutex);

	if (tracer->columns != NULL)
	{
		DolonTracerLatest *latest = &tracer->slot->latest;
		TimestampTz now = GetCurrentTimestamp();

		dolon_begin_latest_write(latest);
		memcpy(latest->values, tracer->values,
			   latest->columns * sizeof(double));
		memcpy(latest->nulls, tracer->nulls, latest->columns * sizeof(bool));
		latest->sampled = now;
		dolon_end_latest_write(latest);
	}

	report_profiler_failures(tracer, profiler_failures, profiler_error);

	/*
	 * Flush the statistics of a transaction's catalog reads, at most once a
	 * second; a sample outside one has none
	 */
	if (in_transaction)
		pgstat_report_stat(false);
}

/*
 * Send tracer->message.  A failure is counted, recorded and logged, at most
 * once a minute, and has the run announced again once sending works.
 */
static bool
send_message(Tracer *tracer)
{
	DolonTracerStatus *status = &tracer->slot->status;
	int64		suppressed;

	if (dolon_sender_send(&tracer->sender, tracer->message.data,
						  tracer->message.len))
		return true;

	tracer->announce_pending = true;

	SpinLockAcquire(&status->mutex);
	status->send_errors++;
	SpinLockRelease(&status->mutex);
	status_record_error(tracer, tracer->sender.error);

	if (dolon_throttle_permits(&tracer->send_throttle, &suppressed))
		ereport(LOG,
				(errmsg("dolon tracer \"%s\" %s", tracer->name,
						tracer->sender.error),
				 suppressed > 0 ?
				 errdetail("%lld more send failures were not logged since the last report.",
						   (long long) suppressed) : 0));
	return false;
}

/*
 * Send the sample in a line protocol: in as many datagrams as its columns
 * need, or on a stream.  Returns false if some of it was not sent.
 */
static bool
send_lines(Tracer *tracer)
{
	int			limit = dolon_protocol_is_stream(tracer->backend.protocol) ?
		0 : DOLON_SAFE_DATAGRAM_BYTES;
	bool		all_sent = true;
	int			column = 0;

	/* A sample that failed before making it has no value to send */
	if (line_format_outdated(tracer))
		return true;

	while (column < tracer->columns->count)
	{
		column = dolon_encode_lines(tracer->line_format, tracer->values,
									tracer->nulls, tracer->sample_time, column,
									&tracer->message, limit);
		if (tracer->message.len > 0 && !send_message(tracer))
			all_sent = false;
	}
	return all_sent;
}

/*
 * Send the sample as a row of the run, announcing the run first if due.
 *
 * Sending counts as working again after a failure only when every datagram
 * of a sample left: a backend that is down refuses one datagram in two,
 * since the refusal of one comes back as the error of the next.
 */
static void
send_sample(Tracer *tracer)
{
	DolonTracerStatus *status = &tracer->slot->status;
	TimestampTz now = GetCurrentTimestamp();
	bool		all_sent = true;
	bool		row_sent;
	int64		suppressed;

	if (tracer->columns == NULL)
		return;					/* no run could start */

	/* The collector of this server may ask for the runs again */
	if (pg_atomic_read_u32(&dolon_shared->announce_requests) !=
		tracer->announce_requests)
	{
		tracer->announce_requests =
			pg_atomic_read_u32(&dolon_shared->announce_requests);
		tracer->announce_pending = true;
	}

	if (tracer->backend.protocol != DOLON_PROTOCOL_MNEMIC)
		row_sent = send_lines(tracer);
	else
	{
		if (tracer->announce_pending ||
			TimestampDifferenceExceeds(tracer->last_announce, now,
									   DOLON_ANNOUNCE_INTERVAL_MS))
		{
			mnemic_encode_create_trace_run(&tracer->message, tracer->name,
										   tracer->column_names,
										   tracer->columns->count,
										   tracer->run_uuid_text);
			if (send_message(tracer))
			{
				tracer->announce_pending = false;
				tracer->last_announce = now;
			}
			else
				all_sent = false;
		}
		mnemic_encode_row(&tracer->message, tracer->values, tracer->nulls,
						  tracer->columns->count, tracer->run_uuid_text);
		row_sent = send_message(tracer);
	}
	if (row_sent)
	{
		SpinLockAcquire(&status->mutex);
		status->rows_sent++;
		SpinLockRelease(&status->mutex);
	}
	all_sent = all_sent && row_sent;

	if (all_sent && tracer->sending_fails &&
		dolon_throttle_permits(&tracer->recovery_throttle, &suppressed))
		ereport(LOG,
				(errmsg("dolon tracer \"%s\" is sending to \"%s\" port %d again",
						tracer->name, tracer->sender.host, tracer->sender.port)));
	tracer->sending_fails = !all_sent;
}
