/*-------------------------------------------------------------------------
 *
 * custom_profilers.h
 *		SQL functions used as profilers: their validation and their calls.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_CUSTOM_PROFILERS_H
#define DOLON_CUSTOM_PROFILERS_H

#include "profilers.h"

extern bool dolon_check_profiler_function(const DolonProfilerSpec *spec,
										  Oid *function, Oid *result_type,
										  DolonFailure *failure);
extern Oid	dolon_profiler_role_oid(const char *role_name, Oid started_by,
									DolonFailure *failure);
extern char *dolon_profiler_name(const DolonProfilerSpec *spec);
extern bool dolon_call_profiler(const DolonProfilerSpec *spec, Oid role,
								int timeout_ms, double *value, char **error);

#endif							/* DOLON_CUSTOM_PROFILERS_H */
