/*-------------------------------------------------------------------------
 *
 * dolon.c
 *		Entry point of the dolon extension: settings, shared memory and the
 *		registration of the tracer background worker.
 *
 * The tracer worker can only be registered, and its status area in shared
 * memory only be reserved, while shared_preload_libraries is processed.
 * Loaded any other way (LOAD, or a call to one of its functions), dolon
 * still defines its settings and computes diagnostics on demand, but warns
 * that nothing is traced.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "dolon.h"

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
	RequestAddinShmemSpace(dolon_function_profiling_shmem_size());
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
	dolon_function_profiling_shmem_init();
	dolon_collector_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Raise an error unless a function's SQL declaration has the columns its C
 * code fills: the extension's SQL objects may be older than the library.
 */
void
dolon_check_result_columns(TupleDesc tupdesc, int columns)
{
	if (tupdesc->natts != columns)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the SQL objects of dolon do not match its library"),
				 errdetail("A function returns %d columns where the library fills %d.",
						   tupdesc->natts, columns),
				 errhint("Drop and create the extension again.")));
}

/*
 * Raise an error unless the shared state of dolon exists, that is unless
 * dolon was loaded through shared_preload_libraries.
 */
void
dolon_require_shared_state(void)
{
	if (dolon_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("dolon must be loaded via shared_preload_libraries"),
				 errhint("Add dolon to shared_preload_libraries in postgresql.conf and restart the server.")));
}
