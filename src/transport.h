/*-------------------------------------------------------------------------
 *
 * transport.h
 *		The socket towards a tracer's backend: UDP datagrams or a TCP stream.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_TRANSPORT_H
#define DOLON_TRANSPORT_H

#include <sys/socket.h>
#include "datatype/timestamp.h"
#include "dolon_common.h"

/* What a TCP stream keeps of the rows its backend has not taken yet */
#define DOLON_STREAM_BUFFER_BYTES (1024 * 1024)

/* The addresses of the backend's host name that are kept, at most */
#define DOLON_SENDER_MAX_ADDRESSES 8

/*
 * The socket towards a tracer's backend.  See transport.c.
 */
typedef struct DolonSender
{
	pgsocket	sock;			/* PGINVALID_SOCKET until connected */
	char		host[DOLON_MAX_HOST_BYTES];
	int			port;
	bool		stream;			/* TCP rather than UDP */
	/* the host's addresses, IPv4 ones first, as last resolved */
	struct sockaddr_storage addresses[DOLON_SENDER_MAX_ADDRESSES];
	socklen_t	address_lengths[DOLON_SENDER_MAX_ADDRESSES];
	int			naddresses;		/* 0 until the name has resolved */
	int			address;		/* the one sock is connected, or connecting, to */
	TimestampTz last_resolve;	/* 0 when the host is to be resolved anew */
	char		error[DOLON_MAX_ERROR_BYTES];	/* why the last send failed */

	/* A TCP stream: its connection and what it has yet to send */
	bool		connecting;		/* connect() is in progress */
	TimestampTz next_connect;	/* no new connection before then */
	int			backoff_ms;		/* the wait after the next failure */
	char	   *pending;		/* DOLON_STREAM_BUFFER_BYTES, once needed */
	size_t		pending_start;	/* the first byte not sent */
	size_t		pending_end;
	bool		mid_line;		/* the last byte sent is not a line's end */
	bool		drop_partial_line;	/* a line was cut by a lost connection */
	TimestampTz progress_at;	/* the last connection or send that moved */
	int64		dropped_bytes;	/* lost, the buffer being full */
} DolonSender;

extern void dolon_sender_init(DolonSender *sender);
extern bool dolon_sender_set_target(DolonSender *sender, const char *host,
									int port, bool stream);
extern bool dolon_sender_send(DolonSender *sender, const char *data,
							  size_t len);
extern pgsocket dolon_sender_wait_socket(const DolonSender *sender,
										 TimestampTz *retry_at);
extern void dolon_sender_flush(DolonSender *sender);
extern void dolon_sender_close(DolonSender *sender);

#endif							/* DOLON_TRANSPORT_H */
