/*-------------------------------------------------------------------------
 *
 * profiler_runner.h
 *		The process that runs a tracer's custom profilers.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_PROFILER_RUNNER_H
#define DOLON_PROFILER_RUNNER_H

#include "profilers.h"
#include "throttle.h"

/* A custom profiler left out of a tracer for a while */
typedef struct DolonLeftOutProfiler
{
	DolonProfilerSpec spec;
	TimestampTz until;
} DolonLeftOutProfiler;

/*
 * A tracer's side of the process that runs its custom profilers: see
 * profiler_runner.c.  Local to the tracer.
 */
typedef struct DolonProfilerRunner
{
	int			slot_index;
	struct DolonProfilerExchange *exchange;
	const char *tracer_name;
	struct BackgroundWorkerHandle *handle;	/* NULL until launched */
	TimestampTz last_launch;
	bool		round_pending;	/* a round is asked for and not answered */
	bool		round_abandoned;	/* its runner was terminated */
	uint64		round;			/* the last round asked for */
	int			timeout_ms;		/* ... the timeout of each of its calls */
	TimestampTz deadline;		/* ... and when the tracer stops waiting */
	bool		asked;			/* was a round asked for at this sample? */
	const char *not_asked;		/* if not, why */
	bool		starting;		/* ... because the runner is starting */
	int			custom_count;	/* custom profilers of the run */
	int			custom_columns[DOLON_MAX_CUSTOM_PROFILERS];	/* their columns */
	int			custom_calls[DOLON_MAX_CUSTOM_PROFILERS];	/* their calls, or -1 */
	int			left_out_count;
	DolonLeftOutProfiler left_out[DOLON_MAX_CUSTOM_PROFILERS];
	DolonLogThrottle terminate_throttle;
	DolonLogThrottle replace_throttle;
	DolonLogThrottle launch_throttle;
} DolonProfilerRunner;

extern Size dolon_runner_shmem_size(int max_tracers);
extern void dolon_runner_shmem_init(int max_tracers);
extern void dolon_runner_init(DolonProfilerRunner *runner, int slot_index,
							  const char *tracer_name);
extern void dolon_runner_start_round(DolonProfilerRunner *runner,
									 const DolonColumns *columns);
extern bool dolon_runner_round_over(DolonProfilerRunner *runner);
extern TimestampTz dolon_runner_deadline(DolonProfilerRunner *runner);
extern void dolon_runner_finish_round(DolonProfilerRunner *runner,
									  const DolonColumns *columns,
									  double *values, bool *nulls,
									  int *failures, char *error);
extern TimestampTz dolon_runner_watch(DolonProfilerRunner *runner);
extern void dolon_runner_retire(DolonProfilerRunner *runner);
extern void dolon_runner_terminate(int slot_index);
extern PGDLLEXPORT void dolon_profiler_runner_main(Datum main_arg);

#endif							/* DOLON_PROFILER_RUNNER_H */
