/*-------------------------------------------------------------------------
 *
 * tracers.c
 *		The tracers of the server: their slots in shared memory, and starting
 *		and stopping them from SQL.
 *
 * dolon.max_tracers slots are reserved at server start.  Slot 0 is the
 * tracer configured in postgresql.conf.  dolon.start_tracer() records a
 * tracer in the table dolon.tracer_definitions, writes its definition into
 * a free slot and starts its worker; dolon.stop_tracer() deletes the record
 * and marks the slot.  Both act through the calling transaction: the new
 * worker waits for the transaction that started it and goes away if it
 * rolls back, and a stopped worker only ends once the stop commits.
 *
 * At server start, and whenever it restarts, the configured tracer starts
 * the recorded tracers that do not run (dolon_restore_tracers()), so that a
 * tracer started from SQL runs until it is stopped, across restarts.  The
 * table lives in dolon.database, where every tracer connects, so tracers are
 * started and stopped from that database only.
 *
 * Nothing read from the table is ever spliced into SQL: the queries are
 * constants with parameters.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "backends.h"
#include "custom_profilers.h"
#include "dolon_common.h"
#include "guc.h"
#include "profilers.h"
#include "protocol.h"
#include "tracers.h"
#include "transaction.h"

/* Shared state of dolon; NULL unless dolon was preloaded */
DolonSharedState *dolon_shared = NULL;

/* Seconds before the postmaster restarts a tracer that exited on an error */
#define DOLON_TRACER_RESTART_SECONDS 5

/* How long dolon.start_tracer() waits for a stopped namesake to leave */
#define DOLON_LEAVING_WAIT_MS 5000

/*
 * Number of columns of dolon.tracer_states(): version 1.2 of the extension
 * added protocol, at the end; a server that runs this library with 1.1's
 * objects, before ALTER EXTENSION dolon UPDATE, gets 1.1's columns
 */
#define TRACER_STATES_COLS_V1_1 19
#define TRACER_STATES_COLS 20

PG_FUNCTION_INFO_V1(dolon_start_tracer);
PG_FUNCTION_INFO_V1(dolon_stop_tracer);
PG_FUNCTION_INFO_V1(dolon_tracer_states);

Size
dolon_tracers_shmem_size(void)
{
	return add_size(offsetof(DolonSharedState, slots),
					mul_size(dolon_max_tracers, sizeof(DolonTracerSlot)));
}

/*
 * Set up the slots, or attach to them; called from the shmem startup hook
 * with AddinShmemInitLock held.
 */
void
dolon_tracers_shmem_init(void)
{
	bool		found;
	int			i;

	dolon_shared = ShmemInitStruct("dolon tracers", dolon_tracers_shmem_size(),
								   &found);
	if (found)
		return;

	memset(dolon_shared, 0, dolon_tracers_shmem_size());
	dolon_shared->lock = &(GetNamedLWLockTranche("dolon"))[DOLON_LOCK_TRACERS].lock;
	pg_atomic_init_u32(&dolon_shared->announce_requests, 0);
	dolon_shared->max_tracers = dolon_max_tracers;
	for (i = 0; i < dolon_max_tracers; i++)
		SpinLockInit(&dolon_shared->slots[i].status.mutex);
	dolon_shared->slots[CONFIGURED_TRACER_SLOT].in_use = true;
}

/*
 * Fill in the common fields of a tracer worker.
 */
static void
init_worker(BackgroundWorker *worker, int slot)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_ConsistentState;
	worker->bgw_restart_time = DOLON_TRACER_RESTART_SECONDS;
	strcpy(worker->bgw_library_name, "dolon");
	strcpy(worker->bgw_function_name, "dolon_tracer_main");
	strcpy(worker->bgw_type, "dolon tracer");
	worker->bgw_main_arg = Int32GetDatum(slot);
}

/*
 * Register the worker of the configured tracer.  Called from _PG_init while
 * shared_preload_libraries is processed.
 */
void
dolon_register_configured_tracer(void)
{
	BackgroundWorker worker;

	init_worker(&worker, CONFIGURED_TRACER_SLOT);
	strcpy(worker.bgw_name, "dolon tracer");
	RegisterBackgroundWorker(&worker);
}

/*
 * Start the worker of a tracer started from SQL, whose definition is in
 * its slot under this ticket.  Returns false if no worker slot is free.
 */
bool
dolon_launch_tracer(int slot, uint64 ticket)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	init_worker(&worker, slot);
	snprintf(worker.bgw_name, BGW_MAXLEN, "dolon tracer %d", slot);
	memcpy(worker.bgw_extra, &ticket, sizeof(ticket));
	return RegisterDynamicBackgroundWorker(&worker, &handle);
}

/*
 * Have every tracer of this server announce its run again at its next
 * sample: the collector of this server asks for it when it becomes able to
 * store, so that the runs it could not store before are known at once.
 */
void
dolon_request_announcements(void)
{
	pg_atomic_fetch_add_u32(&dolon_shared->announce_requests, 1);
}

/*
 * Tracers are started and stopped in dolon.database, where their
 * definitions are kept and restored from.
 */
static void
require_tracer_database(void)
{
	dolon_require_shared_state(dolon_shared);
	if (MyDatabaseId != get_database_oid(dolon_database, true))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tracers can only be started and stopped in database \"%s\"",
						dolon_database),
				 errdetail("Tracers run in dolon.database and are restored from there at server start."),
				 errhint("Connect to database \"%s\".", dolon_database)));
}

/*
 * The slot of the tracer with this name, from slot first on, or -1.  Called
 * with the lock held.
 */
static int
find_tracer(const char *name, int first)
{
	int			i;

	for (i = first; i < dolon_shared->max_tracers; i++)
	{
		if (dolon_shared->slots[i].in_use &&
			strcmp(dolon_shared->slots[i].name, name) == 0)
			return i;
	}
	return -1;
}

/*
 * The slot of the tracer with this name, or -1, once a tracer of that name
 * that is leaving its slot has left it.  A tracer whose stop has committed
 * (or whose row is gone) frees its slot within DOLON_STOP_POLL_MS of
 * src/worker.c, so that a tracer stopped and started again at once under
 * its name waits for it rather than finding the name taken; after
 * DOLON_LEAVING_WAIT_MS it is an error.
 */
static int
wait_for_leaving_tracer(const char *name)
{
	TimestampTz give_up = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  DOLON_LEAVING_WAIT_MS);

	for (;;)
	{
		int			i;
		bool		leaving = false;

		LWLockAcquire(dolon_shared->lock, LW_SHARED);
		i = find_tracer(name, CONFIGURED_TRACER_SLOT);
		if (i >= 0)
		{
			DolonTracerSlot *slot = &dolon_shared->slots[i];

			leaving = slot->dropped ||
				(TransactionIdIsValid(slot->stop_xid) &&
				 TransactionIdDidCommit(slot->stop_xid));
		}
		LWLockRelease(dolon_shared->lock);
		if (!leaving)
			return i;
		if (GetCurrentTimestamp() >= give_up)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("tracer \"%s\" is still stopping", name),
					 errdetail("Its worker has not left its slot after %d ms.",
							   DOLON_LEAVING_WAIT_MS),
					 errhint("Try again in a moment.")));

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * A definition checked and ready to go into a slot.
 */
typedef struct TracerDefinition
{
	const char *name;
	int			frequency_ms;
	const char *host;
	int			port;
	char	   *profilers;		/* canonical text */
	Oid			started_by;		/* the role whose rights it reads with */
} TracerDefinition;

/*
 * Take a free slot for a tracer and start its worker; returns the slot.
 * Raises an error if the name is taken, no slot is free or no worker can
 * start.
 */
static int
launch(const TracerDefinition *definition, const pg_uuid_t *first_run_uuid,
	   TransactionId start_xid)
{
	DolonTracerSlot *slot = NULL;
	uint64		ticket;
	int			i;

	if (!pg_strong_random(&ticket, sizeof(ticket)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));

	LWLockAcquire(dolon_shared->lock, LW_EXCLUSIVE);
	if (find_tracer(definition->name, CONFIGURED_TRACER_SLOT) >= 0)
	{
		LWLockRelease(dolon_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("tracer \"%s\" already exists", definition->name)));
	}
	for (i = 0; i < dolon_shared->max_tracers; i++)
	{
		if (!dolon_shared->slots[i].in_use)
		{
			slot = &dolon_shared->slots[i];
			break;
		}
	}
	if (slot == NULL)
	{
		LWLockRelease(dolon_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many tracers"),
				 errdetail("dolon.max_tracers is %d, the configured tracer included.",
						   dolon_max_tracers),
				 errhint("Stop a tracer, or raise dolon.max_tracers and restart the server.")));
	}

	slot->in_use = true;
	slot->ticket = ticket;
	strlcpy(slot->name, definition->name, sizeof(slot->name));
	strlcpy(slot->host, definition->host, sizeof(slot->host));
	slot->port = definition->port;
	slot->frequency_ms = definition->frequency_ms;
	strlcpy(slot->profilers, definition->profilers, sizeof(slot->profilers));
	slot->started_by = definition->started_by;
	slot->first_run_uuid = *first_run_uuid;
	slot->start_xid = start_xid;
	slot->record_xid = start_xid;
	slot->stop_xid = InvalidTransactionId;
	slot->dropped = false;
	SpinLockAcquire(&slot->status.mutex);
	slot->status.pid = 0;
	slot->status.has_run = false;
	SpinLockRelease(&slot->status.mutex);
	LWLockRelease(dolon_shared->lock);

	if (!dolon_launch_tracer(i, ticket))
	{
		LWLockAcquire(dolon_shared->lock, LW_EXCLUSIVE);
		slot->in_use = false;
		LWLockRelease(dolon_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a worker for tracer \"%s\"",
						definition->name),
				 errhint("Raise max_worker_processes and restart the server.")));
	}
	return i;
}

/*
 * Frequency in milliseconds, from an interval of at most days.
 */
static int
interval_to_ms(const char *name, Interval *frequency)
{
	int64		ms;

	if (frequency->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid frequency for tracer \"%s\"", name),
				 errdetail("A frequency is given in days or less, not in months.")));
	ms = frequency->time / 1000 + (int64) frequency->day * (USECS_PER_DAY / 1000);
	if (ms < DOLON_MIN_FREQUENCY_MS || ms > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid frequency for tracer \"%s\"", name),
				 errdetail("The frequency must be between %d ms and %d ms.",
						   DOLON_MIN_FREQUENCY_MS, INT_MAX)));
	return (int) ms;
}

/*
 * Check a tracer's definition, raising an error that names what is wrong,
 * and make its list of profilers canonical.  The arguments of
 * dolon.start_tracer() and the rows of dolon.tracer_definitions pass the
 * same checks.
 */
static void
check_definition(TracerDefinition *definition, bool check_usable)
{
	const char *name = definition->name;
	DolonProfilerList *profilers;
	DolonBackend backend;
	DolonFailure failure;

	if (name[0] == '\0' ||
		pg_mbstrlen_with_len(name, strlen(name)) > DOLON_MAX_TRACER_NAME_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid tracer name \"%s\"", name),
				 errdetail("A tracer name has 1 to %d characters.",
						   DOLON_MAX_TRACER_NAME_CHARS)));

	if (definition->frequency_ms < DOLON_MIN_FREQUENCY_MS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid frequency for tracer \"%s\"", name),
				 errdetail("The frequency must be between %d ms and %d ms.",
						   DOLON_MIN_FREQUENCY_MS, INT_MAX)));

	if (!dolon_parse_backend(definition->host, &backend, &failure))
	{
		failure.message = psprintf("invalid host for tracer \"%s\"", name);
		dolon_report_failure(ERROR, &failure);
	}

	if (definition->port < 1 || definition->port > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid port for tracer \"%s\": %d", name,
						definition->port),
				 errdetail("A port is between 1 and 65535.")));

	if (!dolon_parse_profilers(definition->profilers, &profilers, &failure))
	{
		failure.message = psprintf("invalid profilers for tracer \"%s\"", name);
		dolon_report_failure(ERROR, &failure);
	}

	{
		Oid			role;

		/*
		 * Custom profilers must name usable functions, run by a fit role
		 * whose rights the tracer's starter has: a tracer sends what they
		 * read to the starter's choice of host.
		 */
		if (check_usable)
		{
			(void) dolon_build_columns(profilers, true);
			if (dolon_has_custom_profilers(profilers))
			{
				role = dolon_profiler_role_oid(dolon_profiler_role,
											   definition->started_by,
											   &failure);
				if (!OidIsValid(role))
				{
					failure.message =
						failure.sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE ?
						psprintf("permission denied to start tracer \"%s\" with custom profilers", name) :
						psprintf("tracer \"%s\" has custom profilers, which cannot run", name);
					dolon_report_failure(ERROR, &failure);
				}
			}
		}
		definition->profilers = dolon_profilers_text(profilers);
	}

	if (strlen(definition->profilers) >= DOLON_MAX_PROFILERS_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("invalid profilers for tracer \"%s\"", name),
				 errdetail("The list of profilers is longer than %d bytes.",
						   DOLON_MAX_PROFILERS_BYTES - 1)));
}

/*
 * Change dolon.tracer_definitions, with a constant statement and its
 * parameters, as the table's owner: no one else may write it, so that it
 * only holds what dolon.start_tracer() checked.  Returns the rows
 * processed.
 */
static uint64
write_definitions(const char *statement, int expected, int nargs,
				  Oid *types, Datum *values)
{
	Oid			namespace = get_namespace_oid("dolon", false);
	Oid			relation = get_relname_relid("tracer_definitions", namespace);
	HeapTuple	tuple;
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	uint64		processed;

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relation));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relation);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);

	/* Nothing of the caller's search_path may resolve what the statement names */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	SPI_connect();
	if (SPI_execute_with_args(statement, nargs, types, values, NULL, false,
							  0) != expected)
		elog(ERROR, "could not change dolon.tracer_definitions");
	processed = SPI_processed;
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	AtEOXact_GUC(true, save_nestlevel);
	return processed;
}

/*
 * dolon.start_tracer(tracer_name, frequency, host, port, VARIADIC profilers)
 * returns the uuid of the tracer's first run.
 */
Datum
dolon_start_tracer(PG_FUNCTION_ARGS)
{
	static const char *const argument_names[] = {
		"tracer_name", "frequency", "host", "port", "profilers"
	};
	TracerDefinition definition;
	Datum		row[6];
	Oid			row_types[6] = {TEXTOID, INT4OID, TEXTOID, INT4OID, TEXTOID,
	REGROLEOID};
	pg_uuid_t  *uuid;
	int			null_position;
	int			i;

	for (i = 0; i < lengthof(argument_names); i++)
	{
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", argument_names[i])));
	}
	require_tracer_database();

	definition.name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	definition.frequency_ms = interval_to_ms(definition.name,
											 PG_GETARG_INTERVAL_P(1));
	definition.host = text_to_cstring(PG_GETARG_TEXT_PP(2));
	definition.port = PG_GETARG_INT32(3);
	definition.profilers = dolon_profiler_array_text(PG_GETARG_ARRAYTYPE_P(4),
													 &null_position);
	if (definition.profilers == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("invalid profilers for tracer \"%s\"", definition.name),
				 errdetail("Profiler %d is null.", null_position)));
	definition.started_by = GetUserId();
	check_definition(&definition, true);

	/* Record it; the unique key on the name catches a concurrent twin */
	i = wait_for_leaving_tracer(definition.name);
	if (i >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("tracer \"%s\" already exists", definition.name)));
	row[0] = CStringGetTextDatum(definition.name);
	row[1] = Int32GetDatum(definition.frequency_ms);
	row[2] = CStringGetTextDatum(definition.host);
	row[3] = Int32GetDatum(definition.port);
	row[4] = CStringGetTextDatum(definition.profilers);
	row[5] = ObjectIdGetDatum(definition.started_by);
	(void) write_definitions("INSERT INTO dolon.tracer_definitions "
							 "(tracer_name, frequency_ms, host, port, profilers, started_by) "
							 "VALUES ($1, $2, $3, $4, $5, $6)",
							 SPI_OK_INSERT, 6, row_types, row);

	/* The subtransaction's: a start rolled back to a savepoint is none */
	uuid = palloc(sizeof(pg_uuid_t));
	mnemic_new_run_uuid(uuid);
	launch(&definition, uuid, GetCurrentTransactionId());

	PG_RETURN_UUID_P(uuid);
}

/*
 * dolon.stop_tracer(tracer_name) stops a tracer started with
 * dolon.start_tracer(), once the calling transaction commits.
 */
Datum
dolon_stop_tracer(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Datum		arg = PG_GETARG_DATUM(0);
	Oid			arg_type = TEXTOID;
	uint64		deleted;
	int			slot;
	bool		configured;
	pid_t		pid = 0;

	require_tracer_database();

	LWLockAcquire(dolon_shared->lock, LW_SHARED);
	slot = find_tracer(name, CONFIGURED_TRACER_SLOT + 1);
	configured = strcmp(dolon_shared->slots[CONFIGURED_TRACER_SLOT].name, name) == 0;
	LWLockRelease(dolon_shared->lock);
	if (slot < 0 && configured)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tracer \"%s\" is configured in postgresql.conf", name),
				 errhint("Change the dolon.* settings to change it.")));

	deleted = write_definitions("DELETE FROM dolon.tracer_definitions "
								"WHERE tracer_name OPERATOR(pg_catalog.=) $1",
								SPI_OK_DELETE, 1, &arg_type, &arg);

	if (slot < 0 && deleted == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tracer \"%s\" does not exist", name)));

	if (slot >= 0)
	{
		/* The subtransaction's: a stop rolled back to a savepoint is none */
		TransactionId xid = GetCurrentTransactionId();
		DolonTracerSlot *stopped = &dolon_shared->slots[slot];

		LWLockAcquire(dolon_shared->lock, LW_EXCLUSIVE);
		if (stopped->in_use && strcmp(stopped->name, name) == 0 &&
			!(TransactionIdIsValid(stopped->stop_xid) &&
			  TransactionIdDidCommit(stopped->stop_xid)))
		{
			stopped->stop_xid = xid;
			SpinLockAcquire(&stopped->status.mutex);
			pid = stopped->status.pid;
			SpinLockRelease(&stopped->status.mutex);
		}
		LWLockRelease(dolon_shared->lock);
	}

	/* Wake the worker, so that it watches for the commit */
	if (pid != 0)
	{
		PGPROC	   *proc = BackendPidGetProc(pid);

		if (proc != NULL)
			SetLatch(&proc->procLatch);
	}

	PG_RETURN_VOID();
}

/*
 * Stop the tracer of a slot whose row in dolon.tracer_definitions is gone,
 * or no longer holds its definition, unless the row is not visible yet or a
 * stop is under way.  Called with the lock held.
 */
static void
drop_if_unrecorded(DolonTracerSlot *slot)
{
	pid_t		pid;

	if (TransactionIdIsValid(slot->record_xid) &&
		(TransactionIdIsInProgress(slot->record_xid) ||
		 XidInMVCCSnapshot(slot->record_xid, GetActiveSnapshot()) ||
		 !TransactionIdDidCommit(slot->record_xid)))
		return;
	if (TransactionIdIsValid(slot->stop_xid) &&
		!TransactionIdDidAbort(slot->stop_xid))
		return;

	slot->dropped = true;
	SpinLockAcquire(&slot->status.mutex);
	pid = slot->status.pid;
	SpinLockRelease(&slot->status.mutex);
	if (pid != 0)
	{
		PGPROC	   *proc = BackendPidGetProc(pid);

		if (proc != NULL)
			SetLatch(&proc->procLatch);
	}
}

/* A row of dolon.tracer_definitions as dolon_restore_tracers() acts on it */
typedef struct RestoredRow
{
	TracerDefinition *definition;
	TransactionId xmax;			/* of the row as read */
	bool	   *recorded;		/* which slots run what their row says */
} RestoredRow;

/*
 * Check a row, compare it with its running tracer, or start its tracer.
 * Raises an error if it cannot be started.
 */
static void
restore_row(void *arg)
{
	RestoredRow *row = (RestoredRow *) arg;
	TracerDefinition *definition = row->definition;
	int			slot;
	bool		being_deleted;

	/*
	 * A running tracer is compared with its row as written; whether
	 * its functions and role are usable now is its own affair (its
	 * columns say so), checked only before a tracer starts.
	 */
	check_definition(definition, false);

	LWLockAcquire(dolon_shared->lock, LW_EXCLUSIVE);
	slot = find_tracer(definition->name, CONFIGURED_TRACER_SLOT + 1);
	if (slot >= 0)
	{
		DolonTracerSlot *running = &dolon_shared->slots[slot];

		row->recorded[slot] =
			running->frequency_ms == definition->frequency_ms &&
			strcmp(running->host, definition->host) == 0 &&
			running->port == definition->port &&
			strcmp(running->profilers, definition->profilers) == 0 &&
			running->started_by == definition->started_by;
		if (row->recorded[slot])
			running->record_xid = InvalidTransactionId;
	}
	LWLockRelease(dolon_shared->lock);

	/*
	 * A row that a stop (or a change) deletes, committed since the
	 * snapshot or still under way, is left for the next call
	 */
	being_deleted = TransactionIdIsNormal(row->xmax) &&
		(TransactionIdIsInProgress(row->xmax) ||
		 TransactionIdDidCommit(row->xmax));

	if (slot < 0 && !being_deleted)
	{
		/* No uuid was promised to anyone: the worker makes its own */
		pg_uuid_t	uuid;

		memset(&uuid, 0, sizeof(uuid));
		check_definition(definition, true);
		row->recorded[launch(definition, &uuid, InvalidTransactionId)] = true;
	}
}

/*
 * Bring the tracers started from SQL in line with dolon.tracer_definitions:
 * start those recorded that do not run, stop those that run without a row
 * or with another definition than their row's.  Every row passes the
 * checks of dolon.start_tracer() first; one that fails them, or finds no
 * free slot or worker, is skipped, and tried again at the next call.
 * Called by the configured tracer, in a transaction with a snapshot, in
 * dolon.database, at its start and every few seconds.  Returns what was
 * skipped and why, one line a row, or NULL.
 */
char *
dolon_restore_tracers(void)
{
	StringInfoData skipped;
	bool	   *recorded;
	uint64		i;

	if (!OidIsValid(get_extension_oid("dolon", true)))
		return NULL;

	initStringInfo(&skipped);
	recorded = palloc0(dolon_shared->max_tracers * sizeof(bool));
	SPI_connect();
	/* A lock someone holds on the table must not hold the tracer long */
	(void) set_config_option("lock_timeout", "1s", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	if (SPI_execute("SELECT tracer_name, frequency_ms, host, port, profilers, "
					"started_by, xmax "
					"FROM dolon.tracer_definitions ORDER BY tracer_name",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read dolon.tracer_definitions");

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		TracerDefinition definition;
		bool		isnull;
		TransactionId xmax;
		RestoredRow row;
		ErrorData  *edata;

		definition.name = SPI_getvalue(tuple, desc, 1);
		definition.frequency_ms = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
		definition.host = SPI_getvalue(tuple, desc, 3);
		definition.port = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
		definition.profilers = SPI_getvalue(tuple, desc, 5);
		definition.started_by = DatumGetObjectId(SPI_getbinval(tuple, desc, 6, &isnull));
		xmax = DatumGetTransactionId(SPI_getbinval(tuple, desc, 7, &isnull));

		row.definition = &definition;
		row.xmax = xmax;
		row.recorded = recorded;
		edata = dolon_run_in_subtransaction(restore_row, &row);
		if (edata != NULL)
		{
			appendStringInfo(&skipped, "%stracer \"%s\": %s%s%s",
							 skipped.len > 0 ? "\n" : "", definition.name,
							 edata->message, edata->detail ? " " : "",
							 edata->detail ? edata->detail : "");
			FreeErrorData(edata);
		}
	}
	SPI_finish();

	LWLockAcquire(dolon_shared->lock, LW_EXCLUSIVE);
	for (i = CONFIGURED_TRACER_SLOT + 1; i < dolon_shared->max_tracers; i++)
	{
		if (dolon_shared->slots[i].in_use && !recorded[i])
			drop_if_unrecorded(&dolon_shared->slots[i]);
	}
	LWLockRelease(dolon_shared->lock);

	return skipped.len > 0 ? skipped.data : NULL;
}

/*
 * Read the tracer of a slot: its name and profilers (buffers of
 * DOLON_MAX_TRACER_NAME_BYTES and DOLON_MAX_PROFILERS_BYTES) and a copy of
 * its status, read together.  Returns false if the slot holds no tracer, or
 * the configured tracer turned off.
 */
bool
dolon_read_tracer(int slot_index, char *name, char *profilers,
				  DolonTracerStatus *status)
{
	DolonTracerSlot *slot = &dolon_shared->slots[slot_index];
	bool		in_use;

	LWLockAcquire(dolon_shared->lock, LW_SHARED);
	in_use = slot->in_use;
	strlcpy(name, slot->name, DOLON_MAX_TRACER_NAME_BYTES);
	strlcpy(profilers, slot->profilers, DOLON_MAX_PROFILERS_BYTES);
	SpinLockAcquire(&slot->status.mutex);
	memcpy(status, &slot->status, sizeof(DolonTracerStatus));
	SpinLockRelease(&slot->status.mutex);
	LWLockRelease(dolon_shared->lock);
	return in_use && !status->off;
}

/*
 * Read the last row of the tracer of a slot, as of its status (read by
 * dolon_read_tracer()): true if that run has been sampled.  The row is
 * copied again while the worker writes it (DolonTracerLatest); the copy
 * is bounded whatever a torn read gives, and the run compared at the end
 * tells a row of another run or worker of the slot.
 */
bool
dolon_read_tracer_latest(int slot_index, const DolonTracerStatus *status,
						 DolonTracerLatest *latest)
{
	volatile DolonTracerLatest *shared = &dolon_shared->slots[slot_index].latest;

	if (status->pid == 0 || !status->has_run)
		return false;
	for (;;)
	{
		uint32		before = shared->changecount;
		int			columns;

		pg_read_barrier();
		latest->run = shared->run;
		latest->sampled = shared->sampled;
		columns = shared->columns;
		latest->columns = Max(0, Min(columns, DOLON_MAX_LATEST_COLUMNS));
		memcpy(latest->names, (const char *) shared->names,
			   latest->columns * DOLON_MAX_COLUMN_BYTES);
		memcpy(latest->values, (const double *) shared->values,
			   latest->columns * sizeof(double));
		memcpy(latest->nulls, (const bool *) shared->nulls,
			   latest->columns * sizeof(bool));
		pg_read_barrier();
		if (before % 2 == 0 && shared->changecount == before)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	return latest->sampled != 0 &&
		memcmp(&latest->run, &status->run_uuid, sizeof(pg_uuid_t)) == 0;
}

/*
 * Around the worker's writes of the last row of its tracer: changecount odd
 * in between, in a critical section so that no error leaves it odd
 */
void
dolon_begin_latest_write(DolonTracerLatest *latest)
{
	START_CRIT_SECTION();
	latest->changecount++;
	pg_write_barrier();
}

void
dolon_end_latest_write(DolonTracerLatest *latest)
{
	pg_write_barrier();
	latest->changecount++;
	END_CRIT_SECTION();
}

/*
 * dolon.tracer_states(): one row per tracer, with its definition and the
 * state its worker records.
 */
Datum
dolon_tracer_states(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	dolon_require_shared_state(dolon_shared);
	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != TRACER_STATES_COLS_V1_1)
		dolon_check_result_columns(rsinfo->setDesc, TRACER_STATES_COLS);

	for (i = 0; i < dolon_shared->max_tracers; i++)
	{
		char		name[DOLON_MAX_TRACER_NAME_BYTES];
		char		profilers[DOLON_MAX_PROFILERS_BYTES];
		DolonTracerStatus status;
		Datum		values[TRACER_STATES_COLS];
		bool		nulls[TRACER_STATES_COLS];
		Interval   *frequency;
		int			c = 0;

		if (!dolon_read_tracer(i, name, profilers, &status))
			continue;

		memset(nulls, 0, sizeof(nulls));
		values[c] = CStringGetTextDatum(name);
		nulls[c++] = name[0] == '\0';
		values[c++] = BoolGetDatum(i == CONFIGURED_TRACER_SLOT);
		values[c] = Int32GetDatum(status.pid);
		nulls[c++] = status.pid == 0;
		values[c] = UUIDPGetDatum(&status.run_uuid);
		nulls[c++] = !status.has_run;
		values[c] = TimestampTzGetDatum(status.run_started);
		nulls[c++] = !status.has_run;
		values[c] = CStringGetTextDatum(status.host);
		nulls[c++] = status.host[0] == '\0';
		values[c] = Int32GetDatum(status.port);
		nulls[c++] = status.port == 0;
		frequency = palloc0(sizeof(Interval));
		frequency->time = (int64) status.frequency_ms * 1000;
		values[c] = IntervalPGetDatum(frequency);
		nulls[c++] = status.frequency_ms == 0;
		values[c] = CStringGetTextDatum(profilers);
		nulls[c++] = profilers[0] == '\0';
		values[c] = Int32GetDatum(status.columns);
		nulls[c++] = !status.has_run;
		values[c++] = Int64GetDatum(status.samples);
		values[c++] = Int64GetDatum(status.rows_sent);
		values[c++] = Int64GetDatum(status.send_errors);
		values[c++] = Int64GetDatum(status.profiler_errors);
		dolon_last_error_datums(&status.last_error, &values[c], &nulls[c]);
		c += 2;
		values[c] = Float8GetDatum(status.last_sample_us);
		nulls[c++] = status.samples == 0;
		values[c] = Float8GetDatum(status.samples > 0 ?
								   status.total_sample_us / status.samples : 0);
		nulls[c++] = status.samples == 0;
		values[c] = Int32GetDatum(i);
		c++;
		values[c] = CStringGetTextDatum(dolon_protocol_name(status.protocol));
		nulls[c++] = status.host[0] == '\0';
		Assert(c == TRACER_STATES_COLS);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
