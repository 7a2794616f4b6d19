/*-------------------------------------------------------------------------
 *
 * transport.c
 *		The UDP socket through which the tracer sends datagrams to its
 *		mnemic backend.
 *
 * The host name is resolved here, in the worker, when the first datagram is
 * sent and again after sends have kept failing for a while, so that a backend
 * that moves is found again; never more often than every
 * RESOLVE_RETRY_INTERVAL_MS, since a failing DNS lookup blocks.  IPv4
 * addresses are tried before IPv6 ones, as mnemic backends listen on IPv4.
 *
 * The socket is connected, so that the ICMP "port unreachable" of a backend
 * that is down comes back as ECONNREFUSED on a later send: the worker learns
 * that datagrams are lost, and when they are no longer lost.  The socket is
 * non-blocking: a full send buffer drops the datagram rather than delay the
 * next sample.  Nothing here logs; failures are described in sender->error
 * for the caller to count and report.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "utils/timestamp.h"

#include "transport.h"

/* Resolve a failing backend's host name again at most this often */
#define RESOLVE_RETRY_INTERVAL_MS 10000

static bool resolve_and_connect(MnemicSender *sender);

void
mnemic_sender_init(MnemicSender *sender)
{
	memset(sender, 0, sizeof(MnemicSender));
	sender->sock = PGINVALID_SOCKET;
}

static void
close_socket(MnemicSender *sender)
{
	if (sender->sock != PGINVALID_SOCKET)
		close(sender->sock);
	sender->sock = PGINVALID_SOCKET;
}

/*
 * Point the sender at host:port.  Returns true if that is a change, after
 * which the name is resolved anew at the next send.
 */
bool
mnemic_sender_set_target(MnemicSender *sender, const char *host, int port)
{
	if (strcmp(sender->host, host) == 0 && sender->port == port)
		return false;

	close_socket(sender);
	strlcpy(sender->host, host, sizeof(sender->host));
	sender->port = port;
	sender->last_resolve = 0;
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
 * Resolve the backend's host and connect a new socket to the first address
 * that takes it.  On success the new socket replaces the old one, unless
 * the address is the same, in which case the old one is kept.
 */
static bool
resolve_and_connect(MnemicSender *sender)
{
	struct addrinfo hints;
	struct addrinfo *addresses;
	char		port_text[16];
	int			rank;
	int			rc;

	sender->last_resolve = GetCurrentTimestamp();

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
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

	snprintf(sender->error, sizeof(sender->error),
			 "could not connect to \"%s\" port %d: no usable address",
			 sender->host, sender->port);
	for (rank = 0; rank < 2; rank++)
	{
		struct addrinfo *ai;

		for (ai = addresses; ai != NULL; ai = ai->ai_next)
		{
			pgsocket	sock;

			if (address_family_rank(ai) != rank)
				continue;

			if (sender->sock != PGINVALID_SOCKET &&
				ai->ai_addrlen == sender->addrlen &&
				memcmp(ai->ai_addr, &sender->addr, ai->ai_addrlen) == 0)
			{
				freeaddrinfo(addresses);
				return true;
			}

			sock = socket(ai->ai_family,
						  SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
						  ai->ai_protocol);
			if (sock == PGINVALID_SOCKET)
			{
				snprintf(sender->error, sizeof(sender->error),
						 "could not create UDP socket: %m");
				continue;
			}
			if (connect(sock, ai->ai_addr, ai->ai_addrlen) != 0)
			{
				snprintf(sender->error, sizeof(sender->error),
						 "could not connect to \"%s\" port %d: %m",
						 sender->host, sender->port);
				close(sock);
				continue;
			}

			close_socket(sender);
			sender->sock = sock;
			memcpy(&sender->addr, ai->ai_addr, ai->ai_addrlen);
			sender->addrlen = ai->ai_addrlen;
			freeaddrinfo(addresses);
			return true;
		}
	}
	freeaddrinfo(addresses);
	return false;
}

/*
 * May the host name be resolved again now?
 */
static bool
resolve_retry_due(MnemicSender *sender)
{
	return sender->last_resolve == 0 ||
		TimestampDifferenceExceeds(sender->last_resolve, GetCurrentTimestamp(),
								   RESOLVE_RETRY_INTERVAL_MS);
}

/*
 * Send one datagram.  Returns false if it is known not to have left, with
 * the reason in sender->error.
 */
bool
mnemic_sender_send(MnemicSender *sender, const char *data, size_t len)
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
