/*-------------------------------------------------------------------------
 *
 * sampling.c
 *		The built-in profilers: what each one measures and where it reads it.
 *
 * Every value is read in-process from shared memory, never by running SQL.
 * There are two sources:
 *
 * Backend status entries.  Each server process advertises its pid and state
 * in an entry of the shared "Backend Status Array", which is what
 * pg_stat_activity and pg_stat_database.numbackends show.  The statistics
 * views copy every entry, with its query text, into a local snapshot; we only
 * need two integers per entry, so we read the array in place.  An entry is
 * written under the st_changecount protocol: the writer makes the count odd,
 * changes the fields and makes it even again, with barriers in between.  A
 * reader that sees the same even count before and after reading the fields
 * has read a consistent pair; otherwise it reads again.  Reading never
 * blocks a writer.
 *
 * Cumulative table statistics.  n_live_tup and n_dead_tup of
 * pg_stat_user_tables come from the shared statistics entry of each table.
 * Finding the user tables takes a scan of pg_class, so we keep their OIDs
 * between samples and scan again only after an invalidation of pg_class or
 * pg_namespace; a sample then costs one statistics lookup per table.  The
 * statistics are read in the caller's transaction, whose end discards any
 * snapshot of them (stats_fetch_consistency), so that every sample of the
 * worker, one transaction each, sees fresh values.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/shmem.h"
#include "utils/backend_status.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "dolon.h"

/*
 * How a built-in profiler computes its value from a sample.  Returns false
 * when the value is unknown (sent as null).
 */
typedef bool (*ProfilerCompute) (DolonSample *sample, double *value);

typedef struct BuiltinProfiler
{
	const char *name;
	ProfilerCompute compute;
} BuiltinProfiler;

static bool compute_idle(DolonSample *sample, double *value);
static bool compute_count_db_connections(DolonSample *sample, double *value);
static bool compute_active_tasks(DolonSample *sample, double *value);
static bool compute_live_msgs(DolonSample *sample, double *value);
static bool compute_dead_msgs(DolonSample *sample, double *value);

/* Indexed by DolonProfilerId */
static const BuiltinProfiler builtin_profilers[NUM_BUILTIN_PROFILERS] = {
	[PROFILER_IDLE] = {"idle", compute_idle},
	[PROFILER_COUNT_DB_CONNECTIONS] = {"count_db_connections", compute_count_db_connections},
	[PROFILER_ACTIVE_TASKS] = {"active_tasks", compute_active_tasks},
	[PROFILER_LIVE_MSGS] = {"live_msgs", compute_live_msgs},
	[PROFILER_DEAD_MSGS] = {"dead_msgs", compute_dead_msgs},
};

/* The backend status entries in shared memory, once looked up */
static PgBackendStatus *backend_status_array = NULL;

/*
 * OIDs of the tables that pg_stat_user_tables shows in this database, valid
 * until the next invalidation of pg_class or pg_namespace.
 */
static Oid *user_tables = NULL;
static int	user_table_count = 0;

/*
 * The set is valid while user_tables_version equals catalog_changes, which
 * the invalidation callback increments.
 */
static uint64 catalog_changes = 1;
static uint64 user_tables_version = 0;
static bool user_tables_callback_registered = false;

const char *
dolon_profiler_name(DolonProfilerId id)
{
	Assert(id >= 0 && id < NUM_BUILTIN_PROFILERS);
	return builtin_profilers[id].name;
}

bool
dolon_profiler_lookup(const char *name, DolonProfilerId *id)
{
	int			i;

	for (i = 0; i < NUM_BUILTIN_PROFILERS; i++)
	{
		if (strcmp(name, builtin_profilers[i].name) == 0)
		{
			*id = (DolonProfilerId) i;
			return true;
		}
	}
	return false;
}

/*
 * The names of all profilers, comma-separated, for error hints.
 */
char *
dolon_profiler_names(void)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < NUM_BUILTIN_PROFILERS; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
						 builtin_profilers[i].name);
	return buf.data;
}

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

		size = mul_size(sizeof(PgBackendStatus), MaxBackends + NUM_AUXPROCTYPES);
		array = ShmemInitStruct("Backend Status Array", size, &found);
		if (!found)
			elog(ERROR, "backend status array not found in shared memory");
		backend_status_array = array;
	}
	return backend_status_array;
}

/*
 * Count the processes connected to a database, and the idle and active
 * sessions.
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
	int			slots = MaxBackends + NUM_AUXPROCTYPES;
	int			i;

	memset(activity, 0, sizeof(DolonBackendActivity));

	for (i = 0; i < slots; i++, entry++)
	{
		int			pid;
		Oid			database;
		BackendState state;

		for (;;)
		{
			int			before_changecount;
			int			after_changecount;

			pgstat_begin_read_activity(entry, before_changecount);
			pid = entry->st_procpid;
			database = entry->st_databaseid;
			state = entry->st_state;
			pgstat_end_read_activity(entry, after_changecount);

			if (pgstat_read_activity_complete(before_changecount,
											  after_changecount))
				break;

			/* Make sure we can break out of the loop if stuck... */
			CHECK_FOR_INTERRUPTS();
		}

		if (pid <= 0)
			continue;
		if (OidIsValid(database))
			activity->connections++;
		if (state == STATE_IDLE)
			activity->idle++;
		else if (state == STATE_RUNNING)
			activity->active++;
	}
}

/*
 * Syscache callback: any change to pg_class or pg_namespace may change the
 * set of user tables.
 */
static void
invalidate_user_tables(Datum arg, int cacheid, uint32 hashvalue)
{
	catalog_changes++;
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
 * Collect the OIDs of the tables of pg_stat_user_tables: relations of kind
 * r, t, m or p in a user namespace.
 */
static void
refresh_user_tables(void)
{
	Relation	pg_class;
	SysScanDesc scan;
	HeapTuple	tuple;
	uint64		scanned_version = catalog_changes;
	int			capacity = 64;
	int			count = 0;
	Oid		   *oids;
	Oid			last_namespace = InvalidOid;
	bool		last_namespace_is_user = false;

	if (!user_tables_callback_registered)
	{
		CacheRegisterSyscacheCallback(RELOID, invalidate_user_tables, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_user_tables, (Datum) 0);
		user_tables_callback_registered = true;
	}

	oids = palloc(capacity * sizeof(Oid));
	pg_class = table_open(RelationRelationId, AccessShareLock);
	scan = systable_beginscan(pg_class, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_class form = (Form_pg_class) GETSTRUCT(tuple);

		if (form->relkind != RELKIND_RELATION &&
			form->relkind != RELKIND_TOASTVALUE &&
			form->relkind != RELKIND_MATVIEW &&
			form->relkind != RELKIND_PARTITIONED_TABLE)
			continue;

		/* Tables of one namespace tend to come together: remember the last */
		if (form->relnamespace != last_namespace)
		{
			last_namespace = form->relnamespace;
			last_namespace_is_user = is_user_namespace(last_namespace);
		}
		if (!last_namespace_is_user)
			continue;

		if (count == capacity)
		{
			capacity *= 2;
			oids = repalloc(oids, capacity * sizeof(Oid));
		}
		oids[count++] = form->oid;
	}
	systable_endscan(scan);
	table_close(pg_class, AccessShareLock);

	/* Keep the set; an error above leaves the previous one, still invalid */
	if (user_tables != NULL)
		pfree(user_tables);
	user_tables = MemoryContextAlloc(TopMemoryContext,
									 Max(count, 1) * sizeof(Oid));
	memcpy(user_tables, oids, count * sizeof(Oid));
	user_table_count = count;
	pfree(oids);

	/*
	 * An invalidation that arrived during the scan (taking the lock on
	 * pg_class processes them) leaves the set invalid, for another scan.
	 */
	user_tables_version = scanned_version;
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

	Assert(IsTransactionState());
	Assert(OidIsValid(MyDatabaseId));

	if (user_tables_version != catalog_changes)
		refresh_user_tables();

	memset(tuples, 0, sizeof(DolonTableTuples));
	for (i = 0; i < user_table_count; i++)
	{
		PgStat_StatTabEntry *entry;

		/* User tables are never shared relations */
		entry = pgstat_fetch_stat_tabentry_ext(false, user_tables[i]);
		if (entry == NULL)
			continue;
		tuples->live += entry->n_live_tuples;
		tuples->dead += entry->n_dead_tuples;
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

static bool
compute_idle(DolonSample *sample, double *value)
{
	*value = sample_backend_activity(sample)->idle;
	return true;
}

static bool
compute_count_db_connections(DolonSample *sample, double *value)
{
	*value = sample_backend_activity(sample)->connections;
	return true;
}

static bool
compute_active_tasks(DolonSample *sample, double *value)
{
	*value = sample_backend_activity(sample)->active;
	return true;
}

static bool
compute_live_msgs(DolonSample *sample, double *value)
{
	*value = sample_table_tuples(sample)->live;
	return true;
}

static bool
compute_dead_msgs(DolonSample *sample, double *value)
{
	*value = sample_table_tuples(sample)->dead;
	return true;
}

/*
 * Compute one row: the value of each profiler of the list, in order.
 */
void
dolon_sample_row(DolonSample *sample, const DolonProfilerList *profilers,
				 double *values, bool *nulls)
{
	int			i;

	for (i = 0; i < profilers->count; i++)
	{
		const BuiltinProfiler *profiler = &builtin_profilers[profilers->ids[i]];

		nulls[i] = !profiler->compute(sample, &values[i]);
	}
}
