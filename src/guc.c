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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "dolon.h"

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
static char *dolon_profilers = NULL;
DolonProfilerList *dolon_profiler_list = NULL;

static bool check_host(char **newval, void **extra, GucSource source);
static bool check_tracer_name(char **newval, void **extra, GucSource source);
static bool check_database(char **newval, void **extra, GucSource source);
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
							   "The tracer sends its datagrams there over UDP.",
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
							10,
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

	/*
	 * A setting that takes a restart can only be defined while
	 * shared_preload_libraries is processed; loaded later, dolon runs no
	 * tracer and has no use for it.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("dolon.database",
								   "Database the tracer connects to.",
								   "Table statistics (live_msgs, dead_msgs) are read in this database.",
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
 * A host is a DNS name or an IPv4 or IPv6 address literal (with an optional
 * zone).  Only its form is checked; it is resolved by the worker.
 */
static bool
check_host(char **newval, void **extra, GucSource source)
{
	const char *host = *newval;
	const char *c;

	if (host == NULL || host[0] == '\0')
	{
		GUC_check_errdetail("The host of the mnemic backend must not be empty.");
		return false;
	}
	if (strlen(host) >= DOLON_MAX_HOST_BYTES)
	{
		GUC_check_errdetail("A host name has at most %d characters.",
							DOLON_MAX_HOST_BYTES - 1);
		return false;
	}
	for (c = host; *c != '\0'; c++)
	{
		if (!(isalnum((unsigned char) *c) || strchr(".-_:%", *c) != NULL))
		{
			GUC_check_errdetail("\"%s\" is not a valid host name or address.",
								host);
			if (*c == '[' || *c == ']')
				GUC_check_errhint("Write IPv6 addresses without brackets, as in ::1.");
			else
				GUC_check_errhint("A host is a DNS name or an IPv4 or IPv6 address.");
			return false;
		}
	}
	return true;
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
 * Parse the list of profilers into a DolonProfilerList, refusing unknown
 * names, duplicates (a run's column names are unique) and an empty list (a
 * run has at least one column).
 */
static bool
check_profilers(char **newval, void **extra, GucSource source)
{
	char	   *rawstring;
	List	   *names;
	ListCell   *lc;
	DolonProfilerList *list;
	bool		ok = true;

	rawstring = pstrdup(*newval);
	if (!SplitIdentifierString(rawstring, ',', &names))
	{
		GUC_check_errdetail("List syntax is invalid.");
		pfree(rawstring);
		list_free(names);
		return false;
	}
	if (names == NIL)
	{
		GUC_check_errdetail("At least one profiler is needed.");
		GUC_check_errhint("Valid profilers are: %s.", dolon_profiler_names());
		pfree(rawstring);
		return false;
	}

	list = malloc(offsetof(DolonProfilerList, ids) +
				  list_length(names) * sizeof(DolonProfilerId));
	if (list == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errdetail("Out of memory.");
		pfree(rawstring);
		list_free(names);
		return false;
	}
	list->count = 0;

	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);
		DolonProfilerId id;
		int			i;

		if (!dolon_profiler_lookup(name, &id))
		{
			GUC_check_errdetail("Unknown profiler \"%s\".", name);
			GUC_check_errhint("Valid profilers are: %s.", dolon_profiler_names());
			ok = false;
			break;
		}
		for (i = 0; i < list->count; i++)
		{
			if (list->ids[i] == id)
			{
				GUC_check_errdetail("Profiler \"%s\" is listed more than once.",
									name);
				ok = false;
				break;
			}
		}
		if (!ok)
			break;
		list->ids[list->count++] = id;
	}

	pfree(rawstring);
	list_free(names);

	if (!ok)
	{
		free(list);
		return false;
	}
	*extra = list;
	return true;
}

static void
assign_profilers(const char *newval, void *extra)
{
	dolon_profiler_list = (DolonProfilerList *) extra;
}
