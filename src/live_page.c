/*-------------------------------------------------------------------------
 *
 * live_page.c
 *		The live page of the metrics endpoint: its files, the state of the
 *		server it shows as JSON (the tracers with their last values, the
 *		collector and its latest runs), and the charts of those runs.
 *
 * The page is three static files (an HTML document, its style sheet and
 * its script) installed beside the extension's scripts and read once, when
 * the worker starts; they load nothing from elsewhere, so the page works
 * offline.  The script asks for status.json and for the chart of each run
 * it shows every few seconds, and builds the page from them.
 *
 * status.json is read as the metrics are: the tracers' slots in shared
 * memory, the collector's counters; the runs come from the collector's
 * store with fixed queries.  A chart is the SVG document of dolon.plot()
 * (render.c) over the run's last PAGE_CHART_WINDOW_S seconds, and at most
 * its last PAGE_CHART_MAX_ROWS rows: the cost of a look is bounded,
 * whatever the run's length and whoever sent its rows.  Nothing a
 * client sends becomes SQL: a run's uuid, parsed from the path, is a
 * parameter.  Names and texts are served in UTF-8, as JSON requires.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "backends.h"
#include "collector.h"
#include "guc.h"
#include "live_page.h"
#include "render.h"
#include "tracers.h"
#include "utf8_text.h"

/* The largest file of the page that is read */
#define PAGE_FILE_MAX_BYTES (256 * 1024)

/* The runs of the collector the page shows: the latest started */
#define PAGE_RUNS 4

/* The time a chart of the page spans, up to the run's last row */
#define PAGE_CHART_WINDOW_S 300

/*
 * The most rows a chart reads: those of a tracer at 10 ms over the window.
 * Anyone may send rows to the collector, as many as it stores; a chart of
 * a run flooded with them starts later than the window, at its last
 * PAGE_CHART_MAX_ROWS rows, so that a look costs the worker tens of
 * milliseconds at most.
 */
#define PAGE_CHART_MAX_ROWS 30000

/* The width of its charts, narrow enough for a phone's screen */
#define PAGE_CHART_WIDTH 420

/*
 * Read a file of the page, by its name in the extension's directory, into
 * the current memory context.  A file that cannot be read is logged, and
 * NULL returned: the page is then not served, the metrics are.
 */
char *
dolon_read_page_file(const char *name, size_t *length)
{
	char		share_path[MAXPGPATH];
	char		path[MAXPGPATH];
	struct stat st;
	FILE	   *file;
	char	   *data;

	get_share_path(my_exec_path, share_path);
	snprintf(path, sizeof(path), "%s/extension/%s", share_path, name);
	file = AllocateFile(path, PG_BINARY_R);
	if (file == NULL)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("dolon metrics could not open the file \"%s\" of its live page: %m",
						path),
				 errhint("Install dolon again; the metrics are served without the page.")));
		return NULL;
	}
	if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode) ||
		st.st_size > PAGE_FILE_MAX_BYTES)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the file \"%s\" of dolon's live page is not a file of at most %d kB",
						path, PAGE_FILE_MAX_BYTES / 1024),
				 errhint("Install dolon again; the metrics are served without the page.")));
		FreeFile(file);
		return NULL;
	}
	data = palloc(st.st_size + 1);
	*length = fread(data, 1, st.st_size, file);
	data[*length] = '\0';
	FreeFile(file);
	return data;
}

/* A JSON string of a name or text: in UTF-8, escaped */
static void
append_json_text(StringInfo out, const char *text)
{
	escape_json(out, dolon_utf8_text(text));
}

/* A JSON number, null for NaN and the infinities, which JSON lacks */
static void
append_json_number(StringInfo out, double value)
{
	char		buffer[DOUBLE_SHORTEST_DECIMAL_LEN];

	if (isnan(value) || isinf(value))
		appendStringInfoString(out, "null");
	else
	{
		double_to_shortest_decimal_buf(value, buffer);
		appendStringInfoString(out, buffer);
	}
}

/* A time as milliseconds since 1970, as JavaScript's Date takes it */
static void
append_json_time(StringInfo out, TimestampTz time)
{
	appendStringInfo(out, INT64_FORMAT,
					 time / 1000 + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
					 SECS_PER_DAY * 1000);
}

/* A uuid as text */
static void
append_json_uuid(StringInfo out, const pg_uuid_t *uuid)
{
	char	   *text = DatumGetCString(DirectFunctionCall1(uuid_out,
														  UUIDPGetDatum(uuid)));

	appendStringInfo(out, "\"%s\"", text);
	pfree(text);
}

/*
 * The tracers, as dolon.tracers shows them, each with the values of its
 * last sample
 */
static void
append_tracers_json(StringInfo out)
{
	DolonTracerLatest *latest = palloc(sizeof(DolonTracerLatest));
	bool		first = true;
	int			t;

	appendStringInfoString(out, "\"tracers\":[");
	for (t = 0; t < dolon_shared->max_tracers; t++)
	{
		char		name[DOLON_MAX_TRACER_NAME_BYTES];
		char		profilers[DOLON_MAX_PROFILERS_BYTES];
		DolonTracerStatus status;
		bool		sampled;
		int			c;

		if (!dolon_read_tracer(t, name, profilers, &status))
			continue;
		sampled = dolon_read_tracer_latest(t, &status, latest);

		appendStringInfoString(out, first ? "{\"name\":" : ",{\"name\":");
		first = false;
		append_json_text(out, name);
		appendStringInfo(out, ",\"configured\":%s,\"running\":%s,\"protocol\":\"%s\",\"host\":",
						 t == CONFIGURED_TRACER_SLOT ? "true" : "false",
						 status.pid != 0 ? "true" : "false",
						 dolon_protocol_name(status.protocol));
		append_json_text(out, status.host);
		appendStringInfo(out, ",\"port\":%d,\"frequency_ms\":%d,\"profilers\":",
						 status.port, status.frequency_ms);
		append_json_text(out, profilers);
		appendStringInfo(out, ",\"samples\":" INT64_FORMAT ",\"rows_sent\":" INT64_FORMAT
						 ",\"send_errors\":" INT64_FORMAT ",\"profiler_errors\":" INT64_FORMAT
						 ",\"mean_sample_us\":",
						 status.samples, status.rows_sent, status.send_errors,
						 status.profiler_errors);
		append_json_number(out, status.samples > 0 ?
						   status.total_sample_us / status.samples : NAN);
		appendStringInfoString(out, ",\"last_error\":");
		if (status.last_error.message[0] != '\0')
			append_json_text(out, status.last_error.message);
		else
			appendStringInfoString(out, "null");
		appendStringInfoString(out, ",\"run\":");
		if (status.has_run)
			append_json_uuid(out, &status.run_uuid);
		else
			appendStringInfoString(out, "null");
		appendStringInfo(out, ",\"columns\":%d,\"sampled\":",
						 status.has_run ? status.columns : 0);
		if (sampled)
			append_json_time(out, latest->sampled);
		else
			appendStringInfoString(out, "null");
		appendStringInfoString(out, ",\"values\":[");
		for (c = 0; sampled && c < latest->columns; c++)
		{
			appendStringInfoString(out, c == 0 ? "[" : ",[");
			append_json_text(out, latest->names[c]);
			appendStringInfoChar(out, ',');
			if (latest->nulls[c])
				appendStringInfoString(out, "null");
			else
				append_json_number(out, latest->values[c]);
			appendStringInfoChar(out, ']');
		}
		appendStringInfoString(out, "]}");
	}
	appendStringInfoChar(out, ']');
}

/*
 * The latest runs of the collector's store, newest first, with the time of
 * their last row.  SPI must be connected.
 */
static void
append_runs_json(StringInfo out)
{
	uint64		r;

	if (SPI_execute("SELECT r.uuid, r.app_name::pg_catalog.text, r.creation_time,"
					" (SELECT pg_catalog.max(w.date_time) FROM dolon.tracing_row w"
					"  WHERE w.uuid OPERATOR(pg_catalog.=) r.uuid"
					"  AND w.date_time OPERATOR(pg_catalog.<) 'infinity'::pg_catalog.timestamptz)"
					" FROM dolon.tracing_run r"
					" ORDER BY r.creation_time DESC LIMIT " CppAsString2(PAGE_RUNS),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the collector's runs");

	appendStringInfoString(out, ",\"runs\":[");
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[r];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		value;

		appendStringInfoString(out, r == 0 ? "{\"uuid\":" : ",{\"uuid\":");
		append_json_uuid(out, DatumGetUUIDP(SPI_getbinval(tuple, tupdesc, 1, &isnull)));
		appendStringInfoString(out, ",\"app_name\":");
		append_json_text(out, TextDatumGetCString(SPI_getbinval(tuple, tupdesc, 2, &isnull)));
		appendStringInfoString(out, ",\"started\":");
		append_json_time(out, DatumGetTimestampTz(SPI_getbinval(tuple, tupdesc, 3, &isnull)));
		appendStringInfoString(out, ",\"last_row\":");
		value = SPI_getbinval(tuple, tupdesc, 4, &isnull);
		if (isnull || TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(value)))
			appendStringInfoString(out, "null");
		else
			append_json_time(out, DatumGetTimestampTz(value));
		appendStringInfoChar(out, '}');
	}
	appendStringInfoChar(out, ']');
}

/*
 * The collector, when it is configured: its counters, and its latest runs
 * once the extension (its store) is there.  Needs a transaction with a
 * snapshot.
 */
static void
append_collector_json(StringInfo out)
{
	DolonCollectorStatus status;

	appendStringInfoString(out, "\"collector\":");
	if (dolon_collector_port == 0)
	{
		appendStringInfoString(out, "null");
		return;
	}
	dolon_read_collector_status(&status);
	appendStringInfo(out, "{\"running\":%s,\"port\":%d,\"received\":" INT64_FORMAT
					 ",\"stored_runs\":" INT64_FORMAT ",\"stored_rows\":" INT64_FORMAT
					 ",\"malformed\":" INT64_FORMAT ",\"refused\":" INT64_FORMAT
					 ",\"dropped\":" INT64_FORMAT,
					 status.pid != 0 ? "true" : "false", dolon_collector_port,
					 status.received, status.stored_runs, status.stored_rows,
					 status.malformed, status.refused, status.dropped);
	if (OidIsValid(get_extension_oid("dolon", true)))
	{
		SPI_connect();
		append_runs_json(out);
		SPI_finish();
	}
	appendStringInfoChar(out, '}');
}

/*
 * status.json: the server, its tracers and its collector.  Needs a
 * transaction with a snapshot in dolon.database.
 */
void
dolon_write_page_status(StringInfo out)
{
	char		host[256];

	appendStringInfoString(out, "{\"server\":{\"name\":");
	if (cluster_name != NULL && cluster_name[0] != '\0')
		append_json_text(out, cluster_name);
	else if (gethostname(host, sizeof(host)) == 0)
	{
		host[sizeof(host) - 1] = '\0';
		append_json_text(out, host);
	}
	else
		appendStringInfoString(out, "\"postgres\"");
	appendStringInfoString(out, ",\"version\":\"" PG_VERSION "\",\"database\":");
	append_json_text(out, dolon_database);
	appendStringInfoString(out, ",\"started\":");
	append_json_time(out, PgStartTime);
	appendStringInfoString(out, ",\"now\":");
	append_json_time(out, GetCurrentTimestamp());
	appendStringInfoString(out, ",\"chart_window_s\":" CppAsString2(PAGE_CHART_WINDOW_S) "},");
	append_tracers_json(out);
	appendStringInfoChar(out, ',');
	append_collector_json(out);
	appendStringInfoString(out, "}\n");
}

/*
 * The chart of a run over its last PAGE_CHART_WINDOW_S seconds and at most
 * its last PAGE_CHART_MAX_ROWS rows, as an SVG document; false if the
 * collector has no such run (or no store).  Needs a transaction with a
 * snapshot.
 */
bool
dolon_write_run_chart(const pg_uuid_t *run, StringInfo out)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		args[1] = {UUIDPGetDatum(run)};
	HeapTuple	tuple;
	bool		isnull;
	bool		found;
	TimestampTz since = DT_NOBEGIN; /* no rows yet: the chart says so */

	if (dolon_collector_port == 0 ||
		!OidIsValid(get_extension_oid("dolon", true)))
		return false;

	/*
	 * The time of the run's last row at a finite time, and that of its
	 * PAGE_CHART_MAX_ROWS-th last, if it has that many: both read backwards
	 * along the index on (uuid, date_time)
	 */
	SPI_connect();
	if (SPI_execute_with_args("SELECT (SELECT w.date_time FROM dolon.tracing_row w"
							  "  WHERE w.uuid OPERATOR(pg_catalog.=) r.uuid"
							  "  AND w.date_time OPERATOR(pg_catalog.<) 'infinity'::pg_catalog.timestamptz"
							  "  AND w.date_time OPERATOR(pg_catalog.>) '-infinity'::pg_catalog.timestamptz"
							  "  ORDER BY w.date_time DESC LIMIT 1),"
							  " (SELECT w.date_time FROM dolon.tracing_row w"
							  "  WHERE w.uuid OPERATOR(pg_catalog.=) r.uuid"
							  "  AND w.date_time OPERATOR(pg_catalog.<) 'infinity'::pg_catalog.timestamptz"
							  "  AND w.date_time OPERATOR(pg_catalog.>) '-infinity'::pg_catalog.timestamptz"
							  "  ORDER BY w.date_time DESC"
							  "  OFFSET " CppAsString2(PAGE_CHART_MAX_ROWS) " - 1 LIMIT 1)"
							  " FROM dolon.tracing_run r"
							  " WHERE r.uuid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look a run up");
	found = SPI_processed > 0;
	if (found)
	{
		TimestampTz last;

		tuple = SPI_tuptable->vals[0];
		last = DatumGetTimestampTz(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1,
												 &isnull));
		if (!isnull)
		{
			TimestampTz oldest = DatumGetTimestampTz(SPI_getbinval(tuple,
																   SPI_tuptable->tupdesc,
																   2, &isnull));

			since = last - (TimestampTz) PAGE_CHART_WINDOW_S * USECS_PER_SEC;
			if (!isnull && oldest > since)
				since = oldest;
		}
	}
	SPI_finish();
	if (!found)
		return false;

	dolon_render_plot(run, since, PAGE_CHART_WIDTH, out);
	return true;
}
