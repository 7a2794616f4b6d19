/*-------------------------------------------------------------------------
 *
 * sampling.c
 *		The values of the built-in profilers, and where each is read; the
 *		same reads serve the metrics endpoint (metrics_exposition.c).
 *
 * Every value is read in-process from shared memory, never by running SQL.
 * The sources are:
 *
 * Backend status entries.  Each server process advertises its pid, type,
 * database, state and transaction start in an entry of the shared "Backend
 * Status Array", which is what pg_stat_activity and
 * pg_stat_database.numbackends show.  The statistics views copy every entry,
 * with its query text, into a local snapshot; we only need a few integers per
 * entry, so we read the array in place.  An entry is written under the
 * st_changecount protocol: the writer makes the count odd, changes the
 * fields and makes it even again, with barriers in between.  A reader that
 * sees the same even count before and after reading the fields has read a
 * consistent set; otherwise it reads again.  Reading never blocks a writer.
 *
 * Process entries (PGPROC).  pg_stat_activity takes wait_event_type from the
 * wait_event_info of each process's PGPROC, a single 4-byte word that its
 * owner sets and clears without a lock; we read it the same way.
 *
 * Cumulative statistics.  n_live_tup and n_dead_tup of pg_stat_user_tables
 * come from the shared statistics entry of each table, and the transaction
 * and deadlock counts of pg_stat_database from that of each database.
 * Finding the user tables takes a scan of pg_class, so we keep their OIDs
 * between samples and scan again only after an invalidation of pg_class or
 * pg_namespace; likewise for pg_database.  A sample then costs one
 * statistics lookup per table.  The statistics are read in the caller's
 * transaction, whose end discards any snapshot of them
 * (stats_fetch_consistency), so that every sample of the worker, one
 * transaction each, sees fresh values.
 *
 * The host and the server's processes, from /proc: see host.c.
 *
 * What is read, per PostgreSQL version (the names are in compat.h):
 *
 * - Backend status entries: the fields read (st_changecount, st_procpid,
 *   st_databaseid, st_backendType, st_state, st_xact_start_timestamp) and
 *   the read protocol (pgstat_begin_read_activity() and the macros after
 *   it) are the same in 15, 17 and 18, and come from the headers of the
 *   server built against, so their offsets are that server's.  What changed
 *   is the number of entries.  In 15 the array has MaxBackends +
 *   NUM_AUXPROCTYPES entries (6 auxiliary process types); 17 removed
 *   NUM_AUXPROCTYPES and sizes it MaxBackends + NUM_AUXILIARY_PROCS (6 in
 *   17; in 18, 6 + MAX_IO_WORKERS, the I/O workers having entries too),
 *   as BackendStatusShmemSize() does.  DOLON_BACKEND_STATUS_SLOTS is that
 *   count, and ShmemInitStruct() checks it against the size the server
 *   recorded, so a wrong count is an error, never a read past the array.
 *
 * - PGPROC: wait_event_info and pid of each of ProcGlobal->allProcs, the
 *   allProcCount entries, are the same fields in 15, 17 and 18 (wait event
 *   classes too: PG_WAIT_LOCK, in wait_classes.h from 18).  Prepared
 *   transactions have entries with pid 0 in each.
 *
 * - Cumulative statistics: pgstat_fetch_stat_tabentry_ext() and
 *   pgstat_fetch_stat_dbentry() are the same calls in 15, 17 and 18 and
 *   return a copy (or the snapshot's entry) whatever the version; only the
 *   names of the counters changed, in 16 (n_live_tuples became
 *   live_tuples, n_xact_commit xact_commit), with the same meaning.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/backend_status.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/pgstat_internal.h"
#include "utils/syscache.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "sampling.h"

/* Transaction rates are computed over this much time at least */
#define DOLON_RATE_WINDOW_MS 5000

/* The backend status entries in shared memory, once looked up */
static PgBackendStatus *backend_status_array = NULL;

/*
 * The OIDs of some catalog rows, kept between samples: the user tables of
 * this database, as pg_stat_user_tables shows them, and the databases.  A
 * set is valid while its version equals the count of invalidations of the
 * catalogs it depends on.
 */
typedef struct CachedOids
{
	Oid		   *oids;
	int			count;
	uint64		version;
} CachedOids;

static CachedOids user_tables = {NULL, 0, 0};
static CachedOids databases = {NULL, 0, 0};
static uint64 table_catalog_changes = 1;
static uint64 database_catalog_changes = 1;
static bool callbacks_registered = false;

/*
 * Find the backend status entries in shared memory.
 *
 * The array is created by the server at startup under this name, sized for
 * every backend and auxiliary process.  ShmemInitStruct() returns the
 * existing area and raises an error if its recorded size differs from ours,
 * which protects us from a layout we do not know.
 */
static PgBackendStatus *
get_backend_status_array(void)
{
	if (backend_status_array == NULL)
	{
		Size		size;
		bool		found;
		PgBackendStatus *array;

		size = mul_size(sizeof(PgBackendStatus), DOLON_BACKEND_STATUS_SLOTS);
		array = ShmemInitStruct("Backend Status Array", size, &found);
		if (!found)
			elog(ERROR, "backend status array not found in shared memory");
		backend_status_array = array;
	}
	return backend_status_array;
}

/* The fields of a backend status entry that dolon reads */
typedef struct BackendEntryFields
{
	int			pid;
	Oid			database;
	BackendType type;
	BackendState state;
	TimestampTz xact_start;
} BackendEntryFields;

/*
 * Read the fields of a backend status entry, as a consistent set.  Returns
 * false if the entry is not in use.
 */
static bool
read_backend_entry(PgBackendStatus *entry, BackendEntryFields *fields)
{
	for (;;)
	{
		int			before_changecount;
		int			after_changecount;

		pgstat_begin_read_activity(entry, before_changecount);
		fields->pid = entry->st_procpid;
		fields->database = entry->st_databaseid;
		fields->type = entry->st_backendType;
		fields->state = entry->st_state;
		fields->xact_start = entry->st_xact_start_timestamp;
		pgstat_end_read_activity(entry, after_changecount);

		if (pgstat_read_activity_complete(before_changecount,
										  after_changecount))
			break;

		/* Make sure we can break out of the loop if stuck... */
		CHECK_FOR_INTERRUPTS();
	}
	return fields->pid > 0;
}

/*
 * Count the processes connected to a database, the client backends, and
 * the sessions in each state of interest; find the oldest transaction.
 *
 * pg_stat_activity lists every entry whose pid is set.
 * pg_stat_database.numbackends counts them per database; its row for the
 * processes attached to no database (datid 0) is always 0, so the sum is the
 * number of entries in use with a database: client backends, background
 * workers such as the tracer, autovacuum workers, logical walsenders.
 */
void
dolon_read_backend_activity(DolonBackendActivity *activity)
{
	PgBackendStatus *entry = get_backend_status_array();
	int			slots = DOLON_BACKEND_STATUS_SLOTS;
	int			i;

	memset(activity, 0, sizeof(DolonBackendActivity));

	for (i = 0; i < slots; i++, entry++)
	{
		BackendEntryFields fields;

		if (!read_backend_entry(entry, &fields))
			continue;
		if (OidIsValid(fields.database))
			activity->connections++;
		if (fields.type == B_BACKEND)
			activity->client_backends++;
		if (fields.state == STATE_IDLE)
			activity->idle++;
		else if (fields.state == STATE_RUNNING)
			activity->active++;
		else if (fields.state == STATE_IDLEINTRANSACTION)
			activity->idle_in_transaction++;
		if (fields.xact_start != 0 &&
			(activity->oldest_xact_start == 0 ||
			 fields.xact_start < activity->oldest_xact_start))
			activity->oldest_xact_start = fields.xact_start;
	}
}

/*
 * The states of pg_stat_activity.state, in the order of
 * DolonSessionState; an entry in any other state (none yet: a background
 * process, or a backend still starting) has a null state there.
 */
const char *const dolon_session_state_names[DOLON_SESSION_STATES] = {
	"active",
	"idle",
	"idle in transaction",
	"idle in transaction (aborted)",
	"fastpath function call",
	"disabled",
};

static int
session_state_index(BackendState state)
{
	switch (state)
	{
		case STATE_RUNNING:
			return 0;
		case STATE_IDLE:
			return 1;
		case STATE_IDLEINTRANSACTION:
			return 2;
		case STATE_IDLEINTRANSACTION_ABORTED:
			return 3;
		case STATE_FASTPATH:
			return 4;
		case STATE_DISABLED:
			return 5;
		default:
			return -1;
	}
}

/*
 * Count, for each of the count databases, the entries attached to it
 * (pg_stat_database.numbackends) and those in each state, with the oldest
 * transaction start of each state (pg_stat_activity grouped by datname and
 * state).  sessions has count elements, in the order of databases.
 */
void
dolon_read_database_sessions(const Oid *databases, int count,
							 DolonDatabaseSessions *sessions)
{
	PgBackendStatus *entry = get_backend_status_array();
	int			slots = DOLON_BACKEND_STATUS_SLOTS;
	int			i;

	memset(sessions, 0, count * sizeof(DolonDatabaseSessions));

	for (i = 0; i < slots; i++, entry++)
	{
		BackendEntryFields fields;
		DolonDatabaseSessions *database = NULL;
		int			d;
		int			state;

		if (!read_backend_entry(entry, &fields) ||
			!OidIsValid(fields.database))
			continue;
		for (d = 0; d < count && database == NULL; d++)
			if (databases[d] == fields.database)
				database = &sessions[d];
		if (database == NULL)
			continue;			/* a database created since the list */
		database->backends++;
		state = session_state_index(fields.state);
		if (state < 0)
			continue;
		database->count[state]++;
		if (fields.xact_start != 0 &&
			(database->oldest_xact_start[state] == 0 ||
			 fields.xact_start < database->oldest_xact_start[state]))
			database->oldest_xact_start[state] = fields.xact_start;
	}
}

/*
 * Count the processes waiting for a heavyweight lock: those whose
 * wait_event_type is 'Lock' in pg_stat_activity.  Prepared transactions
 * have a PGPROC without a pid and are not processes.
 */
static int64
read_waiting_on_locks(void)
{
	int64		waiting = 0;
	uint32		i;

	for (i = 0; i < ProcGlobal->allProcCount; i++)
	{
		PGPROC	   *proc = &ProcGlobal->allProcs[i];
		uint32		wait_event_info = *(volatile uint32 *) &proc->wait_event_info;

		if ((wait_event_info & 0xFF000000) == PG_WAIT_LOCK && proc->pid != 0)
			waiting++;
	}
	return waiting;
}

/*
 * Syscache callbacks: a change to these catalogs may change a set of OIDs.
 */
static void
invalidate_user_tables(Datum arg, int cacheid, uint32 hashvalue)
{
	table_catalog_changes++;
}

static void
invalidate_databases(Datum arg, int cacheid, uint32 hashvalue)
{
	database_catalog_changes++;
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	CacheRegisterSyscacheCallback(RELOID, invalidate_user_tables, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_user_tables, (Datum) 0);
	CacheRegisterSyscacheCallback(DATABASEOID, invalidate_databases, (Datum) 0);
	callbacks_registered = true;
}

/*
 * Is this the namespace of user tables, as pg_stat_user_tables defines it?
 * That view leaves out pg_catalog, information_schema and the namespaces
 * whose name starts with pg_toast.
 */
static bool
is_user_namespace(Oid namespace_oid)
{
	HeapTuple	tuple;
	const char *name;
	bool		result;

	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(namespace_oid));
	if (!HeapTupleIsValid(tuple))
		return false;
	name = NameStr(((Form_pg_namespace) GETSTRUCT(tuple))->nspname);
	result = strcmp(name, "pg_catalog") != 0 &&
		strcmp(name, "information_schema") != 0 &&
		strncmp(name, "pg_toast", strlen("pg_toast")) != 0;
	ReleaseSysCache(tuple);
	return result;
}

/*
 * What refresh_oids() remembers from one row to the next: the namespace of
 * the previous row and whether it is a user namespace, as rows of a
 * namespace tend to come together.
 */
typedef struct OidScanState
{
	Oid			last_namespace;
	bool		last_is_user;
} OidScanState;

/*
 * A pg_class row of pg_stat_user_tables: a relation of kind r, t, m or p in
 * a user namespace.
 */
static bool
user_table_oid(HeapTuple tuple, OidScanState *state, Oid *oid)
{
	Form_pg_class form = (Form_pg_class) GETSTRUCT(tuple);

	if (form->relkind != RELKIND_RELATION &&
		form->relkind != RELKIND_TOASTVALUE &&
		form->relkind != RELKIND_MATVIEW &&
		form->relkind != RELKIND_PARTITIONED_TABLE)
		return false;
	if (form->relnamespace != state->last_namespace)
	{
		state->last_namespace = form->relnamespace;
		state->last_is_user = is_user_namespace(form->relnamespace);
	}
	*oid = form->oid;
	return state->last_is_user;
}

/* Every pg_database row */
static bool
database_oid(HeapTuple tuple, OidScanState *state, Oid *oid)
{
	*oid = ((Form_pg_database) GETSTRUCT(tuple))->oid;
	return true;
}

/*
 * Make *cache the OIDs that row_oid() takes from the rows of a catalog,
 * unless it is valid already.
 */
static void
refresh_oids(CachedOids *cache, uint64 changes, Oid catalog,
			 bool (*row_oid) (HeapTuple, OidScanState *, Oid *))
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	OidScanState state = {InvalidOid, false};
	int			capacity = 64;
	int			count = 0;
	Oid		   *oids;

	if (cache->version == changes)
		return;

	oids = palloc(capacity * sizeof(Oid));
	rel = table_open(catalog, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		if (count == capacity)
		{
			capacity *= 2;
			oids = repalloc(oids, capacity * sizeof(Oid));
		}
		if (row_oid(tuple, &state, &oids[count]))
			count++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	/* Keep the set; an error above leaves the previous one, still invalid */
	if (cache->oids != NULL)
		pfree(cache->oids);
	cache->oids = MemoryContextAlloc(TopMemoryContext,
									 Max(count, 1) * sizeof(Oid));
	memcpy(cache->oids, oids, count * sizeof(Oid));
	cache->count = count;
	pfree(oids);

	/*
	 * An invalidation that arrived during the scan (taking the lock on the
	 * catalog processes them) leaves the set invalid, for another scan.
	 */
	cache->version = changes;
}

/*
 * Free a statistics entry fetched with stats_fetch_consistency = none, a
 * copy of its own, as soon as it is read: over thousands of tables, the
 * copies would otherwise pile up until the end of the transaction.  Under
 * the other settings the copy belongs to the statistics snapshot.
 */
void
dolon_release_stats_entry(void *entry)
{
	if (pgstat_fetch_consistency == PGSTAT_FETCH_CONSISTENCY_NONE)
		pfree(entry);
}

/*
 * The statistics of a table of any database, from shared memory, or NULL if
 * it has none; to be released with dolon_release_stats_entry()
 */
PgStat_StatTabEntry *
dolon_fetch_table_stats(Oid database, Oid table)
{
	return (PgStat_StatTabEntry *) pgstat_fetch_entry(PGSTAT_KIND_RELATION,
													  database, table);
}

/*
 * The OIDs of the user tables of this database, as pg_stat_user_tables
 * lists them; *count is set to their number.  Needs a transaction in a
 * database.  The array is valid until the next call.
 */
const Oid *
dolon_user_table_oids(int *count)
{
	Assert(IsTransactionState());
	Assert(OidIsValid(MyDatabaseId));

	register_callbacks();
	refresh_oids(&user_tables, table_catalog_changes, RelationRelationId,
				 user_table_oid);
	*count = user_tables.count;
	return user_tables.oids;
}

/*
 * The OIDs of every database, in the order of pg_database; *count is set to
 * their number.  Needs a transaction.  The array is valid until the next
 * call.
 */
const Oid *
dolon_database_oids(int *count)
{
	Assert(IsTransactionState());

	register_callbacks();
	refresh_oids(&databases, database_catalog_changes, DatabaseRelationId,
				 database_oid);
	*count = databases.count;
	return databases.oids;
}

/*
 * Sum n_live_tup and n_dead_tup over pg_stat_user_tables.  Needs a
 * transaction in a database.  A table without statistics counts as zero,
 * as in the view.
 */
void
dolon_read_table_tuples(DolonTableTuples *tuples)
{
	int			i;

	const Oid  *tables;
	int			count;

	tables = dolon_user_table_oids(&count);
	memset(tuples, 0, sizeof(DolonTableTuples));
	for (i = 0; i < count; i++)
	{
		PgStat_StatTabEntry *entry;

		/* User tables are never shared relations */
		entry = pgstat_fetch_stat_tabentry_ext(false, tables[i]);
		if (entry == NULL)
			continue;
		tuples->live += DOLON_TABLE_LIVE_TUPLES(entry);
		tuples->dead += DOLON_TABLE_DEAD_TUPLES(entry);
		dolon_release_stats_entry(entry);
	}
}

/*
 * Sum the transaction and deadlock counters over pg_stat_database: every
 * database, and the row for shared objects (datid 0).  Needs a transaction.
 */
static void
read_database_counters(DolonDatabaseCounters *counters)
{
	int			i;

	const Oid  *oids;
	int			count;

	oids = dolon_database_oids(&count);
	memset(counters, 0, sizeof(DolonDatabaseCounters));
	for (i = -1; i < count; i++)
	{
		PgStat_StatDBEntry *entry;

		entry = pgstat_fetch_stat_dbentry(i < 0 ? InvalidOid : oids[i]);
		if (entry == NULL)
			continue;
		counters->xact_commit += DOLON_DATABASE_COUNTER(entry, xact_commit);
		counters->xact_rollback += DOLON_DATABASE_COUNTER(entry, xact_rollback);
		counters->deadlocks += DOLON_DATABASE_COUNTER(entry, deadlocks);
		dolon_release_stats_entry(entry);
	}
}

static DolonBackendActivity *
sample_backend_activity(DolonSample *sample)
{
	if (!sample->have_backend_activity)
	{
		dolon_read_backend_activity(&sample->backend_activity);
		sample->have_backend_activity = true;
	}
	return &sample->backend_activity;
}

static DolonTableTuples *
sample_table_tuples(DolonSample *sample)
{
	if (!sample->have_table_tuples)
	{
		dolon_read_table_tuples(&sample->table_tuples);
		sample->have_table_tuples = true;
	}
	return &sample->table_tuples;
}

/*
 * Read the database counters, and their rates of change.  Backends report
 * their counts at most once a second, so the change between two samples
 * closer than that is lumpy (0, then twice the rate).  A rate is therefore
 * the change over the last DOLON_RATE_WINDOW_MS at least: since the newest
 * earlier reading of this process that is at least that old, or, until
 * there is one, since the oldest; null on the first sample.  Readings are
 * kept at least DOLON_RATE_WINDOW_MS / 16 apart, in a ring that holds twice
 * the window.  A counter that went down was reset: no rate, and the
 * readings before start afresh.
 */
static DolonSample *
sample_database_counters(DolonSample *sample)
{
	DolonSampleHistory *history = sample->history;
	DolonDatabaseCounters *now = &sample->database_counters;
	const DolonCounterReading *reference = NULL;
	DolonCounterReading *newest;
	int			i;

	if (sample->have_database_counters)
		return sample;

	read_database_counters(now);
	sample->have_database_counters = true;

	/* The newest reading old enough, else the oldest */
	for (i = 0; i < history->readings; i++)
	{
		int			index = (history->newest - i + DOLON_COUNTER_READINGS) %
			DOLON_COUNTER_READINGS;

		reference = &history->ring[index];
		if (reference->time <= sample->time -
			(TimestampTz) DOLON_RATE_WINDOW_MS * 1000)
			break;
	}
	if (reference != NULL &&
		(now->xact_commit < reference->counters.xact_commit ||
		 now->xact_rollback < reference->counters.xact_rollback))
	{
		history->readings = 0;
		reference = NULL;
	}
	if (reference != NULL && sample->time > reference->time)
	{
		double		seconds = (sample->time - reference->time) / 1000000.0;

		sample->xact_commit_rate =
			(now->xact_commit - reference->counters.xact_commit) / seconds;
		sample->xact_rollback_rate =
			(now->xact_rollback - reference->counters.xact_rollback) / seconds;
		sample->rates_known = true;
	}

	/* Keep this reading, unless the newest one is very recent */
	newest = &history->ring[history->newest];
	if (history->readings == 0 ||
		sample->time - newest->time >=
		(TimestampTz) DOLON_RATE_WINDOW_MS * 1000 / 16)
	{
		history->newest = (history->newest + 1) % DOLON_COUNTER_READINGS;
		history->readings = Min(history->readings + 1, DOLON_COUNTER_READINGS);
		newest = &history->ring[history->newest];
		newest->time = sample->time;
		newest->counters = *now;
	}
	return sample;
}

static DolonSample *
sample_server_memory(DolonSample *sample)
{
	if (!sample->have_server_memory)
	{
		sample->server_memory_known =
			dolon_read_server_memory(&sample->server_pss_gb,
									 &sample->server_private_mb);
		sample->have_server_memory = true;
	}
	return sample;
}

/*
 * Seconds since the last transaction replayed on this standby committed:
 * now() - pg_last_xact_replay_timestamp().  Unknown on a primary, and
 * before a standby replayed any.
 */
static bool
replication_lag_seconds(DolonSample *sample, double *seconds)
{
	TimestampTz replayed;

	if (!RecoveryInProgress())
		return false;
	replayed = GetLatestXTime();
	if (replayed == 0)
		return false;
	*seconds = (sample->time - replayed) / 1000000.0;
	return true;
}

/*
 * The value of a built-in profiler in this sample.
 */
double
dolon_builtin_value(DolonSample *sample, DolonBuiltinProfiler id,
					bool *isnull)
{
	double		value = 0;

	*isnull = false;
	switch (id)
	{
		case PROFILER_IDLE:
			return sample_backend_activity(sample)->idle;
		case PROFILER_COUNT_DB_CONNECTIONS:
			return sample_backend_activity(sample)->connections;
		case PROFILER_ACTIVE_TASKS:
			return sample_backend_activity(sample)->active;
		case PROFILER_LIVE_MSGS:
			return sample_table_tuples(sample)->live;
		case PROFILER_DEAD_MSGS:
			return sample_table_tuples(sample)->dead;
		case PROFILER_IDLE_IN_TRANSACTION:
			return sample_backend_activity(sample)->idle_in_transaction;
		case PROFILER_WAITING_ON_LOCKS:
			if (!sample->have_waiting_on_locks)
			{
				sample->waiting_on_locks = read_waiting_on_locks();
				sample->have_waiting_on_locks = true;
			}
			return sample->waiting_on_locks;
		case PROFILER_MAX_CONNECTIONS:
			return MaxConnections;
		case PROFILER_CONNECTIONS_PERCENT:
			return 100.0 * sample_backend_activity(sample)->client_backends /
				MaxConnections;
		case PROFILER_OLDEST_TRANSACTION_SECONDS:
			{
				TimestampTz oldest = sample_backend_activity(sample)->oldest_xact_start;

				if (oldest == 0 || oldest > sample->time)
					return 0;
				return (sample->time - oldest) / 1000000.0;
			}
		case PROFILER_XACT_COMMIT_RATE:
			*isnull = !sample_database_counters(sample)->rates_known;
			return sample->xact_commit_rate;
		case PROFILER_XACT_ROLLBACK_RATE:
			*isnull = !sample_database_counters(sample)->rates_known;
			return sample->xact_rollback_rate;
		case PROFILER_DEADLOCKS:
			return sample_database_counters(sample)->database_counters.deadlocks;
		case PROFILER_REPLICATION_LAG_SECONDS:
			*isnull = !replication_lag_seconds(sample, &value);
			return value;
		case PROFILER_CPU_PERCENT:
			*isnull = !dolon_read_cpu_percent(&sample->history->cpu, &value);
			return value;
		case PROFILER_VIRTUAL_MEMORY_PERCENT:
			*isnull = !dolon_read_virtual_memory_percent(&value);
			return value;
		case PROFILER_MEMORY_USE:
			*isnull = !sample_server_memory(sample)->server_memory_known;
			return sample->server_pss_gb;
		case PROFILER_MEM_ALLOCATION:
			*isnull = !sample_server_memory(sample)->server_memory_known;
			return sample->server_private_mb;
		case PROFILER_CUSTOM:
			break;
	}
	elog(ERROR, "unrecognized built-in profiler %d", (int) id);
	return 0;					/* keep compiler quiet */
}
