/*-------------------------------------------------------------------------
 *
 * function_profiling.c
 *		Counting the calls of profiled functions: hits, active instances and
 *		average time, in every backend, through the function manager's hooks.
 *
 * dolon.profile(f) puts f in a set of profiled functions in shared memory.
 * Every backend keeps a hashed copy of the part of that set that belongs to
 * its database, rebuilt when the set's generation changes; the
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
 * The counters are kept per backend: each backend has, in shared memory, a
 * block of counters with one CallCounters per entry of the set, which only
 * that backend writes, with plain stores (no locked instruction, no cache
 * line that another writer takes away); readers sum them over the backends
 * when they read.  A call adds one to hits as it starts, and one to
 * completed calls as it ends or is aborted by an error; the calls in
 * progress, active instances, are the difference.  A block belongs to a
 * backend number (MyProcNumber, or MyBackendId up to 16), not to a process:
 * the next backend to get the number goes on with its counters, so that
 * the sums never go back.  Each backend keeps a stack of the calls it has in
 * progress, since calls nest (recursion included) and end in reverse order;
 * a backend that exits in the middle of calls (FATAL, termination) ends them
 * as it exits, so no phantom instance remains.
 *
 * The average time comes from the calls that are timed.  Two reads of the
 * clock cost more than the rest of the bookkeeping of a call, so a function
 * whose calls take less than TIME_EVERY_CALL_NS on average, in a backend,
 * has one call in MEAN_TIMING_GAP timed there, at random gaps; each timed
 * call stands for the calls of its gap, its own included, and its time
 * counts that many times (timed_calls and timed_ns below), so that
 * timed_ns / timed_calls estimates the mean of all the calls without bias.
 * Longer calls, where the clock is a few percent of the call, are all
 * timed, and so is the first call of a function in each backend.
 *
 * An entry of the set carries a generation, changed whenever the entry is
 * taken or freed.  A backend's counters of an entry carry the generation
 * they count for; readers add up only the counters of the entry's current
 * generation, and a backend that finds its counters of an older one starts
 * them again from zero, and takes its calls in progress under the older one
 * off them.  So a freed entry can be taken again at once, and no call that
 * started under one use of an entry counts towards the next.
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
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
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

#include "compat.h"
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

/*
 * Calls that take this long on average, in nanoseconds, are all timed; of
 * shorter ones, one in MEAN_TIMING_GAP on average, at gaps of 1 to
 * 2 * MEAN_TIMING_GAP - 1 calls.
 */
#define TIME_EVERY_CALL_NS 1000
#define MEAN_TIMING_GAP 32

/* Number of columns of dolon.function_stats_all() */
#define FUNCTION_STATS_COLS 9

/* The text of a function's signature, as shown by dolon.function_stats */
#define MAX_SIGNATURE_BYTES 256

/* An entry of the set of profiled functions */
typedef struct ProfiledFunction
{
	/* Set under the lock; read without it, after checking generation */
	Oid			database;
	Oid			function;		/* InvalidOid while the entry is free */
	char		signature[MAX_SIGNATURE_BYTES];
	char		column[NAMEDATALEN];	/* base of the column names */

	pg_atomic_uint64 generation;	/* 0 until first taken */
} ProfiledFunction;

/*
 * One backend's counters of one entry.  Only that backend writes them, a
 * call's end after a write barrier; others read generation, the four
 * counters (completed before hits, after a read barrier, so that
 * hits - completed is never below zero), and generation again, and keep
 * what they read if generation did not change.  countdown and gap are
 * the backend's own, kept here on the line it writes anyway.
 */
typedef struct CallCounters
{
	pg_atomic_uint64 generation;	/* of the entry they count for; 0 while
									 * they start again from zero */
	pg_atomic_uint64 hits;
	pg_atomic_uint64 completed;
	pg_atomic_uint64 timed_calls;	/* calls the timed calls stand for */
	pg_atomic_uint64 timed_ns;	/* their time: each timed call's, times the
								 * calls it stands for */
	uint32		countdown;		/* calls to the next timed one, it included */
	uint32		gap;			/* the calls that one will stand for */
} CallCounters;

typedef struct FunctionProfilingState
{
	LWLock	   *lock;			/* taking and freeing entries, the file */
	pg_atomic_uint64 set_generation;	/* changes with the set */
	pg_atomic_uint32 counting_backends; /* backends 0 to this - 1 may have
										 * counted calls */
	int			capacity;
	ProfiledFunction entries[FLEXIBLE_ARRAY_MEMBER];
} FunctionProfilingState;

/* A profiled function of this backend's database, in the local copy */
typedef struct LocalProfiledFunction
{
	Oid			function;		/* InvalidOid: an empty bucket */
	int			entry;
	uint64		generation;
	CallCounters *counters;		/* this backend's, once found to count for
								 * generation; NULL until then */
} LocalProfiledFunction;

/* A call in progress */
typedef struct TrackedCall
{
	CallCounters *counters;		/* NULL if the call is not counted */
	uint32		weight;			/* if timed, the calls it stands for; else 0 */
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

/*
 * The blocks of counters, one per backend number, each of capacity
 * CallCounters rounded up to whole cache lines
 */
static char *call_counters = NULL;
static Size counters_stride = 0;

/*
 * This backend's copy of the set: an open-addressing table of
 * local_set_mask + 1 buckets, at most half full
 */
static LocalProfiledFunction *local_set = NULL;
static uint32 local_set_mask = 0;
static int	local_set_count = 0;
static uint64 local_set_generation = 0;

/* The last function looked up in the copy, and what was found (or NULL) */
static Oid	last_function = InvalidOid;
static LocalProfiledFunction *last_local = NULL;

/* This backend's block of counters; NULL until its first profiled call */
static CallCounters *my_counters = NULL;
static bool counting_set_up = false;

/* This backend's calls in progress, innermost last */
static TrackedCall tracked_calls[MAX_TRACKED_CALLS];
static int	call_depth = 0;

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

/* The bytes of the set, up to the first block of counters */
static Size
set_size(int capacity)
{
	return CACHELINEALIGN(add_size(offsetof(FunctionProfilingState, entries),
								   mul_size(capacity, sizeof(ProfiledFunction))));
}

/* The bytes of one backend's block of counters */
static Size
counters_block_size(int capacity)
{
	return CACHELINEALIGN(mul_size(capacity, sizeof(CallCounters)));
}

/*
 * The shared memory of function profiling: the set, and a block of
 * counters for each backend number.  Called when MaxBackends is known.
 */
Size
dolon_function_profiling_shmem_size(int capacity)
{
	/* and a cache line, to align the blocks if the segment does not */
	return add_size(add_size(set_size(capacity), PG_CACHE_LINE_SIZE),
					mul_size(MaxBackends, counters_block_size(capacity)));
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
 * Returns -1 if every entry is taken.  A free entry can be taken at once:
 * the calls that started under its last use, if some are still in
 * progress, end on counters of that use, which no reader adds up any more.
 */
static int
take_entry(Oid database, Oid function, const char *signature,
		   const char *column)
{
	int			i;

	for (i = 0; i < profiling->capacity; i++)
	{
		ProfiledFunction *entry = &profiling->entries[i];

		if (OidIsValid(entry->function))
			continue;

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
 * progress end on the counters of the use they started under.
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
	Size		size = dolon_function_profiling_shmem_size(capacity);
	bool		found;
	int			i;
	int			b;

	profiling = ShmemInitStruct("dolon function profiling", size, &found);
	call_counters = (char *) CACHELINEALIGN((char *) profiling + set_size(capacity));
	counters_stride = counters_block_size(capacity);
	if (found)
		return;

	memset(profiling, 0, size);
	profiling->lock = &(GetNamedLWLockTranche("dolon"))[DOLON_LOCK_FUNCTIONS].lock;
	pg_atomic_init_u64(&profiling->set_generation, 1);
	pg_atomic_init_u32(&profiling->counting_backends, 0);
	profiling->capacity = capacity;
	for (i = 0; i < profiling->capacity; i++)
		pg_atomic_init_u64(&profiling->entries[i].generation, 0);
	/* Every backend's counters of every entry: zero, of no generation */
	for (b = 0; b < MaxBackends; b++)
	{
		CallCounters *block = (CallCounters *) (call_counters + b * counters_stride);

		for (i = 0; i < capacity; i++)
		{
			pg_atomic_init_u64(&block[i].generation, 0);
			pg_atomic_init_u64(&block[i].hits, 0);
			pg_atomic_init_u64(&block[i].completed, 0);
			pg_atomic_init_u64(&block[i].timed_calls, 0);
			pg_atomic_init_u64(&block[i].timed_ns, 0);
		}
	}
	load_profiled_functions();
}

uint64
dolon_profiled_functions_generation(void)
{
	return profiling ? pg_atomic_read_u64(&profiling->set_generation) : 0;
}

/* The bucket of a function in the local copy of the set */
static inline uint32
local_bucket(Oid function)
{
	return murmurhash32(function) & local_set_mask;
}

/*
 * Rebuild this backend's copy of the set, which is out of date: the
 * functions of this database, at most half filling a table whose size is a
 * power of two.
 */
static pg_noinline void
rebuild_local_set(void)
{
	int			count = 0;
	uint32		buckets;
	int			i;

	local_set_count = 0;		/* stays so if the allocation fails */
	last_function = InvalidOid;
	LWLockAcquire(profiling->lock, LW_SHARED);
	for (i = 0; i < profiling->capacity; i++)
	{
		if (OidIsValid(profiling->entries[i].function) &&
			profiling->entries[i].database == MyDatabaseId)
			count++;
	}
	buckets = pg_nextpower2_32(Max(2 * count, 8));
	if (local_set == NULL || buckets != local_set_mask + 1)
	{
		if (local_set != NULL)
			pfree(local_set);
		local_set = NULL;
		local_set = MemoryContextAlloc(TopMemoryContext,
									   buckets * sizeof(LocalProfiledFunction));
		local_set_mask = buckets - 1;
	}
	memset(local_set, 0, buckets * sizeof(LocalProfiledFunction));
	for (i = 0; i < profiling->capacity; i++)
	{
		ProfiledFunction *entry = &profiling->entries[i];
		uint32		bucket;

		if (!OidIsValid(entry->function) || entry->database != MyDatabaseId)
			continue;
		bucket = local_bucket(entry->function);
		while (OidIsValid(local_set[bucket].function))
			bucket = (bucket + 1) & local_set_mask;
		local_set[bucket].function = entry->function;
		local_set[bucket].entry = i;
		local_set[bucket].generation = pg_atomic_read_u64(&entry->generation);
		local_set_count++;
	}
	/* Read under the lock: a change after this is seen next time */
	local_set_generation = pg_atomic_read_u64(&profiling->set_generation);
	LWLockRelease(profiling->lock);
}

/*
 * This backend's copy of the set's entry of a function, brought up to date
 * first if the set changed; NULL if the function is not profiled in this
 * database.
 */
static inline LocalProfiledFunction *
find_local(Oid function)
{
	uint32		bucket;

	if (unlikely(pg_atomic_read_u64(&profiling->set_generation) != local_set_generation))
		rebuild_local_set();
	if (function == last_function)
		return last_local;
	if (local_set_count == 0)
		return NULL;
	last_function = function;
	for (bucket = local_bucket(function);
		 OidIsValid(local_set[bucket].function);
		 bucket = (bucket + 1) & local_set_mask)
	{
		if (local_set[bucket].function == function)
			return last_local = &local_set[bucket];
	}
	return last_local = NULL;
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
	return find_local(function) != NULL;
}

/* Add to a counter that only this backend writes: no locked instruction */
static inline void
add_own(pg_atomic_uint64 *counter, int64 delta)
{
	pg_atomic_write_u64(counter, pg_atomic_read_u64(counter) + delta);
}

/*
 * End the calls this backend has in progress, at its exit: they will not
 * end otherwise.
 */
static void
end_tracked_calls(int code, Datum arg)
{
	while (call_depth > 0)
	{
		call_depth--;
		if (call_depth < MAX_TRACKED_CALLS &&
			tracked_calls[call_depth].counters != NULL)
		{
			pg_write_barrier();
			add_own(&tracked_calls[call_depth].counters->completed, 1);
		}
	}
}

/*
 * Find this backend's block of counters, on its first profiled call.  A
 * process with no backend number (none calls functions today) counts
 * nothing.
 */
static pg_noinline void
set_up_counting(void)
{
	int			backend = dolon_backend_number();
	uint32		counting;

	counting_set_up = true;
	if (backend < 0 || backend >= MaxBackends)
		return;

	/* Readers look at the blocks of backends below counting_backends */
	counting = pg_atomic_read_u32(&profiling->counting_backends);
	while (counting < (uint32) backend + 1 &&
		   !pg_atomic_compare_exchange_u32(&profiling->counting_backends,
										   &counting, (uint32) backend + 1))
		;
	before_shmem_exit(end_tracked_calls, (Datum) 0);
	my_counters = (CallCounters *) (call_counters + backend * counters_stride);
}

/*
 * Start this backend's counters of an entry again from zero, for a newer
 * generation of the entry than they count for.  Its calls in progress
 * under an older generation no longer end on them.
 */
static pg_noinline void
restart_counters(CallCounters *counters, uint64 generation)
{
	int			i;

	for (i = 0; i < Min(call_depth, MAX_TRACKED_CALLS); i++)
	{
		if (tracked_calls[i].counters == counters)
			tracked_calls[i].counters = NULL;
	}
	pg_atomic_write_u64(&counters->generation, 0);
	pg_write_barrier();
	pg_atomic_write_u64(&counters->hits, 0);
	pg_atomic_write_u64(&counters->completed, 0);
	pg_atomic_write_u64(&counters->timed_calls, 0);
	pg_atomic_write_u64(&counters->timed_ns, 0);
	counters->countdown = 1;	/* the first call is timed */
	counters->gap = 1;
	pg_write_barrier();
	pg_atomic_write_u64(&counters->generation, generation);
}

/*
 * This backend's counters of a function of its copy of the set, checked to
 * count for the generation of the copy, or started again for it; NULL if
 * this backend cannot count (no backend number, or a copy of the set
 * older than its counters).
 */
static pg_noinline CallCounters *
own_counters(LocalProfiledFunction *local)
{
	CallCounters *counters;
	uint64		generation;

	if (!counting_set_up)
		set_up_counting();
	if (my_counters == NULL)
		return NULL;

	counters = &my_counters[local->entry];
	generation = pg_atomic_read_u64(&counters->generation);
	if (generation != local->generation)
	{
		if (generation > local->generation)
			return NULL;
		restart_counters(counters, local->generation);
	}
	return local->counters = counters;
}

/*
 * The number of calls from the one after a timed call to the next timed
 * one, included: 1 while this backend's calls of the function take
 * TIME_EVERY_CALL_NS or more on average; otherwise at random, 1 to
 * 2 * MEAN_TIMING_GAP - 1, so that no pattern of the calls is sampled in
 * step with it.
 */
static pg_noinline uint32
next_timing_gap(CallCounters *counters)
{
	uint64		timed_calls = pg_atomic_read_u64(&counters->timed_calls);

	if (timed_calls == 0 ||
		pg_atomic_read_u64(&counters->timed_ns) >= TIME_EVERY_CALL_NS * timed_calls)
		return 1;
	return (uint32) pg_prng_uint64_range(&pg_global_prng_state, 1,
										 2 * MEAN_TIMING_GAP - 1);
}

static void
start_call(Oid function)
{
	TrackedCall *call;
	LocalProfiledFunction *local;
	CallCounters *counters = NULL;
	bool		first_call = false;

	/*
	 * What may fail (bringing the copy of the set up to date, setting up
	 * this backend's counters) comes before the call is tracked: an error in
	 * this hook at the start of a call aborts the call without an end.  A
	 * function may have stopped being profiled since fmgr_info(); a
	 * SECURITY DEFINER function that is not profiled comes here too.
	 */
	local = find_local(function);
	if (local != NULL)
	{
		counters = local->counters;
		if (unlikely(counters == NULL))
		{
			counters = own_counters(local);
			first_call = true;
		}
	}

	if (call_depth++ >= MAX_TRACKED_CALLS)
		return;
	call = &tracked_calls[call_depth - 1];
	call->counters = counters;
	if (counters == NULL)
		return;

	add_own(&counters->hits, 1);
	call->weight = 0;
	if (unlikely(first_call))
	{
		/*
		 * The backend's first call of the function, often the slowest (it
		 * compiles the function, fills caches): timed, and standing for
		 * itself alone, outside the sample.
		 */
		call->weight = 1;
		INSTR_TIME_SET_CURRENT(call->start);
	}
	else if (unlikely(--counters->countdown == 0))
	{
		call->weight = counters->gap;
		counters->gap = next_timing_gap(counters);
		counters->countdown = counters->gap;
		INSTR_TIME_SET_CURRENT(call->start);
	}
}

/*
 * A timed call ends: add its time, for the calls it stands for.  Apart
 * from end_call(), which stays a leaf with nothing on its stack.
 */
static pg_noinline void
add_timed_call(const TrackedCall *call, CallCounters *counters)
{
	instr_time	duration;

	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, call->start);
	add_own(&counters->timed_ns,
			(int64) (INSTR_TIME_GET_DOUBLE(duration) * 1e9) * call->weight);
	add_own(&counters->timed_calls, call->weight);
}

/*
 * A call ends, normally or by an error: either way it is a completed call.
 */
static void
end_call(void)
{
	TrackedCall *call;
	CallCounters *counters;

	if (call_depth == 0)
		return;
	if (--call_depth >= MAX_TRACKED_CALLS)
		return;
	call = &tracked_calls[call_depth];
	counters = call->counters;
	if (counters == NULL)
		return;

	if (unlikely(call->weight > 0))
		add_timed_call(call, counters);
	/* Readers are to see the call's start before its end */
	pg_write_barrier();
	add_own(&counters->completed, 1);
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
 * Sum the counters of an entry, for its use number generation, over the
 * backends.  Each backend's counters are read between two reads of their
 * generation, and left out if it changed: they were starting again.
 */
static void
sum_counters(int i, uint64 generation, DolonFunctionCounters *sums)
{
	uint32		backends = pg_atomic_read_u32(&profiling->counting_backends);
	uint32		b;

	sums->hits = 0;
	sums->active = 0;
	sums->completed = 0;
	sums->timed_calls = 0;
	sums->timed_ns = 0;
	pg_read_barrier();
	for (b = 0; b < backends; b++)
	{
		CallCounters *counters;
		uint64		hits,
					completed,
					timed_calls,
					timed_ns;

		counters = (CallCounters *) (call_counters + b * counters_stride) + i;
		if (pg_atomic_read_u64(&counters->generation) != generation)
			continue;
		pg_read_barrier();
		completed = pg_atomic_read_u64(&counters->completed);
		pg_read_barrier();
		hits = pg_atomic_read_u64(&counters->hits);
		timed_calls = pg_atomic_read_u64(&counters->timed_calls);
		timed_ns = pg_atomic_read_u64(&counters->timed_ns);
		pg_read_barrier();
		if (pg_atomic_read_u64(&counters->generation) != generation)
			continue;
		sums->hits += hits;
		sums->active += hits - completed;
		sums->completed += completed;
		sums->timed_calls += timed_calls;
		sums->timed_ns += timed_ns;
	}
}

/*
 * The counters of the function of a function column, summed over the
 * backends; false if the function is no longer profiled.
 */
bool
dolon_sum_function_column(const DolonColumn *column,
						  DolonFunctionCounters *counters)
{
	ProfiledFunction *entry = &profiling->entries[column->entry];

	if (pg_atomic_read_u64(&entry->generation) != column->entry_generation)
		return false;
	sum_counters(column->entry, column->entry_generation, counters);
	return true;
}

/* The mean seconds of a function's completed calls; 0 before one completes */
double
dolon_function_average_seconds(const DolonFunctionCounters *counters)
{
	return counters->timed_calls > 0 ?
		counters->timed_ns / 1e9 / counters->timed_calls : 0;
}

/*
 * The value of a function column, from the counters of its function
 * (dolon_sum_function_column)
 */
double
dolon_function_column_value(const DolonColumn *column,
							const DolonFunctionCounters *counters)
{
	switch (column->kind)
	{
		case COLUMN_FUNCTION_HITS:
			return (double) counters->hits;
		case COLUMN_FUNCTION_ACTIVE_INSTANCES:
			return (double) counters->active;
		case COLUMN_FUNCTION_AVERAGE_TIME:
			return dolon_function_average_seconds(counters);
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

		if (!OidIsValid(entry->function))
			continue;
		function->database = entry->database;
		function->function = entry->function;
		function->signature = pstrdup(entry->signature);
		function->column = pstrdup(entry->column);
		sum_counters(i, pg_atomic_read_u64(&entry->generation), function);
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
		values[8] = Float8GetDatum(dolon_function_average_seconds(function));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}
