/*-------------------------------------------------------------------------
 *
 * metrics_tables.c
 *		The tables of the databases of dolon.metrics_databases, for the
 *		per-table metrics (pg_stat_user_tables_*): the metrics worker's list
 *		of them, and the helpers that read the names of another database's
 *		tables for it.
 *
 * The statistics of every database's tables are in shared memory, which
 * the metrics worker reads without connecting anywhere (sampling.c); their
 * names are in each database's own catalogs, which only a process
 * connected to that database can read.  For each database other than its
 * own, the worker starts a helper, "dolon metrics tables", a background
 * worker that connects to it, reads the user tables' OIDs and names, and,
 * its transaction over, sends them in UTF-8 through a message queue in
 * dynamic shared memory and exits, as autoprewarm's per-database workers
 * do.  The worker reads the queue from its wait loop without waiting on
 * it, so a scrape never waits for a helper: it labels the statistics with
 * the names of the last complete list.  One helper runs at a time; a
 * database's list is read again NAMES_REFRESH_S after the last, and only
 * while scrapes come, so that an unscraped server starts none after the
 * first round.  A table created since the last list is thus missing from
 * the metrics until the next, and a dropped one stays in them, with zeros
 * once its statistics are gone, until the next.
 *
 * A helper runs nothing but catalog reads, as the bootstrap superuser; it
 * runs no user code.  Each scrape looks the databases up in pg_database: one
 * that does not exist or does not allow connections is logged by the
 * worker, rate-limited, and gets no helper while it stays so.  A helper
 * that fails all the same, or does not finish within HELPER_DEADLINE_S, is
 * logged too, and the database has no tables until a later helper lists
 * them.  What the worker does for helpers outside a transaction cannot end
 * it: an error there is logged and survived.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "guc.h"
#include "metrics_tables.h"
#include "sampling.h"
#include "throttle.h"
#include "utf8_text.h"

/* How often a database's list of tables is read again, while scraped */
#define NAMES_REFRESH_S 10

/* The longest a helper may take before it is stopped */
#define HELPER_DEADLINE_S 60

/* The message queue between a helper and the worker */
#define QUEUE_BYTES (64 * 1024)

/* The most messages the worker reads in one turn of its loop */
#define MESSAGES_PER_TURN 4096

/*
 * A helper's messages: one per table, its OID followed by its schema's and
 * its own name, each ending with a zero byte; then the end, an invalid OID
 * followed by the database's OID.
 */
typedef struct TableMessage
{
	Oid			relid;
	char		names[FLEXIBLE_ARRAY_MEMBER];
} TableMessage;

typedef struct EndMessage
{
	Oid			invalid;
	Oid			dboid;
} EndMessage;

/* The databases, as dolon.metrics_databases last listed them */
static DolonMetricsDatabase *databases;
static int	ndatabases;
static MemoryContext databases_context;
static char *configured;		/* the setting they come from */

/* Whether a helper can connect to a database, as the last scrape found */
typedef enum Availability
{
	AVAILABILITY_UNKNOWN,		/* not looked up yet: a helper is tried */
	AVAILABLE,
	MISSING,					/* no such database */
	CLOSED						/* it does not allow connections */
} Availability;

/* What the worker keeps of each database besides */
typedef struct DatabaseState
{
	TimestampTz listed;			/* its last list, 0 if none yet */
	MemoryContext tables_context;	/* its tables, a child of the above */
	Availability availability;
} DatabaseState;

static DatabaseState *states;

/* When a scrape last asked for the list */
static TimestampTz last_asked;

/* The helper under way, if any, and the list it is sending */
static struct
{
	int			database;		/* index in databases, -1 if none */
	TimestampTz started;
	dsm_segment *segment;
	shm_mq_handle *queue;
	BackgroundWorkerHandle *helper;
	MemoryContext helper_context;	/* the handles of both */
	MemoryContext context;		/* the list, while it comes */
	DolonTableName *tables;
	int			ntables;
	int			capacity;
} pending = {.database = -1};

static DolonLogThrottle helper_throttle;

/*
 * Log that the tables of a database could not be listed, at most once per
 * interval
 */
static void
log_helper_failure(const char *datname, const char *detail)
{
	int64		suppressed;

	if (!dolon_throttle_permits(&helper_throttle, &suppressed))
		return;
	ereport(WARNING,
			(errmsg("dolon metrics could not list the tables of database \"%s\"",
					datname),
			 errdetail("%s%s", detail,
					   suppressed > 0 ? psprintf(" %lld more such failures were not logged.",
												 (long long) suppressed) : ""),
			 errhint("dolon.metrics_databases should name databases that exist and allow connections; the server log has the helper's own message.")));
}

/*
 * Let go of the helper under way: its queue, its segment, its handles
 */
static void
release_helper(void)
{
	shm_mq_detach(pending.queue);
	dsm_detach(pending.segment);
	MemoryContextDelete(pending.helper_context);
}

/*
 * The list of databases from dolon.metrics_databases, when it changed: the
 * worker's own alone when it is empty.  Every other database's tables are
 * listed anew.
 */
static void
configure(void)
{
	MemoryContext old_databases_context = databases_context;
	MemoryContext old_context;
	char	   *copy;
	List	   *names;
	ListCell   *lc;
	int			i = 0;

	if (configured != NULL && strcmp(configured, dolon_metrics_databases) == 0)
		return;

	/* A change stops the helper under way: its index may be another's */
	if (pending.database >= 0)
	{
		TerminateBackgroundWorker(pending.helper);
		release_helper();
		MemoryContextDelete(pending.context);
		pending.database = -1;
	}

	databases_context = AllocSetContextCreate(TopMemoryContext,
											  "dolon metrics databases",
											  ALLOCSET_SMALL_SIZES);
	old_context = MemoryContextSwitchTo(databases_context);
	configured = pstrdup(dolon_metrics_databases);
	copy = pstrdup(dolon_metrics_databases);
	/* the check hook of the setting made sure that it parses */
	if (!SplitGUCList(copy, ',', &names))
		names = NIL;
	if (names == NIL)
		names = list_make1(dolon_database);
	ndatabases = list_length(names);
	databases = palloc0(ndatabases * sizeof(DolonMetricsDatabase));
	states = palloc0(ndatabases * sizeof(DatabaseState));
	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		bool		again = false;

		/* a database listed twice is reported once */
		for (int j = 0; j < i; j++)
			again |= strcmp(databases[j].datname, name) == 0;
		if (again)
			continue;
		databases[i].datname = pstrdup(name);
		databases[i].own = strcmp(name, dolon_database) == 0;
		i++;
	}
	ndatabases = i;
	MemoryContextSwitchTo(old_context);
	if (old_databases_context != NULL)
		MemoryContextDelete(old_databases_context);
}

/*
 * Start a helper listing the tables of a database; false if none could be
 * started (logged).
 */
static bool
start_helper(int database)
{
	BackgroundWorker worker;
	shm_mq	   *queue;
	MemoryContext old_context;

	pending.segment = dsm_create(shm_mq_minimum_size + QUEUE_BYTES,
								 DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (pending.segment == NULL)
	{
		log_helper_failure(databases[database].datname,
						   "No dynamic shared memory segment was left for its helper.");
		return false;
	}
	/* mapped until the helper is done, whatever the resource owner */
	dsm_pin_mapping(pending.segment);
	queue = shm_mq_create(dsm_segment_address(pending.segment),
						  shm_mq_minimum_size + QUEUE_BYTES);
	shm_mq_set_receiver(queue, MyProc);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strcpy(worker.bgw_library_name, "dolon");
	strcpy(worker.bgw_function_name, "dolon_metrics_tables_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "dolon metrics tables of %s",
			 databases[database].datname);
	strcpy(worker.bgw_type, "dolon metrics tables");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(pending.segment));
	strlcpy(worker.bgw_extra, databases[database].datname, BGW_EXTRALEN);
	worker.bgw_notify_pid = MyProcPid;

	pending.helper_context = AllocSetContextCreate(TopMemoryContext,
												   "dolon metrics tables helper",
												   ALLOCSET_SMALL_SIZES);
	old_context = MemoryContextSwitchTo(pending.helper_context);
	if (!RegisterDynamicBackgroundWorker(&worker, &pending.helper))
	{
		MemoryContextSwitchTo(old_context);
		dsm_detach(pending.segment);
		MemoryContextDelete(pending.helper_context);
		log_helper_failure(databases[database].datname,
						   "No background worker slot was free for its helper; max_worker_processes may be too low.");
		return false;
	}
	pending.queue = shm_mq_attach(queue, pending.segment, pending.helper);
	MemoryContextSwitchTo(old_context);

	pending.context = AllocSetContextCreate(TopMemoryContext,
											"dolon metrics tables",
											ALLOCSET_DEFAULT_SIZES);
	pending.capacity = 256;
	pending.tables = MemoryContextAlloc(pending.context,
										pending.capacity * sizeof(DolonTableName));
	pending.ntables = 0;
	pending.database = database;
	pending.started = GetCurrentTimestamp();
	return true;
}

/*
 * start_helper(), whose errors (no room for a segment, no memory) are
 * logged and survived: the worker runs outside a transaction here, where
 * an error would end it
 */
static bool
try_start_helper(int database)
{
	MemoryContext context = CurrentMemoryContext;
	bool		started = false;

	pending.segment = NULL;
	pending.helper_context = NULL;
	PG_TRY();
	{
		started = start_helper(database);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		if (pending.segment != NULL)
			dsm_detach(pending.segment);
		if (pending.helper_context != NULL)
			MemoryContextDelete(pending.helper_context);
		log_helper_failure(databases[database].datname, error->message);
		FreeErrorData(error);
	}
	PG_END_TRY();
	return started;
}

/*
 * Let the helper under way go, keeping the list it sent if it is whole
 */
static void
finish_helper(bool whole, Oid dboid)
{
	DolonMetricsDatabase *database = &databases[pending.database];
	DatabaseState *state = &states[pending.database];

	release_helper();
	if (state->tables_context != NULL)
		MemoryContextDelete(state->tables_context);
	state->tables_context = NULL;
	database->tables = NULL;
	database->ntables = 0;
	if (whole)
	{
		MemoryContextSetParent(pending.context, databases_context);
		state->tables_context = pending.context;
		database->dboid = dboid;
		database->tables = pending.tables;
		database->ntables = pending.ntables;
	}
	else
		MemoryContextDelete(pending.context);
	state->listed = GetCurrentTimestamp();
	pending.database = -1;
}

/*
 * Read what the helper under way sent, without waiting
 */
static void
read_helper(void)
{
	for (int n = 0; n < MESSAGES_PER_TURN; n++)
	{
		Size		nbytes;
		void	   *data;
		shm_mq_result result = shm_mq_receive(pending.queue, &nbytes, &data, true);
		const TableMessage *message = data;

		if (result == SHM_MQ_WOULD_BLOCK)
			break;
		if (result == SHM_MQ_DETACHED)
		{
			log_helper_failure(databases[pending.database].datname,
							   "Its helper ended before it listed them.");
			finish_helper(false, InvalidOid);
			return;
		}
		if (nbytes == sizeof(EndMessage) && message->relid == InvalidOid)
		{
			finish_helper(true, ((const EndMessage *) data)->dboid);
			return;
		}
		else
		{
			const char *schemaname = message->names;
			const char *relname;
			DolonTableName *table;

			/* two names, each ending within the message */
			if (nbytes < offsetof(TableMessage, names) + 2 ||
				((const char *) data)[nbytes - 1] != '\0' ||
				(relname = memchr(schemaname, '\0', nbytes - 1 - offsetof(TableMessage, names))) == NULL)
			{
				TerminateBackgroundWorker(pending.helper);
				log_helper_failure(databases[pending.database].datname,
								   "Its helper sent a malformed message.");
				finish_helper(false, InvalidOid);
				return;
			}
			relname++;

			if (pending.ntables == pending.capacity)
			{
				pending.capacity *= 2;
				pending.tables = repalloc(pending.tables,
										  pending.capacity * sizeof(DolonTableName));
			}
			table = &pending.tables[pending.ntables++];
			table->relid = message->relid;
			table->schemaname = MemoryContextStrdup(pending.context,
													dolon_valid_utf8(schemaname));
			table->relname = MemoryContextStrdup(pending.context,
												 dolon_valid_utf8(relname));
		}
	}

	if (TimestampDifferenceExceeds(pending.started, GetCurrentTimestamp(),
								   HELPER_DEADLINE_S * 1000))
	{
		TerminateBackgroundWorker(pending.helper);
		log_helper_failure(databases[pending.database].datname,
						   psprintf("Its helper did not list them within %d seconds.",
									HELPER_DEADLINE_S));
		finish_helper(false, InvalidOid);
	}
}

/*
 * The metrics worker's part, at each turn of its loop: follow a change of
 * dolon.metrics_databases after a reload, read what the helper under way
 * sent, and start the next helper that is due.
 */
void
dolon_metrics_tables_work(bool reloaded)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	if (reloaded || databases == NULL)
		configure();
	if (pending.database >= 0)
		read_helper();
	if (pending.database >= 0)
		return;

	for (i = 0; i < ndatabases; i++)
	{
		bool		due;

		if (databases[i].own)
			continue;
		/* first at once, then while scrapes come, every NAMES_REFRESH_S */
		due = states[i].listed == 0 ||
			(last_asked > states[i].listed &&
			 TimestampDifferenceExceeds(states[i].listed, now,
										NAMES_REFRESH_S * 1000));
		if (due && states[i].availability != MISSING &&
			states[i].availability != CLOSED)
		{
			if (!try_start_helper(i))
				states[i].listed = now; /* tried again in NAMES_REFRESH_S */
			return;
		}
	}
}

/*
 * Whether a helper can connect to a database, looked up in pg_database (a
 * shared catalog, which the worker reads where it is): a database that does
 * not exist or does not allow connections is logged, rate-limited, by the
 * worker, and no helper is started for it while it stays so
 */
static Availability
look_up(const DolonMetricsDatabase *database)
{
	Oid			dboid = get_database_oid(database->datname, true);
	HeapTuple	tuple;
	bool		allowed;

	if (!OidIsValid(dboid))
	{
		log_helper_failure(database->datname, "It does not exist.");
		return MISSING;
	}
	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	if (!HeapTupleIsValid(tuple))
		return MISSING;
	allowed = ((Form_pg_database) GETSTRUCT(tuple))->datallowconn;
	ReleaseSysCache(tuple);
	if (!allowed)
	{
		log_helper_failure(database->datname, "It does not allow connections.");
		return CLOSED;
	}
	return AVAILABLE;
}

/*
 * The databases of dolon.metrics_databases and the tables of those that
 * are not the worker's own, for a scrape, which their next lists follow.
 * Needs a transaction.  Valid until the next turn of the worker's loop.
 */
const DolonMetricsDatabase *
dolon_metrics_databases_list(int *count)
{
	if (databases == NULL)
		configure();
	last_asked = GetCurrentTimestamp();
	for (int i = 0; i < ndatabases; i++)
	{
		if (databases[i].own)
			continue;
		states[i].availability = look_up(&databases[i]);
		if (states[i].availability != AVAILABLE && i != pending.database &&
			states[i].tables_context != NULL)
		{
			/* its tables, if listed, are no longer there to report */
			MemoryContextDelete(states[i].tables_context);
			states[i].tables_context = NULL;
			databases[i].tables = NULL;
			databases[i].ntables = 0;
		}
	}
	*count = ndatabases;
	return databases;
}

/*
 * Send the worker a message, or exit if it is gone.  The worker is woken
 * when the queue fills enough, or at the last message (flush).
 */
static void
send_message(shm_mq_handle *queue, const void *data, Size nbytes, bool flush)
{
	if (shm_mq_send(queue, nbytes, data, false, flush) != SHM_MQ_SUCCESS)
		proc_exit(0);
}

/*
 * Entry point of a helper: list the user tables of the database named in
 * bgw_extra to the worker, through the queue of the segment of main_arg.
 * The names are read in a transaction and sent after it, in UTF-8, so that
 * a worker slow to read holds no snapshot in this database.
 */
void
dolon_metrics_tables_main(Datum main_arg)
{
	char		datname[BGW_EXTRALEN];
	dsm_segment *segment;
	shm_mq	   *queue;
	shm_mq_handle *handle;
	const Oid  *tables;
	int			count;
	StringInfo	messages;
	int			nmessages = 0;
	EndMessage	end;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	strlcpy(datname, MyBgworkerEntry->bgw_extra, sizeof(datname));
	segment = dsm_attach(DatumGetUInt32(main_arg));
	if (segment == NULL)
		proc_exit(0);			/* the worker gave up on this helper */
	queue = dsm_segment_address(segment);
	shm_mq_set_sender(queue, MyProc);
	handle = shm_mq_attach(queue, segment, NULL);

	BackgroundWorkerInitializeConnection(datname, NULL, 0);
	pgstat_report_appname("dolon metrics tables");

	StartTransactionCommand();
	tables = dolon_user_table_oids(&count);
	messages = MemoryContextAlloc(TopMemoryContext, Max(count, 1) * sizeof(StringInfoData));
	for (int i = 0; i < count; i++)
	{
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(tables[i]));
		Form_pg_class form;
		char	   *schemaname;

		if (!HeapTupleIsValid(tuple))
			continue;
		form = (Form_pg_class) GETSTRUCT(tuple);
		schemaname = get_namespace_name(form->relnamespace);
		if (schemaname != NULL)
		{
			MemoryContext old_context = MemoryContextSwitchTo(TopMemoryContext);
			StringInfo	message = &messages[nmessages++];
			const char *utf8_schemaname = dolon_utf8_text(schemaname);
			const char *utf8_relname = dolon_utf8_text(NameStr(form->relname));

			initStringInfo(message);
			appendBinaryStringInfo(message, (const char *) &tables[i], sizeof(Oid));
			appendBinaryStringInfo(message, utf8_schemaname, strlen(utf8_schemaname) + 1);
			appendBinaryStringInfo(message, utf8_relname, strlen(utf8_relname) + 1);
			MemoryContextSwitchTo(old_context);
		}
		ReleaseSysCache(tuple);
	}
	CommitTransactionCommand();

	for (int i = 0; i < nmessages; i++)
		send_message(handle, messages[i].data, messages[i].len, false);
	end.invalid = InvalidOid;
	end.dboid = MyDatabaseId;
	send_message(handle, &end, sizeof(end), true);
	proc_exit(0);
}
