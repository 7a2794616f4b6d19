/*-------------------------------------------------------------------------
 *
 * transport.h
 *		The UDP socket towards a mnemic backend.
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

extern void mnemic_sender_init(MnemicSender *sender);
extern bool mnemic_sender_set_target(MnemicSender *sender, const char *host,
									 int port);
extern bool mnemic_sender_send(MnemicSender *sender, const char *data,
							   size_t len);

#endif							/* DOLON_TRANSPORT_H */
