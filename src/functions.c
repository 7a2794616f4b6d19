/*-------------------------------------------------------------------------
 *
 * functions.c
 *		The SQL-callable functions of the dolon extension.
 *
 * The diagnostic functions compute their value in the calling backend, from
 * the same sources and with the same code as the tracer worker, so they work
 * whether or not the worker runs.  dolon.tracer_status() shows what the
 * worker has recorded in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "dolon.h"

PG_FUNCTION_INFO_V1(dolon_idle);
PG_FUNCTION_INFO_V1(dolon_count_db_connections);
PG_FUNCTION_INFO_V1(dolon_active_tasks);
PG_FUNCTION_INFO_V1(dolon_live_msgs);
PG_FUNCTION_INFO_V1(dolon_dead_msgs);
PG_FUNCTION_INFO_V1(dolon_diagnostics);
PG_FUNCTION_INFO_V1(dolon_tracer_status);

/* Number of columns of dolon.tracer_status() */
#define TRACER_STATUS_COLS 14

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
 * dolon.diagnostics(): the row the tracer would send now, as one
 * (name, value) pair per column, in column order.
 */
Datum
dolon_diagnostics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const DolonProfilerList *profilers = dolon_profiler_list;
	DolonSample sample;
	double	   *values;
	bool	   *nulls;
	int			i;

	InitMaterializedSRF(fcinfo, 0);

	values = palloc(profilers->count * sizeof(double));
	nulls = palloc(profilers->count * sizeof(bool));
	memset(&sample, 0, sizeof(sample));
	dolon_sample_row(&sample, profilers, values, nulls);

	for (i = 0; i < profilers->count; i++)
	{
		Datum		row[2];
		bool		row_nulls[2] = {false, false};

		row[0] = CStringGetTextDatum(dolon_profiler_name(profilers->ids[i]));
		row[1] = Float8GetDatum(values[i]);
		row_nulls[1] = nulls[i];
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, row_nulls);
	}

	return (Datum) 0;
}

/*
 * dolon.tracer_status(): the state of the tracer worker, as one row.  All
 * but the counters are null while no run was started.
 */
Datum
dolon_tracer_status(PG_FUNCTION_ARGS)
{
	DolonTracerStatus status;
	TupleDesc	tupdesc;
	Datum		values[TRACER_STATUS_COLS];
	bool		nulls[TRACER_STATUS_COLS];
	Interval   *frequency;
	int			i = 0;

	dolon_require_shared_state();

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	SpinLockAcquire(&dolon_shared_status->mutex);
	memcpy(&status, dolon_shared_status, sizeof(status));
	SpinLockRelease(&dolon_shared_status->mutex);

	memset(nulls, 0, sizeof(nulls));

	values[i] = Int32GetDatum(status.pid);
	nulls[i++] = status.pid == 0;
	values[i] = UUIDPGetDatum(&status.run_uuid);
	nulls[i++] = !status.has_run;
	values[i] = TimestampTzGetDatum(status.run_started);
	nulls[i++] = !status.has_run;
	values[i] = CStringGetTextDatum(status.tracer_name);
	nulls[i++] = !status.has_run;
	values[i] = CStringGetTextDatum(status.host);
	nulls[i++] = !status.has_run;
	values[i] = Int32GetDatum(status.port);
	nulls[i++] = !status.has_run;
	frequency = palloc0(sizeof(Interval));
	frequency->time = (int64) status.frequency_ms * 1000;
	values[i] = IntervalPGetDatum(frequency);
	nulls[i++] = !status.has_run;
	values[i++] = Int64GetDatum(status.samples);
	values[i++] = Int64GetDatum(status.rows_sent);
	values[i++] = Int64GetDatum(status.send_errors);
	values[i] = CStringGetTextDatum(status.last_error);
	nulls[i++] = status.last_error_time == 0;
	values[i] = TimestampTzGetDatum(status.last_error_time);
	nulls[i++] = status.last_error_time == 0;
	values[i] = Float8GetDatum(status.last_sample_us);
	nulls[i++] = status.samples == 0;
	values[i] = Float8GetDatum(status.samples > 0 ?
							   status.total_sample_us / status.samples : 0);
	nulls[i++] = status.samples == 0;
	Assert(i == TRACER_STATUS_COLS);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
