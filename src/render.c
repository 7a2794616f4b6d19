/*-------------------------------------------------------------------------
 *
 * render.c
 *		Reading the collector's store back: a run's columns, its rows as
 *		(time, column, value) and as CSV, a sparkline of one column and an
 *		SVG chart of every column.
 *
 * Every function reads the run's rows once, through a cursor in
 * date_time order, a batch at a time, so that memory does not grow
 * with the run.  Rows stamped with the same time come in their physical
 * order: the tie-break never looks at the values.  trace() and trace_csv()
 * return their rows through a tuplestore, which spills to disk beyond
 * work_mem; trace_csv() gives one line of CSV per row, so no value holds
 * the whole run.  sparkline() and plot() downsample while they read: the
 * run's span is cut into as many buckets of time as the chart has
 * characters or pixel columns, and each bucket keeps, per column, the
 * lowest, the highest and the last known value, so that a single spike
 * among millions of rows still shows.
 *
 * The queries name every object with its schema and every operator as
 * OPERATOR(pg_catalog.x): nothing resolves through the caller's
 * search_path.  The extension is not relocatable, so its schema is dolon.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "render.h"
#include "utf8_text.h"

PG_FUNCTION_INFO_V1(dolon_run_columns);
PG_FUNCTION_INFO_V1(dolon_trace);
PG_FUNCTION_INFO_V1(dolon_csv_field);
PG_FUNCTION_INFO_V1(dolon_trace_csv);
PG_FUNCTION_INFO_V1(dolon_sparkline);
PG_FUNCTION_INFO_V1(dolon_plot);

/* Rows fetched from the cursor at a time */
#define RENDER_BATCH 1000

/*
 * The SVG's geometry, in pixels: a heading, then one chart per column.  Its
 * width is DOLON_PLOT_WIDTH for dolon.plot(); a narrower one has its heading
 * on two lines.
 */
#define HEADING 52
#define NARROW_HEADING 66
#define CHART_HEIGHT 120
#define PLOT_LEFT 82
#define PLOT_RIGHT_MARGIN 20
#define PLOT_TOP 26				/* within a chart */
#define PLOT_HEIGHT 64
#define INSET 4					/* between the extreme points and the frame */

/* The layout of an SVG document of a run */
typedef struct RenderLayout
{
	int			width;
	int			plot_width;		/* of each chart's plot area */
	int			heading;		/* the height of the heading */
	int			nbuckets;		/* one per pixel column between the insets,
								 * both ends included */
} RenderLayout;
/* Intervals between ticks of the value axis, about */
#define PLOT_TICKS 3

/* A run as announced: its app_name and column names (NULL for a null one) */
typedef struct RenderRun
{
	const pg_uuid_t *uuid;
	char	   *app_name;
	Datum		columns;		/* text[] */
	int			ncolumns;
	char	  **names;
	TimestampTz since;			/* rows before it are passed over */
} RenderRun;

/* Called for each row, in order, with its time and its values by column */
typedef void (*RenderRowFunc) (void *arg, TimestampTz time,
							   const float4 *values, const bool *nulls);

/*
 * Rows downsampled into buckets of time: per column and bucket, the lowest,
 * the highest and the last known value (NaN while it has none); per bucket,
 * its number of rows; per column, the sum and number of known values.
 * Known values are those neither null, NaN nor infinite.
 */
typedef struct RenderBuckets
{
	int			nbuckets;
	int			first_column;	/* the columns kept: first_column .. */
	int			ncolumns;		/* .. first_column + ncolumns - 1 */
	bool		timed;			/* whether it has rows at finite times */
	TimestampTz first;			/* the first and last of them */
	double		span;			/* between them, in microseconds */
	int64		rows;			/* rows read */
	int64	   *bucket_rows;
	float4	   *lo;				/* [column * nbuckets + bucket] */
	float4	   *hi;
	float4	   *last;
	double	   *sum;			/* [column] */
	int64	   *known;
	/* For sparkline(): the values of the first nbuckets rows, NaN if unknown */
	float4	   *row_values;
} RenderBuckets;

/*
 * Report that a run does not exist, saying so when the collector holds rows
 * of it nonetheless.
 */
static void
render_no_run(const pg_uuid_t *uuid)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		args[1] = {UUIDPGetDatum(uuid)};
	bool		isnull;
	int64		orphans;
	char	   *name = DatumGetCString(DirectFunctionCall1(uuid_out,
														   UUIDPGetDatum(uuid)));

	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM dolon.tracing_row w"
							  " WHERE w.uuid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count the rows of run \"%s\"", name);
	orphans = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	if (orphans > 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run \"%s\" does not exist", name),
				 errdetail("The collector holds " INT64_FORMAT " rows with this uuid, but never received the announcement of their run.",
						   orphans),
				 errhint("The runs are listed in the view dolon.runs.")));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("run \"%s\" does not exist", name),
			 errhint("The runs are listed in the view dolon.runs.")));
}

/*
 * Look a run up; an error if the collector never received its announcement.
 * SPI must be connected; what it returns lives in SPI's memory.
 */
static void
render_open_run(const pg_uuid_t *uuid, RenderRun *run)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		args[1] = {UUIDPGetDatum(uuid)};
	HeapTuple	tuple;
	TupleDesc	tupdesc;
	bool		isnull;
	Datum	   *elements;
	bool	   *nulls;

	if (SPI_execute_with_args("SELECT r.app_name::pg_catalog.text, r.column_names"
							  " FROM dolon.tracing_run r"
							  " WHERE r.uuid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the announcement of a run");
	if (SPI_processed == 0)
		render_no_run(uuid);

	tuple = SPI_tuptable->vals[0];
	tupdesc = SPI_tuptable->tupdesc;
	run->uuid = uuid;
	run->since = DT_NOBEGIN;
	run->app_name = TextDatumGetCString(SPI_getbinval(tuple, tupdesc, 1, &isnull));
	run->columns = SPI_getbinval(tuple, tupdesc, 2, &isnull);
	deconstruct_array(DatumGetArrayTypeP(run->columns), TEXTOID, -1, false,
					  TYPALIGN_INT, &elements, &nulls, &run->ncolumns);
	run->names = palloc(sizeof(char *) * Max(run->ncolumns, 1));
	for (int i = 0; i < run->ncolumns; i++)
		run->names[i] = nulls[i] ? NULL : TextDatumGetCString(elements[i]);
}

/*
 * The values of row_data, by column: those beyond the columns are ignored,
 * missing ones are null.  Only the columns first .. first + n - 1 (0-based)
 * are read.
 */
static void
render_row_values(Datum row_data, int first, int n, float4 *values, bool *nulls)
{
	ArrayType  *array = DatumGetArrayTypeP(row_data);
	float4	   *data;
	bits8	   *bitmap;
	int			count;
	int			lower;

	for (int i = 0; i < n; i++)
		nulls[i] = true;
	if (ARR_NDIM(array) != 1)
		return;
	data = (float4 *) ARR_DATA_PTR(array);
	bitmap = ARR_NULLBITMAP(array);
	count = ARR_DIMS(array)[0];
	lower = ARR_LBOUND(array)[0];
	for (int k = 0; k < count; k++)
	{
		int			column = lower + k - 1 - first;
		bool		isnull = bitmap && !(bitmap[k / 8] & (1 << (k % 8)));
		float4		value = 0;

		if (!isnull)
			value = *data++;
		if (column >= n)
			break;
		if (column >= 0)
		{
			values[column] = value;
			nulls[column] = isnull;
		}
	}
}

/*
 * Read the rows of a run since run->since once, in date_time order, through a
 * cursor, and call func on each, with the values of the columns
 * first .. first + n - 1.  With exact_order, rows of the same time come in
 * ctid order, whatever the plan; without, in the order of the index on
 * (uuid, date_time), which a chart does not mind and which spares a sort.
 * SPI must be connected.
 */
static void
render_scan_rows(RenderRun *run, int first, int n, bool exact_order,
				 RenderRowFunc func, void *arg)
{
	Oid			argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	Datum		args[2] = {UUIDPGetDatum(run->uuid), TimestampTzGetDatum(run->since)};
	Portal		portal;
	MemoryContext batch_context;
	MemoryContext old_context;
	float4	   *values = palloc(sizeof(float4) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));

	portal = SPI_cursor_open_with_args(NULL,
									   exact_order ?
									   "SELECT w.date_time, w.row_data"
									   " FROM dolon.tracing_row w"
									   " WHERE w.uuid OPERATOR(pg_catalog.=) $1"
									   " AND w.date_time OPERATOR(pg_catalog.>=) $2"
									   " ORDER BY w.date_time, w.ctid" :
									   "SELECT w.date_time, w.row_data"
									   " FROM dolon.tracing_row w"
									   " WHERE w.uuid OPERATOR(pg_catalog.=) $1"
									   " AND w.date_time OPERATOR(pg_catalog.>=) $2"
									   " ORDER BY w.date_time",
									   2, argtypes, args, NULL, true,
									   CURSOR_OPT_NO_SCROLL);
	batch_context = AllocSetContextCreate(CurrentMemoryContext,
										  "dolon render batch",
										  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		SPITupleTable *table;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, RENDER_BATCH);
		if (SPI_processed == 0)
			break;
		table = SPI_tuptable;
		old_context = MemoryContextSwitchTo(batch_context);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			TimestampTz time;
			Datum		row_data;

			time = DatumGetTimestampTz(SPI_getbinval(table->vals[i], table->tupdesc,
													 1, &isnull));
			row_data = SPI_getbinval(table->vals[i], table->tupdesc, 2, &isnull);
			render_row_values(row_data, first, n, values, nulls);
			func(arg, time, values, nulls);
		}
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(batch_context);
		SPI_freetuptable(table);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch_context);
}

/*
 * The first and last finite times of a run's rows since run->since, through
 * its index; false if it has none.
 */
static bool
render_time_extent(RenderRun *run, TimestampTz *first, TimestampTz *last)
{
	Oid			argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	Datum		args[2] = {UUIDPGetDatum(run->uuid), TimestampTzGetDatum(run->since)};
	bool		isnull;

	if (SPI_execute_with_args("SELECT pg_catalog.min(w.date_time), pg_catalog.max(w.date_time)"
							  " FROM dolon.tracing_row w"
							  " WHERE w.uuid OPERATOR(pg_catalog.=) $1"
							  " AND w.date_time OPERATOR(pg_catalog.>) '-infinity'::pg_catalog.timestamptz"
							  " AND w.date_time OPERATOR(pg_catalog.<) 'infinity'::pg_catalog.timestamptz"
							  " AND w.date_time OPERATOR(pg_catalog.>=) $2",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the times of a run");
	*first = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		return false;
	*last = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 2, &isnull));
	return true;
}

/* Whether a value is known: not null, not NaN, not infinite */
static inline bool
render_known(float4 value, bool isnull)
{
	return !isnull && !isnan(value) && !isinf(value);
}

/*
 * Read a run into nbuckets buckets of time, for the columns first .. first +
 * ncolumns - 1; keep the values of the first rows too when keep_rows.  A row
 * goes to the bucket of its time's place in the run's span, its first time
 * in bucket 0 and its last in nbuckets - 1; rows at infinite times to the
 * nearer end; all rows to the middle bucket when the span is 0.
 */
static void render_bucket_row(void *arg, TimestampTz time,
							  const float4 *values, const bool *nulls);

static void
render_buckets(RenderRun *run, int nbuckets, int first, int ncolumns,
			   bool keep_rows, RenderBuckets *b)
{
	TimestampTz last = 0;
	size_t		cells = (size_t) nbuckets * ncolumns;

	memset(b, 0, sizeof(RenderBuckets));
	b->nbuckets = nbuckets;
	b->first_column = first;
	b->ncolumns = ncolumns;
	b->timed = render_time_extent(run, &b->first, &last);
	if (b->timed)
		b->span = (double) (last - b->first);
	b->bucket_rows = palloc0(sizeof(int64) * nbuckets);
	b->lo = palloc(sizeof(float4) * cells);
	b->hi = palloc(sizeof(float4) * cells);
	b->last = palloc(sizeof(float4) * cells);
	for (size_t i = 0; i < cells; i++)
		b->lo[i] = b->hi[i] = b->last[i] = get_float4_nan();
	b->sum = palloc0(sizeof(double) * Max(ncolumns, 1));
	b->known = palloc0(sizeof(int64) * Max(ncolumns, 1));
	if (keep_rows)
		b->row_values = palloc(sizeof(float4) * nbuckets);

	render_scan_rows(run, first, ncolumns, false, render_bucket_row, b);
}

static void
render_bucket_row(void *arg, TimestampTz time, const float4 *values, const bool *nulls)
{
	RenderBuckets *b = (RenderBuckets *) arg;
	int			bucket;

	if (b->span <= 0)
		bucket = (b->nbuckets - 1) / 2;
	else if (time <= b->first)
		bucket = 0;
	else if (time >= b->first + (TimestampTz) b->span)
		bucket = b->nbuckets - 1;
	else
		bucket = (int) rint((double) (time - b->first) / b->span * (b->nbuckets - 1));

	if (b->row_values && b->rows < b->nbuckets)
		b->row_values[b->rows] = render_known(values[0], nulls[0]) ?
			values[0] : get_float4_nan();
	b->rows++;
	b->bucket_rows[bucket]++;

	for (int c = 0; c < b->ncolumns; c++)
	{
		size_t		cell = (size_t) c * b->nbuckets + bucket;
		float4		value = values[c];

		if (!render_known(value, nulls[c]))
			continue;
		if (isnan(b->lo[cell]) || value < b->lo[cell])
			b->lo[cell] = value;
		if (isnan(b->hi[cell]) || value > b->hi[cell])
			b->hi[cell] = value;
		b->last[cell] = value;
		b->sum[c] += value;
		b->known[c]++;
	}
}

/*
 * dolon.run_columns(uuid): the column names of a run; an error if the
 * collector never received its announcement.
 */
Datum
dolon_run_columns(PG_FUNCTION_ARGS)
{
	RenderRun	run;
	Datum		columns;

	SPI_connect();
	render_open_run(PG_GETARG_UUID_P(0), &run);
	columns = SPI_datumTransfer(run.columns, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(columns);
}

/* trace(): a row's (time, column_name, value) into the tuplestore */
typedef struct TraceState
{
	RenderRun  *run;
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	Datum	   *names;			/* the column names as text */
} TraceState;

static void
trace_row(void *arg, TimestampTz time, const float4 *values, const bool *nulls)
{
	TraceState *state = (TraceState *) arg;

	for (int c = 0; c < state->run->ncolumns; c++)
	{
		Datum		out[3];
		bool		out_nulls[3] = {false, state->run->names[c] == NULL, nulls[c]};

		out[0] = TimestampTzGetDatum(time);
		out[1] = state->names[c];
		out[2] = nulls[c] ? (Datum) 0 : Float8GetDatum((float8) values[c]);
		tuplestore_putvalues(state->store, state->tupdesc, out, out_nulls);
	}
}

/*
 * dolon.trace(uuid): the rows of a run, one (time, column_name, value) per
 * row and column, in time then column order.
 */
Datum
dolon_trace(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RenderRun	run;
	TraceState	state;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	render_open_run(PG_GETARG_UUID_P(0), &run);
	state.run = &run;
	state.store = rsinfo->setResult;
	state.tupdesc = rsinfo->setDesc;
	state.names = palloc(sizeof(Datum) * Max(run.ncolumns, 1));
	for (int c = 0; c < run.ncolumns; c++)
		state.names[c] = run.names[c] ? CStringGetTextDatum(run.names[c]) : (Datum) 0;
	render_scan_rows(&run, 0, run.ncolumns, true, trace_row, &state);
	SPI_finish();
	return (Datum) 0;
}

/*
 * Append a text field of CSV.  RFC 4180: a field holding a comma, a double
 * quote or a line break is quoted, its double quotes doubled.  OWASP on CSV
 * injection: a spreadsheet runs a field beginning with =, +, -, @, a tab or
 * a carriage return as a formula, so such a field is quoted and begins with
 * a single quote, which makes it text there.  Null is an empty field.
 */
static void
append_csv_field(StringInfo out, const char *value)
{
	bool		formula;

	if (value == NULL)
		return;
	formula = value[0] != '\0' && strchr("=+-@\t\r", value[0]) != NULL;
	if (!formula && strpbrk(value, "\",\r\n") == NULL)
	{
		appendStringInfoString(out, value);
		return;
	}
	appendStringInfoChar(out, '"');
	if (formula)
		appendStringInfoChar(out, '\'');
	for (const char *p = value; *p; p++)
	{
		if (*p == '"')
			appendStringInfoChar(out, '"');
		appendStringInfoChar(out, *p);
	}
	appendStringInfoChar(out, '"');
}

/*
 * dolon.csv_field(text): a text field of CSV, quoted as RFC 4180 requires
 * and never taken by a spreadsheet for a formula; empty for null.
 */
Datum
dolon_csv_field(PG_FUNCTION_ARGS)
{
	StringInfoData out;

	initStringInfo(&out);
	if (!PG_ARGISNULL(0))
		append_csv_field(&out, text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/* trace_csv(): a row as a line of CSV into the tuplestore */
typedef struct CsvState
{
	RenderRun  *run;
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	StringInfoData line;
} CsvState;

static void
csv_put_line(CsvState *state)
{
	Datum		value = PointerGetDatum(cstring_to_text_with_len(state->line.data,
																 state->line.len));
	bool		isnull = false;

	tuplestore_putvalues(state->store, state->tupdesc, &value, &isnull);
	resetStringInfo(&state->line);
}

static void
csv_row(void *arg, TimestampTz time, const float4 *values, const bool *nulls)
{
	CsvState   *state = (CsvState *) arg;
	StringInfo	line = &state->line;

	/*
	 * Times in UTC, to the microsecond; an infinite one as text, which is a
	 * field beginning with a dash or a letter
	 */
	if (TIMESTAMP_NOT_FINITE(time))
		append_csv_field(line, TIMESTAMP_IS_NOBEGIN(time) ? "-infinity" : "infinity");
	else
	{
		struct pg_tm tm;
		fsec_t		fsec;

		if (timestamp2tm(time, NULL, &tm, &fsec, NULL, NULL) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("timestamp out of range")));
		appendStringInfo(line, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
						 tm.tm_year > 0 ? tm.tm_year : -(tm.tm_year - 1),
						 tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
						 (int) fsec);
	}

	/*
	 * Values as the shortest text that reads back as the stored real, an
	 * empty field when unknown: numbers, -2.5 as much as 2.5, which stay
	 * numbers in a spreadsheet
	 */
	for (int c = 0; c < state->run->ncolumns; c++)
	{
		appendStringInfoChar(line, ',');
		if (!nulls[c])
		{
			enlargeStringInfo(line, FLOAT_SHORTEST_DECIMAL_LEN);
			line->len += float_to_shortest_decimal_buf(values[c], line->data + line->len);
		}
	}
	csv_put_line(state);
}

/*
 * dolon.trace_csv(uuid): a run as CSV, one line (one record) per row: first
 * the header time,<columns>, then the rows, in time order.
 */
Datum
dolon_trace_csv(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RenderRun	run;
	CsvState	state;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	SPI_connect();
	render_open_run(PG_GETARG_UUID_P(0), &run);
	state.run = &run;
	state.store = rsinfo->setResult;
	state.tupdesc = rsinfo->setDesc;
	initStringInfo(&state.line);

	/* Column names are text fields; times and numbers are never quoted */
	appendStringInfoString(&state.line, "time");
	for (int c = 0; c < run.ncolumns; c++)
	{
		appendStringInfoChar(&state.line, ',');
		append_csv_field(&state.line, run.names[c]);
	}
	csv_put_line(&state);

	render_scan_rows(&run, 0, run.ncolumns, true, csv_row, &state);
	SPI_finish();
	return (Datum) 0;
}

/* The position of a column in a run, 0-based; an error if it has none */
static int
render_column(RenderRun *run, const char *column_name)
{
	StringInfoData names;

	for (int c = 0; c < run->ncolumns; c++)
		if (run->names[c] && strcmp(run->names[c], column_name) == 0)
			return c;

	initStringInfo(&names);
	for (int c = 0; c < run->ncolumns; c++)
		if (run->names[c])
			appendStringInfo(&names, "%s%s", names.len > 0 ? ", " : "", run->names[c]);
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("run \"%s\" has no column \"%s\"",
					DatumGetCString(DirectFunctionCall1(uuid_out,
														UUIDPGetDatum(run->uuid))),
					column_name),
			 errhint("Its columns are: %s.", names.data)));
	return -1;					/* keep the compiler quiet */
}

/*
 * dolon.sparkline(uuid, column_name, width): one column of a run as a line
 * of block characters.
 *
 * One character per row while the run has no more rows than width;
 * otherwise width characters, one per bucket of time.  Each character shows
 * the value of its bucket farthest from the mean of the column's known
 * values, its highest or its lowest, so that a spike or a dip shows however
 * many rows surround it; a bucket without known values is a space.  Eight
 * levels, U+2581 to U+2588, between the lowest and the highest character's
 * value; all U+2584 (lower half block) when they are equal.
 */
Datum
dolon_sparkline(PG_FUNCTION_ARGS)
{
	char	   *column_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		width = PG_GETARG_INT32(2);
	RenderRun	run;
	RenderBuckets b;
	int			column;
	int			count;
	float4	   *shown;
	double		mean;
	double		lo = get_float8_infinity();
	double		hi = -get_float8_infinity();
	StringInfoData line;

	/* The result, in the caller's memory, after room for its header */
	initStringInfo(&line);
	appendStringInfoSpaces(&line, VARHDRSZ);

	SPI_connect();
	render_open_run(PG_GETARG_UUID_P(0), &run);
	column = render_column(&run, column_name);
	if (width < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sparkline width must be at least 1, not %d", width)));
	if (GetDatabaseEncoding() != PG_UTF8)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("sparklines need a database encoded in UTF8"),
				 errdetail("This database is encoded in %s, which has no block characters.",
						   GetDatabaseEncodingName())));

	render_buckets(&run, width, column, 1, true, &b);
	mean = b.known[0] > 0 ? b.sum[0] / b.known[0] : 0;
	if (b.rows <= width)
	{
		count = (int) b.rows;
		shown = b.row_values;
	}
	else
	{
		count = width;
		shown = palloc(sizeof(float4) * width);
		for (int i = 0; i < width; i++)
			shown[i] = fabs(b.hi[i] - mean) > fabs(b.lo[i] - mean) ? b.hi[i] : b.lo[i];
	}
	for (int i = 0; i < count; i++)
	{
		if (isnan(shown[i]))
			continue;
		lo = Min(lo, shown[i]);
		hi = Max(hi, shown[i]);
	}

	for (int i = 0; i < count; i++)
	{
		int			level;

		if (isnan(shown[i]))
		{
			appendStringInfoChar(&line, ' ');
			continue;
		}
		if (hi == lo)
			level = 3;
		else
			level = Min(7, (int) floor((shown[i] - lo) / (hi - lo) * 8));
		/* U+2581 + level in UTF-8: E2 96 81..88 */
		appendStringInfoChar(&line, (char) 0xE2);
		appendStringInfoChar(&line, (char) 0x96);
		appendStringInfoChar(&line, (char) (0x81 + level));
	}
	SPI_finish();
	SET_VARSIZE(line.data, line.len);
	PG_RETURN_TEXT_P((text *) line.data);
}

/*
 * Append text for XML: its five special characters as entities; control
 * characters (line breaks included: labels are one line) as spaces; the two
 * non-characters XML does not allow as U+FFFD; every other non-ASCII
 * character, in whatever encoding the database has it, as a character
 * reference, so the document is plain ASCII: the same bytes in every
 * encoding, as dolon.plot() returns it and as the live page serves it.
 */
static void
append_xml_text(StringInfo out, const char *text)
{
	if (text == NULL)
		return;
	for (const unsigned char *p = (const unsigned char *) dolon_utf8_text(text); *p;)
	{
		if (*p >= 0x80)
		{
			pg_wchar	c = utf8_to_unicode(p);

			if (c == 0xFFFE || c == 0xFFFF)
				c = 0xFFFD;
			appendStringInfo(out, "&#%u;", (unsigned int) c);
			p += pg_utf_mblen(p);
			continue;
		}
		switch (*p)
		{
			case '&':
				appendStringInfoString(out, "&amp;");
				break;
			case '<':
				appendStringInfoString(out, "&lt;");
				break;
			case '>':
				appendStringInfoString(out, "&gt;");
				break;
			case '"':
				appendStringInfoString(out, "&quot;");
				break;
			case '\'':
				appendStringInfoString(out, "&apos;");
				break;
			default:
				appendStringInfoChar(out, (*p < 0x20 || *p == 0x7f) ? ' ' : (char) *p);
		}
		p++;
	}
}

/*
 * The unit of a column, from its name, for the columns of the built-in
 * profilers and of function profiling (see README.md); NULL for others.
 */
static const char *
render_unit(const char *name)
{
	static const struct
	{
		bool		suffix;
		const char *name;
		const char *unit;
	}			units[] = {
		{true, "_percent", "%"},
		{true, "_seconds", "s"},
		{true, "_average_time", "s"},
		{true, "_rate", "/s"},
		{false, "memory_use", "GB"},
		{false, "mem_allocation", "MB"},
	};
	size_t		length = name ? strlen(name) : 0;

	for (int i = 0; i < lengthof(units); i++)
	{
		size_t		unit_length = strlen(units[i].name);

		if (units[i].suffix ? (length > unit_length &&
							   strcmp(name + length - unit_length, units[i].name) == 0)
			: (name && strcmp(name, units[i].name) == 0))
			return units[i].unit;
	}
	return NULL;
}

/* Append a number and the unit, if any, after a space */
static void
append_with_unit(StringInfo out, const char *number, const char *unit)
{
	appendStringInfoString(out, number);
	if (unit)
		appendStringInfo(out, " %s", unit);
}

/*
 * A tick of the value axis as text: with the decimals of the step, whose
 * last digit is 10^exponent; with an exponent for very large and very small
 * numbers.
 */
static char *
render_tick_label(double value, int exponent)
{
	int			magnitude;

	if (value == 0)
		return pstrdup("0");
	magnitude = (int) floor(log10(fabs(value)) + 1e-9);
	if (exponent >= -4 && magnitude < 7)
		return psprintf("%.*f", Max(0, -exponent), value);
	return psprintf("%.*g", Max(1, magnitude - exponent + 1), value);
}

/* A vertical position, to a tenth of a pixel, without a trailing .0 */
static void
append_coordinate(StringInfo out, double value)
{
	char		buf[32];
	int			length = snprintf(buf, sizeof(buf), "%.1f", value);

	if (length > 2 && strcmp(buf + length - 2, ".0") == 0)
		buf[length - 2] = '\0';
	if (strcmp(buf, "-0") == 0)
		strcpy(buf, "0");
	appendStringInfoString(out, buf);
}

/* A time in the session's time zone, as to_char(time, format) would */
static char *
render_time(TimestampTz time, bool with_date, bool with_zone)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	const char *tzn;

	if (TIMESTAMP_NOT_FINITE(time))
		return pstrdup(TIMESTAMP_IS_NOBEGIN(time) ? "-infinity" : "infinity");
	if (timestamp2tm(time, &tz, &tm, &fsec, &tzn, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	if (with_zone)
	{
		char	   *zone = pstrdup(tzn ? tzn : "");

		for (char *z = zone; *z; z++)
			*z = pg_toupper((unsigned char) *z);
		return psprintf("%04d-%02d-%02d %02d:%02d:%02d %s",
						tm.tm_year > 0 ? tm.tm_year : -(tm.tm_year - 1),
						tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
						zone);
	}
	if (with_date)
		return psprintf("%02d-%02d %02d:%02d:%02d",
						tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return psprintf("%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Whether two times fall on the same day in the session's time zone */
static bool
render_same_day(TimestampTz a, TimestampTz b)
{
	struct pg_tm ta,
				tb;
	fsec_t		fsec;
	int			tz;

	if (timestamp2tm(a, &tz, &ta, &fsec, NULL, NULL) != 0 ||
		timestamp2tm(b, &tz, &tb, &fsec, NULL, NULL) != 0)
		return false;
	return ta.tm_year == tb.tm_year && ta.tm_mon == tb.tm_mon && ta.tm_mday == tb.tm_mday;
}

/* A duration in seconds in the largest unit that keeps it readable */
static char *
render_duration(double span)
{
	double		r;

	if (span < 10)
	{
		char	   *s = psprintf("%.2f", span);
		int			length = strlen(s);

		while (s[length - 1] == '0')
			s[--length] = '\0';
		if (s[length - 1] == '.')
			s[--length] = '\0';
		return psprintf("+%s s", s);
	}
	if (span < 120)
		return psprintf("+%.0f s", round(span));
	if (span < 7200)
	{
		r = round(span);
		return fmod(r, 60) == 0 ? psprintf("+%.0f min", r / 60)
			: psprintf("+%.0f min %.0f s", floor(r / 60), fmod(r, 60));
	}
	if (span < 172800)
	{
		r = round(span / 60);
		return fmod(r, 60) == 0 ? psprintf("+%.0f h", r / 60)
			: psprintf("+%.0f h %.0f min", floor(r / 60), fmod(r, 60));
	}
	r = round(span / 3600);
	return fmod(r, 24) == 0 ? psprintf("+%.0f d", r / 24)
		: psprintf("+%.0f d %.0f h", floor(r / 24), fmod(r, 24));
}

/*
 * One chart of plot(): the column's name, its unit, its lowest and highest
 * known values, a value axis with ticks at round numbers (1, 2 or 5 times a
 * power of ten), the time axis, and the series: per pixel column, a stroke
 * from the bucket's lowest to its highest value, ending on the side of its
 * last one, so that spikes show; broken where a pixel column has rows but
 * no known value; a lone point as a dot.
 */
static void
render_chart(StringInfo svg, RenderRun *run, RenderBuckets *b,
			 const RenderLayout *layout, int column, const char *time_axis)
{
	const char *unit = render_unit(run->names[column]);
	float4	   *lo_of = b->lo + (size_t) column * b->nbuckets;
	float4	   *hi_of = b->hi + (size_t) column * b->nbuckets;
	float4	   *last_of = b->last + (size_t) column * b->nbuckets;
	double		lo = get_float8_infinity();
	double		hi = -get_float8_infinity();
	double		axis_lo,
				axis_hi,
				range,
				raw,
				step,
				fraction;
	int			exponent;
	double		first_tick,
				last_tick;
	StringInfoData points;
	int			npoints = 0;
	int			dot_x = 0;
	double		dot_y = 0;

	appendStringInfo(svg, "<g class=\"chart\" transform=\"translate(0,%d)\">\n",
					 layout->heading + CHART_HEIGHT * column);
	/* A narrow chart's name starts at the edge, clear of the range */
	appendStringInfo(svg, "<text x=\"%d\" y=\"16\" font-size=\"12\" font-weight=\"bold\" fill=\"#222222\">",
					 layout->width < DOLON_PLOT_WIDTH ? 12 : PLOT_LEFT);
	append_xml_text(svg, run->names[column]);
	appendStringInfoString(svg, "</text>\n");

	for (int i = 0; i < b->nbuckets; i++)
	{
		if (isnan(lo_of[i]))
			continue;
		lo = Min(lo, lo_of[i]);
		hi = Max(hi, hi_of[i]);
	}

	/* The axes, and the time axis's ticks and labels */
	appendStringInfo(svg, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888888\"/>\n",
					 PLOT_LEFT, PLOT_TOP, PLOT_LEFT, PLOT_TOP + PLOT_HEIGHT);
	appendStringInfo(svg, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888888\"/>\n",
					 PLOT_LEFT, PLOT_TOP + PLOT_HEIGHT, PLOT_LEFT + layout->plot_width, PLOT_TOP + PLOT_HEIGHT);
	appendStringInfoString(svg, time_axis);

	if (isinf(lo))
	{
		appendStringInfo(svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#999999\">%s</text>\n</g>\n",
						 PLOT_LEFT + layout->plot_width / 2, PLOT_TOP + PLOT_HEIGHT / 2 + 4,
						 b->rows == 0 ? "no rows" : "no known values");
		return;
	}

	/* The lowest and highest known values, six significant digits */
	appendStringInfo(svg, "<text class=\"range\" x=\"%d\" y=\"16\" text-anchor=\"end\" fill=\"#666666\">min <tspan class=\"min\">",
					 PLOT_LEFT + layout->plot_width);
	append_with_unit(svg, psprintf("%.6g", lo), unit);
	appendStringInfoString(svg, "</tspan> &#183; max <tspan class=\"max\">");
	append_with_unit(svg, psprintf("%.6g", hi), unit);
	appendStringInfoString(svg, "</tspan></text>\n");

	/*
	 * The value axis: about PLOT_TICKS intervals of a round step, from a
	 * multiple of it at or below the lowest value to one at or above the
	 * highest.  Equal values get an axis around them.
	 */
	axis_lo = lo;
	axis_hi = hi;
	if (axis_lo == axis_hi)
	{
		double		margin = axis_lo == 0 ? 1 : fabs(axis_lo) / 10;

		axis_lo -= margin;
		axis_hi += margin;
	}
	raw = (axis_hi - axis_lo) / PLOT_TICKS;
	exponent = (int) floor(log10(raw));
	fraction = raw / pow(10, exponent);
	step = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
	if (step == 10)
	{
		step = 1;
		exponent++;
	}
	step *= pow(10, exponent);
	first_tick = floor(axis_lo / step);
	last_tick = ceil(axis_hi / step);
	axis_lo = first_tick * step;
	axis_hi = last_tick * step;
	range = axis_hi - axis_lo;

#define VALUE_Y(v) (PLOT_TOP + PLOT_HEIGHT - INSET - ((v) - axis_lo) / range * (PLOT_HEIGHT - 2 * INSET))

	for (double k = first_tick; k <= last_tick; k++)
	{
		double		y = VALUE_Y(k * step);

		appendStringInfo(svg, "<line x1=\"%d\" y1=\"", PLOT_LEFT - 3);
		append_coordinate(svg, y);
		appendStringInfo(svg, "\" x2=\"%d\" y2=\"", PLOT_LEFT + layout->plot_width);
		append_coordinate(svg, y);
		appendStringInfoString(svg, "\" stroke=\"#e4e4e4\"/>\n");
		appendStringInfo(svg, "<text class=\"tick\" x=\"%d\" y=\"", PLOT_LEFT - 6);
		append_coordinate(svg, y + 3.5);
		appendStringInfoString(svg, "\" text-anchor=\"end\" font-size=\"10\" fill=\"#444444\">");
		append_with_unit(svg, render_tick_label(k * step, exponent), unit);
		appendStringInfoString(svg, "</text>\n");
	}

	/* The series */
	initStringInfo(&points);
	for (int i = 0; i <= b->nbuckets; i++)
	{
		int			x = PLOT_LEFT + INSET + i;

		if (i < b->nbuckets && b->bucket_rows[i] == 0)
			continue;
		if (i < b->nbuckets && !isnan(lo_of[i]))
		{
			double		low = VALUE_Y(lo_of[i]);
			double		high = VALUE_Y(hi_of[i]);
			bool		rising = fabs(last_of[i] - hi_of[i]) <= fabs(last_of[i] - lo_of[i]);

			appendStringInfo(&points, "%s%d,", npoints > 0 ? " " : "", x);
			append_coordinate(&points, rising ? low : high);
			dot_x = x;
			dot_y = low;
			npoints++;
			if (lo_of[i] != hi_of[i])
			{
				appendStringInfo(&points, " %d,", x);
				append_coordinate(&points, rising ? high : low);
				npoints++;
			}
			continue;
		}
		/* a pixel column with rows but no known value, or the end */
		if (npoints == 1)
		{
			appendStringInfo(svg, "<circle cx=\"%d\" cy=\"", dot_x);
			append_coordinate(svg, dot_y);
			appendStringInfoString(svg, "\" r=\"2.5\" fill=\"#1f6fb4\"/>\n");
		}
		else if (npoints > 1)
			appendStringInfo(svg, "<polyline points=\"%s\" fill=\"none\" stroke=\"#1f6fb4\" stroke-width=\"1.5\" stroke-linejoin=\"round\"/>\n",
							 points.data);
		resetStringInfo(&points);
		npoints = 0;
	}
#undef VALUE_Y
	pfree(points.data);
	appendStringInfoString(svg, "</g>\n");
}

/*
 * Append to svg (in memory that outlives SPI) a run's rows since a time
 * (DT_NOBEGIN: all of them) as an SVG document of a width, one time-series
 * chart per column, times in the session's time zone.  An error if the run
 * does not exist.  dolon.plot() and the live page of the metrics endpoint draw
 * with it.
 */
void
dolon_render_plot(const pg_uuid_t *uuid, TimestampTz since, int width,
				  StringInfo svg)
{
	RenderRun	run;
	RenderBuckets b;
	RenderLayout layout;
	StringInfoData axis;
	char	   *uuid_text;
	int			height;
	TimestampTz last;

	Assert(width >= DOLON_PLOT_MIN_WIDTH && width <= DOLON_PLOT_WIDTH);
	layout.width = width;
	layout.plot_width = width - PLOT_LEFT - PLOT_RIGHT_MARGIN;
	layout.heading = width < DOLON_PLOT_WIDTH ? NARROW_HEADING : HEADING;
	layout.nbuckets = layout.plot_width - 2 * INSET + 1;

	SPI_connect();
	render_open_run(uuid, &run);
	run.since = since;
	uuid_text = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(run.uuid)));
	render_buckets(&run, layout.nbuckets, 0, run.ncolumns, false, &b);
	last = b.first + (TimestampTz) b.span;
	height = layout.heading + CHART_HEIGHT * run.ncolumns + 8;

	appendStringInfoString(svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	appendStringInfo(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\" font-size=\"11\">\n",
					 width, height, width, height);
	appendStringInfoString(svg, "<title>");
	append_xml_text(svg, run.app_name);
	appendStringInfo(svg, " &#8212; %s</title>\n", uuid_text);
	appendStringInfo(svg, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
					 width, height);
	appendStringInfoString(svg, "<text x=\"12\" y=\"22\" font-size=\"15\" font-weight=\"bold\" fill=\"#222222\">");
	append_xml_text(svg, run.app_name);
	appendStringInfoString(svg, "</text>\n");
	appendStringInfo(svg, "<text x=\"12\" y=\"40\" fill=\"#666666\">run %s%s", uuid_text,
					 width < DOLON_PLOT_WIDTH ?
					 "</text>\n<text x=\"12\" y=\"56\" fill=\"#666666\">" : " &#183; ");
	if (b.rows == 0)
		appendStringInfoString(svg, "no rows");
	else
	{
		appendStringInfo(svg, INT64_FORMAT " %s", b.rows, b.rows == 1 ? "row" : "rows");
		if (b.timed)
		{
			if (b.span == 0)
				appendStringInfo(svg, " at %s", render_time(b.first, false, true));
			else
				appendStringInfo(svg, " from %s (%s)", render_time(b.first, false, true),
								 render_duration(b.span / USECS_PER_SEC));
		}
	}
	appendStringInfoString(svg, "</text>\n");

	/* The time axis, the same in every chart */
	initStringInfo(&axis);
	if (b.timed && b.span == 0)
	{
		/* rows all at one time: a single time, under the middle */
		appendStringInfo(&axis, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888888\"/>\n",
						 PLOT_LEFT + layout.plot_width / 2, PLOT_TOP + PLOT_HEIGHT,
						 PLOT_LEFT + layout.plot_width / 2, PLOT_TOP + PLOT_HEIGHT + 4);
		appendStringInfo(&axis, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#444444\">%s</text>\n",
						 PLOT_LEFT + layout.plot_width / 2, PLOT_TOP + PLOT_HEIGHT + 16,
						 render_time(b.first, false, false));
	}
	else if (b.span > 0)
	{
		bool		with_date = !render_same_day(b.first, last);

		appendStringInfo(&axis, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888888\"/>\n",
						 PLOT_LEFT + INSET, PLOT_TOP + PLOT_HEIGHT,
						 PLOT_LEFT + INSET, PLOT_TOP + PLOT_HEIGHT + 4);
		appendStringInfo(&axis, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888888\"/>\n",
						 PLOT_LEFT + layout.plot_width - INSET, PLOT_TOP + PLOT_HEIGHT,
						 PLOT_LEFT + layout.plot_width - INSET, PLOT_TOP + PLOT_HEIGHT + 4);
		appendStringInfo(&axis, "<text x=\"%d\" y=\"%d\" fill=\"#444444\">%s</text>\n",
						 PLOT_LEFT, PLOT_TOP + PLOT_HEIGHT + 16,
						 render_time(b.first, with_date, false));
		appendStringInfo(&axis, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#888888\">%s</text>\n",
						 PLOT_LEFT + layout.plot_width / 2, PLOT_TOP + PLOT_HEIGHT + 16,
						 render_duration(b.span / USECS_PER_SEC));
		appendStringInfo(&axis, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#444444\">%s</text>\n",
						 PLOT_LEFT + layout.plot_width, PLOT_TOP + PLOT_HEIGHT + 16,
						 render_time(last, with_date, false));
	}

	for (int c = 0; c < run.ncolumns; c++)
		render_chart(svg, &run, &b, &layout, c, axis.data);
	appendStringInfoString(svg, "</svg>\n");

	SPI_finish();
}

/*
 * dolon.plot(uuid): a run as an SVG document, one time-series chart per
 * column, times in the session's time zone.
 */
Datum
dolon_plot(PG_FUNCTION_ARGS)
{
	StringInfoData svg;

	/* The result, after room for its header */
	initStringInfo(&svg);
	appendStringInfoSpaces(&svg, VARHDRSZ);
	dolon_render_plot(PG_GETARG_UUID_P(0), DT_NOBEGIN, DOLON_PLOT_WIDTH, &svg);
	SET_VARSIZE(svg.data, svg.len);
	PG_RETURN_TEXT_P((text *) svg.data);
}
