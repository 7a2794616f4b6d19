/*-------------------------------------------------------------------------
 *
 * dolon.h
 *		Declarations shared by the files of the dolon extension.
 *
 * dolon samples the state of a running server in-process and sends each
 * sample, as one UDP datagram in the JSON protocol of the mnemic tracing
 * system, to a tracing backend.  The pieces are:
 *
 *	dolon.c			module entry point, shared memory, worker registration
 *	guc.c			the dolon.* settings and their validation
 *	sampling.c		the built-in profilers and where each reads its value
 *	protocol.c		encoding of mnemic messages
 *	transport.c		the UDP socket towards the backend
 *	throttle.c		rate limiting of repeated log messages
 *	worker.c		the "dolon tracer" background worker loop
 *	functions.c		the SQL-callable functions
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_H
#define DOLON_H

#include <sys/socket.h>

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
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

/* Length of the text form of a UUID, without the terminating NUL */
#define DOLON_UUID_TEXT_LEN 36

/* The last error the worker met, as shown by dolon.tracer */
#define DOLON_MAX_ERROR_BYTES 256

/*
 * Built-in profilers, in the order they are documented.  The names are the
 * column names sent to the backend.
 */
typedef enum DolonProfilerId
{
	PROFILER_IDLE,
	PROFILER_COUNT_DB_CONNECTIONS,
	PROFILER_ACTIVE_TASKS,
	PROFILER_LIVE_MSGS,
	PROFILER_DEAD_MSGS,
	NUM_BUILTIN_PROFILERS
} DolonProfilerId;

/*
 * A parsed dolon.profilers setting: the profilers of a row, in column
 * order.  Allocated with malloc() by the GUC check hook, as GUC "extra"
 * data must be.
 */
typedef struct DolonProfilerList
{
	int			count;
	DolonProfilerId ids[FLEXIBLE_ARRAY_MEMBER];
} DolonProfilerList;

/*
 * Counts read from the backend status entries in shared memory, the source
 * of pg_stat_activity and of pg_stat_database.numbackends.
 */
typedef struct DolonBackendActivity
{
	int64		connections;	/* entries with a database: sum(numbackends) */
	int64		idle;			/* state = 'idle' */
	int64		active;			/* state = 'active' */
} DolonBackendActivity;

/* Tuple counts summed over the tables of pg_stat_user_tables */
typedef struct DolonTableTuples
{
	int64		live;
	int64		dead;
} DolonTableTuples;

/*
 * One sample in the making: each source of values is read at most once per
 * sample, however many profilers use it.
 */
typedef struct DolonSample
{
	bool		have_backend_activity;
	DolonBackendActivity backend_activity;
	bool		have_table_tuples;
	DolonTableTuples table_tuples;
} DolonSample;

/*
 * State of the tracer worker, kept in shared memory so that dolon.tracer can
 * show it.  Written by the worker, read by any backend; every field is
 * protected by the mutex.
 */
typedef struct DolonTracerStatus
{
	slock_t		mutex;
	pid_t		pid;			/* 0 when the worker is not running */
	bool		has_run;		/* false until the first run starts */
	pg_uuid_t	run_uuid;
	TimestampTz run_started;
	char		tracer_name[DOLON_MAX_TRACER_NAME_BYTES];
	char		host[DOLON_MAX_HOST_BYTES];
	int			port;
	int			frequency_ms;
	int64		rows_sent;
	int64		send_errors;
	char		last_error[DOLON_MAX_ERROR_BYTES];
	TimestampTz last_error_time;	/* 0 when there was no error */
	double		last_sample_us;
	double		total_sample_us;
	int64		samples;
} DolonTracerStatus;

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

/*
 * Rate limiting of a repeated log message: at most one report per interval,
 * saying how many were held back since the previous one.
 */
typedef struct DolonLogThrottle
{
	TimestampTz last_report;	/* 0 before the first report */
	int64		suppressed;		/* occurrences held back since then */
} DolonLogThrottle;

/* dolon.c */
extern DolonTracerStatus *dolon_shared_status;
extern void dolon_require_shared_state(void);

/* guc.c */
extern char *dolon_host;
extern int	dolon_port;
extern int	dolon_frequency_ms;
extern char *dolon_tracer_name;
extern char *dolon_database;
extern DolonProfilerList *dolon_profiler_list;
extern void dolon_define_settings(void);
extern const char *dolon_effective_tracer_name(void);

/* sampling.c */
extern const char *dolon_profiler_name(DolonProfilerId id);
extern bool dolon_profiler_lookup(const char *name, DolonProfilerId *id);
extern char *dolon_profiler_names(void);
extern void dolon_read_backend_activity(DolonBackendActivity *activity);
extern void dolon_read_table_tuples(DolonTableTuples *tuples);
extern void dolon_sample_row(DolonSample *sample,
							 const DolonProfilerList *profilers,
							 double *values, bool *nulls);

/* protocol.c */
extern void mnemic_new_run_uuid(pg_uuid_t *uuid);
extern void mnemic_uuid_text(const pg_uuid_t *uuid, char *text);
extern void mnemic_encode_create_trace_run(StringInfo buf,
										   const char *app_name,
										   const DolonProfilerList *profilers,
										   const char *uuid_text);
extern void mnemic_encode_row(StringInfo buf, const double *values,
							  const bool *nulls, int count,
							  const char *uuid_text);

/* transport.c */
extern void mnemic_sender_init(MnemicSender *sender);
extern bool mnemic_sender_set_target(MnemicSender *sender, const char *host,
									 int port);
extern bool mnemic_sender_send(MnemicSender *sender, const char *data,
							   size_t len);

/* throttle.c */
extern bool dolon_throttle_permits(DolonLogThrottle *throttle,
								   int64 *suppressed);

/* worker.c */
extern void dolon_register_tracer_worker(void);
extern PGDLLEXPORT void dolon_tracer_main(Datum main_arg);

#endif							/* DOLON_H */
