/*-------------------------------------------------------------------------
 *
 * collector.c
 *		The "dolon collector" background worker: an embedded mnemic backend
 *		that receives trace datagrams over UDP and stores them in
 *		dolon.tracing_run and dolon.tracing_row of dolon.database.
 *
 * The collector runs when dolon.collector_port is set.  It listens on each
 * address of dolon.collector_listen_addresses and sleeps on its latch and its
 * sockets together.  When a socket is readable it reads every datagram waiting
 * (RECEIVE_VECTOR a system call) into a bounded buffer (BUFFER_BYTES,
 * BATCH_DATAGRAMS), and stores the whole buffer in one transaction: one INSERT
 * for the runs and one for the rows, each fed with arrays, so that the cost of
 * a statement is shared by the batch.  A burst of datagrams thus waits in the
 * socket's receive buffer (enlarged to RECEIVE_BUFFER_BYTES) while a batch is
 * stored, rather than being lost to a slow insert path.  What the kernel still
 * drops when that buffer is full is counted: each datagram carries the
 * socket's count of drops so far (SO_RXQ_OVFL), and once a socket is drained
 * the same count is read from the socket itself (SO_MEMINFO), so that drops
 * after the last datagram show at once rather than with a later datagram.
 *
 * Datagrams are decoded by mnemic_decode() (protocol.c), with the server's
 * JSON parser, and their content only ever reaches SQL as parameters of
 * constant statements.  A datagram that is not a valid message is counted
 * as malformed and dropped; a run announced again is counted as a duplicate
 * and stored once; a row of a run never announced is stored, as mnemic does
 * (its announcement may come later), and counted as an orphan.  Every kind
 * of problem is logged at most once a minute.  Until CREATE EXTENSION dolon
 * has run in dolon.database there is nowhere to store: the collector says
 * so in the log, holds what it receives in its buffer (what the buffer has
 * no room for is dropped, counted) and checks again every second; once it
 * can store, it stores what it held, and has the tracers of this server
 * announce their runs again.  What the buffer holds when the collector
 * exits is counted as dropped.
 *
 * Retention: every RETENTION_INTERVAL_MS (or dolon.collector_retention if
 * shorter), rows older than dolon.collector_retention are deleted, and runs
 * older than that with no rows left.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "collector.h"
#include "compat.h"
#include "dolon_common.h"
#include "guc.h"
#include "listen.h"
#include "protocol.h"
#include "throttle.h"
#include "tracers.h"
#include "transaction.h"

/* The largest UDP payload over IPv4, as mnemic's backend receives */
#define MAX_DATAGRAM_BYTES 65507

/* The buffer of datagrams stored in one transaction */
#define BUFFER_BYTES (4 * 1024 * 1024)
#define BATCH_DATAGRAMS 8192

/* The receive buffer asked for each socket; the kernel caps it */
#define RECEIVE_BUFFER_BYTES (8 * 1024 * 1024)

/* Listen on at most this many addresses */
#define MAX_SOCKETS 16

/* While the extension is missing, look for it this often */
#define EXTENSION_CHECK_MS 1000

/* Apply the retention at least this often */
#define RETENTION_INTERVAL_MS 60000

/* Forget the runs known to exist beyond this many */
#define MAX_KNOWN_RUNS 100000

/* Seconds before the postmaster restarts a collector that exited */
#define COLLECTOR_RESTART_SECONDS 10


/* Datagrams taken by one recvmmsg() call */
#define RECEIVE_VECTOR 64

/* One recvmmsg() call's headers, with each datagram's socket control data */
typedef struct ReceiveVector
{
	struct mmsghdr headers[RECEIVE_VECTOR];
	struct iovec iov[RECEIVE_VECTOR];
	union
	{
		char		buf[CMSG_SPACE(sizeof(uint32))];
		struct cmsghdr align;
	}			control[RECEIVE_VECTOR];
	char		discard;		/* where datagrams read only to be dropped go */
} ReceiveVector;

/* A datagram in the buffer */
typedef struct BufferedDatagram
{
	int			offset;			/* in the buffer's bytes */
	int			length;
	TimestampTz arrival;
} BufferedDatagram;

typedef struct Collector
{
	pgsocket	sockets[MAX_SOCKETS];
	uint32		kernel_drops[MAX_SOCKETS];	/* the kernel's count seen last */
	int			nsockets;
	WaitEventSet *events;

	ReceiveVector *vector;
	char	   *bytes;			/* BUFFER_BYTES, resident from the start */
	int			bytes_used;
	BufferedDatagram *datagrams;	/* BATCH_DATAGRAMS */
	int			ndatagrams;

	bool		extension_ready;
	bool		waiting_logged; /* did we say we wait for the extension? */
	TimestampTz last_extension_check;
	TimestampTz last_retention;
	HTAB	   *known_runs;		/* uuids stored in tracing_run */
	MemoryContext batch_context;	/* what one batch inserts */
	MemoryContext datagram_context; /* what decoding one datagram takes */

	SPIPlanPtr	insert_runs;
	SPIPlanPtr	insert_rows;
	SPIPlanPtr	find_runs;

	DolonLogThrottle malformed_throttle;
	DolonLogThrottle refused_throttle;
	DolonLogThrottle duplicate_throttle;
	DolonLogThrottle orphan_throttle;
	DolonLogThrottle drop_throttle;
	DolonLogThrottle held_drop_throttle;
	DolonLogThrottle error_throttle;
} Collector;

static DolonCollectorStatus *collector_status = NULL;

PG_FUNCTION_INFO_V1(dolon_collector_state);

Size
dolon_collector_shmem_size(void)
{
	return sizeof(DolonCollectorStatus);
}

void
dolon_collector_shmem_init(void)
{
	bool		found;

	collector_status = ShmemInitStruct("dolon collector",
									   sizeof(DolonCollectorStatus), &found);
	if (!found)
	{
		memset(collector_status, 0, sizeof(DolonCollectorStatus));
		SpinLockInit(&collector_status->mutex);
	}
}

/*
 * Register the collector, if dolon.collector_port is set.  Called from
 * _PG_init while shared_preload_libraries is processed.
 */
void
dolon_register_collector(void)
{
	BackgroundWorker worker;

	if (dolon_collector_port == 0)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = COLLECTOR_RESTART_SECONDS;
	strcpy(worker.bgw_library_name, "dolon");
	strcpy(worker.bgw_function_name, "dolon_collector_main");
	strcpy(worker.bgw_name, "dolon collector");
	strcpy(worker.bgw_type, "dolon collector");
	RegisterBackgroundWorker(&worker);
}

/*
 * Copy the collector's status in shared memory, as one consistent reading.
 * Needs dolon in shared_preload_libraries.
 */
void
dolon_read_collector_status(DolonCollectorStatus *status)
{
	Assert(collector_status != NULL);
	SpinLockAcquire(&collector_status->mutex);
	memcpy(status, collector_status, sizeof(DolonCollectorStatus));
	SpinLockRelease(&collector_status->mutex);
}

/* Add to the counters of the shared status */
#define COUNT(field, n) \
	do { \
		SpinLockAcquire(&collector_status->mutex); \
		collector_status->field += (n); \
		SpinLockRelease(&collector_status->mutex); \
	} while (0)

static void
record_error(const char *error)
{
	dolon_record_error(&collector_status->mutex, &collector_status->last_error,
					   error);
}

/*
 * Log a problem with incoming data, at most once a minute per kind, and
 * record it in the status.
 */
static void
report_problem(DolonLogThrottle *throttle, const char *problem)
{
	int64		suppressed;

	record_error(problem);
	if (dolon_throttle_permits(throttle, &suppressed))
		ereport(LOG,
				(errmsg("dolon collector: %s", problem),
				 suppressed > 0 ?
				 errdetail("%lld more of these were not logged since the last report.",
						   (long long) suppressed) : 0));
}

/*
 * on_shmem_exit callback: the collector, arg, is gone, and the datagrams in
 * its buffer are lost.
 */
static void
collector_status_detach(int code, Datum arg)
{
	Collector  *collector = (Collector *) DatumGetPointer(arg);

	SpinLockAcquire(&collector_status->mutex);
	collector_status->pid = 0;
	collector_status->dropped += collector->ndatagrams;
	SpinLockRelease(&collector_status->mutex);
}

/*
 * Start afresh the set of runs known to exist in tracing_run.
 */
static void
reset_known_runs(Collector *collector)
{
	HASHCTL		ctl;

	if (collector->known_runs != NULL)
		hash_destroy(collector->known_runs);
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(pg_uuid_t);
	collector->known_runs = hash_create("dolon collector known runs", 1024,
										&ctl, HASH_ELEM | HASH_BLOBS);
}

/*
 * The kernel reports total drops on socket index since it was opened: the
 * same counter (sk_drops) whether it comes with a datagram (SO_RXQ_OVFL) or
 * from the socket (SO_MEMINFO).  Returns how many of them were not counted
 * before.  A datagram that arrived before the count was last read from the
 * socket carries a smaller total, which adds nothing.
 */
static int64
kernel_drops_since(Collector *collector, int index, uint32 total)
{
	int32		change = (int32) (total - collector->kernel_drops[index]);

	if (change <= 0)
		return 0;
	collector->kernel_drops[index] = total;
	return change;
}

/*
 * Read the kernel's count of drops from socket index itself.  Returns the
 * drops not counted before, or -1 (with errno set) if it cannot be read.
 */
static int64
read_kernel_drops(Collector *collector, int index)
{
	uint32		meminfo[SK_MEMINFO_VARS];
	socklen_t	length = sizeof(meminfo);

	if (getsockopt(collector->sockets[index], SOL_SOCKET, SO_MEMINFO,
				   meminfo, &length) != 0)
		return -1;
	if (length <= SK_MEMINFO_DROPS * sizeof(uint32))
	{
		errno = ENOPROTOOPT;
		return -1;
	}
	return kernel_drops_since(collector, index, meminfo[SK_MEMINFO_DROPS]);
}

/*
 * Open a non-blocking UDP socket bound to each listen address, with a
 * larger receive buffer and the kernel's count of the datagrams it drops.
 */
static void
open_sockets(Collector *collector)
{
	int			i;

	collector->nsockets = dolon_listen("dolon collector",
									   "dolon.collector_listen_addresses",
									   dolon_collector_listen_addresses,
									   "dolon.collector_port",
									   dolon_collector_port, SOCK_DGRAM,
									   collector->sockets, MAX_SOCKETS);
	for (i = 0; i < collector->nsockets; i++)
	{
		int			one = 1;
		int			size = RECEIVE_BUFFER_BYTES;

		(void) setsockopt(collector->sockets[i], SOL_SOCKET, SO_RCVBUF,
						  &size, sizeof(size));
		(void) setsockopt(collector->sockets[i], SOL_SOCKET, SO_RXQ_OVFL,
						  &one, sizeof(one));
		collector->kernel_drops[i] = 0;
		if (read_kernel_drops(collector, i) < 0)
			ereport(WARNING,
					(errcode_for_socket_access(),
					 errmsg("dolon collector could not read the count of datagrams the kernel dropped on \"%s\" port %d: %m",
							dolon_collector_listen_addresses, dolon_collector_port),
					 errdetail("Drops are counted when a later datagram arrives.")));
	}
}

/*
 * Read the datagrams waiting on a socket.  If keep, they go into the buffer,
 * until the socket is drained or the buffer is full, and true is returned
 * if the socket may have more.  Otherwise (the buffer is full and held for
 * CREATE EXTENSION dolon) they are read until the socket is drained and
 * counted as dropped, and false is returned.
 *
 * recvmmsg() takes up to RECEIVE_VECTOR datagrams a call, straight into the
 * buffer's free space, each into a slot big enough for the largest; each is
 * then moved down to follow the one before, so that the buffer only takes
 * their actual bytes.
 */
static bool
receive_from(Collector *collector, int index, bool keep)
{
	pgsocket	sock = collector->sockets[index];
	ReceiveVector *vector = collector->vector;
	int64		received = 0;
	int64		malformed = 0;
	int64		dropped = 0;
	int64		discarded = 0;
	bool		more = true;

	for (;;)
	{
		int			room = RECEIVE_VECTOR;
		char	   *slots = collector->bytes + collector->bytes_used;
		int			count;
		int			i;

		/* Room for how many more, each possibly of the largest size */
		if (keep)
		{
			room = Min(room, BATCH_DATAGRAMS - collector->ndatagrams);
			room = Min(room, (BUFFER_BYTES - collector->bytes_used) /
					   (MAX_DATAGRAM_BYTES + 1));
			if (room <= 0)
				break;
		}

		for (i = 0; i < room; i++)
		{
			struct msghdr *msg = &vector->headers[i].msg_hdr;

			if (keep)
			{
				vector->iov[i].iov_base = slots + (Size) i * (MAX_DATAGRAM_BYTES + 1);
				vector->iov[i].iov_len = MAX_DATAGRAM_BYTES + 1;
			}
			else
			{
				vector->iov[i].iov_base = &vector->discard;
				vector->iov[i].iov_len = sizeof(vector->discard);
			}
			memset(msg, 0, sizeof(struct msghdr));
			msg->msg_iov = &vector->iov[i];
			msg->msg_iovlen = 1;
			msg->msg_control = vector->control[i].buf;
			msg->msg_controllen = sizeof(vector->control[i].buf);
		}

		count = recvmmsg(sock, vector->headers, room, MSG_DONTWAIT, NULL);
		if (count < 0)
		{
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				report_problem(&collector->error_throttle,
							   psprintf("could not receive: %m"));
			more = false;
			break;
		}

		for (i = 0; i < count; i++)
		{
			struct msghdr *msg = &vector->headers[i].msg_hdr;
			unsigned int length = vector->headers[i].msg_len;
			struct cmsghdr *cmsg;
			BufferedDatagram *datagram;

			/* The socket's count of datagrams the kernel dropped so far */
			for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL; cmsg = CMSG_NXTHDR(msg, cmsg))
			{
				if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SO_RXQ_OVFL)
				{
					uint32		drops;

					memcpy(&drops, CMSG_DATA(cmsg), sizeof(drops));
					dropped += kernel_drops_since(collector, index, drops);
				}
			}

			received++;
			if (!keep)
			{
				discarded++;
				continue;
			}
			if ((msg->msg_flags & MSG_TRUNC) || length > MAX_DATAGRAM_BYTES)
			{
				malformed++;
				report_problem(&collector->malformed_throttle,
							   psprintf("malformed datagram: it has more than %d bytes",
										MAX_DATAGRAM_BYTES));
				continue;
			}

			datagram = &collector->datagrams[collector->ndatagrams++];
			datagram->offset = collector->bytes_used;
			datagram->length = (int) length;
			datagram->arrival = GetCurrentTimestamp();
			if (i > 0)
				memmove(collector->bytes + collector->bytes_used,
						slots + (Size) i * (MAX_DATAGRAM_BYTES + 1), length);
			collector->bytes_used += (int) length;
		}
		if (count < room)
		{
			more = false;
			break;
		}
	}

	/*
	 * Drained: what the kernel dropped after the last datagram shows only
	 * here, until another datagram comes
	 */
	if (!more)
	{
		int64		drops = read_kernel_drops(collector, index);

		if (drops > 0)
			dropped += drops;
	}

	SpinLockAcquire(&collector_status->mutex);
	collector_status->received += received;
	collector_status->malformed += malformed;
	collector_status->dropped += dropped + discarded;
	SpinLockRelease(&collector_status->mutex);
	if (dropped > 0)
		report_problem(&collector->drop_throttle,
					   "datagrams were dropped: they came faster than they could be stored");
	if (discarded > 0)
		report_problem(&collector->held_drop_throttle,
					   "datagrams were dropped: the buffer held until CREATE EXTENSION dolon is full");
	return more;
}

/*
 * Read every socket until all are drained, or, if keep, the buffer is full.
 * Returns true in the second case: more may be waiting.  See
 * receive_from().
 */
static bool
receive_all(Collector *collector, bool keep)
{
	bool		more = true;

	while (more)
	{
		int			i;

		if (keep &&
			(collector->ndatagrams == BATCH_DATAGRAMS ||
			 BUFFER_BYTES - collector->bytes_used < MAX_DATAGRAM_BYTES + 1))
			return true;
		more = false;
		for (i = 0; i < collector->nsockets; i++)
			more |= receive_from(collector, i, keep);
	}
	return false;
}

/*
 * Is the extension there to store into?  Checked in a transaction, at most
 * every EXTENSION_CHECK_MS while it is missing.
 */
static bool
extension_ready(Collector *collector)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		ready;

	if (collector->extension_ready)
		return true;
	if (collector->last_extension_check != 0 &&
		!TimestampDifferenceExceeds(collector->last_extension_check, now,
									EXTENSION_CHECK_MS))
		return false;
	collector->last_extension_check = now;

	StartTransactionCommand();
	ready = OidIsValid(get_extension_oid("dolon", true));
	CommitTransactionCommand();

	SpinLockAcquire(&collector_status->mutex);
	collector_status->waiting_for_extension = !ready;
	SpinLockRelease(&collector_status->mutex);

	if (!ready && !collector->waiting_logged)
		ereport(LOG,
				(errmsg("dolon collector is waiting for CREATE EXTENSION dolon in database \"%s\"",
						dolon_database),
				 errdetail("Datagrams received until then are held, up to %d or %d MB, and stored then; more are dropped.",
						   BATCH_DATAGRAMS, BUFFER_BYTES / (1024 * 1024))));
	else if (ready && collector->waiting_logged)
		ereport(LOG,
				(errmsg("dolon collector stores traces in database \"%s\" from now on",
						dolon_database)));
	collector->waiting_logged = !ready;
	collector->extension_ready = ready;

	/* The tracers of this server announce their runs again, to be stored */
	if (ready)
		dolon_request_announcements();
	return ready;
}

static SPIPlanPtr
prepare(const char *query, int nargs, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(query, nargs, types);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", query,
			 SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * Prepare the statements, once.  Called inside SPI.
 */
static void
prepare_statements(Collector *collector)
{
	Oid			run_types[5] = {UUIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	INT4ARRAYOID, TIMESTAMPTZARRAYOID};
	Oid			row_types[4] = {UUIDARRAYOID, FLOAT4ARRAYOID, INT4ARRAYOID,
	TIMESTAMPTZARRAYOID};
	Oid			find_types[1] = {UUIDARRAYOID};

	SPIPlanPtr	insert_runs;
	SPIPlanPtr	insert_rows;
	SPIPlanPtr	find_runs;

	if (collector->insert_runs != NULL)
		return;

	/*
	 * Each run, or row, is the i-th element of the arrays; its column names,
	 * or values, are the slice of a flat array between two offsets.  The
	 * plans are kept only once all three are prepared.
	 */
	insert_runs =
		prepare("INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time) "
				"SELECT $1[i], $2[i], $3[$4[i] + 1 : $4[i + 1]], $5[i] "
				"FROM pg_catalog.generate_subscripts($1, 1) AS i "
				"ON CONFLICT (uuid) DO NOTHING "
				"RETURNING uuid",
				5, run_types);
	insert_rows =
		prepare("INSERT INTO dolon.tracing_row (uuid, row_data, date_time) "
				"SELECT $1[i], $2[$3[i] + 1 : $3[i + 1]], $4[i] "
				"FROM pg_catalog.generate_subscripts($1, 1) AS i",
				4, row_types);
	find_runs =
		prepare("SELECT uuid FROM dolon.tracing_run WHERE uuid = ANY ($1)",
				1, find_types);
	SPI_keepplan(insert_runs);
	SPI_keepplan(insert_rows);
	SPI_keepplan(find_runs);
	collector->insert_runs = insert_runs;
	collector->insert_rows = insert_rows;
	collector->find_runs = find_runs;
}

/* The arrays that one batch feeds to the statements */
typedef struct BatchArrays
{
	int			count;			/* runs or rows */
	Datum	   *uuids;
	Datum	   *times;
	int32	   *offsets;		/* count + 1 */
	Datum	   *app_names;		/* runs */
	Datum	   *items;			/* column names, or values */
	bool	   *item_nulls;
	int			nitems;
	int			items_allocated;
} BatchArrays;

static void
batch_arrays_init(BatchArrays *arrays, int capacity)
{
	memset(arrays, 0, sizeof(BatchArrays));
	arrays->uuids = palloc(capacity * sizeof(Datum));
	arrays->times = palloc(capacity * sizeof(Datum));
	arrays->offsets = palloc((capacity + 1) * sizeof(int32));
	arrays->app_names = palloc(capacity * sizeof(Datum));
	arrays->items_allocated = 1024;
	arrays->items = palloc(arrays->items_allocated * sizeof(Datum));
	arrays->item_nulls = palloc(arrays->items_allocated * sizeof(bool));
	arrays->offsets[0] = 0;
}

static void
batch_arrays_add_item(BatchArrays *arrays, Datum item, bool isnull)
{
	if (arrays->nitems == arrays->items_allocated)
	{
		arrays->items_allocated *= 2;
		arrays->items = repalloc(arrays->items,
								 arrays->items_allocated * sizeof(Datum));
		arrays->item_nulls = repalloc(arrays->item_nulls,
									  arrays->items_allocated * sizeof(bool));
	}
	arrays->items[arrays->nitems] = item;
	arrays->item_nulls[arrays->nitems] = isnull;
	arrays->nitems++;
}

static Datum
array_of(Datum *elements, bool *nulls, int count, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {count};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elements, nulls, 1, dims, lbs,
											  type, typlen, typbyval, typalign));
}

/* The offsets of each run's, or row's, items in the flat array */
static Datum
offsets_array(BatchArrays *arrays)
{
	Datum	   *offsets = palloc((arrays->count + 1) * sizeof(Datum));
	int			i;

	for (i = 0; i <= arrays->count; i++)
		offsets[i] = Int32GetDatum(arrays->offsets[i]);
	return array_of(offsets, NULL, arrays->count + 1, INT4OID);
}

static void
execute(SPIPlanPtr plan, Datum *values, int expected)
{
	int			rc = SPI_execute_plan(plan, values, NULL, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
}

/*
 * Count the rows whose run is not known to exist: first in the set of runs
 * this collector knows, then in tracing_run.
 */
static int64
count_orphans(Collector *collector, BatchArrays *rows)
{
	Datum	   *unknown = palloc(rows->count * sizeof(Datum));
	int			nunknown = 0;
	int64		orphans = 0;
	int			i;
	uint64		r;
	Datum		arg;

	for (i = 0; i < rows->count; i++)
	{
		if (hash_search(collector->known_runs, DatumGetPointer(rows->uuids[i]),
						HASH_FIND, NULL) == NULL)
			unknown[nunknown++] = rows->uuids[i];
	}
	if (nunknown == 0)
		return 0;

	arg = array_of(unknown, NULL, nunknown, UUIDOID);
	execute(collector->find_runs, &arg, SPI_OK_SELECT);
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Datum		uuid = SPI_getbinval(SPI_tuptable->vals[r],
										 SPI_tuptable->tupdesc, 1, &isnull);

		(void) hash_search(collector->known_runs, DatumGetPointer(uuid),
						   HASH_ENTER, NULL);
	}
	for (i = 0; i < nunknown; i++)
	{
		if (hash_search(collector->known_runs, DatumGetPointer(unknown[i]),
						HASH_FIND, NULL) == NULL)
			orphans++;
	}
	return orphans;
}

/*
 * Store the buffered datagrams: decode them, then insert the runs and the
 * rows, in the current transaction.
 */
static void
store_datagrams(Collector *collector)
{
	BatchArrays runs;
	BatchArrays rows;
	int64		malformed = 0;
	int64		refused = 0;
	int64		orphans;
	uint64		stored_runs = 0;
	int			i;

	batch_arrays_init(&runs, collector->ndatagrams);
	batch_arrays_init(&rows, collector->ndatagrams);

	for (i = 0; i < collector->ndatagrams; i++)
	{
		BufferedDatagram *datagram = &collector->datagrams[i];
		MnemicMessage message;
		const char *problem;
		BatchArrays *arrays;
		pg_uuid_t  *uuid;
		int			columns;

		/*
		 * The parser allocates a little for each datagram: do it in a
		 * context of its own, reset once what the batch needs is copied.
		 */
		MemoryContextReset(collector->datagram_context);
		MemoryContextSwitchTo(collector->datagram_context);
		problem = mnemic_decode(collector->bytes + datagram->offset,
								datagram->length, &message);
		MemoryContextSwitchTo(collector->batch_context);
		if (problem != NULL)
		{
			malformed++;
			report_problem(&collector->malformed_throttle,
						   psprintf("malformed datagram: %s", problem));
			continue;
		}

		columns = message.type == MNEMIC_CREATE_TRACE_RUN ?
			list_length(message.column_names) : message.nvalues;
		if (columns > dolon_collector_max_columns)
		{
			refused++;
			report_problem(&collector->refused_throttle,
						   psprintf("refused a %s of %d columns: dolon.collector_max_columns is %d",
									message.type == MNEMIC_CREATE_TRACE_RUN ?
									"run" : "row", columns,
									dolon_collector_max_columns));
			continue;
		}

		arrays = message.type == MNEMIC_CREATE_TRACE_RUN ? &runs : &rows;
		uuid = palloc(sizeof(pg_uuid_t));
		*uuid = message.uuid;
		arrays->uuids[arrays->count] = UUIDPGetDatum(uuid);
		arrays->times[arrays->count] = TimestampTzGetDatum(datagram->arrival);
		if (message.type == MNEMIC_CREATE_TRACE_RUN)
		{
			ListCell   *lc;

			arrays->app_names[arrays->count] = CStringGetTextDatum(message.app_name);
			foreach(lc, message.column_names)
				batch_arrays_add_item(arrays, CStringGetTextDatum(lfirst(lc)), false);
		}
		else
		{
			int			v;

			for (v = 0; v < message.nvalues; v++)
				batch_arrays_add_item(arrays, Float4GetDatum(message.values[v]),
									  message.nulls[v]);
		}
		arrays->count++;
		arrays->offsets[arrays->count] = arrays->nitems;
	}

	if (runs.count > 0)
	{
		Datum		args[5];

		args[0] = array_of(runs.uuids, NULL, runs.count, UUIDOID);
		args[1] = array_of(runs.app_names, NULL, runs.count, TEXTOID);
		args[2] = array_of(runs.items, runs.item_nulls, runs.nitems, TEXTOID);
		args[3] = offsets_array(&runs);
		args[4] = array_of(runs.times, NULL, runs.count, TIMESTAMPTZOID);
		execute(collector->insert_runs, args, SPI_OK_INSERT_RETURNING);
		stored_runs = SPI_processed;
		for (i = 0; i < runs.count; i++)
			(void) hash_search(collector->known_runs,
							   DatumGetPointer(runs.uuids[i]), HASH_ENTER, NULL);
	}

	orphans = rows.count > 0 ? count_orphans(collector, &rows) : 0;

	if (rows.count > 0)
	{
		Datum		args[4];

		args[0] = array_of(rows.uuids, NULL, rows.count, UUIDOID);
		args[1] = array_of(rows.items, rows.item_nulls, rows.nitems, FLOAT4OID);
		args[2] = offsets_array(&rows);
		args[3] = array_of(rows.times, NULL, rows.count, TIMESTAMPTZOID);
		execute(collector->insert_rows, args, SPI_OK_INSERT);
	}

	SpinLockAcquire(&collector_status->mutex);
	collector_status->malformed += malformed;
	collector_status->refused += refused;
	collector_status->stored_runs += stored_runs;
	collector_status->duplicate_runs += runs.count - stored_runs;
	collector_status->stored_rows += rows.count;
	collector_status->orphan_rows += orphans;
	collector_status->batches++;
	SpinLockRelease(&collector_status->mutex);

	if (runs.count > (int) stored_runs)
		report_problem(&collector->duplicate_throttle,
					   "a run was announced again (stored once)");
	if (orphans > 0)
		report_problem(&collector->orphan_throttle,
					   "rows arrived for a run never announced (stored all the same)");
}

static void
store_step(void *arg)
{
	Collector  *collector = (Collector *) arg;

	SPI_connect();
	prepare_statements(collector);
	MemoryContextSwitchTo(collector->batch_context);
	store_datagrams(collector);
	SPI_finish();
}

/*
 * Store the buffer in one transaction, and empty it.  An error drops the
 * batch (counted) and is logged; the collector goes on.
 */
static void
store_batch(Collector *collector)
{
	char	   *error;

	error = dolon_run_in_transaction(store_step, collector, true);
	if (error != NULL)
	{
		COUNT(dropped, collector->ndatagrams);
		report_problem(&collector->error_throttle,
					   psprintf("could not store %d datagrams: %s",
								collector->ndatagrams, error));

		/*
		 * The extension may be gone: look for it again before the next
		 * batch.  The runs of this batch were not stored after all.
		 */
		collector->extension_ready = false;
		collector->last_extension_check = 0;
		reset_known_runs(collector);
	}
	MemoryContextReset(collector->batch_context);

	collector->ndatagrams = 0;
	collector->bytes_used = 0;
	if (hash_get_num_entries(collector->known_runs) > MAX_KNOWN_RUNS)
		reset_known_runs(collector);
	pgstat_report_stat(false);
}

static void
retention_step(void *arg)
{
	Oid			types[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(dolon_collector_retention_s)};

	SPI_connect();
	if (SPI_execute_with_args("DELETE FROM dolon.tracing_row "
							  "WHERE date_time < pg_catalog.now() - pg_catalog.make_interval(secs => $1::float8)",
							  1, types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete expired rows");
	*(uint64 *) arg = SPI_processed;
	if (SPI_execute_with_args("DELETE FROM dolon.tracing_run r "
							  "WHERE creation_time < pg_catalog.now() - pg_catalog.make_interval(secs => $1::float8) "
							  "AND NOT EXISTS (SELECT FROM dolon.tracing_row w "
							  "                WHERE w.uuid = r.uuid)",
							  1, types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete expired runs");
	SPI_finish();
}

/*
 * Delete the rows older than dolon.collector_retention, and the runs older
 * than that which have no rows left.
 */
static void
apply_retention(Collector *collector)
{
	TimestampTz now = GetCurrentTimestamp();
	int			interval_ms;
	uint64		expired = 0;
	char	   *error;

	interval_ms = Min((int64) RETENTION_INTERVAL_MS,
					  (int64) dolon_collector_retention_s * 1000);
	if (!collector->extension_ready ||
		!TimestampDifferenceExceeds(collector->last_retention, now, interval_ms))
		return;
	collector->last_retention = now;

	error = dolon_run_in_transaction(retention_step, &expired, true);
	if (error != NULL)
		report_problem(&collector->error_throttle,
					   psprintf("could not apply the retention: %s", error));
	else
		COUNT(expired_rows, expired);
	reset_known_runs(collector);
}

/*
 * Entry point of the collector worker
 */
void
dolon_collector_main(Datum main_arg)
{
	/*
	 * Static: the exit callback that reads it also runs after an error that
	 * left this function (StartBackgroundWorker() catches it).
	 */
	static Collector collector;
	char		listening[256];
	MemoryContext loop_context;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(dolon_database, NULL, 0);

	/*
	 * Traces are telemetry: a crash may lose the last batches stored, as UDP
	 * loses datagrams, rather than every batch wait for its WAL to be flushed.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/* Its statements run no user code: no search_path can divert them */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);

	memset(&collector, 0, sizeof(collector));

	/*
	 * The buffers are zeroed, which makes their pages resident now: a burst
	 * that fills them deeper than any before does not raise the collector's
	 * memory for good, one high-water mark after another.
	 */
	collector.bytes = MemoryContextAllocExtended(TopMemoryContext, BUFFER_BYTES,
												 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	collector.datagrams = MemoryContextAllocZero(TopMemoryContext,
												 BATCH_DATAGRAMS * sizeof(BufferedDatagram));
	collector.vector = MemoryContextAlloc(TopMemoryContext, sizeof(ReceiveVector));
	collector.batch_context = AllocSetContextCreate(TopMemoryContext,
													"dolon collector batch",
													ALLOCSET_DEFAULT_SIZES);
	collector.datagram_context = AllocSetContextCreate(TopMemoryContext,
													   "dolon collector datagram",
													   ALLOCSET_DEFAULT_SIZES);
	reset_known_runs(&collector);
	open_sockets(&collector);

	collector.events = dolon_create_process_wait_event_set(collector.nsockets + 2);
	AddWaitEventToSet(collector.events, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(collector.events, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < collector.nsockets; i++)
		AddWaitEventToSet(collector.events, WL_SOCKET_READABLE,
						  collector.sockets[i], NULL, NULL);

	snprintf(listening, sizeof(listening), "%s port %d",
			 dolon_collector_listen_addresses, dolon_collector_port);
	SpinLockAcquire(&collector_status->mutex);
	collector_status->pid = MyProcPid;
	collector_status->waiting_for_extension = true;	/* until checked */
	SpinLockRelease(&collector_status->mutex);
	on_shmem_exit(collector_status_detach, PointerGetDatum(&collector));
	ereport(LOG, (errmsg("dolon collector listening on %s", listening)));

	/* What one turn of the loop allocates, messages included, goes with it */
	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "dolon collector loop",
										 ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(loop_context);

	for (;;)
	{
		WaitEvent	events[MAX_SOCKETS + 2];
		long		timeout;

		MemoryContextReset(loop_context);

		/* Wake up for the retention, and to look for the extension */
		timeout = Min((int64) RETENTION_INTERVAL_MS,
					  (int64) dolon_collector_retention_s * 1000);
		if (!collector.extension_ready)
			timeout = Min(timeout, EXTENSION_CHECK_MS);
		(void) WaitEventSetWait(collector.events, timeout, events,
								lengthof(events), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);

		(void) dolon_between_steps();

		/*
		 * Store what has come, batch after batch, until the sockets are dry.
		 * Until the extension exists, the buffer is held for it, and what it
		 * has no room for is dropped.
		 */
		for (;;)
		{
			bool		full = receive_all(&collector, true);

			if (!extension_ready(&collector))
			{
				if (full)
					(void) receive_all(&collector, false);
				break;
			}
			if (collector.ndatagrams > 0)
				store_batch(&collector);
			if (!full)
				break;
			CHECK_FOR_INTERRUPTS();
		}
		apply_retention(&collector);
	}
}

/*
 * dolon.collector_state(): the collector's counters.
 */
Datum
dolon_collector_state(PG_FUNCTION_ARGS)
{
	DolonCollectorStatus status;
	TupleDesc	tupdesc;
	Datum		values[17];
	bool		nulls[17];
	int			c = 0;

	dolon_require_shared_state(collector_status);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	dolon_check_result_columns(tupdesc, lengthof(values));

	dolon_read_collector_status(&status);

	memset(nulls, 0, sizeof(nulls));
	values[c] = Int32GetDatum(status.pid);
	nulls[c++] = status.pid == 0;
	values[c] = CStringGetTextDatum(dolon_collector_listen_addresses);
	nulls[c++] = dolon_collector_port == 0;
	values[c] = Int32GetDatum(dolon_collector_port);
	nulls[c++] = dolon_collector_port == 0;
	values[c++] = BoolGetDatum(status.waiting_for_extension);
	values[c++] = Int64GetDatum(status.received);
	values[c++] = Int64GetDatum(status.stored_runs + status.stored_rows);
	values[c++] = Int64GetDatum(status.stored_runs);
	values[c++] = Int64GetDatum(status.stored_rows);
	values[c++] = Int64GetDatum(status.duplicate_runs);
	values[c++] = Int64GetDatum(status.orphan_rows);
	values[c++] = Int64GetDatum(status.malformed);
	values[c++] = Int64GetDatum(status.refused);
	values[c++] = Int64GetDatum(status.dropped);
	values[c++] = Int64GetDatum(status.batches);
	values[c++] = Int64GetDatum(status.expired_rows);
	dolon_last_error_datums(&status.last_error, &values[c], &nulls[c]);
	c += 2;
	Assert(c == lengthof(values));

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
