/*-------------------------------------------------------------------------
 *
 * profiler_runner.c
 *		The process that runs a tracer's custom profilers, apart from the
 *		tracer, and the tracer's side of it.
 *
 * Custom profilers are code written by someone else, which whoever may replace
 * their functions can change after a superuser configured them.  A tracer
 * never calls them itself: whatever a profiler does, the tracer must keep its
 * schedule and stay able to stop, reload and shut down.  Each tracer with
 * custom profilers has a runner, a background worker of its own ("dolon
 * profiler runner"), started when first needed.  At each sample the tracer
 * asks it for a round of calls through the slot's DolonProfilerExchange in
 * shared memory and sets its latch; the runner answers each call as it ends
 * and the round when it is over, and sets the tracer's latch.  The tracer
 * waits for the round at most dolon.profiler_timeout a call and three quarters
 * of its interval (see worker.c), responsive all along, and sends the row with
 * the values that came; a round still under way at the next sample leaves that
 * sample's custom values null.
 *
 * The runner calls the profilers one after the other as dolon.profiler_role
 * (see custom_profilers.c), each with a statement timeout of
 * dolon.profiler_timeout, and undoes what each call did.  Between rounds it
 * also releases the session advisory locks and drops the prepared statements
 * that profilers took.  What cannot be undone (a setting a profiler defined
 * stays defined, caches grow) is bounded: a runner that holds too many new
 * settings or too much more memory than after its first round exits, and the
 * tracer starts a new one.  The messages below ERROR that profilers raise are
 * rate-limited (an emit_log_hook of the runner alone).
 *
 * A profiler that swallows the cancel of its timeout (a PL/pgSQL handler
 * for query_canceled, say) would hold the runner.  The tracer ends such a
 * runner the way a backend that ignores a cancel is ended, with SIGTERM as
 * pg_terminate_backend() sends it, which no handler catches, and leaves the
 * profiler out of its rounds for DOLON_LEFT_OUT_SECONDS, with a warning.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "commands/prepare.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "custom_profilers.h"
#include "guc.h"
#include "profiler_runner.h"
#include "throttle.h"
#include "tracers.h"
#include "transaction.h"

/* A call still running this long after its cancel is ended with SIGTERM */
#define DOLON_CANCEL_GRACE_MS 1000

/* ... and its profiler left out of the tracer's rounds this long */
#define DOLON_LEFT_OUT_SECONDS 60

/* A runner is not started more often than this */
#define DOLON_RUNNER_LAUNCH_INTERVAL_MS 1000

/* A runner exits once its profilers left this many settings behind... */
#define DOLON_RUNNER_MAX_NEW_SETTINGS 100

/* ... or it holds this much more memory than after its first round */
#define DOLON_RUNNER_MAX_GROWTH ((Size) 32 * 1024 * 1024)

/*
 * What a tracer and the process running its custom profilers exchange, one
 * for each tracer slot, in shared memory.  The tracer asks for a round of
 * calls, the runner answers each call as it ends and the round when it is
 * over.  Under mutex.
 */
typedef struct DolonProfilerExchange
{
	slock_t		mutex;
	pid_t		runner_pid;		/* 0 while no runner serves the tracer */
	Latch	   *runner_latch;
	Latch	   *tracer_latch;
	uint64		requested;		/* rounds the tracer asked for */
	uint64		answered;		/* rounds the runner is done with */
	int			timeout_ms;		/* of each call of the current round */
	int			count;			/* profilers of the round */
	DolonProfilerSpec specs[DOLON_MAX_CUSTOM_PROFILERS];
	int			calling;		/* the profiler being called, or -1 */
	TimestampTz call_started;	/* ... since when */
	bool		have_value[DOLON_MAX_CUSTOM_PROFILERS];
	double		values[DOLON_MAX_CUSTOM_PROFILERS];
	char		errors[DOLON_MAX_CUSTOM_PROFILERS][DOLON_MAX_ERROR_BYTES];
	char		exit_reason[DOLON_MAX_ERROR_BYTES]; /* why a runner left */
} DolonProfilerExchange;


/* The exchanges, one per tracer slot; NULL unless dolon was preloaded */
static DolonProfilerExchange *exchanges = NULL;

Size
dolon_runner_shmem_size(int max_tracers)
{
	return mul_size(max_tracers, sizeof(DolonProfilerExchange));
}

/*
 * Set up the exchanges, or attach to them; called from the shmem startup
 * hook with AddinShmemInitLock held.
 */
void
dolon_runner_shmem_init(int max_tracers)
{
	bool		found;
	int			i;

	exchanges = ShmemInitStruct("dolon profiler runners",
								dolon_runner_shmem_size(max_tracers), &found);
	if (found)
		return;
	memset(exchanges, 0, dolon_runner_shmem_size(max_tracers));
	for (i = 0; i < max_tracers; i++)
	{
		SpinLockInit(&exchanges[i].mutex);
		exchanges[i].calling = -1;
	}
}

/* The runner's own state */
static DolonProfilerExchange *runner_exchange = NULL;
static char runner_tracer_name[DOLON_MAX_TRACER_NAME_BYTES];
static Oid	runner_started_by;	/* the tracer's starter, or InvalidOid */
static const char *runner_calling = NULL;	/* the profiler being called */
static DolonLogThrottle runner_message_throttle;
static emit_log_hook_type prev_emit_log_hook = NULL;

/* A round as the runner copies it from the exchange */
typedef struct RunnerRound
{
	uint64		number;
	int			timeout_ms;
	int			count;
	DolonProfilerSpec specs[DOLON_MAX_CUSTOM_PROFILERS];
} RunnerRound;


/* ---- The tracer's side ---- */

/*
 * End the runner process serving this exchange, if any.
 */
static void
terminate_runner_process(DolonProfilerExchange *exchange)
{
	pid_t		pid;

	SpinLockAcquire(&exchange->mutex);
	pid = exchange->runner_pid;
	SpinLockRelease(&exchange->mutex);
	if (pid != 0)
		kill(pid, SIGTERM);
}

/*
 * Set up the tracer's side, at the start of a tracer's worker.  A runner
 * left by an earlier worker of the same slot is ended.
 */
void
dolon_runner_init(DolonProfilerRunner *runner, int slot_index,
				  const char *tracer_name)
{
	DolonProfilerExchange *exchange = &exchanges[slot_index];

	memset(runner, 0, sizeof(DolonProfilerRunner));
	runner->slot_index = slot_index;
	runner->exchange = exchange;
	runner->tracer_name = tracer_name;

	terminate_runner_process(exchange);
	SpinLockAcquire(&exchange->mutex);
	exchange->tracer_latch = MyLatch;
	exchange->answered = exchange->requested;
	SpinLockRelease(&exchange->mutex);
}

/*
 * End the runner of the tracer of this slot: when the tracer exits.
 */
void
dolon_runner_terminate(int slot_index)
{
	terminate_runner_process(&exchanges[slot_index]);
}

/*
 * A runner with nothing left to run goes away: the tracer's run has no
 * custom profilers, or they cannot run.
 */
void
dolon_runner_retire(DolonProfilerRunner *runner)
{
	if (runner->handle == NULL || runner->round_abandoned)
		return;
	terminate_runner_process(runner->exchange);
	runner->round_abandoned = true;
}

/*
 * Is this profiler left out of the rounds now?  Forgets those whose time
 * is over.
 */
static const DolonLeftOutProfiler *
left_out(DolonProfilerRunner *runner, const DolonProfilerSpec *spec,
		 TimestampTz now)
{
	int			i;

	for (i = 0; i < runner->left_out_count; i++)
	{
		DolonLeftOutProfiler *entry = &runner->left_out[i];

		if (entry->until <= now)
		{
			runner->left_out[i--] = runner->left_out[--runner->left_out_count];
			continue;
		}
		if (memcmp(&entry->spec, spec, sizeof(DolonProfilerSpec)) == 0)
			return entry;
	}
	return NULL;
}

/*
 * Is a round asked for, at this sample or before, still under way?
 */
static bool
round_pending(DolonProfilerRunner *runner)
{
	uint64		answered;

	if (!runner->round_pending)
		return false;
	SpinLockAcquire(&runner->exchange->mutex);
	answered = runner->exchange->answered;
	SpinLockRelease(&runner->exchange->mutex);
	if (answered >= runner->round)
		runner->round_pending = false;
	return runner->round_pending;
}

/*
 * Make sure a runner serves the tracer, starting one if need be.  Returns
 * false, with the reason, if none can.
 */
static bool
ensure_runner(DolonProfilerRunner *runner, const char **reason)
{
	BackgroundWorker worker;
	MemoryContext oldcontext;
	TimestampTz now;
	uint64		ticket;
	pid_t		pid;
	bool		launched;

	if (runner->handle != NULL)
	{
		switch (GetBackgroundWorkerPid(runner->handle, &pid))
		{
			case BGWH_STARTED:
			case BGWH_NOT_YET_STARTED:
				if (!runner->round_abandoned)
					return true;
				*reason = "the process that runs its custom profilers is being replaced";
				return false;
			case BGWH_POSTMASTER_DIED:
				proc_exit(1);
				break;
			case BGWH_STOPPED:
				{
					char		exit_reason[DOLON_MAX_ERROR_BYTES];
					int64		suppressed;

					SpinLockAcquire(&runner->exchange->mutex);
					strlcpy(exit_reason, runner->exchange->exit_reason,
							sizeof(exit_reason));
					runner->exchange->exit_reason[0] = '\0';
					SpinLockRelease(&runner->exchange->mutex);
					if (exit_reason[0] != '\0' &&
						dolon_throttle_permits(&runner->replace_throttle,
											   &suppressed))
						ereport(LOG,
								(errmsg("dolon tracer \"%s\": the process of its custom profilers is replaced: %s",
										runner->tracer_name, exit_reason),
								 suppressed > 0 ?
								 errdetail("It was replaced %lld more times since the last report.",
										   (long long) suppressed) : 0));
					pfree(runner->handle);
					runner->handle = NULL;
					runner->round_abandoned = false;
					runner->round_pending = false;
				}
				break;
		}
	}

	now = GetCurrentTimestamp();
	if (runner->last_launch != 0 &&
		!TimestampDifferenceExceeds(runner->last_launch, now,
									DOLON_RUNNER_LAUNCH_INTERVAL_MS))
	{
		*reason = "the process that runs its custom profilers is starting again";
		return false;
	}
	runner->last_launch = now;

	LWLockAcquire(dolon_shared->lock, LW_SHARED);
	ticket = dolon_shared->slots[runner->slot_index].ticket;
	LWLockRelease(dolon_shared->lock);

	memset(&worker, 0, sizeof(BackgroundWorker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strcpy(worker.bgw_library_name, "dolon");
	strcpy(worker.bgw_function_name, "dolon_profiler_runner_main");
	strcpy(worker.bgw_type, "dolon profiler runner");
	snprintf(worker.bgw_name, BGW_MAXLEN, "dolon profiler runner %d",
			 runner->slot_index);
	worker.bgw_main_arg = Int32GetDatum(runner->slot_index);
	memcpy(worker.bgw_extra, &ticket, sizeof(ticket));
	worker.bgw_notify_pid = MyProcPid;

	oldcontext = MemoryContextSwitchTo(TopMemoryContext);
	launched = RegisterDynamicBackgroundWorker(&worker, &runner->handle);
	MemoryContextSwitchTo(oldcontext);
	if (!launched)
	{
		int64		suppressed;

		runner->handle = NULL;
		*reason = "no background worker is free to run its custom profilers";
		if (dolon_throttle_permits(&runner->launch_throttle, &suppressed))
			ereport(WARNING,
					(errmsg("dolon tracer \"%s\" could not start a process for its custom profilers",
							runner->tracer_name),
					 errdetail("Every background worker slot is in use; the custom profilers give null until one is free."),
					 errhint("Raise max_worker_processes and restart the server.")));
		return false;
	}
	return true;
}

/*
 * Ask the runner for a round of calls of the custom profilers among these
 * columns, but those left out.  A round must be over before the next one
 * is asked for: while it is not, nothing is asked.
 */
void
dolon_runner_start_round(DolonProfilerRunner *runner,
						 const DolonColumns *columns)
{
	DolonProfilerExchange *exchange = runner->exchange;
	TimestampTz now = GetCurrentTimestamp();
	DolonProfilerSpec specs[DOLON_MAX_CUSTOM_PROFILERS];
	const char *reason = NULL;
	Latch	   *runner_latch;
	int			count = 0;
	int			i;

	runner->custom_count = 0;
	runner->asked = false;
	runner->not_asked = NULL;
	runner->starting = false;
	for (i = 0; i < columns->count; i++)
	{
		const DolonColumn *column = &columns->items[i];
		int			c;

		if (column->kind != COLUMN_CUSTOM)
			continue;
		c = runner->custom_count++;
		runner->custom_columns[c] = i;
		runner->custom_calls[c] = -1;
		if (left_out(runner, &column->custom, now) != NULL)
			continue;
		runner->custom_calls[c] = count;
		specs[count++] = column->custom;
	}
	if (count == 0)
	{
		if (runner->custom_count == 0)
			dolon_runner_retire(runner);
		return;
	}

	if (round_pending(runner))
		reason = "the previous call of its profilers has not ended";
	else
		(void) ensure_runner(runner, &reason);
	if (reason != NULL)
	{
		runner->not_asked = reason;
		return;
	}

	/*
	 * Ask only a runner that has attached and not yet detached: its detach
	 * answers whatever it was asked, so no round can wait for nobody.
	 */
	runner->timeout_ms = dolon_profiler_timeout_ms;
	runner->deadline = TimestampTzPlusMilliseconds(now,
												   (int64) count * runner->timeout_ms);
	SpinLockAcquire(&exchange->mutex);
	runner_latch = exchange->runner_latch;
	if (exchange->runner_pid != 0)
	{
		runner->round = ++exchange->requested;
		exchange->timeout_ms = runner->timeout_ms;
		exchange->count = count;
		memcpy(exchange->specs, specs, count * sizeof(DolonProfilerSpec));
		memset(exchange->have_value, 0, sizeof(exchange->have_value));
		for (i = 0; i < count; i++)
			exchange->errors[i][0] = '\0';
		exchange->tracer_latch = MyLatch;
	}
	SpinLockRelease(&exchange->mutex);
	if (runner_latch == NULL)
	{
		runner->not_asked = "the process that runs its custom profilers is starting";
		runner->starting = true;
		return;
	}
	SetLatch(runner_latch);
	runner->round_pending = true;
	runner->asked = true;
}

/*
 * Is the round asked for at this sample over, or was none asked for?
 */
bool
dolon_runner_round_over(DolonProfilerRunner *runner)
{
	return !runner->asked || !round_pending(runner);
}

/*
 * When the tracer stops waiting for the round of this sample.
 */
TimestampTz
dolon_runner_deadline(DolonProfilerRunner *runner)
{
	return runner->deadline;
}

/*
 * Fill in the custom profilers' columns with what the round of this sample
 * brought, as far as it went.  A column without a value is null and counts
 * as a failure, whose message is left in error (DOLON_MAX_ERROR_BYTES).
 */
void
dolon_runner_finish_round(DolonProfilerRunner *runner,
						  const DolonColumns *columns, double *values,
						  bool *nulls, int *failures, char *error)
{
	DolonProfilerExchange *exchange = runner->exchange;
	int			c;

	for (c = 0; c < runner->custom_count; c++)
	{
		int			column = runner->custom_columns[c];
		int			call = runner->custom_calls[c];
		const DolonProfilerSpec *spec = &columns->items[column].custom;
		char		message[DOLON_MAX_ERROR_BYTES];
		char	   *name;
		bool		have_value = false;

		message[0] = '\0';
		if (call < 0)
			snprintf(message, sizeof(message),
					 "it is left out of this tracer for %d s after ignoring the cancel of its timeout",
					 DOLON_LEFT_OUT_SECONDS);
		else if (runner->not_asked != NULL)
			strlcpy(message, runner->not_asked, sizeof(message));
		else
		{
			SpinLockAcquire(&exchange->mutex);
			if (exchange->requested == runner->round)
			{
				have_value = exchange->have_value[call];
				values[column] = exchange->values[call];
				strlcpy(message, exchange->errors[call], sizeof(message));
			}
			SpinLockRelease(&exchange->mutex);
			if (!have_value && message[0] == '\0')
				snprintf(message, sizeof(message),
						 "no value in time (dolon.profiler_timeout is %d ms a call)",
						 runner->timeout_ms);
		}

		nulls[column] = !have_value;
		if (have_value)
			continue;
		(*failures)++;
		name = dolon_profiler_name(spec);
		snprintf(error, DOLON_MAX_ERROR_BYTES, "profiler %s: %s", name,
				 message);
		pfree(name);
	}
}

/*
 * Watch over the round under way: a call that still runs
 * DOLON_CANCEL_GRACE_MS after its cancel (its timeout) ends its runner, and
 * its profiler is left out for a while.  Returns when to look again, or 0
 * if there is nothing to watch.
 */
TimestampTz
dolon_runner_watch(DolonProfilerRunner *runner)
{
	DolonProfilerExchange *exchange = runner->exchange;
	TimestampTz now;
	TimestampTz end;
	DolonProfilerSpec spec;
	bool		calling = false;
	pid_t		pid;
	int64		suppressed;

	if (runner->round_abandoned || !round_pending(runner))
		return 0;

	now = GetCurrentTimestamp();
	SpinLockAcquire(&exchange->mutex);
	pid = exchange->runner_pid;
	if (exchange->requested == runner->round && exchange->calling >= 0)
	{
		spec = exchange->specs[exchange->calling];
		end = TimestampTzPlusMilliseconds(exchange->call_started,
										  (int64) exchange->timeout_ms +
										  DOLON_CANCEL_GRACE_MS);
		calling = true;
	}
	SpinLockRelease(&exchange->mutex);

	if (!calling)
		return TimestampTzPlusMilliseconds(now, DOLON_CANCEL_GRACE_MS);
	if (now < end)
		return end;

	if (pid != 0)
		kill(pid, SIGTERM);
	runner->round_abandoned = true;

	if (runner->left_out_count < DOLON_MAX_CUSTOM_PROFILERS &&
		left_out(runner, &spec, now) == NULL)
	{
		DolonLeftOutProfiler *entry = &runner->left_out[runner->left_out_count++];

		entry->spec = spec;
		entry->until = TimestampTzPlusMilliseconds(now,
												   DOLON_LEFT_OUT_SECONDS * 1000);
	}
	if (dolon_throttle_permits(&runner->terminate_throttle, &suppressed))
		ereport(WARNING,
				(errmsg("dolon tracer \"%s\": custom profiler %s did not end within %d ms of its cancel; its process was terminated, and the profiler is left out of this tracer for %d s",
						runner->tracer_name, dolon_profiler_name(&spec),
						DOLON_CANCEL_GRACE_MS, DOLON_LEFT_OUT_SECONDS),
				 errdetail("Its timeout, dolon.profiler_timeout, is %d ms.",
						   runner->timeout_ms),
				 suppressed > 0 ?
				 errhint("%lld more profilers were ended since the last report.",
						 (long long) suppressed) : 0));
	return 0;
}


/* ---- The runner ---- */

/*
 * emit_log_hook of the runner: a message below ERROR raised by a profiler
 * says which profiler raised it, and is rate-limited.  Messages at
 * LOG_SERVER_ONLY are the server's own, for the administrator alone, even
 * when they come during a call (the memory contexts that
 * pg_log_backend_memory_contexts() asks for are logged at the next check
 * for interrupts, inside the profiler): they are left whole.
 */
static void
runner_emit_log(ErrorData *edata)
{
	int64		suppressed;

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);

	if (runner_calling == NULL || edata->elevel >= ERROR ||
		edata->elevel == LOG_SERVER_ONLY || !edata->output_to_server)
		return;

	if (!dolon_throttle_permits(&runner_message_throttle, &suppressed))
	{
		edata->output_to_server = false;
		return;
	}
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(ErrorContext);
		StringInfoData context;

		initStringInfo(&context);
		if (edata->context != NULL)
			appendStringInfo(&context, "%s\n", edata->context);
		appendStringInfo(&context, "custom profiler %s of dolon tracer \"%s\"",
						 runner_calling, runner_tracer_name);
		if (suppressed > 0)
			appendStringInfo(&context,
							 "; %lld more messages of its custom profilers were not logged since the last report",
							 (long long) suppressed);
		edata->context = context.data;
		MemoryContextSwitchTo(oldcontext);
	}
}

/*
 * on_shmem_exit callback: the runner is gone, and so is its round.
 */
static void
runner_detach(int code, Datum arg)
{
	DolonProfilerExchange *exchange = runner_exchange;
	Latch	   *tracer_latch = NULL;

	SpinLockAcquire(&exchange->mutex);
	if (exchange->runner_pid == MyProcPid)
	{
		exchange->runner_pid = 0;
		exchange->runner_latch = NULL;
		exchange->calling = -1;
		exchange->answered = exchange->requested;
		tracer_latch = exchange->tracer_latch;
	}
	SpinLockRelease(&exchange->mutex);
	if (tracer_latch != NULL)
		SetLatch(tracer_latch);
}

/*
 * Does the tracer this runner was started for still run?
 */
static bool
serves_live_tracer(int slot_index, uint64 ticket)
{
	DolonTracerSlot *slot = &dolon_shared->slots[slot_index];
	bool		live;

	LWLockAcquire(dolon_shared->lock, LW_SHARED);
	live = slot->in_use && slot->ticket == ticket;
	LWLockRelease(dolon_shared->lock);
	if (live)
	{
		SpinLockAcquire(&slot->status.mutex);
		live = slot->status.pid != 0;
		SpinLockRelease(&slot->status.mutex);
	}
	return live;
}

static void
answer_call(uint64 round, int call, bool have_value, double value,
			const char *error)
{
	SpinLockAcquire(&runner_exchange->mutex);
	runner_exchange->calling = -1;
	if (runner_exchange->requested == round)
	{
		runner_exchange->have_value[call] = have_value;
		runner_exchange->values[call] = value;
		strlcpy(runner_exchange->errors[call], error ? error : "",
				DOLON_MAX_ERROR_BYTES);
	}
	SpinLockRelease(&runner_exchange->mutex);
}

/*
 * The calls of a round, in a transaction.
 */
static void
round_step(void *arg)
{
	RunnerRound *round = (RunnerRound *) arg;
	DolonFailure role_failure;
	Oid			role = dolon_profiler_role_oid(dolon_profiler_role,
											   runner_started_by,
											   &role_failure);
	int			i;

	for (i = 0; i < round->count; i++)
	{
		const DolonProfilerSpec *spec = &round->specs[i];
		double		value = 0;
		char	   *error = NULL;
		bool		have_value = false;

		if (!OidIsValid(role))
			error = role_failure.detail;
		else
		{
			TimestampTz now = GetCurrentTimestamp();

			SpinLockAcquire(&runner_exchange->mutex);
			if (runner_exchange->requested == round->number)
			{
				runner_exchange->calling = i;
				runner_exchange->call_started = now;
			}
			SpinLockRelease(&runner_exchange->mutex);

			/* A cancel left from the previous call is for no one */
			QueryCancelPending = false;

			runner_calling = dolon_profiler_name(spec);
			pgstat_report_activity(STATE_RUNNING, runner_calling);
			have_value = dolon_call_profiler(spec, role, round->timeout_ms,
											 &value, &error);
			runner_calling = NULL;
		}
		answer_call(round->number, i, have_value, value, error);
	}

	/* Statements a profiler prepared outlive its subtransaction */
	DropAllPreparedStatements();
}

/*
 * Run the round the tracer asked for, and answer it.
 */
static void
run_round(void)
{
	static RunnerRound round;
	char	   *error;
	Latch	   *tracer_latch;
	int			i;

	SpinLockAcquire(&runner_exchange->mutex);
	round.number = runner_exchange->requested;
	round.timeout_ms = runner_exchange->timeout_ms;
	round.count = runner_exchange->count;
	memcpy(round.specs, runner_exchange->specs,
		   round.count * sizeof(DolonProfilerSpec));
	SpinLockRelease(&runner_exchange->mutex);

	error = dolon_run_in_transaction(round_step, &round, false);
	runner_calling = NULL;

	SpinLockAcquire(&runner_exchange->mutex);
	if (error != NULL && runner_exchange->requested == round.number)
	{
		for (i = 0; i < round.count; i++)
		{
			if (!runner_exchange->have_value[i] &&
				runner_exchange->errors[i][0] == '\0')
				strlcpy(runner_exchange->errors[i], error,
						DOLON_MAX_ERROR_BYTES);
		}
	}
	runner_exchange->calling = -1;
	if (runner_exchange->answered < round.number)
		runner_exchange->answered = round.number;
	tracer_latch = runner_exchange->tracer_latch;
	SpinLockRelease(&runner_exchange->mutex);
	if (tracer_latch != NULL)
		SetLatch(tracer_latch);
	if (error != NULL)
		pfree(error);

	/* Session advisory locks outlive the subtransaction, too */
	LockReleaseSession(USER_LOCKMETHOD);
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);
}

/*
 * Entry point of a runner; the argument is the slot of its tracer, and its
 * extra data the ticket of the slot's use.
 */
void
dolon_profiler_runner_main(Datum main_arg)
{
	int			slot_index = DatumGetInt32(main_arg);
	DolonTracerSlot *slot = &dolon_shared->slots[slot_index];
	uint64		ticket;
	bool		taken;
	Latch	   *tracer_latch;
	int			settings_at_start = 0;
	Size		memory_at_start = 0;
	bool		have_start = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	memcpy(&ticket, MyBgworkerEntry->bgw_extra, sizeof(ticket));
	if (!serves_live_tracer(slot_index, ticket))
		proc_exit(0);
	LWLockAcquire(dolon_shared->lock, LW_SHARED);
	strlcpy(runner_tracer_name, slot->name, sizeof(runner_tracer_name));
	runner_started_by = slot->started_by;
	LWLockRelease(dolon_shared->lock);

	runner_exchange = &exchanges[slot_index];
	SpinLockAcquire(&runner_exchange->mutex);
	taken = runner_exchange->runner_pid != 0;
	if (!taken)
	{
		runner_exchange->runner_pid = MyProcPid;
		runner_exchange->runner_latch = MyLatch;
		runner_exchange->calling = -1;
		runner_exchange->exit_reason[0] = '\0';
	}
	tracer_latch = runner_exchange->tracer_latch;
	SpinLockRelease(&runner_exchange->mutex);
	if (taken)
		proc_exit(0);
	on_shmem_exit(runner_detach, (Datum) 0);
	/* The tracer may be waiting for a runner to ask */
	if (tracer_latch != NULL)
		SetLatch(tracer_latch);

	BackgroundWorkerInitializeConnection(dolon_database, NULL, 0);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = runner_emit_log;

	for (;;)
	{
		uint64		requested;
		uint64		answered;

		(void) dolon_between_steps();
		if (!serves_live_tracer(slot_index, ticket))
			proc_exit(0);

		SpinLockAcquire(&runner_exchange->mutex);
		requested = runner_exchange->requested;
		answered = runner_exchange->answered;
		SpinLockRelease(&runner_exchange->mutex);
		if (requested == answered)
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		run_round();

		/* Bound what the profilers leave that cannot be undone */
		if (!have_start)
		{
			settings_at_start = dolon_count_settings();
			memory_at_start = MemoryContextMemAllocated(TopMemoryContext, true);
			have_start = true;
		}
		else
		{
			int			new_settings = dolon_count_settings() - settings_at_start;
			Size		memory = MemoryContextMemAllocated(TopMemoryContext, true);
			char	   *reason = NULL;

			if (new_settings >= DOLON_RUNNER_MAX_NEW_SETTINGS)
				reason = psprintf("its profilers left %d settings behind",
								  new_settings);
			else if (memory > memory_at_start + DOLON_RUNNER_MAX_GROWTH)
				reason = psprintf("it holds %zu kB more memory than after its first call",
								  (memory - memory_at_start) / 1024);
			if (reason != NULL)
			{
				SpinLockAcquire(&runner_exchange->mutex);
				strlcpy(runner_exchange->exit_reason, reason,
						DOLON_MAX_ERROR_BYTES);
				SpinLockRelease(&runner_exchange->mutex);
				proc_exit(0);
			}
		}
	}
}
