/*-------------------------------------------------------------------------
 *
 * listen.h
 *		Sockets bound to the addresses of a listen_addresses setting.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_LISTEN_H
#define DOLON_LISTEN_H

#include "port.h"

extern int	dolon_listen(const char *worker, const char *setting,
						 const char *addresses, const char *port_setting,
						 int port, int socktype, pgsocket *sockets,
						 int max_sockets);

#endif							/* DOLON_LISTEN_H */
