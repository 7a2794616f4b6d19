/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The "dolon tracer" background worker: every dolon.frequency it takes
 *		a sample of the configured profilers and sends it as a row of the
 *		current run to the mnemic backend.
 *
 * The worker keeps a fixed schedule: sample k is due at start + k * interval,
 * whatever each sample took, and samples missed while a slow one ran are
 * skipped rather than taken in a burst.  Between samples it sleeps on its
 * latch, which a reload (SIGHUP) or a shutdown (SIGTERM) sets.
 *
 * A run is one uuid with one app_name and one list of columns.  A reload
 * that changes the tracer name or the profilers starts a new run; one that
 * changes the backend keeps the run and announces it to the new backend.
 * The announcement (create_trace_run) is sent again when sending recovers
 * from a failure, and every DOLON_ANNOUNCE_INTERVAL_MS in any case, so that
 * a backend that starts late, restarts or lost the first datagram still
 * learns the run; a backend ignores a run it already knows.
 *
 * Each sample runs in a transaction of its own: the table statistics need
 * one, and its end discards every snapshot of statistics, so the next
 * sample sees fresh values.  An error in a sample is caught and logged
 * (rate-limited), the row is sent with nulls, and the worker goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "dolon.h"

/* Seconds before the postmaster restarts a tracer that exited */
#define DOLON_TRACER_RESTART_SECONDS 5

/* Announce the current run again at least this often */
#define DOLON_ANNOUNCE_INTERVAL_MS 30000

typedef struct Tracer
{
	/* The current run */
	pg_uuid_t	run_uuid;
	char		run_uuid_text[DOLON_UUID_TEXT_LEN + 1];
	char		run_name[DOLON_MAX_TRACER_NAME_BYTES];
	DolonProfilerList *run_profilers;	/* NULL before the first run */
	double	   *values;			/* one per column */
	bool	   *nulls;

	/* The backend, and what it has been told */
	MnemicSender sender;
	bool		announce_pending;
	TimestampTz last_announce;
	bool		sending_fails;	/* did the last datagram fail to leave? */

	/* The schedule */
	int			frequency_ms;
	TimestampTz next_sample;

	StringInfoData message;
	DolonLogThrottle send_throttle;
	DolonLogThrottle sample_throttle;
} Tracer;

static void apply_settings(Tracer *tracer);
static void take_sample(Tracer *tracer);
static void send_sample(Tracer *tracer);
static void tracer_status_detach(int code, Datum arg);

/*
 * Register the tracer as a static background worker.  Called from _PG_init
 * while shared_preload_libraries is processed.
 */
void
dolon_register_tracer_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = DOLON_TRACER_RESTART_SECONDS;
	strcpy(worker.bgw_library_name, "dolon");
	strcpy(worker.bgw_function_name, "dolon_tracer_main");
	strcpy(worker.bgw_name, "dolon tracer");
	strcpy(worker.bgw_type, "dolon tracer");
	RegisterBackgroundWorker(&worker);
}

/*
 * Record the reason of a failure in the shared status.
 */
static void
status_record_error(const char *error)
{
	SpinLockAcquire(&dolon_shared_status->mutex);
	strlcpy(dolon_shared_status->last_error, error,
			sizeof(dolon_shared_status->last_error));
	dolon_shared_status->last_error_time = GetCurrentTimestamp();
	SpinLockRelease(&dolon_shared_status->mutex);
}

/*
 * Entry point of the worker
 */
void
dolon_tracer_main(Datum main_arg)
{
	Tracer		tracer;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(dolon_database, NULL, 0);

	/*
	 * Read each statistics entry afresh rather than keep a copy of all that
	 * were read until the end of the transaction: see sampling.c.
	 */
	SetConfigOption("stats_fetch_consistency", "none",
					PGC_SUSET, PGC_S_OVERRIDE);

	memset(&tracer, 0, sizeof(tracer));
	mnemic_sender_init(&tracer.sender);
	initStringInfo(&tracer.message);

	SpinLockAcquire(&dolon_shared_status->mutex);
	dolon_shared_status->pid = MyProcPid;
	dolon_shared_status->rows_sent = 0;
	dolon_shared_status->send_errors = 0;
	dolon_shared_status->last_error[0] = '\0';
	dolon_shared_status->last_error_time = 0;
	dolon_shared_status->last_sample_us = 0;
	dolon_shared_status->total_sample_us = 0;
	dolon_shared_status->samples = 0;
	SpinLockRelease(&dolon_shared_status->mutex);
	on_shmem_exit(tracer_status_detach, (Datum) 0);

	apply_settings(&tracer);
	tracer.next_sample = GetCurrentTimestamp();

	ereport(LOG,
			(errmsg("dolon tracer started run %s as \"%s\", sending to \"%s\" port %d every %d ms",
					tracer.run_uuid_text, tracer.run_name,
					tracer.sender.host, tracer.sender.port,
					tracer.frequency_ms)));

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (now >= tracer.next_sample)
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

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (tracer.next_sample - now + 999) / 1000,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			apply_settings(&tracer);
		}
	}
}

/*
 * on_shmem_exit callback: the worker is gone.
 */
static void
tracer_status_detach(int code, Datum arg)
{
	SpinLockAcquire(&dolon_shared_status->mutex);
	dolon_shared_status->pid = 0;
	SpinLockRelease(&dolon_shared_status->mutex);
}

static bool
same_profilers(const DolonProfilerList *a, const DolonProfilerList *b)
{
	return a->count == b->count &&
		memcmp(a->ids, b->ids, a->count * sizeof(DolonProfilerId)) == 0;
}

/*
 * Start a new run with the current tracer name and profilers.
 */
static void
start_run(Tracer *tracer, const char *name)
{
	const DolonProfilerList *profilers = dolon_profiler_list;
	Size		size = offsetof(DolonProfilerList, ids) +
		profilers->count * sizeof(DolonProfilerId);

	if (tracer->run_profilers != NULL)
	{
		pfree(tracer->run_profilers);
		pfree(tracer->values);
		pfree(tracer->nulls);
	}
	tracer->run_profilers = MemoryContextAlloc(TopMemoryContext, size);
	memcpy(tracer->run_profilers, profilers, size);
	tracer->values = MemoryContextAlloc(TopMemoryContext,
										profilers->count * sizeof(double));
	tracer->nulls = MemoryContextAlloc(TopMemoryContext,
									   profilers->count * sizeof(bool));

	mnemic_new_run_uuid(&tracer->run_uuid);
	mnemic_uuid_text(&tracer->run_uuid, tracer->run_uuid_text);
	strlcpy(tracer->run_name, name, sizeof(tracer->run_name));
	tracer->announce_pending = true;

	SpinLockAcquire(&dolon_shared_status->mutex);
	dolon_shared_status->has_run = true;
	dolon_shared_status->run_uuid = tracer->run_uuid;
	dolon_shared_status->run_started = GetCurrentTimestamp();
	strlcpy(dolon_shared_status->tracer_name, name,
			sizeof(dolon_shared_status->tracer_name));
	SpinLockRelease(&dolon_shared_status->mutex);
}

/*
 * Bring the tracer in line with the settings, at start and after a reload.
 */
static void
apply_settings(Tracer *tracer)
{
	const char *name = dolon_effective_tracer_name();

	if (tracer->run_profilers == NULL ||
		strcmp(tracer->run_name, name) != 0 ||
		!same_profilers(tracer->run_profilers, dolon_profiler_list))
	{
		bool		first = tracer->run_profilers == NULL;

		start_run(tracer, name);
		if (!first)
			ereport(LOG,
					(errmsg("dolon tracer started run %s as \"%s\"",
							tracer->run_uuid_text, tracer->run_name),
					 errdetail("The tracer name or the profilers changed.")));
	}

	/* A new backend must learn the run */
	if (mnemic_sender_set_target(&tracer->sender, dolon_host, dolon_port))
		tracer->announce_pending = true;

	/* Move the next sample to one interval after the last one */
	if (tracer->frequency_ms != 0 && tracer->frequency_ms != dolon_frequency_ms)
		tracer->next_sample += ((int64) dolon_frequency_ms -
								tracer->frequency_ms) * 1000;
	tracer->frequency_ms = dolon_frequency_ms;

	SpinLockAcquire(&dolon_shared_status->mutex);
	strlcpy(dolon_shared_status->host, dolon_host,
			sizeof(dolon_shared_status->host));
	dolon_shared_status->port = dolon_port;
	dolon_shared_status->frequency_ms = dolon_frequency_ms;
	SpinLockRelease(&dolon_shared_status->mutex);
}

/*
 * Compute the values of the current run's profilers into tracer->values,
 * in a transaction of its own.  An error leaves every value null.
 */
static void
take_sample(Tracer *tracer)
{
	MemoryContext loop_context = CurrentMemoryContext;
	instr_time	start;
	instr_time	duration;
	double		duration_us;

	INSTR_TIME_SET_CURRENT(start);
	PG_TRY();
	{
		DolonSample sample;

		memset(&sample, 0, sizeof(sample));
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		dolon_sample_row(&sample, tracer->run_profilers,
						 tracer->values, tracer->nulls);
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int64		suppressed;
		int			i;

		MemoryContextSwitchTo(loop_context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();

		for (i = 0; i < tracer->run_profilers->count; i++)
			tracer->nulls[i] = true;

		status_record_error(edata->message);
		if (dolon_throttle_permits(&tracer->sample_throttle, &suppressed))
			ereport(LOG,
					(errmsg("dolon tracer could not take a sample: %s",
							edata->message),
					 suppressed > 0 ?
					 errdetail("%lld more failed samples were not logged since the last report.",
							   (long long) suppressed) : 0));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(loop_context);

	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	duration_us = INSTR_TIME_GET_MICROSEC(duration);

	SpinLockAcquire(&dolon_shared_status->mutex);
	dolon_shared_status->last_sample_us = duration_us;
	dolon_shared_status->total_sample_us += duration_us;
	dolon_shared_status->samples++;
	SpinLockRelease(&dolon_shared_status->mutex);

	/* Flush the statistics of the catalog reads, at most once a second */
	pgstat_report_stat(false);
}

/*
 * Send tracer->message.  A failure is counted, recorded and logged, at most
 * once a minute, and has the run announced again once sending works.
 */
static bool
send_message(Tracer *tracer)
{
	int64		suppressed;

	if (mnemic_sender_send(&tracer->sender, tracer->message.data,
						   tracer->message.len))
	{
		if (tracer->sending_fails)
		{
			tracer->sending_fails = false;
			ereport(LOG,
					(errmsg("dolon tracer is sending to \"%s\" port %d again",
							tracer->sender.host, tracer->sender.port)));
		}
		return true;
	}

	tracer->sending_fails = true;
	tracer->announce_pending = true;

	SpinLockAcquire(&dolon_shared_status->mutex);
	dolon_shared_status->send_errors++;
	SpinLockRelease(&dolon_shared_status->mutex);
	status_record_error(tracer->sender.error);

	if (dolon_throttle_permits(&tracer->send_throttle, &suppressed))
		ereport(LOG,
				(errmsg("dolon tracer %s", tracer->sender.error),
				 suppressed > 0 ?
				 errdetail("%lld more send failures were not logged since the last report.",
						   (long long) suppressed) : 0));
	return false;
}

/*
 * Send the sample as a row of the run, announcing the run first if due.
 */
static void
send_sample(Tracer *tracer)
{
	TimestampTz now = GetCurrentTimestamp();

	if (tracer->announce_pending ||
		TimestampDifferenceExceeds(tracer->last_announce, now,
								   DOLON_ANNOUNCE_INTERVAL_MS))
	{
		mnemic_encode_create_trace_run(&tracer->message, tracer->run_name,
									   tracer->run_profilers,
									   tracer->run_uuid_text);
		if (send_message(tracer))
		{
			tracer->announce_pending = false;
			tracer->last_announce = now;
		}
	}

	mnemic_encode_row(&tracer->message, tracer->values, tracer->nulls,
					  tracer->run_profilers->count, tracer->run_uuid_text);
	if (send_message(tracer))
	{
		SpinLockAcquire(&dolon_shared_status->mutex);
		dolon_shared_status->rows_sent++;
		SpinLockRelease(&dolon_shared_status->mutex);
	}
}
