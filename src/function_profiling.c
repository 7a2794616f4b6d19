/*-------------------------------------------------------------------------
 *
 * function_profiling.c
 *		Counting the calls of profiled functions: hits, active instances and
 *		average time, in every backend, through the function manager's hooks.
 *
 * dolon.profile(f) puts f in a set of profiled functions in shared memory.
 * Every backend keeps a sorted copy of the part of that set that belongs to
 * its database, refreshed when the set's generation changes; the
 * needs_fmgr_hook of the function manager asks that copy, when a call is
 * prepared (fmgr_info), whether a function is profiled.  The calls of a
 * profiled function then go through fmgr_security_definer(), which calls our
 * fmgr_hook at the start and at the end of each call, or on its abort by an
 * error.  A function that is not profiled is called directly: it pays
 * nothing.
 *
 * Limits of the hook, which follow from the function manager:
 *	- built-in functions (language internal) are called without consulting
 *	  pg_proc and never reach the hook; profiling one is refused;
 *	- the planner does not inline a SQL function that needs the hook, so a
 *	  profiled SQL function is called as a function, not inlined;
 *	- a call prepared before profiling started (a statement already running)
 *	  is not counted; the next statement's calls are.  Plans cached before
 *	  (prepared statements, PL/pgSQL) are invalidated when dolon.profile()
 *	  commits, since they may have inlined the function;
 *	- a set-returning function called in a select list is called once per
 *	  row, and each call counts as a hit.
 *
 * The counters are atomics in shared memory, updated without a lock:
 * at the start of a call, hits and active instances go up; at its end or
 * abort, active instances go down and the call's duration is added to the
 * time of completed calls.  Each backend keeps a stack of the calls it has
 * in progress, since calls nest (recursion included) and end in reverse
 * order; a backend that exits in the middle of calls (FATAL, termination)
 * takes its calls off the active instances as it exits, so no phantom
 * instance remains.
 *
 * An entry of the set carries a generation, changed whenever the entry is
 * taken or freed, so that a call that started under one use of an entry
 * never counts towards the next.  A freed entry is not reused until its
 * last active call has ended.
 *
 * The set survives a restart: it is written to PROFILED_FUNCTIONS_FILE in
 * the data directory at each change and read back when shared memory is
 * set up.  The counters start from zero.
 *
 * A profiled function that is dropped leaves the set when the drop commits:
 * the object access hook notes, as a function is dropped (DROP FUNCTION,
 * DROP SCHEMA ... CASCADE, DROP EXTENSION, DROP OWNED), that it is
 * profiled, and as a database is dropped, that its functions may be; a
 * transaction callback frees their entries at commit and forgets them at
 * abort, and a subtransaction callback forgets those of a subtransaction
 * rolled back.  A transaction that dropped a profiled function cannot be
 * prepared for two-phase commit: it would commit in another process, or
 * after a restart, with nothing left to end the profiling.  dolon.profile()
 * locks the function as DROP does, so it cannot profile a function whose
 * drop is under way.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "portability/instr_time.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "dolon_common.h"
#include "function_profiling.h"
#include "protocol.h"

/* Where the set of profiled functions is kept across restarts */
#define PROFILED_FUNCTIONS_FILE "dolon_profiled_functions"
#define PROFILED_FUNCTIONS_HEADER "dolon profiled functions 1"

/*
 * Calls of profiled functions in progress that one backend tracks; deeper
 * nesting is not counted.
 */
#define MAX_TRACKED_CALLS 4096

/* Number of columns of dolon.function_stats_all() */
#define FUNCTION_STATS_COLS 9

/* The text of a function's signature, as shown by dolon.function_stats */
#define MAX_SIGNATURE_BYTES 256

typedef struct ProfiledFunction
{
	/* Set under the lock; read without it, after checking generation */
	Oid			database;
	Oid			function;		/* InvalidOid while the entry is free */
	char		signature[MAX_SIGNATURE_BYTES];
	char		column[NAMEDATALEN];	/* base of the column names */

	pg_atomic_uint64 generation;
	pg_atomic_uint64 hits;
	pg_atomic_uint64 active;	/* may dip below zero briefly: read signed */
	pg_atomic_uint64 completed;
	pg_atomic_uint64 completed_ns;
} ProfiledFunction;

typedef struct FunctionProfilingState
{
	LWLock	   *lock;			/* taking and freeing entries, the file */
	pg_atomic_uint64 set_generation;	/* changes with the set */
	int			capacity;
	ProfiledFunction entries[FLEXIBLE_ARRAY_MEMBER];
} FunctionProfilingState;

/* A profiled function of this backend's database, in the local copy */
typedef struct LocalProfiledFunction
{
	Oid			function;
	int			entry;
	uint64		generation;
} LocalProfiledFunction;

/* A call in progress */
typedef struct TrackedCall
{
	int			entry;			/* -1 if the function is not profiled */
	uint64		generation;
	instr_time	start;
} TrackedCall;

/* A profiled function, or a database, dropped by the current transaction */
typedef struct DroppedObject
{
	Oid			database;
	Oid			function;		/* InvalidOid: every function of database */
	int			nest_level;		/* of the subtransaction that dropped it */
} DroppedObject;

static FunctionProfilingState *profiling = NULL;

/* This backend's copy of the set, sorted by function */
static LocalProfiledFunction *local_set = NULL;
static int	local_set_count = 0;
static uint64 local_set_generation = 0;

/* This backend's calls in progress, innermost last */
static TrackedCall tracked_calls[MAX_TRACKED_CALLS];
static int	call_depth = 0;
static bool exit_callback_registered = false;

/* What the current transaction dropped, in TopTransactionContext */
static List *dropped_objects = NIL;
static bool xact_callbacks_registered = false;

static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

PG_FUNCTION_INFO_V1(dolon_profile);
PG_FUNCTION_INFO_V1(dolon_unprofile);
PG_FUNCTION_INFO_V1(dolon_clear);
PG_FUNCTION_INFO_V1(dolon_function_stats);

Size
dolon_function_profiling_shmem_size(int capacity)
{
	return add_size(offsetof(FunctionProfilingState, entries),
					mul_size(capacity,
							 sizeof(ProfiledFunction)));
}

/*
 * Write the set to PROFILED_FUNCTIONS_FILE, atomically.  Called with the
 * lock held exclusively, before the set's generation changes: until then no
 * backend waits for the lock to read the set, so the file's fsync stalls no
 * call.  A failure is reported as a WARNING: the set in
 * shared memory is what counts until the next restart.
 */
static void
save_profiled_functions(void)
{
	const char *temp_path = PROFILED_FUNCTIONS_FILE ".tmp";
	FILE	   *file;
	int			i;

	file = AllocateFile(temp_path, PG_BINARY_W);
	if (file == NULL)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", temp_path),
				 errdetail("The set of profiled functions will not survive a restart.")));
		return;
	}
	fprintf(file, "%s\n", PROFILED_FUNCTIONS_HEADER);
	for (i = 0; i < profiling->capacity; i++)
	{
		ProfiledFunction *entry = &profiling->entries[i];

		if (OidIsValid(entry->function))
			fprintf(file, "%u %u %s %s\n", entry->database, entry->function,
					entry->column, entry->signature);
	}
	if (ferror(file) || FreeFile(file) != 0)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", temp_path),
				 errdetail("The set of profiled functions will not survive a restart.")));
		unlink(temp_path);
		return;
	}
	(void) durable_rename(temp_path, PROFILED_FUNCTIONS_FILE, WARNING);
}

/*
 * Take a free entry for a function; the caller holds the lock exclusively.
 * Returns -1 if every entry is taken or still has active calls.
 */
static int
take_entry(Oid database, Oid function, const char *signature,
		   const char *column)
{
	int			i;

	for (i = 0; i < profiling->capacity; i++)
	{
		ProfiledFunction *entry = &profiling->entries[i];

		if (OidIsValid(entry->function) ||
			(int64) pg_atomic_read_u64(&entry->active) > 0)
			continue;

		pg_atomic_write_u64(&entry->hits, 0);
		pg_atomic_write_u64(&entry->completed, 0);
		pg_atomic_write_u64(&entry->completed_ns, 0);
		entry->database = database;
		strlcpy(entry->signature, signature, sizeof(entry->signature));
		strlcpy(entry->column, column, sizeof(entry->column));
		pg_write_barrier();
		entry->function = function;
		pg_atomic_fetch_add_u64(&entry->generation, 1);
		return i;
	}
	return -1;
}

/*
 * Free an entry; the caller holds the lock exclusively.  Calls still in
 * progress will only take themselves off its active instances.
 */
static void
free_entry(ProfiledFunction *entry)
{
	entry->function = InvalidOid;
	pg_atomic_fetch_add_u64(&entry->generation, 1);
}

/*
 * Read back the set saved before the last shutdown.  A missing file is an
 * empty set; a damaged one is reported and ignored from the damaged line on.
 */
static void
load_profiled_functions(void)
{
	FILE	   *file;
	char		line[MAX_SIGNATURE_BYTES + NAMEDATALEN + 64];

	file = AllocateFile(PROFILED_FUNCTIONS_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m",
							PROFILED_FUNCTIONS_FILE)));
		return;
	}

	if (fgets(line, sizeof(line), file) == NULL ||
		strcmp(line, PROFILED_FUNCTIONS_HEADER "\n") != 0)
		ereport(LOG,
				(errmsg("ignoring file \"%s\": it is not a list of profiled functions",
						PROFILED_FUNCTIONS_FILE)));
	else
	{
		while (fgets(line, sizeof(line), file) != NULL)
		{
			unsigned int database;
			unsigned int function;
			char		column[NAMEDATALEN];
			int			signature_offset;

			line[strcspn(line, "\n")] = '\0';
			if (sscanf(line, "%u %u %63s %n", &database, &function, column,
					   &signature_offset) != 3 ||
				take_entry(database, function, line + signature_offset,
						   column) < 0)
			{
				ereport(LOG,
						(errmsg("ignoring the rest of file \"%s\" from line \"%s\"",
								PROFILED_FUNCTIONS_FILE, line)));
				break;
			}
		}
	}
	FreeFile(file);
}

/*
 * Set up the shared state, or attach to it; called from the shmem startup
 * hook with AddinShmemInitLock held.
 */
void
dolon_function_profiling_shmem_init(int capacity)
{
	bool		found;
	int			i;

	profiling = ShmemInitStruct("dolon function profiling",
								dolon_function_profiling_shmem_size(capacity),
								&found);
	if (found)
		return;

	profiling->lock = &(GetNamedLWLockTranche("dolon"))[DOLON_LOCK_FUNCTIONS].lock;
	pg_atomic_init_u64(&profiling->set_generation, 1);
	profiling->capacity = capacity;
	for (i = 0; i < profiling->capacity; i++)
	{
		ProfiledFunction *entry = &profiling->entries[i];

		memset(entry, 0, sizeof(ProfiledFunction));
		pg_atomic_init_u64(&entry->generation, 0);
		pg_atomic_init_u64(&entry->hits, 0);
		pg_atomic_init_u64(&entry->active, 0);
		pg_atomic_init_u64(&entry->completed, 0);
		pg_atomic_init_u64(&entry->completed_ns, 0);
	}
	load_profiled_functions();
}

uint64
dolon_profiled_functions_generation(void)
{
	return profiling ? pg_atomic_read_u64(&profiling->set_generation) : 0;
}

static int
compare_local_functions(const void *a, const void *b)
{
	Oid			fa = ((const LocalProfiledFunction *) a)->function;
	Oid			fb = ((const LocalProfiledFunction *) b)->function;

	return fa < fb ? -1 : fa > fb ? 1 : 0;
}

/*
 * Bring this backend's copy of the set up to date, if it is not.
 */
static void
refresh_local_set(void)
{
	uint64		generation = pg_atomic_read_u64(&profiling->set_generation);
	int			i;

	if (generation == local_set_generation)
		return;

	if (local_set == NULL)
		local_set = MemoryContextAlloc(TopMemoryContext,
									   profiling->capacity *
									   sizeof(LocalProfiledFunction));
	local_set_count = 0;

	LWLockAcquire(profiling->lock, LW_SHARED);
	for (i = 0; i < profiling->capacity; i++)
	{
		ProfiledFunction *entry = &profiling->entries[i];

		if (!OidIsValid(entry->function) || entry->database != MyDatabaseId)
			continue;
		local_set[local_set_count].function = entry->function;
		local_set[local_set_count].entry = i;
		local_set[local_set_count].generation =
			pg_atomic_read_u64(&entry->generation);
		local_set_count++;
	}
	/* Read under the lock: a change after this is seen next time */
	local_set_generation = pg_atomic_read_u64(&profiling->set_generation);
	LWLockRelease(profiling->lock);

	qsort(local_set, local_set_count, sizeof(LocalProfiledFunction),
		  compare_local_functions);
}

static LocalProfiledFunction *
find_local(Oid function)
{
	LocalProfiledFunction key;

	if (local_set_count == 0)
		return NULL;
	key.function = function;
	return bsearch(&key, local_set, local_set_count,
				   sizeof(LocalProfiledFunction), compare_local_functions);
}

/*
 * needs_fmgr_hook: is this function profiled in this database?
 */
static bool
profiling_needs_fmgr_hook(Oid function)
{
	if (prev_needs_fmgr_hook && prev_needs_fmgr_hook(function))
		return true;
	if (!OidIsValid(MyDatabaseId))
		return false;
	refresh_local_set();
	return find_local(function) != NULL;
}

/*
 * Take the calls this backend has in progress off the active instances; at
 * exit, as the calls will not end.
 */
static void
end_tracked_calls(int code, Datum arg)
{
	while (call_depth > 0)
	{
		call_depth--;
		if (call_depth < MAX_TRACKED_CALLS &&
			tracked_calls[call_depth].entry >= 0)
			pg_atomic_fetch_sub_u64(&profiling->entries[tracked_calls[call_depth].entry].active, 1);
	}
}

static void
start_call(Oid function)
{
	TrackedCall *call;
	LocalProfiledFunction *local;
	ProfiledFunction *entry;

	if (call_depth++ >= MAX_TRACKED_CALLS)
		return;
	call = &tracked_calls[call_depth - 1];
	call->entry = -1;

	/* A function may have stopped being profiled since fmgr_info() */
	refresh_local_set();
	local = find_local(function);
	if (local == NULL)
		return;					/* a SECURITY DEFINER function, for one */

	/*
	 * Count the call as active before checking that the entry is still the
	 * one we know: an entry is only reused when it has no active call.
	 */
	entry = &profiling->entries[local->entry];
	pg_atomic_fetch_add_u64(&entry->active, 1);
	if (pg_atomic_read_u64(&entry->generation) != local->generation)
	{
		pg_atomic_fetch_sub_u64(&entry->active, 1);
		return;
	}
	pg_atomic_fetch_add_u64(&entry->hits, 1);

	call->entry = local->entry;
	call->generation = local->generation;
	INSTR_TIME_SET_CURRENT(call->start);

	if (!exit_callback_registered)
	{
		before_shmem_exit(end_tracked_calls, (Datum) 0);
		exit_callback_registered = true;
	}
}

/*
 * A call ends, normally or by an error: either way it is a completed call.
 */
static void
end_call(void)
{
	TrackedCall *call;
	ProfiledFunction *entry;

	if (call_depth == 0)
		return;
	if (--call_depth >= MAX_TRACKED_CALLS)
		return;
	call = &tracked_calls[call_depth];
	if (call->entry < 0)
		return;

	entry = &profiling->entries[call->entry];
	if (pg_atomic_read_u64(&entry->generation) == call->generation)
	{
		instr_time	duration;

		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, call->start);
		pg_atomic_fetch_add_u64(&entry->completed_ns,
								(uint64) (INSTR_TIME_GET_DOUBLE(duration) * 1e9));
		pg_atomic_fetch_add_u64(&entry->completed, 1);
	}
	pg_atomic_fetch_sub_u64(&entry->active, 1);
}

/*
 * fmgr_hook.  The private datum is shared by all calls through one FmgrInfo,
 * recursive ones included, so our state is on our own stack instead.
 */
static void
profiling_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);

	if (event == FHET_START)
		start_call(flinfo->fn_oid);
	else
		end_call();
}

/*
 * Free the entries of what the committed transaction dropped: its profiled
 * functions, and those of its dropped databases.  Called after the commit
 * is recorded, so it must not fail: it takes a lock and writes the file,
 * whose failure is a WARNING.
 */
static void
end_profiling_of_dropped(void)
{
	bool		freed = false;
	ListCell   *lc;
	int			i;

	LWLockAcquire(profiling->lock, LW_EXCLUSIVE);
	foreach(lc, dropped_objects)
	{
		DroppedObject *dropped = (DroppedObject *) lfirst(lc);

		for (i = 0; i < profiling->capacity; i++)
		{
			ProfiledFunction *entry = &profiling->entries[i];

			if (OidIsValid(entry->function) &&
				entry->database == dropped->database &&
				(!OidIsValid(dropped->function) ||
				 entry->function == dropped->function))
			{
				free_entry(entry);
				freed = true;
			}
		}
	}
	if (freed)
	{
		save_profiled_functions();
		pg_atomic_fetch_add_u64(&profiling->set_generation, 1);
	}
	LWLockRelease(profiling->lock);
}

static void
profiling_xact_callback(XactEvent event, void *arg)
{
	if (dropped_objects == NIL)
		return;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that dropped a profiled function"),
					 errdetail("dolon ends the profiling of a dropped function when the drop commits, which it cannot follow in a prepared transaction."),
					 errhint("Stop profiling the function with dolon.unprofile() before dropping it.")));
			break;
		case XACT_EVENT_COMMIT:
			end_profiling_of_dropped();
			dropped_objects = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			dropped_objects = NIL;	/* its memory goes with the transaction */
			break;
		default:
			break;
	}
}

/*
 * A subtransaction that commits hands what it dropped to its parent; one
 * that rolls back did not drop it.
 */
static void
profiling_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (dropped_objects == NIL)
		return;

	foreach(lc, dropped_objects)
	{
		DroppedObject *dropped = (DroppedObject *) lfirst(lc);

		if (dropped->nest_level < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			dropped->nest_level = level - 1;
		else if (event == SUBXACT_EVENT_ABORT_SUB)
			dropped_objects = foreach_delete_current(dropped_objects, lc);
	}
}

/*
 * Note that the current transaction drops a function of a database, or
 * (function InvalidOid) a whole database.
 */
static void
remember_dropped(Oid database, Oid function)
{
	MemoryContext old_context;
	DroppedObject *dropped;

	if (!xact_callbacks_registered)
	{
		RegisterXactCallback(profiling_xact_callback, NULL);
		RegisterSubXactCallback(profiling_subxact_callback, NULL);
		xact_callbacks_registered = true;
	}

	old_context = MemoryContextSwitchTo(TopTransactionContext);
	dropped = palloc(sizeof(DroppedObject));
	dropped->database = database;
	dropped->function = function;
	dropped->nest_level = GetCurrentTransactionNestLevel();
	dropped_objects = lappend(dropped_objects, dropped);
	MemoryContextSwitchTo(old_context);
}

/*
 * object_access_hook: note the drop of a profiled function, or of a
 * database, whose profiled functions the commit will take out of the set.
 */
static void
profiling_object_access(ObjectAccessType access, Oid classId, Oid objectId,
						int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (access != OAT_DROP)
		return;

	if (classId == ProcedureRelationId)
	{
		refresh_local_set();
		if (find_local(objectId) != NULL)
			remember_dropped(MyDatabaseId, objectId);
	}
	else if (classId == DatabaseRelationId)
		remember_dropped(objectId, InvalidOid);
}

void
dolon_install_function_hooks(void)
{
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = profiling_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = profiling_fmgr_hook;
	prev_object_access_hook = object_access_hook;
	object_access_hook = profiling_object_access;
}

/*
 * Append three columns per profiled function to *columns, as the original
 * client does: <f>_hits, <f>_active_instances, <f>_average_time.  Returns
 * the number of functions.
 */
int
dolon_add_function_columns(DolonColumns **columns)
{
	static const struct
	{
		DolonColumnKind kind;
		const char *suffix;
	}			kinds[] = {
		{COLUMN_FUNCTION_HITS, "hits"},
		{COLUMN_FUNCTION_ACTIVE_INSTANCES, "active_instances"},
		{COLUMN_FUNCTION_AVERAGE_TIME, "average_time"},
	};
	int			functions = 0;
	int			i;

	if (profiling == NULL)
		return 0;

	LWLockAcquire(profiling->lock, LW_SHARED);
	for (i = 0; i < profiling->capacity; i++)
	{
		ProfiledFunction *entry = &profiling->entries[i];
		int			k;

		if (!OidIsValid(entry->function))
			continue;

		*columns = repalloc(*columns,
							offsetof(DolonColumns, items) +
							((*columns)->count + lengthof(kinds)) * sizeof(DolonColumn));
		for (k = 0; k < lengthof(kinds); k++)
		{
			DolonColumn *column = &(*columns)->items[(*columns)->count++];

			memset(column, 0, sizeof(DolonColumn));
			column->kind = kinds[k].kind;
			column->entry = i;
			column->entry_generation = pg_atomic_read_u64(&entry->generation);
			snprintf(column->name, sizeof(column->name), "%s_%s",
					 entry->column, kinds[k].suffix);
		}
		functions++;
	}
	LWLockRelease(profiling->lock);
	return functions;
}

/*
 * The value of a function column now; null if the function is no longer
 * profiled.
 */
double
dolon_function_column_value(const DolonColumn *column, bool *isnull)
{
	ProfiledFunction *entry = &profiling->entries[column->entry];
	uint64		completed;
	int64		active;

	*isnull = pg_atomic_read_u64(&entry->generation) != column->entry_generation;
	if (*isnull)
		return 0;

	switch (column->kind)
	{
		case COLUMN_FUNCTION_HITS:
			return (double) pg_atomic_read_u64(&entry->hits);
		case COLUMN_FUNCTION_ACTIVE_INSTANCES:
			active = (int64) pg_atomic_read_u64(&entry->active);
			return active > 0 ? (double) active : 0;
		case COLUMN_FUNCTION_AVERAGE_TIME:
			completed = pg_atomic_read_u64(&entry->completed);
			if (completed == 0)
				return 0;
			return pg_atomic_read_u64(&entry->completed_ns) / 1e9 / completed;
		default:
			elog(ERROR, "not a function column");
	}
	return 0;					/* keep compiler quiet */
}

static void
require_function_profiling(void)
{
	dolon_require_shared_state(profiling);
	Assert(profiling != NULL);
}

/* Is a column base taken by a profiled function?  Called with the lock held. */
static bool
taken_by_profiled_function(const char *candidate, void *arg)
{
	int			i;

	for (i = 0; i < profiling->capacity; i++)
	{
		if (OidIsValid(profiling->entries[i].function) &&
			strcmp(profiling->entries[i].column, candidate) == 0)
			return true;
	}
	return false;
}

/*
 * The base of the column names of a function: its name as a plain
 * identifier, with a suffix if another profiled function has it already.
 * Called with the lock held.
 */
static void
choose_column_base(const char *function_name, char *column)
{
	mnemic_unique_column_name(function_name, column, NAMEDATALEN,
							  taken_by_profiled_function, NULL);
}

static int
find_entry(Oid database, Oid function)
{
	int			i;

	for (i = 0; i < profiling->capacity; i++)
	{
		if (profiling->entries[i].function == function &&
			profiling->entries[i].database == database)
			return i;
	}
	return -1;
}

/*
 * Have every backend forget the plans that use this function, when the
 * transaction commits: a plan made before profiling started may have
 * inlined a SQL function, and its calls would never reach the hook; after
 * profiling ends, the function may be inlined again.
 */
static void
invalidate_plans_using(HeapTuple proc_tuple)
{
	Relation	pg_proc = table_open(ProcedureRelationId, AccessShareLock);

	CacheInvalidateHeapTuple(pg_proc, proc_tuple, NULL);
	table_close(pg_proc, AccessShareLock);
}

/*
 * dolon.profile(regprocedure): start profiling a function of this database.
 * Returns false if it was profiled already.
 */
Datum
dolon_profile(PG_FUNCTION_ARGS)
{
	Oid			function = PG_GETARG_OID(0);
	HeapTuple	tuple;
	Form_pg_proc proc;
	char	   *signature;
	char	   *c;
	char		column[NAMEDATALEN];
	bool		taken = false;

	require_function_profiling();

	/*
	 * Lock the function as DROP does, until the end of the transaction: a
	 * drop under way ends before the look-up, which then fails; a later drop
	 * waits, and finds the function profiled.
	 */
	LockDatabaseObject(ProcedureRelationId, function, 0, AccessShareLock);
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", function)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);

	/* Shown in a view and kept in a file of lines: one line, whole chars */
	signature = format_procedure(function);
	for (c = signature; *c != '\0'; c++)
	{
		if ((unsigned char) *c < ' ')
			*c = ' ';
	}
	signature[pg_mbcliplen(signature, strlen(signature),
						   MAX_SIGNATURE_BYTES - 1)] = '\0';

	if (proc->prokind == PROKIND_AGGREGATE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot profile aggregate function %s", signature),
				 errdetail("An aggregate is not called as a function."),
				 errhint("Profile its transition or final function instead.")));
	if (proc->prolang == INTERNALlanguageId)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot profile built-in function %s", signature),
				 errdetail("Built-in functions are called directly, without the hook that counts calls.")));

	LWLockAcquire(profiling->lock, LW_EXCLUSIVE);
	if (find_entry(MyDatabaseId, function) < 0)
	{
		choose_column_base(NameStr(proc->proname), column);
		if (take_entry(MyDatabaseId, function, signature, column) < 0)
		{
			LWLockRelease(profiling->lock);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("too many profiled functions"),
					 errdetail("dolon.max_profiled_functions is %d.",
							   profiling->capacity),
					 errhint("Stop profiling another function, or raise dolon.max_profiled_functions and restart the server.")));
		}
		save_profiled_functions();
		pg_atomic_fetch_add_u64(&profiling->set_generation, 1);
		taken = true;
	}
	LWLockRelease(profiling->lock);
	if (taken)
		invalidate_plans_using(tuple);
	ReleaseSysCache(tuple);

	PG_RETURN_BOOL(taken);
}

/*
 * dolon.unprofile(regprocedure): stop profiling a function of this
 * database.  Returns false if it was not profiled.
 */
Datum
dolon_unprofile(PG_FUNCTION_ARGS)
{
	Oid			function = PG_GETARG_OID(0);
	int			i;

	require_function_profiling();

	LWLockAcquire(profiling->lock, LW_EXCLUSIVE);
	i = find_entry(MyDatabaseId, function);
	if (i >= 0)
	{
		free_entry(&profiling->entries[i]);
		save_profiled_functions();
		pg_atomic_fetch_add_u64(&profiling->set_generation, 1);
	}
	LWLockRelease(profiling->lock);

	if (i >= 0)
	{
		HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));

		if (HeapTupleIsValid(tuple))
		{
			invalidate_plans_using(tuple);
			ReleaseSysCache(tuple);
		}
	}
	PG_RETURN_BOOL(i >= 0);
}

/*
 * dolon.clear(): stop profiling every function, of every database.  Returns
 * how many were profiled.
 */
Datum
dolon_clear(PG_FUNCTION_ARGS)
{
	int64		cleared = 0;
	int			i;

	require_function_profiling();

	LWLockAcquire(profiling->lock, LW_EXCLUSIVE);
	for (i = 0; i < profiling->capacity; i++)
	{
		if (OidIsValid(profiling->entries[i].function))
		{
			free_entry(&profiling->entries[i]);
			cleared++;
		}
	}
	save_profiled_functions();
	pg_atomic_fetch_add_u64(&profiling->set_generation, 1);
	LWLockRelease(profiling->lock);

	PG_RETURN_INT64(cleared);
}

/*
 * The counters of every profiled function, read together; *count is set to
 * their number.  The array and the signatures are palloc'd.
 */
DolonFunctionCounters *
dolon_read_function_counters(int *count)
{
	DolonFunctionCounters *functions;
	int			n = 0;
	int			i;

	require_function_profiling();
	functions = palloc(Max(profiling->capacity, 1) * sizeof(DolonFunctionCounters));
	LWLockAcquire(profiling->lock, LW_SHARED);
	for (i = 0; i < profiling->capacity; i++)
	{
		ProfiledFunction *entry = &profiling->entries[i];
		DolonFunctionCounters *function = &functions[n];
		int64		active;

		if (!OidIsValid(entry->function))
			continue;
		function->database = entry->database;
		function->function = entry->function;
		function->signature = pstrdup(entry->signature);
		function->column = pstrdup(entry->column);
		function->hits = (int64) pg_atomic_read_u64(&entry->hits);
		active = (int64) pg_atomic_read_u64(&entry->active);
		function->active = active > 0 ? active : 0;
		function->completed = (int64) pg_atomic_read_u64(&entry->completed);
		function->completed_ns = pg_atomic_read_u64(&entry->completed_ns);
		n++;
	}
	LWLockRelease(profiling->lock);
	*count = n;
	return functions;
}

/*
 * dolon.function_stats(): the counters of every profiled function.
 */
Datum
dolon_function_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DolonFunctionCounters *functions;
	int			count;
	int			i;

	require_function_profiling();
	InitMaterializedSRF(fcinfo, 0);
	dolon_check_result_columns(rsinfo->setDesc, FUNCTION_STATS_COLS);

	functions = dolon_read_function_counters(&count);
	for (i = 0; i < count; i++)
	{
		DolonFunctionCounters *function = &functions[i];
		Datum		values[FUNCTION_STATS_COLS];
		bool		nulls[FUNCTION_STATS_COLS] = {false};
		char	   *database = get_database_name(function->database);

		values[0] = ObjectIdGetDatum(function->database);
		values[1] = database ? CStringGetTextDatum(database) : (Datum) 0;
		nulls[1] = database == NULL;
		values[2] = ObjectIdGetDatum(function->function);
		values[3] = CStringGetTextDatum(function->signature);
		values[4] = CStringGetTextDatum(function->column);
		values[5] = Int64GetDatum(function->hits);
		values[6] = Int64GetDatum(function->active);
		values[7] = Int64GetDatum(function->completed);
		values[8] = Float8GetDatum(function->completed > 0 ?
								   function->completed_ns / 1e9 / function->completed : 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}
