/*-------------------------------------------------------------------------
 *
 * dolon_common.h
 *		What every file of dolon shares: its limits, its locks, and the checks
 *		of its SQL functions.
 *
 * dolon samples the state of a running server in-process and sends each
 * sample, as one UDP datagram in the JSON protocol of the mnemic tracing
 * system, to a tracing backend.  Each file owns one concern and declares
 * what it offers in a header of the same name (see README.md, "Design");
 * this one holds only what belongs to none of them.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_COMMON_H
#define DOLON_COMMON_H

#include "access/tupdesc.h"

/*
 * mnemic stores at most this many characters of a run's app_name and drops
 * a longer announcement altogether.
 */
#define DOLON_MAX_TRACER_NAME_CHARS 128
/* ... which in the worst case of 4-byte UTF-8 characters takes this much */
#define DOLON_MAX_TRACER_NAME_BYTES (DOLON_MAX_TRACER_NAME_CHARS * 4 + 1)

/* A host name (RFC 1035) or an address literal, with a terminating NUL */
#define DOLON_MAX_HOST_BYTES 256

/* Longest bearer token of the metrics endpoint (dolon.metrics_token) */
#define DOLON_MAX_TOKEN_BYTES 1024

/* The databases whose tables the metrics endpoint reports */
#define DOLON_MAX_METRICS_DATABASES 64

/* The text of a tracer's list of profilers, as kept in shared memory */
#define DOLON_MAX_PROFILERS_BYTES 2048

/* Length of the text form of a UUID, without the terminating NUL */
#define DOLON_UUID_TEXT_LEN 36

/* The last error a tracer met, as shown by dolon.tracers */
#define DOLON_MAX_ERROR_BYTES 256

/* A column name: a function name and a suffix such as _active_instances */
#define DOLON_MAX_COLUMN_BYTES (NAMEDATALEN + 32)

/* The smallest interval between two samples, in milliseconds */
#define DOLON_MIN_FREQUENCY_MS 10

/* Custom profilers a tracer can have */
#define DOLON_MAX_CUSTOM_PROFILERS 64

/* The LWLocks of dolon, in the named tranche "dolon" */
#define DOLON_LOCK_TRACERS 0
#define DOLON_LOCK_FUNCTIONS 1
#define DOLON_NUM_LOCKS 2

/*
 * Why something failed, as PostgreSQL reports it: an error code, a message
 * and, where there are some, a detail and a hint.  Code that must not raise
 * an error (check hooks of settings, checks whose caller decides what a
 * failure means) fills one in; its caller reports it with
 * dolon_report_failure(), or hands its parts to a check hook, changing the
 * message to its own first if it knows better what failed.
 */
typedef struct DolonFailure
{
	int			sqlerrcode;
	char	   *message;
	char	   *detail;			/* or NULL */
	char	   *hint;			/* or NULL */
} DolonFailure;

static inline void
dolon_set_failure(DolonFailure *failure, int sqlerrcode, char *message,
				  char *detail, char *hint)
{
	failure->sqlerrcode = sqlerrcode;
	failure->message = message;
	failure->detail = detail;
	failure->hint = hint;
}

/* Report a failure at elevel; at ERROR, raise it */
static inline void
dolon_report_failure(int elevel, const DolonFailure *failure)
{
	ereport(elevel,
			(errcode(failure->sqlerrcode),
			 errmsg_internal("%s", failure->message),
			 failure->detail ? errdetail_internal("%s", failure->detail) : 0,
			 failure->hint ? errhint("%s", failure->hint) : 0));
}

/*
 * Raise an error unless the shared state of a module exists, that is
 * unless dolon was loaded through shared_preload_libraries.
 */
static inline void
dolon_require_shared_state(const void *state)
{
	if (state == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("dolon must be loaded via shared_preload_libraries"),
				 errhint("Add dolon to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Raise an error unless a function's SQL declaration has the columns its C
 * code fills: the extension's SQL objects may be older than the library.
 */
static inline void
dolon_check_result_columns(TupleDesc tupdesc, int columns)
{
	if (tupdesc->natts != columns)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the SQL objects of dolon do not match its library"),
				 errdetail("A function returns %d columns where the library fills %d.",
						   tupdesc->natts, columns),
				 errhint("Update the extension: ALTER EXTENSION dolon UPDATE.")));
}

#endif							/* DOLON_COMMON_H */
