/*-------------------------------------------------------------------------
 *
 * dolon.h
 *		Declarations shared by the files of the dolon extension.
 *
 * dolon samples the state of a running server in-process and sends each
 * sample, as one UDP datagram in the JSON protocol of the mnemic tracing
 * system, to a tracing backend.  The pieces are:
 *
 *	dolon.c				module entry point, shared memory
 *	guc.c				the dolon.* settings and their validation
 *	profilers.c			profiler lists: parsing, and the columns of a run
 *	sampling.c			the built-in profilers read from shared memory
 *	host.c				the built-in profilers read from /proc
 *	custom_profilers.c	SQL functions used as profilers: checks and calls
 *	profiler_runner.c	the process that runs a tracer's custom profilers
 *	function_profiling.c counting the calls of profiled functions
 *	protocol.c			encoding and decoding of mnemic messages
 *	transport.c			the UDP socket towards the backend
 *	throttle.c			rate limiting of repeated log messages
 *	transaction.c		a worker's steps: in a transaction of their own, and
 *						what comes between two
 *	tracers.c			tracer slots in shared memory, start and stop
 *	worker.c			the tracer background worker loop
 *	collector.c			the collector: an embedded mnemic backend
 *	functions.c			the SQL-callable functions
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_H
#define DOLON_H

#include <sys/socket.h>

#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/uuid.h"

/*
 * mnemic stores at most this many characters of a run's app_name and drops
 * a longer announcement altogether.
 */
#define DOLON_MAX_TRACER_NAME_CHARS 128
/* ... which in the worst case of 4-byte UTF-8 characters takes this much */
#define DOLON_MAX_TRACER_NAME_BYTES (DOLON_MAX_TRACER_NAME_CHARS * 4 + 1)

/* A host name (RFC 1035) or an address literal, with a terminating NUL */
#define DOLON_MAX_HOST_BYTES 256

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

/* Readings of /proc/stat, kept from one sample to the next */
typedef struct DolonCpuReading
{
	uint64		busy;
	uint64		total;
	bool		valid;
} DolonCpuReading;

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
 * State of one tracer, kept in shared memory so that dolon.tracers can show
 * it.  Written by the tracer's worker, read by any backend, under mutex.
 */
typedef struct DolonTracerStatus
{
	slock_t		mutex;
	pid_t		pid;			/* 0 when the worker is not running */
	bool		off;			/* the configured tracer, turned off */
	bool		has_run;		/* false until the first run starts */
	pg_uuid_t	run_uuid;
	TimestampTz run_started;
	char		host[DOLON_MAX_HOST_BYTES];
	int			port;
	int			frequency_ms;
	int			columns;
	int64		samples;
	int64		rows_sent;
	int64		send_errors;
	int64		profiler_errors;
	char		last_error[DOLON_MAX_ERROR_BYTES];
	TimestampTz last_error_time;	/* 0 when there was no error */
	double		last_sample_us;
	double		total_sample_us;
} DolonTracerStatus;

/*
 * What a tracer and the process running its custom profilers exchange: see
 * profiler_runner.c.  The tracer asks for a round of calls, the runner
 * answers each call as it ends and the round when it is over.  Under mutex.
 */
typedef struct DolonProfilerExchange
{
	slock_t		mutex;
	pid_t		runner_pid;		/* 0 while no runner serves the tracer */
	Latch	   *runner_latch;
	Latch	   *tracer_latch;
	uint64		requested;		/* rounds the tracer asked for */
	uint64		answered;		/* rounds the runner is done with */
	int			timeout_ms;		/* of each call of the current round */
	int			count;			/* profilers of the round */
	DolonProfilerSpec specs[DOLON_MAX_CUSTOM_PROFILERS];
	int			calling;		/* the profiler being called, or -1 */
	TimestampTz call_started;	/* ... since when */
	bool		have_value[DOLON_MAX_CUSTOM_PROFILERS];
	double		values[DOLON_MAX_CUSTOM_PROFILERS];
	char		errors[DOLON_MAX_CUSTOM_PROFILERS][DOLON_MAX_ERROR_BYTES];
	char		exit_reason[DOLON_MAX_ERROR_BYTES]; /* why a runner left */
} DolonProfilerExchange;

/*
 * A slot for one tracer in shared memory.  Slot 0 is the tracer configured
 * in postgresql.conf; the others hold tracers started with
 * dolon.start_tracer().  The definition is written under the slots lock
 * when the slot is taken and does not change while it is in use.
 */
typedef struct DolonTracerSlot
{
	bool		in_use;
	uint64		ticket;			/* identifies this use of the slot */
	char		name[DOLON_MAX_TRACER_NAME_BYTES];
	char		host[DOLON_MAX_HOST_BYTES];
	int			port;
	int			frequency_ms;
	char		profilers[DOLON_MAX_PROFILERS_BYTES];
	pg_uuid_t	first_run_uuid;
	TransactionId start_xid;	/* the worker waits for it to commit */
	TransactionId record_xid;	/* wrote its row; invalid once it is seen */
	TransactionId stop_xid;		/* the worker stops when it commits */
	bool		dropped;		/* its row is gone or changed: it stops */
	DolonTracerStatus status;
	DolonProfilerExchange exchange;
} DolonTracerSlot;

typedef struct DolonSharedState
{
	LWLock	   *lock;			/* protects the slots' definitions */
	pg_atomic_uint32 announce_requests; /* see dolon_request_announcements() */
	int			max_tracers;
	DolonTracerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} DolonSharedState;

/*
 * Rate limiting of a repeated log message: at most one report per interval,
 * saying how many were held back since the previous one.
 */
typedef struct DolonLogThrottle
{
	TimestampTz last_report;	/* 0 before the first report */
	int64		suppressed;		/* occurrences held back since then */
} DolonLogThrottle;

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
	DolonProfilerExchange *exchange;
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

/* The slot of the tracer configured in postgresql.conf */
#define CONFIGURED_TRACER_SLOT 0

/* The LWLocks of dolon, in the named tranche "dolon" */
#define DOLON_LOCK_TRACERS 0
#define DOLON_LOCK_FUNCTIONS 1
#define DOLON_NUM_LOCKS 2

/*
 * The UDP socket towards a mnemic backend.  See transport.c.
 */
typedef struct MnemicSender
{
	pgsocket	sock;			/* PGINVALID_SOCKET until connected */
	char		host[DOLON_MAX_HOST_BYTES];
	int			port;
	struct sockaddr_storage addr;	/* the address sock is connected to */
	socklen_t	addrlen;
	TimestampTz last_resolve;	/* 0 when the host is to be resolved anew */
	char		error[DOLON_MAX_ERROR_BYTES];	/* why the last send failed */
} MnemicSender;

/* A message of the mnemic protocol, decoded */
typedef enum MnemicMessageType
{
	MNEMIC_CREATE_TRACE_RUN,
	MNEMIC_ROW
} MnemicMessageType;

typedef struct MnemicMessage
{
	MnemicMessageType type;
	pg_uuid_t	uuid;
	char	   *app_name;		/* create_trace_run */
	List	   *column_names;	/* create_trace_run: of char * */
	int			nvalues;		/* row */
	float4	   *values;
	bool	   *nulls;
} MnemicMessage;

/* dolon.c */
extern void dolon_require_shared_state(void);
extern void dolon_check_result_columns(TupleDesc tupdesc, int columns);

/* guc.c */
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
extern void dolon_define_settings(void);
extern const char *dolon_effective_tracer_name(void);
extern bool dolon_host_is_valid(const char *host, const char **detail,
								const char **hint);

/* profilers.c */
extern const char *dolon_builtin_profiler_name(DolonBuiltinProfiler id);
extern char *dolon_builtin_profiler_names(void);
extern bool dolon_parse_profilers(const char *text, DolonProfilerList **list,
								  char **detail, char **hint);
extern char *dolon_profilers_text(const DolonProfilerList *list);
extern bool dolon_same_profilers(const DolonProfilerList *a,
								 const DolonProfilerList *b);
extern bool dolon_has_custom_profilers(const DolonProfilerList *list);
extern DolonColumns *dolon_build_columns(const DolonProfilerList *profilers,
										 bool check_functions);
extern void dolon_sample_row(DolonSample *sample, const DolonColumns *columns,
							 double *values, bool *nulls);

/* sampling.c */
extern double dolon_builtin_value(DolonSample *sample,
								  DolonBuiltinProfiler id, bool *isnull);
extern void dolon_read_backend_activity(DolonBackendActivity *activity);
extern void dolon_read_table_tuples(DolonTableTuples *tuples);

/* host.c */
extern bool dolon_read_cpu_percent(DolonCpuReading *previous, double *percent);
extern bool dolon_read_virtual_memory_percent(double *percent);
extern bool dolon_read_server_memory(double *pss_gb, double *private_mb);

/* custom_profilers.c */
extern const char *dolon_check_profiler_function(const DolonProfilerSpec *spec,
												 Oid *function, Oid *result_type,
												 char **detail, char **hint);
extern Oid	dolon_profiler_role_oid(char **problem);
extern char *dolon_profiler_name(const DolonProfilerSpec *spec);
extern bool dolon_call_profiler(const DolonProfilerSpec *spec, Oid role,
								int timeout_ms, double *value, char **error);

/* profiler_runner.c */
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

/* function_profiling.c */
extern Size dolon_function_profiling_shmem_size(void);
extern void dolon_function_profiling_shmem_init(void);
extern void dolon_install_function_hooks(void);
extern uint64 dolon_profiled_functions_generation(void);
extern int	dolon_add_function_columns(DolonColumns **columns);
extern double dolon_function_column_value(const DolonColumn *column,
										  bool *isnull);

/* protocol.c */
extern void mnemic_new_run_uuid(pg_uuid_t *uuid);
extern void mnemic_uuid_text(const pg_uuid_t *uuid, char *text);
extern void mnemic_plain_column_name(const char *name, char *column,
									 size_t size);
extern void mnemic_encode_create_trace_run(StringInfo buf,
										   const char *app_name,
										   const DolonColumns *columns,
										   const char *uuid_text);
extern void mnemic_encode_row(StringInfo buf, const double *values,
							  const bool *nulls, int count,
							  const char *uuid_text);
extern const char *mnemic_decode(char *data, int length,
								 MnemicMessage *message);

/* transport.c */
extern void mnemic_sender_init(MnemicSender *sender);
extern bool mnemic_sender_set_target(MnemicSender *sender, const char *host,
									 int port);
extern bool mnemic_sender_send(MnemicSender *sender, const char *data,
							   size_t len);

/* transaction.c */
extern char *dolon_run_in_transaction(void (*step) (void *arg), void *arg,
									  bool with_snapshot);
extern void dolon_handle_interrupts(void);
extern bool dolon_between_steps(void);

/* throttle.c */
extern bool dolon_throttle_permits(DolonLogThrottle *throttle,
								   int64 *suppressed);

/* tracers.c */
extern DolonSharedState *dolon_shared;
extern Size dolon_tracers_shmem_size(void);
extern void dolon_tracers_shmem_init(void);
extern char *dolon_restore_tracers(void);
extern void dolon_request_announcements(void);

/* collector.c */
extern Size dolon_collector_shmem_size(void);
extern void dolon_collector_shmem_init(void);
extern void dolon_register_collector(void);
extern PGDLLEXPORT void dolon_collector_main(Datum main_arg);

/* worker.c */
extern void dolon_register_configured_tracer(void);
extern bool dolon_launch_tracer(int slot, uint64 ticket);
extern PGDLLEXPORT void dolon_tracer_main(Datum main_arg);

#endif							/* DOLON_H */
