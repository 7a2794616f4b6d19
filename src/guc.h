/*-------------------------------------------------------------------------
 *
 * guc.h
 *		The settings of the configured tracer, and those every worker shares.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_GUC_H
#define DOLON_GUC_H

#include "profilers.h"

extern char *dolon_host;
extern int	dolon_port;
extern int	dolon_frequency_ms;
extern char *dolon_tracer_name;
extern char *dolon_database;
extern char *dolon_profilers;
extern DolonProfilerList *dolon_profiler_list;
extern int	dolon_max_tracers;
extern char *dolon_profiler_role;
extern int	dolon_profiler_timeout_ms;
extern int	dolon_max_profiled_functions;
extern int	dolon_collector_port;
extern char *dolon_collector_listen_addresses;
extern int	dolon_collector_retention_s;
extern int	dolon_collector_max_columns;
extern int	dolon_metrics_port;
extern char *dolon_metrics_listen_addresses;
extern char *dolon_metrics_token;
extern char *dolon_metrics_databases;
extern void dolon_define_settings(void);
extern const char *dolon_effective_tracer_name(void);

#endif							/* DOLON_GUC_H */
