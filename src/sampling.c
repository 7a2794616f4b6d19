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
 * pg_namespace; likewise for pg_database.  Only that scan needs a
 * transaction: dolon_builtin_needs_transaction() says when one is due, and
 * the tracer's other samples take none.
 *
 * With stats_fetch_consistency = none, as in the tracer, each table's
 * counters are read in place.  Looking an entry up (a hash lookup, a lock
 * on the entry, a copy of all its counters) costs far more than the two
 * counters we want, so we keep a pointer to each user table's shared entry
 * between samples.  The pointer is that of a reference the statistics
 * system holds for this process (pgstat_get_entry_ref()), which keeps the
 * entry's memory from being freed: an entry dropped while others hold
 * references is only marked dropped, and the dropping process asks every
 * process to collect its references to dropped entries by advancing
 * gc_request_count.  A process releases such references only in that
 * collection, or when it drops the object itself, which a tracer never
 * does and which invalidates pg_class in a session.  So the pointers stay
 * valid while gc_request_count and the set of user tables are those they
 * were found with; otherwise they are found again.  The two counters are
 * read without the entry's lock: each is a 64-bit word, written whole
 * (where the platform has no 8-byte single-copy atomicity, the lock is
 * taken), and a sum over thousands of tables flushed at different times
 * is no more consistent with the lock than without.  A table without an
 * entry yet (never used since the statistics were reset) is looked for
 * again at most once a second, the rate at which processes flush their
 * statistics.  Under the other settings of stats_fetch_consistency, each
 * entry is fetched as pg_stat_user_tables does.
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
 *   pgstat_get_entry_ref(), PgStat_EntryRef.shared_stats,
 *   PgStatShared_Relation and pgStatLocal.shmem->gc_request_count, with
 *   the reference rules above, are the same in 15, 17 and 18 (18 widened
 *   the object id of the call to 64 bits, which an Oid converts to).
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
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
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "sampling.h"

/* Transaction rates are computed over this much time at least */
#define DOLON_RATE_WINDOW_MS 5000

/* Look for the statistics of tables that have none this often */
#define DOLON_MISSING_STATS_RETRY_MS 1000

/*
 * Loops over entries of shared memory ask for the entry this far ahead
 * while they read one, so that several cache misses are under way at once
 */
#define DOLON_PREFETCH_DISTANCE 16

/* The backend status entries in shared memory, once looked up */
static PgBackendStatus *backend_status_array = NULL;

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
 * The fields of each backend status entry as last read, and the
 * st_changecount of the entry then (-1 before the first read): an entry
 * whose count is still that one has not been written since.
 */
typedef struct BackendEntryCopy
{
	int			changecount;
	BackendEntryFields fields;
} BackendEntryCopy;

static BackendEntryCopy *backend_entry_copies = NULL;

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
 * The shared statistics entries of the user tables, in the order of
 * user_tables, for reading in place: see the header comment.  An entry is
 * NULL for a table that had none when looked for.
 */
typedef struct TableEntries
{
	PgStatShared_Relation **entries;	/* in TopMemoryContext */
	int			capacity;		/* of entries */
	int			count;
	bool		valid;
	uint64		tables_version; /* user_tables.version they belong to */
	uint64		gc_requests;	/* gc_request_count when they were found */
	int			missing;		/* tables without an entry */
	TimestampTz missing_retry;	/* when to look for those again */
} TableEntries;

static TableEntries table_entries = {NULL, 0, 0, false, 0, 0, 0, 0};

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
		backend_entry_copies =
			MemoryContextAlloc(TopMemoryContext,
							   DOLON_BACKEND_STATUS_SLOTS * sizeof(BackendEntryCopy));
		memset(backend_entry_copies, 0xFF,
			   DOLON_BACKEND_STATUS_SLOTS * sizeof(BackendEntryCopy));
		backend_status_array = array;
	}
	return backend_status_array;
}

/*
 * Read the fields of the backend status entry of a slot, as a consistent
 * set.  Returns false if the entry is not in use.
 *
 * Most entries do not change from one sample to the next (an idle session
 * writes nothing), and the fields we want are spread over three cache
 * lines of a 400-byte entry, which other processes' work evicts between
 * samples: reading them all is most of what a sample costs at a thousand
 * connections.  So the fields are copied, with the count they were read at,
 * and an entry whose st_changecount is still that count is not read again:
 * every write of an entry makes its count odd, then even and higher, so an
 * equal count means no write since.
 */
static inline bool
read_backend_entry(int slot, PgBackendStatus *entry,
				   BackendEntryFields *fields)
{
	BackendEntryCopy *copy = &backend_entry_copies[slot];

	if (*(volatile int *) &entry->st_changecount == copy->changecount)
	{
		*fields = copy->fields;
		return fields->pid > 0;
	}

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
		{
			copy->changecount = before_changecount;
			copy->fields = *fields;
			break;
		}

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

		/* The entries are far apart: ask for the next ones' counts early */
		if (i + DOLON_PREFETCH_DISTANCE < slots)
			__builtin_prefetch(&entry[DOLON_PREFETCH_DISTANCE].st_changecount);
		if (!read_backend_entry(i, entry, &fields))
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

		if (!read_backend_entry(i, entry, &fields) ||
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

	Assert(IsTransactionState());
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
 * database after a change to the catalogs (see
 * dolon_builtin_needs_transaction()).  The array is valid until the next
 * call.
 */
const Oid *
dolon_user_table_oids(int *count)
{
	Assert(OidIsValid(MyDatabaseId));

	register_callbacks();
	refresh_oids(&user_tables, table_catalog_changes, RelationRelationId,
				 user_table_oid);
	*count = user_tables.count;
	return user_tables.oids;
}

/*
 * The OIDs of every database, in the order of pg_database; *count is set to
 * their number.  Needs a transaction after a change to pg_database.  The
 * array is valid until the next call.
 */
const Oid *
dolon_database_oids(int *count)
{
	register_callbacks();
	refresh_oids(&databases, database_catalog_changes, DatabaseRelationId,
				 database_oid);
	*count = databases.count;
	return databases.oids;
}

/*
 * Find the shared statistics entry of each user table, for
 * table_entries_sum().  Returns false if some entry may have been dropped
 * and its reference collected meanwhile: the entries are not valid then.
 */
static bool
find_table_entries(const Oid *tables, int count)
{
	TableEntries *cache = &table_entries;
	uint64		gc_requests;
	int			i;

	cache->valid = false;
	if (cache->capacity < count || cache->entries == NULL)
	{
		if (cache->entries != NULL)
			pfree(cache->entries);
		cache->entries = NULL;
		cache->capacity = 0;
		cache->entries = MemoryContextAlloc(TopMemoryContext,
											Max(count, 1) * sizeof(PgStatShared_Relation *));
		cache->capacity = Max(count, 1);
	}
	cache->count = count;
	cache->missing = 0;

	/*
	 * Read first: a reference taken in the loop can only be collected after
	 * its entry is dropped, which advances the count
	 */
	gc_requests = pg_atomic_read_u64(&pgStatLocal.shmem->gc_request_count);
	for (i = 0; i < count; i++)
	{
		/* User tables are never shared relations */
		PgStat_EntryRef *ref = pgstat_get_entry_ref(PGSTAT_KIND_RELATION,
													MyDatabaseId, tables[i],
													false, NULL);

		cache->entries[i] = ref != NULL ?
			(PgStatShared_Relation *) ref->shared_stats : NULL;
		if (ref == NULL)
			cache->missing++;
	}
	if (gc_requests != pg_atomic_read_u64(&pgStatLocal.shmem->gc_request_count))
		return false;

	cache->gc_requests = gc_requests;
	cache->tables_version = user_tables.version;
	cache->missing_retry =
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
									DOLON_MISSING_STATS_RETRY_MS);
	cache->valid = true;
	return true;
}

/* Are the entries of table_entries those of the current user tables? */
static bool
table_entries_valid(void)
{
	const TableEntries *cache = &table_entries;

	return cache->valid &&
		cache->tables_version == user_tables.version &&
		cache->gc_requests ==
		pg_atomic_read_u64(&pgStatLocal.shmem->gc_request_count) &&
		(cache->missing == 0 || GetCurrentTimestamp() < cache->missing_retry);
}

/* Sum the counters of table_entries, read in place */
static void
table_entries_sum(DolonTableTuples *tuples)
{
	int			i;

	for (i = 0; i < table_entries.count; i++)
	{
		PgStatShared_Relation *entry = table_entries.entries[i];

		/* The entries are far apart: ask for the next ones' counters early */
		if (i + DOLON_PREFETCH_DISTANCE < table_entries.count &&
			table_entries.entries[i + DOLON_PREFETCH_DISTANCE] != NULL)
			__builtin_prefetch(&DOLON_TABLE_LIVE_TUPLES(&table_entries.entries[i + DOLON_PREFETCH_DISTANCE]->stats));
		if (entry == NULL)
			continue;
#ifdef PG_HAVE_8BYTE_SINGLE_COPY_ATOMICITY
		tuples->live += *(volatile PgStat_Counter *) &DOLON_TABLE_LIVE_TUPLES(&entry->stats);
		tuples->dead += *(volatile PgStat_Counter *) &DOLON_TABLE_DEAD_TUPLES(&entry->stats);
#else
		LWLockAcquire(&entry->header.lock, LW_SHARED);
		tuples->live += DOLON_TABLE_LIVE_TUPLES(&entry->stats);
		tuples->dead += DOLON_TABLE_DEAD_TUPLES(&entry->stats);
		LWLockRelease(&entry->header.lock);
#endif
	}
}

/*
 * Sum n_live_tup and n_dead_tup over pg_stat_user_tables.  Needs a
 * transaction in a database when dolon_builtin_needs_transaction() says
 * so for PROFILER_LIVE_MSGS.  A table without statistics counts as zero,
 * as in the view.
 */
void
dolon_read_table_tuples(DolonTableTuples *tuples)
{
	const Oid  *tables;
	int			count;
	int			i;

	tables = dolon_user_table_oids(&count);
	memset(tuples, 0, sizeof(DolonTableTuples));

	if (pgstat_fetch_consistency == PGSTAT_FETCH_CONSISTENCY_NONE &&
		(table_entries_valid() || find_table_entries(tables, count)))
	{
		table_entries_sum(tuples);
		return;
	}

	/* As pg_stat_user_tables reads them */
	for (i = 0; i < count; i++)
	{
		PgStat_StatTabEntry *entry;

		entry = pgstat_fetch_stat_tabentry_ext(false, tables[i]);
		if (entry == NULL)
			continue;
		tuples->live += DOLON_TABLE_LIVE_TUPLES(entry);
		tuples->dead += DOLON_TABLE_DEAD_TUPLES(entry);
		dolon_release_stats_entry(entry);
	}
}

/*
 * Does reading this built-in profiler need a transaction now?  Only to scan
 * the catalogs after a change, for the profilers that read the user tables
 * or the databases; the caller has processed the pending invalidations
 * (AcceptInvalidationMessages()) just before.
 */
bool
dolon_builtin_needs_transaction(DolonBuiltinProfiler id)
{
	switch (id)
	{
		case PROFILER_LIVE_MSGS:
		case PROFILER_DEAD_MSGS:
			return !callbacks_registered ||
				user_tables.version != table_catalog_changes;
		case PROFILER_XACT_COMMIT_RATE:
		case PROFILER_XACT_ROLLBACK_RATE:
		case PROFILER_DEADLOCKS:
			return !callbacks_registered ||
				databases.version != database_catalog_changes;
		default:
			return false;
	}
}

/*
 * Sum the transaction and deadlock counters over pg_stat_database: every
 * database, and the row for shared objects (datid 0).  Needs a transaction
 * after a change to pg_database.
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
