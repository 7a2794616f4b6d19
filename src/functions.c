/*-------------------------------------------------------------------------
 *
 * functions.c
 *		The SQL-callable functions of the dolon extension.
 *
 * The diagnostic functions compute their value in the calling backend, from
 * the same sources and with the same code as the tracer worker, so they work
 * whether or not a tracer runs.  The functions that manage tracers and
 * profiled functions are in tracers.c and function_profiling.c.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "custom_profilers.h"
#include "guc.h"
#include "profilers.h"
#include "sampling.h"

PG_FUNCTION_INFO_V1(dolon_idle);
PG_FUNCTION_INFO_V1(dolon_count_db_connections);
PG_FUNCTION_INFO_V1(dolon_active_tasks);
PG_FUNCTION_INFO_V1(dolon_live_msgs);
PG_FUNCTION_INFO_V1(dolon_dead_msgs);
PG_FUNCTION_INFO_V1(dolon_diagnostics);

Datum
dolon_idle(PG_FUNCTION_ARGS)
{
	DolonBackendActivity activity;

	dolon_read_backend_activity(&activity);
	PG_RETURN_INT64(activity.idle);
}

Datum
dolon_count_db_connections(PG_FUNCTION_ARGS)
{
	DolonBackendActivity activity;

	dolon_read_backend_activity(&activity);
	PG_RETURN_INT64(activity.connections);
}

Datum
dolon_active_tasks(PG_FUNCTION_ARGS)
{
	DolonBackendActivity activity;

	dolon_read_backend_activity(&activity);
	PG_RETURN_INT64(activity.active);
}

Datum
dolon_live_msgs(PG_FUNCTION_ARGS)
{
	DolonTableTuples tuples;

	dolon_read_table_tuples(&tuples);
	PG_RETURN_INT64(tuples.live);
}

Datum
dolon_dead_msgs(PG_FUNCTION_ARGS)
{
	DolonTableTuples tuples;

	dolon_read_table_tuples(&tuples);
	PG_RETURN_INT64(tuples.dead);
}

/*
 * dolon.diagnostics([VARIADIC profilers text[]]): a row computed now, as one
 * (name, value) pair per column, in column order.  Without arguments, the
 * row the configured tracer would send now; with, the row of those
 * profilers.  Custom profilers run with the caller's rights, under the
 * session's statement_timeout, and what they change is undone; a failure
 * gives null and a warning.
 */
Datum
dolon_diagnostics(PG_FUNCTION_ARGS)
{
	static DolonSampleHistory history;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DolonProfilerList *profilers = dolon_profiler_list;
	DolonColumns *columns;
	DolonSample sample;
	double	   *values;
	bool	   *nulls;
	int			i;

	InitMaterializedSRF(fcinfo, 0);

	if (PG_NARGS() > 0)
	{
		char	   *text;
		int			null_position;
		DolonFailure failure;

		text = dolon_profiler_array_text(PG_GETARG_ARRAYTYPE_P(0),
										 &null_position);
		if (text == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("invalid list of profilers"),
					 errdetail("Profiler %d is null.", null_position)));
		if (!dolon_parse_profilers(text, &profilers, &failure))
			dolon_report_failure(ERROR, &failure);
	}

	columns = dolon_build_columns(profilers, true);
	values = palloc(columns->count * sizeof(double));
	nulls = palloc(columns->count * sizeof(bool));

	memset(&sample, 0, sizeof(sample));
	sample.time = GetCurrentTimestamp();
	sample.history = &history;
	dolon_sample_row(&sample, columns, values, nulls);

	/* Custom profilers run with the caller's rights, as any call would */
	for (i = 0; i < columns->count; i++)
	{
		char	   *error;

		if (columns->items[i].kind != COLUMN_CUSTOM)
			continue;
		nulls[i] = !dolon_call_profiler(&columns->items[i].custom, InvalidOid,
										0, &values[i], &error);
		if (nulls[i])
			ereport(WARNING,
					(errmsg("profiler %s: %s",
							dolon_profiler_name(&columns->items[i].custom),
							error),
					 errdetail("The value of the profiler is null.")));
	}

	for (i = 0; i < columns->count; i++)
	{
		Datum		row[2];
		bool		row_nulls[2] = {false, false};

		row[0] = CStringGetTextDatum(columns->items[i].name);
		row[1] = Float8GetDatum(values[i]);
		row_nulls[1] = nulls[i];
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, row_nulls);
	}

	return (Datum) 0;
}
