/*-------------------------------------------------------------------------
 *
 * guc.c
 *		The dolon.* settings: their definitions and their validation.
 *
 * Every setting that a reload may change is validated by a check hook, so
 * that SET, ALTER SYSTEM and a reload of postgresql.conf refuse a bad value
 * with an error that says what is valid; on reload the server then keeps the
 * old value and logs why.  Check hooks run in every backend and in the
 * postmaster, so they only look at the text: the host name is resolved by
 * the tracer worker, never here.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "backends.h"
#include "compat.h"
#include "custom_profilers.h"
#include "dolon_common.h"
#include "guc.h"
#include "profilers.h"

/* Backend host name or address */
char	   *dolon_host = NULL;

/* Backend UDP port */
int			dolon_port = 12013;

/* Interval between two samples, in milliseconds */
int			dolon_frequency_ms = 1000;

/* app_name of the run; empty means cluster_name, else "postgres" */
char	   *dolon_tracer_name = NULL;

/* Database the tracer worker connects to */
char	   *dolon_database = NULL;

/* dolon.profilers, as text and parsed */
char	   *dolon_profilers = NULL;
DolonProfilerList *dolon_profiler_list = NULL;

/* Number of tracer slots, the configured tracer included */
int			dolon_max_tracers = 8;

/* Role that custom profilers run as */
char	   *dolon_profiler_role = NULL;

/* Statement timeout of a custom profiler, in milliseconds */
int			dolon_profiler_timeout_ms = 1000;

/* Number of functions that can be profiled at once */
int			dolon_max_profiled_functions = 100;

/* The collector: UDP port (0: off), addresses, retention in seconds */
int			dolon_collector_port = 0;
char	   *dolon_collector_listen_addresses = NULL;
int			dolon_collector_retention_s = 7 * 24 * 3600;
int			dolon_collector_max_columns = 1000;

/* The metrics endpoint: see metrics_server.c */
int			dolon_metrics_port = 0;
char	   *dolon_metrics_listen_addresses = NULL;
char	   *dolon_metrics_token = NULL;
char	   *dolon_metrics_databases = NULL;

static bool check_host(char **newval, void **extra, GucSource source);
static bool check_tracer_name(char **newval, void **extra, GucSource source);
static bool check_database(char **newval, void **extra, GucSource source);
static bool check_metrics_token(char **newval, void **extra, GucSource source);
static bool check_metrics_databases(char **newval, void **extra, GucSource source);
static bool check_profilers(char **newval, void **extra, GucSource source);
static void assign_profilers(const char *newval, void *extra);

/*
 * Define the dolon.* settings and reserve the prefix.
 */
void
dolon_define_settings(void)
{
	DefineCustomStringVariable("dolon.host",
							   "Host name or address of the mnemic backend.",
							   "The configured tracer sends its datagrams there over UDP; empty turns it off.",
							   &dolon_host,
							   "localhost",
							   PGC_SIGHUP,
							   0,
							   check_host,
							   NULL,
							   NULL);

	DefineCustomIntVariable("dolon.port",
							"UDP port of the mnemic backend.",
							NULL,
							&dolon_port,
							12013,
							1,
							65535,
							PGC_SIGHUP,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("dolon.frequency",
							"Interval between two samples of the tracer.",
							NULL,
							&dolon_frequency_ms,
							1000,
							DOLON_MIN_FREQUENCY_MS,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomStringVariable("dolon.tracer_name",
							   "Name of the trace run (its app_name).",
							   "Empty means cluster_name, or \"postgres\" if that is empty too.",
							   &dolon_tracer_name,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_tracer_name,
							   NULL,
							   NULL);

	DefineCustomStringVariable("dolon.profilers",
							   "Comma-separated list of the profilers the tracer samples, in column order.",
							   NULL,
							   &dolon_profilers,
							   "idle, count_db_connections, live_msgs",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   check_profilers,
							   assign_profilers,
							   NULL);

	DefineCustomStringVariable("dolon.profiler_role",
							   "Role that custom profilers run as.",
							   "Custom profilers do not run unless it names a role that is not a superuser.",
							   &dolon_profiler_role,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL,
							   NULL,
							   NULL);

	DefineCustomIntVariable("dolon.profiler_timeout",
							"Statement timeout of a custom profiler.",
							"A profiler that runs longer is cancelled; its value is null.",
							&dolon_profiler_timeout_ms,
							1000,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("dolon.collector_max_columns",
							"Most columns the collector takes in a run.",
							"An announcement or a row with more is refused, and counted.",
							&dolon_collector_max_columns,
							1000,
							1,
							100000,
							PGC_SIGHUP,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("dolon.collector_retention",
							"How long the collector keeps traces.",
							"Older rows, and runs left without rows, are deleted in the background.",
							&dolon_collector_retention_s,
							7 * 24 * 3600,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL,
							NULL,
							NULL);

	/*
	 * Settings that take a restart can only be defined while
	 * shared_preload_libraries is processed; loaded later, dolon runs no
	 * tracer, profiles nothing and has no use for them.
	 */
	if (!process_shared_preload_libraries_in_progress)
	{
		MarkGUCPrefixReserved("dolon");
		return;
	}

	DefineCustomIntVariable("dolon.max_tracers",
							"Maximum number of tracers, the configured one included.",
							NULL,
							&dolon_max_tracers,
							8,
							1,
							1000,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("dolon.max_profiled_functions",
							"Maximum number of functions profiled at once.",
							"Each possible backend has 48 bytes of counters per function in shared memory.",
							&dolon_max_profiled_functions,
							100,
							1,
							100000,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("dolon.collector_port",
							"UDP port the collector listens on; 0 turns it off.",
							NULL,
							&dolon_collector_port,
							0,
							0,
							65535,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomStringVariable("dolon.collector_listen_addresses",
							   "Addresses the collector listens on.",
							   "A comma-separated list of host names or IPv4 or IPv6 addresses; * means all.",
							   &dolon_collector_listen_addresses,
							   "127.0.0.1",
							   PGC_POSTMASTER,
							   GUC_LIST_INPUT,
							   NULL,
							   NULL,
							   NULL);

	DefineCustomIntVariable("dolon.metrics_port",
							"TCP port of the metrics endpoint; 0 turns it off.",
							"The endpoint serves GET /metrics in the Prometheus text format.",
							&dolon_metrics_port,
							0,
							0,
							65535,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomStringVariable("dolon.metrics_listen_addresses",
							   "Addresses the metrics endpoint listens on.",
							   "A comma-separated list of host names or IPv4 or IPv6 addresses; * means all.",
							   &dolon_metrics_listen_addresses,
							   "127.0.0.1",
							   PGC_POSTMASTER,
							   GUC_LIST_INPUT,
							   NULL,
							   NULL,
							   NULL);

	DefineCustomStringVariable("dolon.metrics_token",
							   "Bearer token a scraper must present to the metrics endpoint.",
							   "Empty: no token is asked for.  Set at server start only, so that no reload logs it.",
							   &dolon_metrics_token,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   check_metrics_token,
							   NULL,
							   NULL);

	DefineCustomStringVariable("dolon.metrics_databases",
							   "Databases whose tables the metrics endpoint reports.",
							   "A comma-separated list of database names; empty means dolon.database alone.",
							   &dolon_metrics_databases,
							   "",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   check_metrics_databases,
							   NULL,
							   NULL);

	DefineCustomStringVariable("dolon.database",
							   "Database the tracers connect to.",
							   "Table statistics and custom profilers are read there, and tracers started from SQL are recorded there.",
							   &dolon_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   check_database,
							   NULL,
							   NULL);

	MarkGUCPrefixReserved("dolon");
}

/*
 * The run name: dolon.tracer_name, else cluster_name, else "postgres".
 */
const char *
dolon_effective_tracer_name(void)
{
	if (dolon_tracer_name != NULL && dolon_tracer_name[0] != '\0')
		return dolon_tracer_name;
	if (cluster_name != NULL && cluster_name[0] != '\0')
		return cluster_name;
	return "postgres";
}

/*
 * Hand a failure to the check hook of a setting.  The message stays the
 * server's ("invalid value for parameter ..."), unless the failure is about
 * something else than the value's form.
 */
static void
check_failure(const DolonFailure *failure, bool with_message)
{
	if (with_message)
		GUC_check_errmsg("%s", failure->message);
	if (failure->detail)
		GUC_check_errdetail("%s", failure->detail);
	if (failure->hint)
		GUC_check_errhint("%s", failure->hint);
}

/*
 * dolon.host: an empty host turns the configured tracer off.
 */
static bool
check_host(char **newval, void **extra, GucSource source)
{
	DolonFailure failure;
	DolonBackend backend;

	if ((*newval)[0] == '\0' || dolon_parse_backend(*newval, &backend, &failure))
		return true;
	check_failure(&failure, false);
	return false;
}

/*
 * mnemic stores app_name in a varchar(128) and drops a longer announcement.
 */
static bool
check_tracer_name(char **newval, void **extra, GucSource source)
{
	const char *name = *newval;

	if (name != NULL &&
		pg_mbstrlen_with_len(name, strlen(name)) > DOLON_MAX_TRACER_NAME_CHARS)
	{
		GUC_check_errdetail("A tracer name has at most %d characters.",
							DOLON_MAX_TRACER_NAME_CHARS);
		return false;
	}
	return true;
}

static bool
check_database(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("The database of the tracer must not be empty.");
		return false;
	}
	return true;
}

/*
 * The token is compared over DOLON_MAX_TOKEN_BYTES, whatever its length
 * (metrics_request.c).  The message does not show the value.
 */
static bool
check_metrics_token(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && strlen(*newval) > DOLON_MAX_TOKEN_BYTES)
	{
		GUC_check_errdetail("A token has at most %d bytes.", DOLON_MAX_TOKEN_BYTES);
		return false;
	}
	return true;
}

/*
 * A list of database names, each at most as long as a name can be
 */
static bool
check_metrics_databases(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval);
	List	   *names;
	ListCell   *lc;
	bool		valid;

	valid = SplitGUCList(copy, ',', &names);
	if (!valid)
		GUC_check_errdetail("The list of databases is not a comma-separated list of names.");
	else if (list_length(names) > DOLON_MAX_METRICS_DATABASES)
	{
		GUC_check_errdetail("The metrics report the tables of at most %d databases.",
							DOLON_MAX_METRICS_DATABASES);
		valid = false;
	}
	else
		foreach(lc, names)
		{
			const char *name = lfirst(lc);

			if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
			{
				GUC_check_errdetail("\"%s\" is not a database name.", name);
				valid = false;
				break;
			}
		}
	list_free(names);
	pfree(copy);
	return valid;
}

/*
 * Parse the list of profilers into a DolonProfilerList.  When a superuser
 * sets the value in a transaction in dolon.database (ALTER SYSTEM there),
 * the functions of custom profilers are checked too; elsewhere, and at
 * reload, only the syntax can be, and the tracer reports a function it
 * cannot use at each sample.
 */
static bool
check_profilers(char **newval, void **extra, GucSource source)
{
	DolonProfilerList *list;
	DolonFailure failure;
	int			i;
	bool		valid = true;
	MemoryContext context;
	MemoryContext oldcontext;

	/* Parsed in a context of its own, then copied to memory the server frees */
	context = AllocSetContextCreate(CurrentMemoryContext,
									"dolon.profilers check",
									ALLOCSET_SMALL_SIZES);
	oldcontext = MemoryContextSwitchTo(context);
	if (!dolon_parse_profilers(*newval, &list, &failure))
	{
		check_failure(&failure, false);
		valid = false;
	}

	/*
	 * Only a superuser's session (ALTER SYSTEM takes one) looks the
	 * functions up: for anyone else the lookup could raise a permission
	 * error, in any query of a session the setting reaches, parallel
	 * workers included.
	 */
	if (valid && IsTransactionState() && !IsParallelWorker() && superuser() &&
		dolon_database != NULL &&
		MyDatabaseId == get_database_oid(dolon_database, true))
	{
		for (i = 0; i < list->count; i++)
		{
			Oid			function;
			Oid			result_type;

			if (list->items[i].builtin != PROFILER_CUSTOM)
				continue;
			if (!dolon_check_profiler_function(&list->items[i], &function,
											   &result_type, &failure))
			{
				check_failure(&failure, true);
				valid = false;
				break;
			}
		}
	}

	MemoryContextSwitchTo(oldcontext);
	if (valid)
	{
		Size		size = DolonProfilerListSize(list->count);

		*extra = dolon_alloc_setting_extra(size);
		if (*extra == NULL)
		{
			GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
			GUC_check_errmsg("out of memory");
			valid = false;
		}
		else
			memcpy(*extra, list, size);
	}
	MemoryContextDelete(context);
	return valid;
}

static void
assign_profilers(const char *newval, void *extra)
{
	dolon_profiler_list = (DolonProfilerList *) extra;
}
