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
 * thus runs in the worker's one thread, where PostgreSQL may be called; an
 * error raised in one is caught there, never left to unwind through the
 * library.
 *
 * What a client can cost is bounded: MAX_CONNECTIONS connections at once
 * over all the daemons (more wait in the kernel's queue), a request of at
 * most REQUEST_MEMORY_BYTES (libmicrohttpd answers a larger one with an
 * error and closes), a connection silent for IDLE_TIMEOUT_S is closed, and
 * one whose request has not come whole within REQUEST_DEADLINE_S, however
 * busy, is shut down: a client trickling bytes cannot keep a connection.
 * A request that is refused (no token, another method or path) is answered
 * as soon as its headers are read, without waiting for a body.  A scrape
 * reads shared memory (metrics_exposition.c) in a transaction of its own,
 * whose failure answers 500 and is logged; the tracers are other processes,
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
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "guc.h"
#include "listen.h"
#include "live_page.h"
#include "metrics_exposition.h"
#include "metrics_request.h"
#include "metrics_server.h"
#include "metrics_tables.h"
#include "throttle.h"
#include "transaction.h"

/* Seconds before the postmaster starts the worker again after a failure */
#define METRICS_RESTART_SECONDS 10

/* Listening sockets: several addresses, each maybe IPv4 and IPv6 */
#define MAX_SOCKETS 16

/* Bounds on what clients may cost */
#define MAX_CONNECTIONS 64
#define REQUEST_MEMORY_BYTES (32 * 1024)
#define IDLE_TIMEOUT_S 5
#define REQUEST_DEADLINE_S 10

/* The longest the worker sleeps without looking at libmicrohttpd's timers */
#define MAX_WAIT_MS 1000

/*
 * The live page loads nothing but its own files, runs no script but its
 * own, and cannot be framed; its data and charts are never cached
 */
#define PAGE_SECURITY_POLICY "default-src 'none'; script-src 'self'; " \
	"style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; " \
	"form-action 'none'; frame-ancestors 'none'"

#define TEXT_FORMAT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

/*
 * A connection open now: when its current request started (when it was
 * accepted, or when the previous request on it ended), and its socket.
 */
typedef struct OpenConnection
{
	bool		in_use;
	bool		shut_down;		/* past its deadline, and told so */
	int			fd;
	TimestampTz request_started;
} OpenConnection;

static OpenConnection connections[MAX_CONNECTIONS];

/* Where the bodies of responses are allocated; each is freed when sent */
static MemoryContext response_context = NULL;

/* The answers that never change, made once */
static struct MHD_Response *page_responses[DOLON_PAGE_FILES];
static struct MHD_Response *unauthorized_response;
static struct MHD_Response *not_found_response;
static struct MHD_Response *method_not_allowed_response;
static struct MHD_Response *error_response;

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
 * Log a message that a client can cause, at most once per interval.
 */
static void
log_client_caused(DolonLogThrottle *throttle, const char *message)
{
	int64		suppressed;

	if (!dolon_throttle_permits(throttle, &suppressed))
		return;
	ereport(LOG,
			(errmsg("dolon metrics: %s", message),
			 suppressed > 0 ?
			 errdetail("%lld more of these were not logged since the last report.",
					   (long long) suppressed) : 0));
}

/*
 * libmicrohttpd's messages (a client that broke the protocol, a connection
 * refused at the limit).
 */
static void log_library_message(void *cls, const char *format, va_list args)
			pg_attribute_printf(2, 0);

static void
log_library_message(void *cls, const char *format, va_list args)
{
	char		message[256];
	size_t		length;

	vsnprintf(message, sizeof(message), format, args);
	length = strlen(message);
	if (length > 0 && message[length - 1] == '\n')
		message[length - 1] = '\0';
	PG_TRY();
	{
		log_client_caused(&library_messages_throttle, message);
	}
	PG_CATCH();
	{
		FlushErrorState();
	}
	PG_END_TRY();
}

/*
 * libmicrohttpd's notice of a connection opened or closed: keep track of
 * the open ones, for their deadline.
 */
static void
notify_connection(void *cls, struct MHD_Connection *connection,
				  void **socket_context, enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
	{
		const union MHD_ConnectionInfo *info;
		int			i;

		*socket_context = NULL;
		info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
		for (i = 0; i < MAX_CONNECTIONS && info != NULL; i++)
		{
			if (connections[i].in_use)
				continue;
			connections[i].in_use = true;
			connections[i].shut_down = false;
			connections[i].fd = info->connect_fd;
			connections[i].request_started = GetCurrentTimestamp();
			*socket_context = &connections[i];
			break;
		}
	}
	else if (*socket_context != NULL)
	{
		((OpenConnection *) *socket_context)->in_use = false;
		*socket_context = NULL;
	}
}

/*
 * libmicrohttpd's notice of a request ended: the next one on the same
 * connection starts its own deadline.
 */
static void
notify_completed(void *cls, struct MHD_Connection *connection,
				 void **request_state, enum MHD_RequestTerminationCode code)
{
	const union MHD_ConnectionInfo *info;

	info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (info != NULL && info->socket_context != NULL)
		((OpenConnection *) info->socket_context)->request_started = GetCurrentTimestamp();
}

/*
 * Shut down the connections whose request is past its deadline;
 * libmicrohttpd then finds them closed and lets them go.  Returns the
 * milliseconds until the next deadline, or MAX_WAIT_MS.
 */
static long
enforce_deadlines(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		next = MAX_WAIT_MS;
	int			i;

	for (i = 0; i < MAX_CONNECTIONS; i++)
	{
		TimestampTz deadline;

		if (!connections[i].in_use || connections[i].shut_down)
			continue;
		deadline = TimestampTzPlusMilliseconds(connections[i].request_started,
											   REQUEST_DEADLINE_S * 1000);
		if (deadline <= now)
		{
			(void) shutdown(connections[i].fd, SHUT_RDWR);
			connections[i].shut_down = true;
		}
		else
			next = Min(next, (long) ((deadline - now) / 1000) + 1);
	}
	return next;
}

/* Free the body of a response once libmicrohttpd has sent it */
static void
free_body(void *body)
{
	pfree(body);
}

/*
 * The headers of the live page's answers: its security policy, no
 * guessing of types, no referrer, and how long it may be cached
 */
static void
add_page_headers(struct MHD_Response *response, const char *cache_control)
{
	MHD_add_response_header(response, "Content-Security-Policy", PAGE_SECURITY_POLICY);
	MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control);
}

/*
 * The answer of a file of the page, made once; NULL if it could not be
 * read
 */
static struct MHD_Response *
page_file_response(const char *name, const char *content_type)
{
	struct MHD_Response *response;
	size_t		length;
	char	   *data = dolon_read_page_file(name, &length);

	if (data == NULL)
		return NULL;
	response = MHD_create_response_from_buffer(length, data,
											   MHD_RESPMEM_PERSISTENT);
	if (response == NULL)
		elog(ERROR, "libmicrohttpd could not make a response");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	add_page_headers(response, "no-cache");
	return response;
}

/* An answer written for a request, in a transaction of its own */
typedef struct Generated
{
	DolonMetricsAnswer answer;	/* metrics, page status or run chart */
	DolonExpositionFormat format;	/* of the metrics */
	pg_uuid_t	run;			/* of the chart */
	bool		found;			/* does the chart's run exist? */
	StringInfoData body;
} Generated;

/* The step: write the answer into the body */
static void
generate_step(void *arg)
{
	Generated  *generated = (Generated *) arg;

	switch (generated->answer)
	{
		case DOLON_ANSWER_METRICS:
			dolon_write_metrics(&generated->body, generated->format);
			break;
		case DOLON_ANSWER_PAGE_STATUS:
			dolon_write_page_status(&generated->body);
			break;
		case DOLON_ANSWER_RUN_CHART:
			generated->found = dolon_write_run_chart(&generated->run,
													 &generated->body);
			break;
		default:
			elog(ERROR, "answer %d is not written", (int) generated->answer);
	}
}

/*
 * Answer the metrics, the page's status or a run's chart: written in a
 * transaction of its own (with a snapshot for the collector's store), into
 * a body that libmicrohttpd frees once sent.
 */
static enum MHD_Result
answer_generated(struct MHD_Connection *connection,
				 const DolonMetricsRequest *request, DolonMetricsAnswer answer)
{
	Generated	generated;
	MemoryContext caller_context;
	struct MHD_Response *response;
	enum MHD_Result result;
	const char *content_type;
	char	   *error;

	generated.answer = answer;
	generated.format = dolon_metrics_format(request->accept);
	generated.run = request->run;
	generated.found = false;
	caller_context = MemoryContextSwitchTo(response_context);
	initStringInfo(&generated.body);
	MemoryContextSwitchTo(caller_context);

	error = dolon_run_in_transaction(generate_step, &generated,
									 answer != DOLON_ANSWER_METRICS);
	if (error != NULL || (answer == DOLON_ANSWER_RUN_CHART && !generated.found))
	{
		pfree(generated.body.data);
		if (error == NULL)
			return MHD_queue_response(connection, MHD_HTTP_NOT_FOUND,
									  not_found_response);
		log_client_caused(&scrape_errors_throttle,
						  psprintf("could not answer \"%s\": %s", request->path, error));
		return MHD_queue_response(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
								  error_response);
	}

	response = MHD_create_response_from_buffer_with_free_callback(generated.body.len,
																  generated.body.data,
																  free_body);
	if (response == NULL)
	{
		pfree(generated.body.data);
		return MHD_NO;
	}
	if (answer == DOLON_ANSWER_METRICS)
		content_type = generated.format == DOLON_FORMAT_OPENMETRICS ?
			OPENMETRICS_TYPE : TEXT_FORMAT_TYPE;
	else
	{
		content_type = answer == DOLON_ANSWER_PAGE_STATUS ?
			"application/json" : "image/svg+xml";
		add_page_headers(response, "no-store");
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	result = MHD_queue_response(connection, MHD_HTTP_OK, response);
	MHD_destroy_response(response);
	return result;
}

/*
 * Decide the answer to a request and give it.
 */
static enum MHD_Result
answer(struct MHD_Connection *connection, const char *url, const char *method,
	   void **request_state)
{
	static int	request_whole;
	DolonMetricsRequest request;
	DolonMetricsAnswer answer;

	request.method = method;
	request.path = url;
	request.accept = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
												 MHD_HTTP_HEADER_ACCEPT);
	request.authorization = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
														MHD_HTTP_HEADER_AUTHORIZATION);
	answer = dolon_metrics_answer(&request, dolon_metrics_token);

	/*
	 * The first call comes with the headers.  A refusal is given there: the
	 * connection is closed after it, without reading a body.  What is
	 * served is given at the next call, once the request is whole, so that
	 * the connection can serve the next request.
	 */
	switch (answer)
	{
		case DOLON_ANSWER_UNAUTHORIZED:
			return MHD_queue_response(connection, MHD_HTTP_UNAUTHORIZED,
									  unauthorized_response);
		case DOLON_ANSWER_METHOD_NOT_ALLOWED:
			return MHD_queue_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
									  method_not_allowed_response);
		case DOLON_ANSWER_NOT_FOUND:
			return MHD_queue_response(connection, MHD_HTTP_NOT_FOUND,
									  not_found_response);
		case DOLON_ANSWER_PAGE_FILE:
			if (page_responses[request.page_file] == NULL)
				return MHD_queue_response(connection, MHD_HTTP_NOT_FOUND,
										  not_found_response);
			break;
		case DOLON_ANSWER_METRICS:
		case DOLON_ANSWER_PAGE_STATUS:
		case DOLON_ANSWER_RUN_CHART:
			break;
	}
	if (*request_state == NULL)
	{
		*request_state = &request_whole;
		return MHD_YES;
	}
	if (answer == DOLON_ANSWER_PAGE_FILE)
		return MHD_queue_response(connection, MHD_HTTP_OK,
								  page_responses[request.page_file]);
	return answer_generated(connection, &request, answer);
}

/*
 * libmicrohttpd's access handler: called when a request's headers have
 * come, again for each part of its body (passed over: a GET of the metrics
 * has none to read), and at its end.  An error raised while answering
 * closes the connection, and is logged.
 */
static enum MHD_Result
answer_request(void *cls, struct MHD_Connection *connection, const char *url,
			   const char *method, const char *version,
			   const char *upload_data, size_t *upload_data_size,
			   void **request_state)
{
	MemoryContext caller_context = CurrentMemoryContext;
	enum MHD_Result result = MHD_NO;

	if (*request_state != NULL && *upload_data_size > 0)
	{
		*upload_data_size = 0;
		return MHD_YES;
	}
	PG_TRY();
	{
		result = answer(connection, url, method, request_state);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		log_client_caused(&scrape_errors_throttle,
						  psprintf("could not answer a request: %s", edata->message));
		FreeErrorData(edata);
		result = MHD_NO;
	}
	PG_END_TRY();
	return result;
}

/*
 * A fixed plain-text answer, with a header if given
 */
static struct MHD_Response *
fixed_response(const char *text, const char *header, const char *value)
{
	struct MHD_Response *response;

	response = MHD_create_response_from_buffer(strlen(text), (void *) text,
											   MHD_RESPMEM_PERSISTENT);
	if (response == NULL)
		elog(ERROR, "libmicrohttpd could not make a response");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
							"text/plain; charset=utf-8");
	if (header != NULL)
		MHD_add_response_header(response, header, value);
	return response;
}

/*
 * Start a daemon on a listening socket, with the bounds on clients: its
 * share of MAX_CONNECTIONS.
 */
static struct MHD_Daemon *
start_daemon(pgsocket sock, unsigned int connection_limit)
{
	struct MHD_Daemon *daemon;

	daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
							  0, NULL, NULL,
							  answer_request, NULL,
							  MHD_OPTION_EXTERNAL_LOGGER, log_library_message, NULL,
							  MHD_OPTION_LISTEN_SOCKET, sock,
							  MHD_OPTION_CONNECTION_LIMIT, connection_limit,
							  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) REQUEST_MEMORY_BYTES,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) IDLE_TIMEOUT_S,
							  MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
							  MHD_OPTION_NOTIFY_COMPLETED, notify_completed, NULL,
							  MHD_OPTION_END);
	if (daemon == NULL)
		ereport(ERROR,
				(errmsg("dolon metrics could not start its HTTP server on port %d",
						dolon_metrics_port)));
	return daemon;
}

/*
 * The longest the worker may sleep before libmicrohttpd has something to
 * do (a connection to time out), in milliseconds, at most limit.
 */
static long
wait_timeout(struct MHD_Daemon **daemons, int ndaemons, long limit)
{
	long		timeout = limit;
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

	/*
	 * Read each statistics entry afresh, as the tracers do: a snapshot of
	 * all would leave out the tables of the other databases
	 */
	SetConfigOption("stats_fetch_consistency", "none",
					PGC_SUSET, PGC_S_OVERRIDE);

	response_context = AllocSetContextCreate(TopMemoryContext,
											 "dolon metrics responses",
											 ALLOCSET_DEFAULT_SIZES);
	unauthorized_response = fixed_response("the token of dolon.metrics_token is required\n",
										   MHD_HTTP_HEADER_WWW_AUTHENTICATE,
										   "Bearer realm=\"dolon\"");
	/* a browser asks for Basic credentials: any user, the token as password */
	MHD_add_response_header(unauthorized_response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
							"Basic realm=\"dolon\", charset=\"UTF-8\"");
	page_responses[DOLON_PAGE_HTML] = page_file_response("dolon_page.html",
														 "text/html; charset=utf-8");
	page_responses[DOLON_PAGE_STYLE] = page_file_response("dolon_page.css",
														  "text/css; charset=utf-8");
	page_responses[DOLON_PAGE_SCRIPT] = page_file_response("dolon_page.js",
														   "text/javascript; charset=utf-8");
	not_found_response = fixed_response("not found: the metrics are at /metrics, the live page at /\n",
										NULL, NULL);
	method_not_allowed_response = fixed_response("only GET and HEAD are served\n",
												 MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	error_response = fixed_response("the metrics could not be read; see the server log\n",
									NULL, NULL);

	ndaemons = dolon_listen("dolon metrics", "dolon.metrics_listen_addresses",
							dolon_metrics_listen_addresses, "dolon.metrics_port",
							dolon_metrics_port, SOCK_STREAM, sockets, MAX_SOCKETS);
	events = dolon_create_process_wait_event_set(ndaemons + 2);
	AddWaitEventToSet(events, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(events, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < ndaemons; i++)
	{
		const union MHD_DaemonInfo *info;

		daemons[i] = start_daemon(sockets[i], Max(1, MAX_CONNECTIONS / ndaemons));
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
		long		timeout;

		MemoryContextReset(loop_context);
		timeout = wait_timeout(daemons, ndaemons, enforce_deadlines());
		(void) WaitEventSetWait(events, timeout, occurred, lengthof(occurred),
								PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		dolon_metrics_tables_work(dolon_between_steps());

		for (i = 0; i < ndaemons; i++)
			(void) MHD_run(daemons[i]);

		/* The scrapes' own counts, as any backend reports its own */
		pgstat_report_stat(false);
	}
}
