/*-------------------------------------------------------------------------
 *
 * metrics_server.c
 *		The metrics endpoint: a background worker, "dolon metrics", that
 *		serves the server's metrics over HTTP to Prometheus and the
 *		scrapers that speak its format.
 *
 * The worker runs when dolon.metrics_port is set.  It listens on each
 * address of dolon.metrics_listen_addresses (listen.c) and leaves HTTP to
 * libmicrohttpd, one daemon per listening socket, driven from the worker's
 * own wait loop: each daemon runs with no thread of its own (MHD_USE_EPOLL
 * without an internal thread), and gives an epoll descriptor that becomes
 * readable when it has work; the worker waits on those, its latch and the
 * postmaster, and lets the daemons work when one is ready.  Every callback
 * thus runs in the worker's one thread, where PostgreSQL may be called.
 *
 * What a client can cost is bounded: at most MAX_CONNECTIONS connections
 * at once (more are refused), a request of at most REQUEST_MEMORY_BYTES
 * (libmicrohttpd answers a larger one with an error and closes), a
 * connection idle for CONNECTION_TIMEOUT_S is closed.  A scrape reads
 * shared memory (metrics_exposition.c) in a transaction of its own, whose
 * failure answers 500 and is logged; the tracers are other processes,
 * which no client of this one can reach.  Messages a client can cause are
 * rate-limited; the token is never logged.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <microhttpd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"

#include "compat.h"
#include "guc.h"
#include "listen.h"
#include "metrics_exposition.h"
#include "metrics_request.h"
#include "metrics_server.h"
#include "throttle.h"
#include "transaction.h"

/* Seconds before the postmaster starts the worker again after a failure */
#define METRICS_RESTART_SECONDS 10

/* Listening sockets: several addresses, each maybe IPv4 and IPv6 */
#define MAX_SOCKETS 16

/* Bounds on what clients may cost */
#define MAX_CONNECTIONS 64
#define REQUEST_MEMORY_BYTES (32 * 1024)
#define CONNECTION_TIMEOUT_S 5

/* The longest the worker sleeps without looking at libmicrohttpd's timers */
#define MAX_WAIT_MS 1000

#define TEXT_FORMAT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Where the bodies of responses are allocated; each is freed when sent */
static MemoryContext response_context = NULL;

/* Rate limiting of the messages that clients can cause */
static DolonLogThrottle library_messages_throttle;
static DolonLogThrottle scrape_errors_throttle;

/*
 * Register the metrics worker, if dolon.metrics_port is set.  Called from
 * _PG_init while shared_preload_libraries is processed.
 */
void
dolon_register_metrics_server(void)
{
	BackgroundWorker worker;

	if (dolon_metrics_port == 0)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = METRICS_RESTART_SECONDS;
	strcpy(worker.bgw_library_name, "dolon");
	strcpy(worker.bgw_function_name, "dolon_metrics_main");
	strcpy(worker.bgw_name, "dolon metrics");
	strcpy(worker.bgw_type, "dolon metrics");
	RegisterBackgroundWorker(&worker);
}

/*
 * libmicrohttpd's messages (a client that broke the protocol, a connection
 * refused at the limit), logged at most once per interval.
 */
static void
log_library_message(void *cls, const char *format, va_list args)
{
	int64		suppressed;
	char		message[256];
	size_t		length;

	if (!dolon_throttle_permits(&library_messages_throttle, &suppressed))
		return;
	vsnprintf(message, sizeof(message), format, args);
	length = strlen(message);
	if (length > 0 && message[length - 1] == '\n')
		message[length - 1] = '\0';
	ereport(LOG,
			(errmsg("dolon metrics: %s", message),
			 suppressed > 0 ?
			 errdetail("%lld more of these were not logged since the last report.",
					   (long long) suppressed) : 0));
}

/* Free the body of a response once libmicrohttpd has sent it */
static void
free_body(void *body)
{
	pfree(body);
}

/* The metrics in a format, as the step of a transaction */
typedef struct Scrape
{
	StringInfoData body;
	DolonExpositionFormat format;
} Scrape;

static void
write_metrics_step(void *arg)
{
	Scrape	   *scrape = (Scrape *) arg;

	dolon_write_metrics(&scrape->body, scrape->format);
}

/*
 * Queue a response whose body is in response_context, and give it up.
 */
static enum MHD_Result
queue_body(struct MHD_Connection *connection, unsigned int status,
		   char *body, size_t length, const char *content_type)
{
	struct MHD_Response *response;
	enum MHD_Result result;

	response = MHD_create_response_from_buffer_with_free_callback(length, body,
																  free_body);
	if (response == NULL)
	{
		pfree(body);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
								"Bearer realm=\"dolon\"");
	else if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

/* Queue a short plain-text response */
static enum MHD_Result
queue_text(struct MHD_Connection *connection, unsigned int status,
		   const char *text)
{
	char	   *body = MemoryContextStrdup(response_context, text);

	return queue_body(connection, status, body, strlen(body),
					  "text/plain; charset=utf-8");
}

/*
 * Answer the metrics: read them in a transaction of their own.
 */
static enum MHD_Result
answer_metrics(struct MHD_Connection *connection, const char *accept)
{
	Scrape		scrape;
	MemoryContext caller_context;
	char	   *error;

	scrape.format = dolon_metrics_format(accept);
	caller_context = MemoryContextSwitchTo(response_context);
	initStringInfo(&scrape.body);
	MemoryContextSwitchTo(caller_context);

	error = dolon_run_in_transaction(write_metrics_step, &scrape, false);
	if (error != NULL)
	{
		int64		suppressed;

		pfree(scrape.body.data);
		if (dolon_throttle_permits(&scrape_errors_throttle, &suppressed))
			ereport(LOG,
					(errmsg("dolon metrics could not read the metrics: %s", error),
					 suppressed > 0 ?
					 errdetail("%lld more of these were not logged since the last report.",
							   (long long) suppressed) : 0));
		return queue_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
						  "the metrics could not be read; see the server log\n");
	}
	return queue_body(connection, MHD_HTTP_OK, scrape.body.data, scrape.body.len,
					  scrape.format == DOLON_FORMAT_OPENMETRICS ?
					  OPENMETRICS_TYPE : TEXT_FORMAT_TYPE);
}

/*
 * libmicrohttpd's access handler: called when a request's headers have
 * come, and again for each part of its body and at its end.  The endpoint
 * takes no bodies: what one holds is passed over, and the answer given at
 * the end.
 */
static enum MHD_Result
answer_request(void *cls, struct MHD_Connection *connection, const char *url,
			   const char *method, const char *version,
			   const char *upload_data, size_t *upload_data_size,
			   void **request_state)
{
	static int	started;
	DolonMetricsRequest request;

	if (*request_state == NULL)
	{
		*request_state = &started;
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		*upload_data_size = 0;
		return MHD_YES;
	}

	request.method = method;
	request.path = url;
	request.accept = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
												 MHD_HTTP_HEADER_ACCEPT);
	request.authorization = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
														MHD_HTTP_HEADER_AUTHORIZATION);

	switch (dolon_metrics_answer(&request, dolon_metrics_token))
	{
		case DOLON_ANSWER_METRICS:
			return answer_metrics(connection, request.accept);
		case DOLON_ANSWER_UNAUTHORIZED:
			return queue_text(connection, MHD_HTTP_UNAUTHORIZED,
							  "a bearer token is required\n");
		case DOLON_ANSWER_METHOD_NOT_ALLOWED:
			return queue_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
							  "only GET and HEAD are served\n");
		case DOLON_ANSWER_NOT_FOUND:
			break;
	}
	return queue_text(connection, MHD_HTTP_NOT_FOUND,
					  "not found: the metrics are at /metrics\n");
}

/*
 * Start a daemon on a listening socket, with the bounds on clients.
 */
static struct MHD_Daemon *
start_daemon(pgsocket sock)
{
	struct MHD_Daemon *daemon;

	daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
							  0, NULL, NULL,
							  answer_request, NULL,
							  MHD_OPTION_EXTERNAL_LOGGER, log_library_message, NULL,
							  MHD_OPTION_LISTEN_SOCKET, sock,
							  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) MAX_CONNECTIONS,
							  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) REQUEST_MEMORY_BYTES,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) CONNECTION_TIMEOUT_S,
							  MHD_OPTION_END);
	if (daemon == NULL)
		ereport(ERROR,
				(errmsg("dolon metrics could not start its HTTP server on port %d",
						dolon_metrics_port)));
	return daemon;
}

/*
 * The longest the worker may sleep before libmicrohttpd has something to
 * do (a connection to time out), in milliseconds.
 */
static long
wait_timeout(struct MHD_Daemon **daemons, int ndaemons)
{
	long		timeout = MAX_WAIT_MS;
	int			i;

	for (i = 0; i < ndaemons; i++)
	{
		MHD_UNSIGNED_LONG_LONG daemon_timeout;

		if (MHD_get_timeout(daemons[i], &daemon_timeout) == MHD_YES &&
			daemon_timeout < (MHD_UNSIGNED_LONG_LONG) timeout)
			timeout = (long) daemon_timeout;
	}
	return timeout;
}

/*
 * Entry point of the metrics worker
 */
void
dolon_metrics_main(Datum main_arg)
{
	pgsocket	sockets[MAX_SOCKETS];
	struct MHD_Daemon *daemons[MAX_SOCKETS];
	int			ndaemons;
	WaitEventSet *events;
	MemoryContext loop_context;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(dolon_database, NULL, 0);
	pgstat_report_appname("dolon metrics");

	response_context = AllocSetContextCreate(TopMemoryContext,
											 "dolon metrics responses",
											 ALLOCSET_DEFAULT_SIZES);

	ndaemons = dolon_listen("dolon metrics", "dolon.metrics_listen_addresses",
							dolon_metrics_listen_addresses, "dolon.metrics_port",
							dolon_metrics_port, SOCK_STREAM, sockets, MAX_SOCKETS);
	events = dolon_create_process_wait_event_set(ndaemons + 2);
	AddWaitEventToSet(events, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(events, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < ndaemons; i++)
	{
		const union MHD_DaemonInfo *info;

		daemons[i] = start_daemon(sockets[i]);
		info = MHD_get_daemon_info(daemons[i], MHD_DAEMON_INFO_EPOLL_FD);
		if (info == NULL)
			elog(ERROR, "libmicrohttpd gave no epoll descriptor");
		AddWaitEventToSet(events, WL_SOCKET_READABLE, info->epoll_fd, NULL, NULL);
	}
	ereport(LOG,
			(errmsg("dolon metrics listening on %s port %d",
					dolon_metrics_listen_addresses, dolon_metrics_port)));

	/* What one turn of the loop allocates, messages included, goes with it */
	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "dolon metrics loop",
										 ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(loop_context);

	for (;;)
	{
		WaitEvent	occurred[MAX_SOCKETS + 2];

		MemoryContextReset(loop_context);
		(void) WaitEventSetWait(events, wait_timeout(daemons, ndaemons),
								occurred, lengthof(occurred), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		(void) dolon_between_steps();

		for (i = 0; i < ndaemons; i++)
			(void) MHD_run(daemons[i]);
	}
}
