/*-------------------------------------------------------------------------
 *
 * transport.c
 *		The socket through which a tracer sends to its backend: UDP
 *		datagrams (mnemic, InfluxDB, StatsD) or a TCP stream (Graphite).
 *
 * The host name is resolved here, in the worker, when the first datagram is
 * sent and again after sends have kept failing for a while, so that a backend
 * that moves is found again; never more often than every
 * RESOLVE_RETRY_INTERVAL_MS, since a failing DNS lookup blocks.  IPv4
 * addresses are tried before IPv6 ones, as mnemic backends listen on IPv4.
 * Datagrams go to the first address a socket can be connected to; a stream
 * tries each address in turn, until one takes the connection.
 *
 * A UDP socket is connected, so that the ICMP "port unreachable" of a
 * backend that is down comes back as ECONNREFUSED on a later send: the
 * worker learns that datagrams are lost, and when they are no longer lost.
 * The socket is non-blocking: a full send buffer drops the datagram rather
 * than delay the next sample.
 *
 * A TCP stream never delays a sample either.  What is sent goes into a
 * buffer of DOLON_STREAM_BUFFER_BYTES, and each send writes out what the
 * socket takes without waiting; the worker waits for the socket to take
 * the rest between samples (dolon_sender_wait_socket, dolon_sender_flush).
 * The connection is made without waiting too; one that fails, breaks, or
 * makes no progress for STREAM_STALL_MS (a backend that accepts and never
 * reads, a connection attempt never answered) is made again after a
 * back-off that grows from STREAM_BACKOFF_MIN_MS to STREAM_BACKOFF_MAX_MS,
 * the buffer kept meanwhile.  When the buffer is full, what is sent is
 * dropped and counted.  No backend ever gets part of a line as a line: the
 * rest of a line that a lost connection cut is not sent on the next one,
 * and a connection closed in the middle of a line is reset rather than
 * ended, so that the backend drops the part it has.
 *
 * The times kept here are on the system clock, as PostgreSQL's are.  A
 * step back of the clock leaves them ahead: a stream's next connection
 * further ahead than any wait set here, a last look-up or a last progress
 * in the future, are taken as that, and brought back to now.
 *
 * Nothing here logs; failures are described in sender->error for the
 * caller to count and report.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "transport.h"

/* Resolve a failing backend's host name again at most this often */
#define RESOLVE_RETRY_INTERVAL_MS 10000

/* The wait before a TCP stream is connected again, doubled at each failure */
#define STREAM_BACKOFF_MIN_MS 1000
#define STREAM_BACKOFF_MAX_MS 30000

/* A stream that has not moved for this long is connected again */
#define STREAM_STALL_MS 30000

/* stream_connect() takes a wait for longer than these as a clock step */
StaticAssertDecl(RESOLVE_RETRY_INTERVAL_MS <= STREAM_BACKOFF_MAX_MS,
				 "a stream waits for the next look-up at most as long as its back-off");

static bool resolve_and_connect(DolonSender *sender);

void
dolon_sender_init(DolonSender *sender)
{
	memset(sender, 0, sizeof(DolonSender));
	sender->sock = PGINVALID_SOCKET;
	sender->backoff_ms = STREAM_BACKOFF_MIN_MS;
}

/*
 * Close the socket, if one is open; the worker calls this as it exits, too.
 * A stream closed in the middle of a line is reset, so that its backend
 * drops the part it has rather than take it as a line.
 */
void
dolon_sender_close(DolonSender *sender)
{
	if (sender->sock != PGINVALID_SOCKET)
	{
		if (sender->stream && sender->mid_line)
		{
			struct linger reset = {.l_onoff = 1,.l_linger = 0};

			(void) setsockopt(sender->sock, SOL_SOCKET, SO_LINGER, &reset,
							  sizeof(reset));
		}
		close(sender->sock);
	}
	sender->sock = PGINVALID_SOCKET;
	sender->connecting = false;
	sender->mid_line = false;
}

/*
 * Point the sender at host:port, over TCP if stream.  Returns true if that
 * is a change, after which the name is resolved anew at the next send and
 * what a stream had yet to send is dropped.
 */
bool
dolon_sender_set_target(DolonSender *sender, const char *host, int port,
						bool stream)
{
	if (strcmp(sender->host, host) == 0 && sender->port == port &&
		sender->stream == stream)
		return false;

	dolon_sender_close(sender);
	strlcpy(sender->host, host, sizeof(sender->host));
	sender->port = port;
	sender->stream = stream;
	sender->last_resolve = 0;
	sender->naddresses = 0;
	sender->address = 0;
	sender->next_connect = 0;
	sender->backoff_ms = STREAM_BACKOFF_MIN_MS;
	sender->pending_start = sender->pending_end = 0;
	sender->drop_partial_line = false;
	return true;
}

/*
 * Order the candidate addresses of getaddrinfo(): IPv4 ones first.
 */
static int
address_family_rank(const struct addrinfo *ai)
{
	return ai->ai_family == AF_INET ? 0 : 1;
}

/*
 * Into buf: " (address)", the numeric form of the host's address number
 * index, if the host has more than one, so that an error says which failed;
 * else "".
 */
static const char *
which_address(const DolonSender *sender, int index, char *buf, size_t size)
{
	char		host[NI_MAXHOST];

	buf[0] = '\0';
	if (sender->naddresses > 1 &&
		getnameinfo((const struct sockaddr *) &sender->addresses[index],
					sender->address_lengths[index], host, sizeof(host),
					NULL, 0, NI_NUMERICHOST) == 0)
		snprintf(buf, size, " (%s)", host);
	return buf;
}

/*
 * A new non-blocking socket connected, or connecting, to the host's address
 * number index; it replaces the old one.  A stream's connection in progress
 * is one: sender->connecting says so.
 */
static bool
open_socket(DolonSender *sender, int index)
{
	const struct sockaddr *addr = (struct sockaddr *) &sender->addresses[index];
	pgsocket	sock;
	char		address[NI_MAXHOST + 3];

	sock = socket(addr->sa_family,
				  (sender->stream ? SOCK_STREAM : SOCK_DGRAM) |
				  SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sock == PGINVALID_SOCKET)
	{
		snprintf(sender->error, sizeof(sender->error),
				 "could not create %s socket: %m",
				 sender->stream ? "TCP" : "UDP");
		return false;
	}
	if (connect(sock, addr, sender->address_lengths[index]) != 0 &&
		!(sender->stream && errno == EINPROGRESS))
	{
		int			save_errno = errno;

		which_address(sender, index, address, sizeof(address));
		errno = save_errno;
		snprintf(sender->error, sizeof(sender->error),
				 "could not connect to \"%s\" port %d%s: %m",
				 sender->host, sender->port, address);
		close(sock);
		return false;
	}

	dolon_sender_close(sender);
	sender->sock = sock;
	sender->address = index;
	sender->connecting = sender->stream;
	sender->progress_at = GetCurrentTimestamp();
	return true;
}

/*
 * Open a socket to the first of the host's addresses, from number index on,
 * that takes one.  sender->error says why if none does.
 */
static bool
open_from(DolonSender *sender, int index)
{
	for (; index < sender->naddresses; index++)
	{
		if (open_socket(sender, index))
			return true;
	}
	return false;
}

/*
 * Resolve the backend's host into sender->addresses, IPv4 ones first.  The
 * addresses resolved before are kept if it fails.
 */
static bool
resolve(DolonSender *sender)
{
	struct addrinfo hints;
	struct addrinfo *addresses;
	char		port_text[16];
	int			rank;
	int			count = 0;
	int			rc;

	sender->last_resolve = GetCurrentTimestamp();

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = sender->stream ? SOCK_STREAM : SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port_text, sizeof(port_text), "%d", sender->port);

	rc = getaddrinfo(sender->host, port_text, &hints, &addresses);
	if (rc != 0)
	{
		snprintf(sender->error, sizeof(sender->error),
				 "could not resolve host \"%s\": %s",
				 sender->host, gai_strerror(rc));
		return false;
	}
	for (rank = 0; rank < 2; rank++)
	{
		struct addrinfo *ai;

		for (ai = addresses; ai != NULL; ai = ai->ai_next)
		{
			if (address_family_rank(ai) != rank ||
				count == DOLON_SENDER_MAX_ADDRESSES)
				continue;
			memcpy(&sender->addresses[count], ai->ai_addr, ai->ai_addrlen);
			sender->address_lengths[count] = ai->ai_addrlen;
			count++;
		}
	}
	freeaddrinfo(addresses);
	if (count == 0)
	{
		snprintf(sender->error, sizeof(sender->error),
				 "could not connect to \"%s\" port %d: no usable address",
				 sender->host, sender->port);
		return false;
	}
	sender->naddresses = count;
	return true;
}

/*
 * Resolve the backend's host and connect a new socket to the first address
 * that takes it.  A socket already connected to an address that comes
 * before is kept.  If the name resolves but no address takes a socket, the
 * old socket is closed: it is connected to none of the addresses kept.
 */
static bool
resolve_and_connect(DolonSender *sender)
{
	struct sockaddr_storage current;
	socklen_t	current_length = 0;
	int			index;

	if (sender->sock != PGINVALID_SOCKET)
	{
		current = sender->addresses[sender->address];
		current_length = sender->address_lengths[sender->address];
	}
	if (!resolve(sender))
		return false;

	for (index = 0; index < sender->naddresses; index++)
	{
		if (current_length != 0 &&
			sender->address_lengths[index] == current_length &&
			memcmp(&sender->addresses[index], &current, current_length) == 0)
		{
			sender->address = index;
			return true;
		}
		if (open_socket(sender, index))
			return true;
	}
	dolon_sender_close(sender);
	return false;
}

/*
 * May the host name be resolved again now?
 */
static bool
resolve_retry_due(DolonSender *sender)
{
	TimestampTz now = GetCurrentTimestamp();

	return sender->last_resolve == 0 ||
		sender->last_resolve > now ||	/* the clock stepped back */
		TimestampDifferenceExceeds(sender->last_resolve, now,
								   RESOLVE_RETRY_INTERVAL_MS);
}

/*
 * Send one datagram.  Returns false if it is known not to have left, with
 * the reason in sender->error.
 */
static bool
send_datagram(DolonSender *sender, const char *data, size_t len)
{
	if (sender->sock == PGINVALID_SOCKET)
	{
		/* sender->error still holds the reason of the last failure */
		if (!resolve_retry_due(sender) || !resolve_and_connect(sender))
			return false;
	}

	if (send(sender->sock, data, len, 0) == (ssize_t) len)
		return true;

	snprintf(sender->error, sizeof(sender->error),
			 "could not send to \"%s\" port %d: %m",
			 sender->host, sender->port);

	/* The backend may have moved: look its name up again, now and then */
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EMSGSIZE &&
		resolve_retry_due(sender))
	{
		char		send_error[sizeof(sender->error)];

		strlcpy(send_error, sender->error, sizeof(send_error));
		if (resolve_and_connect(sender))
			strlcpy(sender->error, send_error, sizeof(sender->error));
	}
	return false;
}

/*
 * The stream's connection failed or broke: close it, and make the next one
 * no sooner than the back-off, which doubles.  sender->error says why.
 */
static void
stream_failed(DolonSender *sender)
{
	if (sender->mid_line)
		sender->drop_partial_line = true;
	dolon_sender_close(sender);
	sender->next_connect = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   sender->backoff_ms);
	sender->backoff_ms = Min(sender->backoff_ms * 2, STREAM_BACKOFF_MAX_MS);
}

/*
 * The attempt to connect the stream to the current address failed, as
 * sender->error says: try the host's next addresses, and once none is left,
 * fail with that error.
 */
static void
stream_next_address(DolonSender *sender)
{
	char		error[sizeof(sender->error)];

	strlcpy(error, sender->error, sizeof(error));
	if (!open_from(sender, sender->address + 1))
		stream_failed(sender);
	strlcpy(sender->error, error, sizeof(sender->error));
}

/*
 * Has the stream's connection, or its attempt, made no progress for
 * STREAM_STALL_MS?
 */
static bool
stream_stalled(DolonSender *sender)
{
	TimestampTz now = GetCurrentTimestamp();

	if (sender->progress_at > now)	/* the clock stepped back */
		sender->progress_at = now;
	return TimestampDifferenceExceeds(sender->progress_at, now,
									  STREAM_STALL_MS);
}

/*
 * Connect the stream, or see whether its connection in progress is made.
 * Returns false if it is not connected; sender->error says why when that
 * is a failure, and sender->connecting is true when it is not one yet.
 */
static bool
stream_connect(DolonSender *sender)
{
	if (sender->sock == PGINVALID_SOCKET)
	{
		TimestampTz now = GetCurrentTimestamp();
		bool		opened;

		/* No wait is longer: a longer one was set before the clock stepped back */
		if (sender->next_connect - now > (int64) STREAM_BACKOFF_MAX_MS * 1000)
			sender->next_connect = now;
		if (now < sender->next_connect)
			return false;		/* sender->error holds the last failure */
		if (resolve_retry_due(sender))
			opened = resolve_and_connect(sender);
		else if (sender->naddresses == 0)
		{
			/* The name did not resolve lately: wait for the next lookup */
			sender->next_connect =
				TimestampTzPlusMilliseconds(sender->last_resolve,
											RESOLVE_RETRY_INTERVAL_MS);
			return false;
		}
		else
			opened = open_from(sender, 0);
		if (!opened)
		{
			stream_failed(sender);
			return false;
		}
	}

	if (sender->connecting)
	{
		struct pollfd pfd = {.fd = sender->sock,.events = POLLOUT};
		int			error = 0;
		socklen_t	error_len = sizeof(error);
		char		address[NI_MAXHOST + 3];

		if (poll(&pfd, 1, 0) <= 0)
		{
			if (!stream_stalled(sender))
				return false;	/* still in progress */
			snprintf(sender->error, sizeof(sender->error),
					 "could not connect to \"%s\" port %d%s: no answer in %d s",
					 sender->host, sender->port,
					 which_address(sender, sender->address, address, sizeof(address)),
					 STREAM_STALL_MS / 1000);
			stream_next_address(sender);
			return false;
		}
		if (getsockopt(sender->sock, SOL_SOCKET, SO_ERROR, &error,
					   &error_len) != 0)
			error = errno;
		if (error != 0)
		{
			which_address(sender, sender->address, address, sizeof(address));
			errno = error;
			snprintf(sender->error, sizeof(sender->error),
					 "could not connect to \"%s\" port %d%s: %m",
					 sender->host, sender->port, address);
			stream_next_address(sender);
			return false;
		}
		sender->connecting = false;
		sender->backoff_ms = STREAM_BACKOFF_MIN_MS;
		sender->progress_at = GetCurrentTimestamp();
	}
	return true;
}

/*
 * Write out what the stream has yet to send, as far as the socket takes it
 * without waiting.  Returns false if the connection is down.
 */
static bool
stream_flush(DolonSender *sender)
{
	if (!stream_connect(sender))
		return sender->connecting;

	if (sender->drop_partial_line)
	{
		char	   *newline = memchr(sender->pending + sender->pending_start,
									 '\n',
									 sender->pending_end - sender->pending_start);

		sender->pending_start = newline != NULL ?
			newline - sender->pending + 1 : sender->pending_end;
		sender->drop_partial_line = newline == NULL;
	}

	while (sender->pending_start < sender->pending_end)
	{
		ssize_t		sent = send(sender->sock,
								sender->pending + sender->pending_start,
								sender->pending_end - sender->pending_start,
								MSG_NOSIGNAL | MSG_DONTWAIT);

		if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		{
			if (!stream_stalled(sender))
				break;
			snprintf(sender->error, sizeof(sender->error),
					 "could not send to \"%s\" port %d: it has taken nothing for %d s",
					 sender->host, sender->port, STREAM_STALL_MS / 1000);
			stream_failed(sender);
			return false;
		}
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0)
		{
			snprintf(sender->error, sizeof(sender->error),
					 "could not send to \"%s\" port %d: %m",
					 sender->host, sender->port);
			stream_failed(sender);
			return false;
		}
		sender->pending_start += sent;
		sender->mid_line = sender->pending[sender->pending_start - 1] != '\n';
		sender->progress_at = GetCurrentTimestamp();
	}
	if (sender->pending_start == sender->pending_end)
		sender->pending_start = sender->pending_end = 0;
	return true;
}

/*
 * Queue whole lines on the stream and write out what the socket takes.
 * Returns false, with the reason in sender->error, if they were dropped,
 * the buffer being full, or if the connection is down (they are kept).
 */
static bool
send_stream(DolonSender *sender, const char *data, size_t len)
{
	if (sender->pending == NULL)
		sender->pending = MemoryContextAlloc(TopMemoryContext,
											 DOLON_STREAM_BUFFER_BYTES);

	if (sender->pending_end + len > DOLON_STREAM_BUFFER_BYTES &&
		sender->pending_start > 0)
	{
		memmove(sender->pending, sender->pending + sender->pending_start,
				sender->pending_end - sender->pending_start);
		sender->pending_end -= sender->pending_start;
		sender->pending_start = 0;
	}
	if (sender->pending_end + len > DOLON_STREAM_BUFFER_BYTES)
	{
		sender->dropped_bytes += len;
		(void) stream_flush(sender);
		snprintf(sender->error, sizeof(sender->error),
				 "could not send to \"%s\" port %d: %lld bytes dropped, %d kB waiting for the connection",
				 sender->host, sender->port, (long long) sender->dropped_bytes,
				 DOLON_STREAM_BUFFER_BYTES / 1024);
		return false;
	}
	/* Lines wait from now on: the stall is measured from here */
	if (sender->pending_start == sender->pending_end)
		sender->progress_at = GetCurrentTimestamp();
	memcpy(sender->pending + sender->pending_end, data, len);
	sender->pending_end += len;
	return stream_flush(sender);
}

/*
 * Send a datagram, or whole lines on a stream.  Returns false if they are
 * known not to have left, with the reason in sender->error.
 */
bool
dolon_sender_send(DolonSender *sender, const char *data, size_t len)
{
	if (sender->stream)
		return send_stream(sender, data, len);
	return send_datagram(sender, data, len);
}

/*
 * What the worker waits on between samples for a stream: its socket, to be
 * writable, when it has lines to send or a connection in progress, and in
 * *retry_at when it may connect again to send what it keeps (0 if not
 * waiting for that).  PGINVALID_SOCKET when there is no socket to wait on.
 */
pgsocket
dolon_sender_wait_socket(const DolonSender *sender, TimestampTz *retry_at)
{
	bool		pending = sender->stream &&
		sender->pending_start < sender->pending_end;

	*retry_at = 0;
	if (sender->sock == PGINVALID_SOCKET)
	{
		if (pending)
			*retry_at = sender->next_connect;
		return PGINVALID_SOCKET;
	}
	return pending || sender->connecting ? sender->sock : PGINVALID_SOCKET;
}

/*
 * Write out what a stream has yet to send, as far as its socket takes it
 * without waiting, connecting again if due.  A failure is in sender->error,
 * for the next send to report.
 */
void
dolon_sender_flush(DolonSender *sender)
{
	if (sender->stream)
		(void) stream_flush(sender);
}
