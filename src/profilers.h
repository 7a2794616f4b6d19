/*-------------------------------------------------------------------------
 *
 * profilers.h
 *		Lists of profilers and the columns of a run.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_PROFILERS_H
#define DOLON_PROFILERS_H

#include "nodes/pg_list.h"
#include "utils/array.h"
#include "dolon_common.h"
#include "sampling.h"

/*
 * One profiler as configured: a built-in one, or an SQL function named by
 * an optional schema and a function name.  Zero-filled before it is set, so
 * that two specs compare equal with memcmp().
 */
typedef struct DolonProfilerSpec
{
	DolonBuiltinProfiler builtin;
	char		schema[NAMEDATALEN];	/* custom only; empty if unqualified */
	char		function[NAMEDATALEN];	/* custom only */
} DolonProfilerSpec;

/*
 * A parsed list of profilers, in column order.  As GUC "extra" data it is
 * allocated with malloc(), as the GUC machinery requires.
 */
typedef struct DolonProfilerList
{
	int			count;
	DolonProfilerSpec items[FLEXIBLE_ARRAY_MEMBER];
} DolonProfilerList;

#define DolonProfilerListSize(count) \
	(offsetof(DolonProfilerList, items) + (count) * sizeof(DolonProfilerSpec))

/* What a column of a run carries */
typedef enum DolonColumnKind
{
	COLUMN_BUILTIN,
	COLUMN_CUSTOM,
	COLUMN_FUNCTION_HITS,
	COLUMN_FUNCTION_ACTIVE_INSTANCES,
	COLUMN_FUNCTION_AVERAGE_TIME
} DolonColumnKind;

/* A column of a run, resolved when the run starts */
typedef struct DolonColumn
{
	DolonColumnKind kind;
	char		name[DOLON_MAX_COLUMN_BYTES];
	DolonBuiltinProfiler builtin;	/* COLUMN_BUILTIN */
	DolonProfilerSpec custom;	/* COLUMN_CUSTOM: the function, by name */
	int			entry;			/* COLUMN_FUNCTION_*: index in shared memory */
	uint64		entry_generation;	/* ... and the entry's generation */
} DolonColumn;

/* The columns of a run */
typedef struct DolonColumns
{
	int			count;
	DolonColumn items[FLEXIBLE_ARRAY_MEMBER];
} DolonColumns;

extern const char *dolon_builtin_profiler_name(DolonBuiltinProfiler id);
extern char *dolon_builtin_profiler_names(void);
extern bool dolon_parse_profilers(const char *text, DolonProfilerList **list,
								  DolonFailure *failure);
extern char *dolon_profiler_array_text(ArrayType *array, int *null_position);
extern char *dolon_profilers_text(const DolonProfilerList *list);
extern bool dolon_same_profilers(const DolonProfilerList *a,
								 const DolonProfilerList *b);
extern bool dolon_has_custom_profilers(const DolonProfilerList *list);
extern DolonColumns *dolon_build_columns(const DolonProfilerList *profilers,
										 bool check_functions);
extern bool dolon_row_needs_transaction(const DolonColumns *columns);
extern void dolon_sample_row(DolonSample *sample, const DolonColumns *columns,
							 double *values, bool *nulls);

#endif							/* DOLON_PROFILERS_H */
