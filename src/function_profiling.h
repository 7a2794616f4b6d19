/*-------------------------------------------------------------------------
 *
 * function_profiling.h
 *		Counting the calls of profiled functions.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_FUNCTION_PROFILING_H
#define DOLON_FUNCTION_PROFILING_H

#include "profilers.h"

/* The counters of a profiled function, as dolon.function_stats shows them */
typedef struct DolonFunctionCounters
{
	Oid			database;
	Oid			function;
	char	   *signature;
	char	   *column;			/* base of the tracer's column names */
	int64		hits;			/* calls started */
	int64		active;			/* calls in progress */
	int64		completed;		/* calls ended, by a return or an error */
	int64		timed_calls;	/* calls that the timed calls stand for */
	int64		timed_ns;		/* their time, estimated from the timed ones */
} DolonFunctionCounters;

extern Size dolon_function_profiling_shmem_size(int capacity);
extern void dolon_function_profiling_shmem_init(int capacity);
extern void dolon_install_function_hooks(void);
extern uint64 dolon_profiled_functions_generation(void);
extern DolonFunctionCounters *dolon_read_function_counters(int *count);
extern int	dolon_add_function_columns(DolonColumns **columns);
extern bool dolon_sum_function_column(const DolonColumn *column,
									  DolonFunctionCounters *counters);
extern double dolon_function_column_value(const DolonColumn *column,
										  const DolonFunctionCounters *counters);
extern double dolon_function_average_seconds(const DolonFunctionCounters *counters);

#endif							/* DOLON_FUNCTION_PROFILING_H */
