/*-------------------------------------------------------------------------
 *
 * compat.h
 *		The differences between the PostgreSQL versions dolon builds
 *		against, each behind a name that says what it does.
 *
 * dolon is tested against PostgreSQL 15, 17 and 18 (see README.md,
 * "Supported versions").  Every difference of the server's API or of the
 * internal layout dolon reads is here, and only here: the other files use
 * these names and never test PG_VERSION_NUM themselves.  Each entry says
 * which versions differ and how.  Where a change came in 16, which is not
 * tested, the boundary is the release that made the change.
 *
 * What dolon reads directly in shared memory, and why it is correct in each
 * version, is explained at the top of sampling.c.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_COMPAT_H
#define DOLON_COMPAT_H

#include "common/jsonapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#if PG_VERSION_NUM >= 160000
#include "catalog/pg_proc.h"
#include "utils/guc_tables.h"
#endif

/*
 * The number of entries of the shared "Backend Status Array": one per
 * backend and one per auxiliary process, as the server sizes it in
 * BackendStatusShmemSize().  Up to 16 the auxiliary processes were counted
 * by type, NUM_AUXPROCTYPES (6 in 15, one more than the auxiliary
 * processes that have a PGPROC); 17 removed that enum and counts a slot for
 * every auxiliary PGPROC, NUM_AUXILIARY_PROCS (6 in 17; 6 plus the 32
 * possible I/O workers in 18).
 */
#if PG_VERSION_NUM >= 170000
#define DOLON_BACKEND_STATUS_SLOTS (MaxBackends + NUM_AUXILIARY_PROCS)
#else
#define DOLON_BACKEND_STATUS_SLOTS (MaxBackends + NUM_AUXPROCTYPES)
#endif

/*
 * This backend's number, 0 to MaxBackends - 1, unique among the backends
 * running; -1 in a process that has none.  17 numbers every PGPROC
 * (MyProcNumber), the backends' first; up to 16 a backend has a 1-based
 * MyBackendId.
 */
static inline int
dolon_backend_number(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProcNumber != INVALID_PROC_NUMBER && MyProcNumber < MaxBackends ?
		MyProcNumber : -1;
#else
	return MyBackendId != InvalidBackendId && MyBackendId <= MaxBackends ?
		MyBackendId - 1 : -1;
#endif
}

/*
 * The counters of the shared statistics entries dolon reads.  16 dropped
 * the n_ prefix of the fields of PgStat_StatDBEntry (n_xact_commit became
 * xact_commit) and renamed some of PgStat_StatTabEntry (n_live_tuples
 * became live_tuples, changes_since_analyze mod_since_analyze,
 * autovac_vacuum_count autovacuum_count); their meaning did not change.
 * DOLON_DATABASE_COUNTER takes the name of 16.
 */
#if PG_VERSION_NUM >= 160000
#define DOLON_DATABASE_COUNTER(entry, field) ((entry)->field)
#define DOLON_TABLE_LIVE_TUPLES(entry) ((entry)->live_tuples)
#define DOLON_TABLE_DEAD_TUPLES(entry) ((entry)->dead_tuples)
#define DOLON_TABLE_MOD_SINCE_ANALYZE(entry) ((entry)->mod_since_analyze)
#define DOLON_TABLE_AUTOVACUUM_COUNT(entry) ((entry)->autovacuum_count)
#define DOLON_TABLE_AUTOANALYZE_COUNT(entry) ((entry)->autoanalyze_count)
#else
#define DOLON_DATABASE_COUNTER(entry, field) ((entry)->n_##field)
#define DOLON_TABLE_LIVE_TUPLES(entry) ((entry)->n_live_tuples)
#define DOLON_TABLE_DEAD_TUPLES(entry) ((entry)->n_dead_tuples)
#define DOLON_TABLE_MOD_SINCE_ANALYZE(entry) ((entry)->changes_since_analyze)
#define DOLON_TABLE_AUTOVACUUM_COUNT(entry) ((entry)->autovac_vacuum_count)
#define DOLON_TABLE_AUTOANALYZE_COUNT(entry) ((entry)->autovac_analyze_count)
#endif

/*
 * Memory for the "extra" that a check hook of a setting hands to its assign
 * hook, which the server frees when the value goes.  Up to 15 the server
 * frees it with free(), so it comes from malloc(); from 16 with guc_free(),
 * so it must come from guc_malloc().  NULL when there is no memory.
 */
static inline void *
dolon_alloc_setting_extra(size_t size)
{
#if PG_VERSION_NUM >= 160000
	return guc_malloc(LOG, size);
#else
	return malloc(size);
#endif
}

/*
 * May this role call this function?  16 replaced pg_proc_aclcheck() by
 * object_aclcheck(), which takes the catalog of the object.
 */
static inline AclResult
dolon_function_aclcheck(Oid function, Oid roleid, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ProcedureRelationId, function, roleid, mode);
#else
	return pg_proc_aclcheck(function, roleid, mode);
#endif
}

/*
 * The number of settings this process knows, custom ones included.  16
 * removed GetNumConfigOptions(); get_guc_variables() gives the count
 * there, with an array of the settings made for the caller, which we free.
 */
static inline int
dolon_count_settings(void)
{
#if PG_VERSION_NUM >= 160000
	int			count;

	pfree(get_guc_variables(&count));
	return count;
#else
	return GetNumConfigOptions();
#endif
}

/*
 * A wait event set that lives as long as the process.  Up to 16,
 * CreateWaitEventSet() takes the memory context to allocate it in; from 17
 * it takes a resource owner to release it with, or NULL for none, and
 * always allocates it in TopMemoryContext.
 */
static inline WaitEventSet *
dolon_create_process_wait_event_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(TopMemoryContext, nevents);
#endif
}

/*
 * The callbacks of the JSON parser.  Up to 15 they return nothing; from 16
 * they return a JsonParseErrorType, JSON_SUCCESS to go on.  A callback is
 * declared to return DolonJsonActionResult and ends with
 * "return DOLON_JSON_ACTION_DONE;".
 */
#if PG_VERSION_NUM >= 160000
typedef JsonParseErrorType DolonJsonActionResult;
#define DOLON_JSON_ACTION_DONE JSON_SUCCESS
#else
typedef void DolonJsonActionResult;
#define DOLON_JSON_ACTION_DONE
#endif

/*
 * A JSON lexer over a string of known length, allocated in the current
 * memory context.  17 gave makeJsonLexContextCstringLen() a first argument,
 * a context to fill in, or NULL to allocate one.
 */
static inline JsonLexContext *
dolon_make_json_lexer(char *json, int length, int encoding, bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, length, encoding,
										need_escapes);
#else
	return makeJsonLexContextCstringLen(json, length, encoding, need_escapes);
#endif
}

/*
 * Free a lexer made by dolon_make_json_lexer(), with what it allocated.  17
 * added freeJsonLexContext(); before it, the lexer and its string buffer
 * are freed one by one.
 */
static inline void
dolon_free_json_lexer(JsonLexContext *lex)
{
#if PG_VERSION_NUM >= 170000
	freeJsonLexContext(lex);
#else
	if (lex->strval != NULL)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);
#endif
}

#endif							/* DOLON_COMPAT_H */
