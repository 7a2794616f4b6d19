/*-------------------------------------------------------------------------
 *
 * sampling.h
 *		The values of the built-in profilers, and the server state they
 *		come from (also served as metrics), read in-process.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_SAMPLING_H
#define DOLON_SAMPLING_H

#include "datatype/timestamp.h"
#include "pgstat.h"
#include "host.h"

/*
 * Built-in profilers, in the order they are documented.  Their names are
 * the column names sent to the backend.
 */
typedef enum DolonBuiltinProfiler
{
	PROFILER_IDLE,
	PROFILER_COUNT_DB_CONNECTIONS,
	PROFILER_ACTIVE_TASKS,
	PROFILER_LIVE_MSGS,
	PROFILER_DEAD_MSGS,
	PROFILER_IDLE_IN_TRANSACTION,
	PROFILER_WAITING_ON_LOCKS,
	PROFILER_MAX_CONNECTIONS,
	PROFILER_CONNECTIONS_PERCENT,
	PROFILER_OLDEST_TRANSACTION_SECONDS,
	PROFILER_XACT_COMMIT_RATE,
	PROFILER_XACT_ROLLBACK_RATE,
	PROFILER_DEADLOCKS,
	PROFILER_REPLICATION_LAG_SECONDS,
	PROFILER_CPU_PERCENT,
	PROFILER_VIRTUAL_MEMORY_PERCENT,
	PROFILER_MEMORY_USE,
	PROFILER_MEM_ALLOCATION,
	NUM_BUILTIN_PROFILERS,
	PROFILER_CUSTOM = NUM_BUILTIN_PROFILERS /* an SQL function */
} DolonBuiltinProfiler;

/*
 * Counts read from the backend status entries in shared memory, the source
 * of pg_stat_activity and of pg_stat_database.numbackends.
 */
typedef struct DolonBackendActivity
{
	int64		connections;	/* entries with a database: sum(numbackends) */
	int64		client_backends;	/* backend_type 'client backend' */
	int64		idle;			/* state 'idle' */
	int64		active;			/* state 'active' */
	int64		idle_in_transaction;	/* state 'idle in transaction' */
	TimestampTz oldest_xact_start;	/* 0 if no transaction runs */
} DolonBackendActivity;

/* Tuple counts summed over the tables of pg_stat_user_tables */
typedef struct DolonTableTuples
{
	int64		live;
	int64		dead;
} DolonTableTuples;

/* Counters summed over the rows of pg_stat_database */
typedef struct DolonDatabaseCounters
{
	int64		xact_commit;
	int64		xact_rollback;
	int64		deadlocks;
} DolonDatabaseCounters;

/* The database counters as read at some time */
typedef struct DolonCounterReading
{
	TimestampTz time;
	DolonDatabaseCounters counters;
} DolonCounterReading;

/* Readings of the database counters kept for the rates: see sampling.c */
#define DOLON_COUNTER_READINGS 32

/*
 * The state a process keeps from one sample to the next, for the profilers
 * that measure a change: the CPU since the previous sample, the database
 * counters over a window of recent readings (a ring).
 */
typedef struct DolonSampleHistory
{
	DolonCpuReading cpu;
	int			readings;		/* in the ring */
	int			newest;			/* index of the newest reading */
	DolonCounterReading ring[DOLON_COUNTER_READINGS];
} DolonSampleHistory;

/*
 * One sample in the making: each source of values is read at most once per
 * sample, however many profilers use it.
 */
typedef struct DolonSample
{
	TimestampTz time;
	DolonSampleHistory *history;
	bool		have_backend_activity;
	DolonBackendActivity backend_activity;
	bool		have_waiting_on_locks;
	int64		waiting_on_locks;
	bool		have_table_tuples;
	DolonTableTuples table_tuples;
	bool		have_database_counters;
	DolonDatabaseCounters database_counters;
	bool		rates_known;	/* false on the first sample */
	double		xact_commit_rate;
	double		xact_rollback_rate;
	bool		have_server_memory;
	bool		server_memory_known;
	double		server_pss_gb;
	double		server_private_mb;
} DolonSample;

/*
 * The sessions of one database, as pg_stat_database.numbackends and
 * pg_stat_activity grouped by state show them; the states are those of
 * dolon_session_state_names.
 */
#define DOLON_SESSION_STATES 6

typedef struct DolonDatabaseSessions
{
	int64		backends;		/* every entry attached to the database */
	int64		count[DOLON_SESSION_STATES];
	TimestampTz oldest_xact_start[DOLON_SESSION_STATES];	/* 0 if none */
} DolonDatabaseSessions;

extern const char *const dolon_session_state_names[DOLON_SESSION_STATES];

extern double dolon_builtin_value(DolonSample *sample,
								  DolonBuiltinProfiler id, bool *isnull);
extern bool dolon_builtin_needs_transaction(DolonBuiltinProfiler id);
extern void dolon_read_backend_activity(DolonBackendActivity *activity);
extern void dolon_read_table_tuples(DolonTableTuples *tuples);
extern void dolon_read_database_sessions(const Oid *databases, int count,
										 DolonDatabaseSessions *sessions);
extern const Oid *dolon_user_table_oids(int *count);
extern const Oid *dolon_database_oids(int *count);
extern PgStat_StatTabEntry *dolon_fetch_table_stats(Oid database, Oid table);
extern void dolon_release_stats_entry(void *entry);

#endif							/* DOLON_SAMPLING_H */
