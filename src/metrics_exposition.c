/*-------------------------------------------------------------------------
 *
 * metrics_exposition.c
 *		The metrics of the server, in the Prometheus text format (0.0.4) or
 *		OpenMetrics (1.0.0), as the metrics endpoint serves them.
 *
 * Every quantity that prometheus-postgres-exporter also reports has the
 * exporter's name, type and labels, so that its dashboards and alerts work
 * unchanged: pg_up, pg_settings_max_connections, pg_stat_activity_count and
 * pg_stat_activity_max_tx_duration per database and state (every database
 * of pg_database, every state the exporter lists, zeros included),
 * pg_stat_database_* per database (and the row of shared objects, datid 0),
 * pg_stat_user_tables_* per table of the database dolon connects to.  The
 * exporter also labels each series with the address it connected to
 * ("server"); an endpoint inside the server has none to give, and
 * Prometheus' own "instance" label tells the servers apart.
 *
 * The values are read as the built-in profilers read theirs (sampling.c):
 * the backend status entries in place, the cumulative statistics from
 * shared memory, no SQL.  pg_stat_database_* comes from every database's
 * entry without connecting to it.
 *
 * The exporter names most counters without the _total suffix that
 * OpenMetrics requires of a counter's samples.  Renaming them would break
 * the dashboards, so in OpenMetrics they are of type unknown, with the
 * same names; in the text format they are counters, as the exporter's.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "common/shortest_dec.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "collector.h"
#include "compat.h"
#include "function_profiling.h"
#include "guc.h"
#include "host.h"
#include "metrics_exposition.h"
#include "metrics_tables.h"
#include "sampling.h"
#include "tracers.h"
#include "utf8_text.h"

/* The exposition being written */
typedef struct Exposition
{
	StringInfo	out;
	DolonExpositionFormat format;
	StringInfoData labels;		/* the label set of the next sample */
} Exposition;

typedef enum MetricType
{
	GAUGE,
	COUNTER,					/* named as the exporter names it */
	COUNTER_TOTAL				/* a counter of dolon's own: samples named _total */
} MetricType;

/* A family of values, one per database, table, tracer or function */
typedef struct Family
{
	const char *name;
	MetricType	type;
	const char *help;
} Family;

/*
 * Start a family: its HELP and TYPE lines.  The family of a COUNTER_TOTAL
 * is named without _total in OpenMetrics, which adds it to the samples'
 * names, and with it in the text format, where the family and the samples
 * have the same name.
 */
static void
begin_family(Exposition *e, const char *name, MetricType type,
			 const char *help)
{
	const char *type_name;
	const char *suffix = "";

	if (type == GAUGE)
		type_name = "gauge";
	else if (type == COUNTER_TOTAL)
	{
		type_name = "counter";
		if (e->format == DOLON_FORMAT_PROMETHEUS)
			suffix = "_total";
	}
	else if (e->format == DOLON_FORMAT_OPENMETRICS)
		type_name = "unknown";	/* see the comment at the top */
	else
		type_name = "counter";
	appendStringInfo(e->out, "# HELP %s%s %s\n# TYPE %s%s %s\n",
					 name, suffix, help, name, suffix, type_name);
}

/*
 * Add a label to the label set of the next sample, its value in UTF-8
 * already, escaped as both formats require: backslash, double quote and
 * line feed.
 */
static void
add_utf8_label(Exposition *e, const char *name, const char *value)
{
	if (e->labels.len > 0)
		appendStringInfoChar(&e->labels, ',');
	appendStringInfoString(&e->labels, name);
	appendBinaryStringInfo(&e->labels, "=\"", 2);
	for (;;)
	{
		size_t		plain = strcspn(value, "\\\"\n");

		appendBinaryStringInfo(&e->labels, value, plain);
		value += plain;
		if (*value == '\0')
			break;
		appendBinaryStringInfo(&e->labels, *value == '\n' ? "\\n" :
							   *value == '"' ? "\\\"" : "\\\\", 2);
		value++;
	}
	appendStringInfoChar(&e->labels, '"');
}

/* The same for a value in the database's encoding, converted */
static void
add_label(Exposition *e, const char *name, const char *value)
{
	add_utf8_label(e, name, dolon_utf8_text(value));
}

/*
 * Take the label set added so far away, to be given again to many samples
 * with add_label_set(), escaped once
 */
static char *
take_label_set(Exposition *e)
{
	char	   *set = pnstrdup(e->labels.data, e->labels.len);

	resetStringInfo(&e->labels);
	return set;
}

static void
add_label_set(Exposition *e, const char *set)
{
	appendStringInfoString(&e->labels, set);
}

/* Write a sample with the labels added since the previous one */
static void
write_sample(Exposition *e, const char *name, double value)
{
	appendStringInfoString(e->out, name);
	if (e->labels.len > 0)
	{
		appendStringInfoChar(e->out, '{');
		appendBinaryStringInfo(e->out, e->labels.data, e->labels.len);
		appendStringInfoChar(e->out, '}');
		resetStringInfo(&e->labels);
	}
	appendStringInfoChar(e->out, ' ');
	if (isnan(value))
		appendStringInfoString(e->out, "NaN");
	else if (isinf(value))
		appendStringInfoString(e->out, value > 0 ? "+Inf" : "-Inf");
	else if (value == rint(value) && fabs(value) < 1e15)
	{
		char		digits[MAXINT8LEN + 1];
		int			length = pg_lltoa((int64) value, digits);

		appendBinaryStringInfo(e->out, digits, length);
	}
	else
	{
		char		digits[DOUBLE_SHORTEST_DECIMAL_LEN];

		/* the shortest text that reads back as the same value, as float8out */
		double_to_shortest_decimal_buf(value, digits);
		appendStringInfoString(e->out, digits);
	}
	appendStringInfoChar(e->out, '\n');
}

/*
 * Write families of rows: for each family, a sample per row, labelled with
 * that row's label set (escaped once: take_label_set()).  values holds the
 * nrows rows of nfamilies values each, in the order of families.
 */
static void
write_families(Exposition *e, const Family *families, int nfamilies,
			   char *const *labels, const double *values, int nrows)
{
	int			c;
	int			r;

	for (c = 0; c < nfamilies; c++)
	{
		const Family *family = &families[c];
		const char *sample = family->type == COUNTER_TOTAL ?
			psprintf("%s_total", family->name) : family->name;

		begin_family(e, family->name, family->type, family->help);
		for (r = 0; r < nrows; r++)
		{
			add_label_set(e, labels[r]);
			write_sample(e, sample, values[r * nfamilies + c]);
		}
	}
}

static const Family activity_families[] = {
	{"pg_stat_activity_count", GAUGE, "number of connections in this state"},
	{"pg_stat_activity_max_tx_duration", GAUGE, "max duration in seconds any active transaction has been running"},
};

/*
 * pg_stat_activity_count and pg_stat_activity_max_tx_duration: for every
 * database and state, the sessions and the age of the oldest transaction.
 */
static void
write_activity(Exposition *e, char **names, int count,
			   const DolonDatabaseSessions *sessions)
{
	TimestampTz now = GetCurrentTimestamp();
	int			nrows = count * DOLON_SESSION_STATES;
	char	  **labels = palloc(Max(nrows, 1) * sizeof(char *));
	double	   *values = palloc(Max(nrows, 1) * lengthof(activity_families) * sizeof(double));
	int			r = 0;
	int			d;
	int			s;

	for (d = 0; d < count; d++)
		for (s = 0; s < DOLON_SESSION_STATES; s++, r++)
		{
			TimestampTz start = sessions[d].oldest_xact_start[s];

			add_label(e, "datname", names[d]);
			add_label(e, "state", dolon_session_state_names[s]);
			labels[r] = take_label_set(e);
			values[r * 2] = sessions[d].count[s];
			values[r * 2 + 1] = start != 0 && start < now ?
				(double) (now - start) / USECS_PER_SEC : 0;
		}
	write_families(e, activity_families, lengthof(activity_families),
				   labels, values, nrows);
}

/* The columns of pg_stat_database that are written, in this order */
static const Family database_families[] = {
	{"pg_stat_database_numbackends", GAUGE, "Number of backends currently connected to this database."},
	{"pg_stat_database_xact_commit", COUNTER, "Number of transactions in this database that have been committed"},
	{"pg_stat_database_xact_rollback", COUNTER, "Number of transactions in this database that have been rolled back"},
	{"pg_stat_database_blks_read", COUNTER, "Number of disk blocks read in this database"},
	{"pg_stat_database_blks_hit", COUNTER, "Number of times disk blocks were found already in the buffer cache"},
	{"pg_stat_database_tup_returned", COUNTER, "Number of rows returned by queries in this database"},
	{"pg_stat_database_tup_fetched", COUNTER, "Number of rows fetched by queries in this database"},
	{"pg_stat_database_tup_inserted", COUNTER, "Number of rows inserted by queries in this database"},
	{"pg_stat_database_tup_updated", COUNTER, "Number of rows updated by queries in this database"},
	{"pg_stat_database_tup_deleted", COUNTER, "Number of rows deleted by queries in this database"},
	{"pg_stat_database_temp_files", COUNTER, "Number of temporary files created by queries in this database"},
	{"pg_stat_database_temp_bytes", COUNTER, "Total amount of data written to temporary files by queries in this database"},
	{"pg_stat_database_deadlocks", COUNTER, "Number of deadlocks detected in this database"},
};

#define DATABASE_COLUMNS lengthof(database_families)

/* The values of database_families for one database, in the same order */
static void
read_database_row(Oid database, int64 backends, double *row)
{
	PgStat_StatDBEntry *entry = pgstat_fetch_stat_dbentry(database);
	int			c = 0;

	memset(row, 0, DATABASE_COLUMNS * sizeof(double));
	row[c++] = backends;
	if (entry == NULL)
		return;					/* no statistics yet: zeros, as in the view */
	row[c++] = DOLON_DATABASE_COUNTER(entry, xact_commit);
	row[c++] = DOLON_DATABASE_COUNTER(entry, xact_rollback);
	row[c++] = DOLON_DATABASE_COUNTER(entry, blocks_fetched) -
		DOLON_DATABASE_COUNTER(entry, blocks_hit);
	row[c++] = DOLON_DATABASE_COUNTER(entry, blocks_hit);
	row[c++] = DOLON_DATABASE_COUNTER(entry, tuples_returned);
	row[c++] = DOLON_DATABASE_COUNTER(entry, tuples_fetched);
	row[c++] = DOLON_DATABASE_COUNTER(entry, tuples_inserted);
	row[c++] = DOLON_DATABASE_COUNTER(entry, tuples_updated);
	row[c++] = DOLON_DATABASE_COUNTER(entry, tuples_deleted);
	row[c++] = DOLON_DATABASE_COUNTER(entry, temp_files);
	row[c++] = DOLON_DATABASE_COUNTER(entry, temp_bytes);
	row[c++] = DOLON_DATABASE_COUNTER(entry, deadlocks);
	Assert(c == DATABASE_COLUMNS);
	dolon_release_stats_entry(entry);
}

/*
 * pg_stat_database_*: a row per database, and the row of the shared
 * objects (datid 0, datname empty), as the view has.
 */
static void
write_databases(Exposition *e, const Oid *databases, char **names, int count,
				const DolonDatabaseSessions *sessions)
{
	char	  **labels = palloc((count + 1) * sizeof(char *));
	double	   *rows = palloc((count + 1) * DATABASE_COLUMNS * sizeof(double));
	int			d;

	for (d = -1; d < count; d++)
	{
		char		datid[16];

		snprintf(datid, sizeof(datid), "%u", d < 0 ? InvalidOid : databases[d]);
		add_label(e, "datid", datid);
		add_label(e, "datname", d < 0 ? "" : names[d]);
		labels[d + 1] = take_label_set(e);
		read_database_row(d < 0 ? InvalidOid : databases[d],
						  d < 0 ? 0 : sessions[d].backends,
						  &rows[(d + 1) * DATABASE_COLUMNS]);
	}
	write_families(e, database_families, DATABASE_COLUMNS, labels, rows, count + 1);
}

/* The columns of pg_stat_user_tables that are written, in this order */
static const Family table_families[] = {
	{"pg_stat_user_tables_seq_scan", COUNTER, "Number of sequential scans initiated on this table"},
	{"pg_stat_user_tables_seq_tup_read", COUNTER, "Number of live rows fetched by sequential scans"},
	{"pg_stat_user_tables_n_tup_ins", COUNTER, "Number of rows inserted"},
	{"pg_stat_user_tables_n_tup_upd", COUNTER, "Number of rows updated"},
	{"pg_stat_user_tables_n_tup_del", COUNTER, "Number of rows deleted"},
	{"pg_stat_user_tables_n_tup_hot_upd", COUNTER, "Number of rows HOT updated (i.e., with no separate index update required)"},
	{"pg_stat_user_tables_n_live_tup", GAUGE, "Estimated number of live rows"},
	{"pg_stat_user_tables_n_dead_tup", GAUGE, "Estimated number of dead rows"},
	{"pg_stat_user_tables_n_mod_since_analyze", GAUGE, "Estimated number of rows changed since last analyze"},
	{"pg_stat_user_tables_vacuum_count", COUNTER, "Number of times this table has been manually vacuumed (not counting VACUUM FULL)"},
	{"pg_stat_user_tables_autovacuum_count", COUNTER, "Number of times this table has been vacuumed by the autovacuum daemon"},
	{"pg_stat_user_tables_analyze_count", COUNTER, "Number of times this table has been manually analyzed"},
	{"pg_stat_user_tables_autoanalyze_count", COUNTER, "Number of times this table has been analyzed by the autovacuum daemon"},
};

#define TABLE_COLUMNS lengthof(table_families)

/*
 * Read a table's statistics into row, the values of table_families; false
 * if it has none
 */
static bool
read_table_row(Oid database, Oid table, double *row)
{
	PgStat_StatTabEntry *entry = dolon_fetch_table_stats(database, table);
	int			c = 0;

	if (entry == NULL)
		return false;
	row[c++] = entry->numscans;
	row[c++] = entry->tuples_returned;
	row[c++] = entry->tuples_inserted;
	row[c++] = entry->tuples_updated;
	row[c++] = entry->tuples_deleted;
	row[c++] = entry->tuples_hot_updated;
	row[c++] = DOLON_TABLE_LIVE_TUPLES(entry);
	row[c++] = DOLON_TABLE_DEAD_TUPLES(entry);
	row[c++] = DOLON_TABLE_MOD_SINCE_ANALYZE(entry);
	row[c++] = entry->vacuum_count;
	row[c++] = DOLON_TABLE_AUTOVACUUM_COUNT(entry);
	row[c++] = entry->analyze_count;
	row[c++] = DOLON_TABLE_AUTOANALYZE_COUNT(entry);
	Assert(c == TABLE_COLUMNS);
	dolon_release_stats_entry(entry);
	return true;
}

/*
 * The tables of this database, named from its catalogs now.  Returns the
 * rows written, at most count.
 */
static int
read_own_tables(Exposition *e, const char *datname, const Oid *tables,
				int count, char **labels, double *rows)
{
	int			nrows = 0;

	for (int t = 0; t < count; t++)
	{
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(tables[t]));
		char	   *schemaname;

		if (!HeapTupleIsValid(tuple))
			continue;			/* gone since the list was made */
		schemaname = get_namespace_name(((Form_pg_class) GETSTRUCT(tuple))->relnamespace);
		if (schemaname != NULL)
		{
			if (!read_table_row(MyDatabaseId, tables[t], &rows[nrows * TABLE_COLUMNS]))
				memset(&rows[nrows * TABLE_COLUMNS], 0, TABLE_COLUMNS * sizeof(double));
			add_label(e, "datname", datname);
			add_label(e, "schemaname", schemaname);
			add_label(e, "relname", NameStr(((Form_pg_class) GETSTRUCT(tuple))->relname));
			labels[nrows++] = take_label_set(e);
		}
		ReleaseSysCache(tuple);
	}
	return nrows;
}

/*
 * pg_stat_user_tables_*: a row per user table of each database of
 * dolon.metrics_databases, zeros for one without statistics, as the view
 * has them.  This database's tables are named from its catalogs; another's
 * as its helper last listed them (metrics_tables.c), in UTF-8 already.
 */
static void
write_tables(Exposition *e)
{
	int			ndatabases;
	const DolonMetricsDatabase *databases = dolon_metrics_databases_list(&ndatabases);
	const Oid  *own_tables = NULL;
	int			own_count = 0;
	int			most = 0;
	int			nrows = 0;
	char	  **labels;
	double	   *rows;
	int			d;

	/* The list of this database's tables is read once: it may change */
	for (d = 0; d < ndatabases; d++)
	{
		if (databases[d].own)
		{
			own_tables = dolon_user_table_oids(&own_count);
			most += own_count;
		}
		else
			most += databases[d].ntables;
	}
	labels = palloc(Max(most, 1) * sizeof(char *));
	rows = palloc(Max(most, 1) * TABLE_COLUMNS * sizeof(double));
	for (d = 0; d < ndatabases; d++)
	{
		const DolonMetricsDatabase *database = &databases[d];
		char	   *datname;

		if (database->own)
		{
			/* NULL while this database is being dropped */
			if (get_database_name(MyDatabaseId) != NULL)
				nrows += read_own_tables(e, database->datname, own_tables,
										 own_count, &labels[nrows],
										 &rows[nrows * TABLE_COLUMNS]);
			continue;
		}
		/* the database its helper listed, unless dropped or renamed since */
		datname = OidIsValid(database->dboid) ? get_database_name(database->dboid) : NULL;
		if (datname == NULL || strcmp(datname, database->datname) != 0)
			continue;
		for (int t = 0; t < database->ntables; t++)
		{
			const DolonTableName *table = &database->tables[t];

			if (!read_table_row(database->dboid, table->relid,
								&rows[nrows * TABLE_COLUMNS]))
				memset(&rows[nrows * TABLE_COLUMNS], 0, TABLE_COLUMNS * sizeof(double));
			add_label(e, "datname", database->datname);
			add_utf8_label(e, "schemaname", table->schemaname);
			add_utf8_label(e, "relname", table->relname);
			labels[nrows++] = take_label_set(e);
		}
	}
	write_families(e, table_families, TABLE_COLUMNS, labels, rows, nrows);
}

/* The families of the tracers, in the order of read_tracer_row() */
static const Family tracer_families[] = {
	{"dolon_tracer_running", GAUGE, "Whether the tracer's worker runs (1) or is starting again (0)."},
	{"dolon_tracer_samples", COUNTER_TOTAL, "Samples taken by the tracer since its worker started."},
	{"dolon_tracer_rows_sent", COUNTER_TOTAL, "Rows the tracer sent since its worker started."},
	{"dolon_tracer_send_errors", COUNTER_TOTAL, "Rows the tracer could not send since its worker started."},
	{"dolon_tracer_profiler_errors", COUNTER_TOTAL, "Custom profiler calls that failed since the tracer's worker started."},
	{"dolon_tracer_last_sample_seconds", GAUGE, "Time the tracer's last sample took."},
};

#define TRACER_COLUMNS lengthof(tracer_families)

/* The values of tracer_families for a tracer, in the same order */
static void
read_tracer_row(const DolonTracerStatus *status, double *row)
{
	int			c = 0;

	row[c++] = status->pid != 0;
	row[c++] = status->samples;
	row[c++] = status->rows_sent;
	row[c++] = status->send_errors;
	row[c++] = status->profiler_errors;
	row[c++] = status->last_sample_us / 1e6;
	Assert(c == TRACER_COLUMNS);
}

/*
 * dolon_tracer_*: the health of every tracer, as dolon.tracers shows it.
 */
static void
write_tracers(Exposition *e)
{
	int			ntracers = 0;
	char	  **labels = palloc(dolon_shared->max_tracers * sizeof(char *));
	double	   *rows = palloc(dolon_shared->max_tracers * TRACER_COLUMNS * sizeof(double));
	int			t;

	for (t = 0; t < dolon_shared->max_tracers; t++)
	{
		char		name[DOLON_MAX_TRACER_NAME_BYTES];
		char		profilers[DOLON_MAX_PROFILERS_BYTES];
		DolonTracerStatus status;

		if (!dolon_read_tracer(t, name, profilers, &status))
			continue;
		add_label(e, "tracer", name);
		labels[ntracers] = take_label_set(e);
		read_tracer_row(&status, &rows[ntracers * TRACER_COLUMNS]);
		ntracers++;
	}
	write_families(e, tracer_families, TRACER_COLUMNS, labels, rows, ntracers);
}

static const Family tracer_value_family[] = {
	{"dolon_tracer_value", GAUGE, "The last value the tracer sampled in a column: built-in profilers, custom profilers and profiled functions."},
};

/*
 * dolon_tracer_value: the last row of every running tracer, a sample per
 * column that has a value (a null is left out), labelled with the tracer
 * and the column.  Shared memory keeps the first DOLON_MAX_LATEST_COLUMNS
 * columns of a run.
 */
static void
write_tracer_values(Exposition *e)
{
	int			most = dolon_shared->max_tracers * DOLON_MAX_LATEST_COLUMNS;
	char	  **labels = palloc(most * sizeof(char *));
	double	   *rows = palloc(most * sizeof(double));
	DolonTracerLatest *latest = palloc(sizeof(DolonTracerLatest));
	int			nrows = 0;
	int			t;

	for (t = 0; t < dolon_shared->max_tracers; t++)
	{
		char		name[DOLON_MAX_TRACER_NAME_BYTES];
		char		profilers[DOLON_MAX_PROFILERS_BYTES];
		DolonTracerStatus status;
		int			c;

		if (!dolon_read_tracer(t, name, profilers, &status) ||
			!dolon_read_tracer_latest(t, &status, latest))
			continue;
		for (c = 0; c < latest->columns; c++)
		{
			if (latest->nulls[c])
				continue;
			add_label(e, "tracer", name);
			add_label(e, "column", latest->names[c]);
			labels[nrows] = take_label_set(e);
			rows[nrows++] = latest->values[c];
		}
	}
	write_families(e, tracer_value_family, 1, labels, rows, nrows);
}

static const Family collector_families[] = {
	{"dolon_collector_running", GAUGE, "Whether the collector's worker runs (1) or is starting again (0)."},
	{"dolon_collector_received", COUNTER_TOTAL, "Datagrams the collector received."},
	{"dolon_collector_stored_runs", COUNTER_TOTAL, "Runs the collector stored."},
	{"dolon_collector_stored_rows", COUNTER_TOTAL, "Rows the collector stored."},
	{"dolon_collector_malformed", COUNTER_TOTAL, "Datagrams the collector could not read."},
	{"dolon_collector_refused", COUNTER_TOTAL, "Runs or rows the collector refused for having too many columns."},
	{"dolon_collector_dropped", COUNTER_TOTAL, "Datagrams lost before the collector could store them."},
};

/*
 * dolon_collector_*: the counters of the collector, as dolon.collector shows
 * them, when it runs: one row, with no labels.
 */
static void
write_collector(Exposition *e)
{
	DolonCollectorStatus status;
	char	   *no_labels = "";
	double		row[lengthof(collector_families)];
	int			c = 0;

	if (dolon_collector_port == 0)
		return;
	dolon_read_collector_status(&status);
	row[c++] = status.pid != 0;
	row[c++] = status.received;
	row[c++] = status.stored_runs;
	row[c++] = status.stored_rows;
	row[c++] = status.malformed;
	row[c++] = status.refused;
	row[c++] = status.dropped;
	Assert(c == lengthof(collector_families));
	write_families(e, collector_families, lengthof(collector_families),
				   &no_labels, row, 1);
}

/* The families of the profiled functions, in the order write_functions() fills them */
static const Family function_families[] = {
	{"dolon_function_calls", COUNTER_TOTAL, "Calls of the profiled function started."},
	{"dolon_function_completed_calls", COUNTER_TOTAL, "Calls of the profiled function ended, by a return or an error."},
	{"dolon_function_seconds", COUNTER_TOTAL, "Time spent in the ended calls of the profiled function, estimated from one call in 32 on average for calls under a microsecond."},
	{"dolon_function_active_instances", GAUGE, "Calls of the profiled function in progress."},
};

#define FUNCTION_COLUMNS lengthof(function_families)

/*
 * dolon_function_*: the counters of the profiled functions, labelled with
 * their database, signature and OID (the signature alone may be the same
 * for functions of two schemas).  Averages are for the query to compute:
 * seconds over completed calls.  The functions of a database gone since
 * are left out.
 */
static void
write_functions(Exposition *e)
{
	DolonFunctionCounters *functions;
	char	  **labels;
	double	   *rows;
	int			count;
	int			nrows = 0;
	int			f;

	functions = dolon_read_function_counters(&count);
	labels = palloc(Max(count, 1) * sizeof(char *));
	rows = palloc(Max(count, 1) * FUNCTION_COLUMNS * sizeof(double));
	for (f = 0; f < count; f++)
	{
		const DolonFunctionCounters *function = &functions[f];
		char	   *datname = get_database_name(function->database);
		double	   *row = &rows[nrows * FUNCTION_COLUMNS];
		char		funcid[16];

		if (datname == NULL)
			continue;
		snprintf(funcid, sizeof(funcid), "%u", function->function);
		add_label(e, "datname", datname);
		add_label(e, "function", function->signature);
		add_label(e, "funcid", funcid);
		labels[nrows++] = take_label_set(e);
		row[0] = function->hits;
		row[1] = function->completed;
		row[2] = function->timed_ns / 1e9;
		row[3] = function->active;
	}
	write_families(e, function_families, FUNCTION_COLUMNS, labels, rows, nrows);
}

/*
 * dolon_host_virtual_memory_percent: the host's memory in use, as the host
 * profiler reads it from /proc.  (The host's CPU, a change between two
 * readings, is left out: what came between two scrapes of any client would
 * not be a measure; nor is the memory of the server's processes, which costs
 * a file of /proc per process, milliseconds at a hundred sessions.)
 */
static void
write_host(Exposition *e)
{
	double		value;

	if (dolon_read_virtual_memory_percent(&value))
	{
		begin_family(e, "dolon_host_virtual_memory_percent", GAUGE,
					 "Memory of the host in use, in percent.");
		write_sample(e, "dolon_host_virtual_memory_percent", value);
	}
}

/*
 * Write the metrics to out, in format.  Needs a transaction in the database
 * whose tables are reported.
 */
void
dolon_write_metrics(StringInfo out, DolonExpositionFormat format)
{
	Exposition	e;
	const Oid  *listed;
	Oid		   *databases;
	char	  **names;
	DolonDatabaseSessions *sessions;
	int			listed_count;
	int			count;
	int			d;

	e.out = out;
	e.format = format;
	initStringInfo(&e.labels);

	begin_family(&e, "pg_up", GAUGE,
				 "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).");
	write_sample(&e, "pg_up", 1);

	begin_family(&e, "pg_settings_max_connections", GAUGE,
				 "Sets the maximum number of concurrent connections.");
	write_sample(&e, "pg_settings_max_connections", MaxConnections);

	/*
	 * The list is the cache's: copy it, as the names are looked up, leaving
	 * out the databases gone since it was made
	 */
	listed = dolon_database_oids(&listed_count);
	databases = palloc(Max(listed_count, 1) * sizeof(Oid));
	memcpy(databases, listed, listed_count * sizeof(Oid));
	names = palloc(Max(listed_count, 1) * sizeof(char *));
	count = 0;
	for (d = 0; d < listed_count; d++)
	{
		names[count] = get_database_name(databases[d]);
		if (names[count] != NULL)
			databases[count++] = databases[d];
	}
	sessions = palloc(Max(count, 1) * sizeof(DolonDatabaseSessions));
	dolon_read_database_sessions(databases, count, sessions);

	write_activity(&e, names, count, sessions);
	write_databases(&e, databases, names, count, sessions);
	write_tables(&e);
	write_tracers(&e);
	write_tracer_values(&e);
	write_collector(&e);
	write_functions(&e);
	write_host(&e);

	if (format == DOLON_FORMAT_OPENMETRICS)
		appendStringInfoString(out, "# EOF\n");
}
