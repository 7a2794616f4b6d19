/*-------------------------------------------------------------------------
 *
 * dolon.c
 *		Entry point of the dolon extension: its settings, shared memory and
 *		hooks, and the background workers registered at server start.
 *
 * The tracer worker can only be registered, and its status area in shared
 * memory only be reserved, while shared_preload_libraries is processed.
 * Loaded any other way (LOAD, or a call to one of its functions), dolon
 * still defines its settings and computes diagnostics on demand, but warns
 * that nothing is traced.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "collector.h"
#include "dolon_common.h"
#include "function_profiling.h"
#include "guc.h"
#include "metrics_server.h"
#include "profiler_runner.h"
#include "tracers.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void dolon_shmem_request(void);
static void dolon_shmem_startup(void);

/*
 * Module load callback
 */
void
_PG_init(void)
{
	dolon_define_settings();

	if (!process_shared_preload_libraries_in_progress)
	{
		ereport(WARNING,
				(errmsg("dolon is not loaded through shared_preload_libraries"),
				 errdetail("No tracer runs and no function is profiled; only the diagnostic functions work."),
				 errhint("Add dolon to shared_preload_libraries in postgresql.conf and restart the server.")));
		return;
	}

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = dolon_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = dolon_shmem_startup;

	dolon_install_function_hooks();
	dolon_register_configured_tracer();
	dolon_register_collector();
	dolon_register_metrics_server();
}

/*
 * shmem_request hook: reserve room for the tracer slots and the profiled
 * functions, and their locks
 */
static void
dolon_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(dolon_tracers_shmem_size());
	RequestAddinShmemSpace(dolon_runner_shmem_size(dolon_max_tracers));
	RequestAddinShmemSpace(dolon_function_profiling_shmem_size(dolon_max_profiled_functions));
	RequestAddinShmemSpace(dolon_collector_shmem_size());
	RequestNamedLWLockTranche("dolon", DOLON_NUM_LOCKS);
}

/*
 * shmem_startup hook: attach to, and if need be initialize, shared state
 */
static void
dolon_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	dolon_tracers_shmem_init();
	dolon_runner_shmem_init(dolon_max_tracers);
	dolon_function_profiling_shmem_init(dolon_max_profiled_functions);
	dolon_collector_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}
