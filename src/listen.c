/*-------------------------------------------------------------------------
 *
 * listen.c
 *		Sockets bound to the addresses of a listen_addresses setting, for
 *		the workers that take datagrams or requests from the network: the
 *		collector (UDP) and the metrics endpoint (TCP).
 *
 * A setting is a comma-separated list of host names or IPv4 or IPv6
 * addresses, "*" meaning all, as PostgreSQL's own listen_addresses.  Each
 * name may resolve to several addresses; each gets a non-blocking socket.
 * An address that cannot be used is logged and skipped; none at all is an
 * error, which ends the worker.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nodes/pg_list.h"
#include "utils/varlena.h"

#include "listen.h"

/* Connections a TCP socket queues before they are accepted */
#define LISTEN_BACKLOG 64

/*
 * Bind non-blocking sockets of type socktype (SOCK_DGRAM or SOCK_STREAM) to
 * each address of the setting named setting, whose value is addresses, at
 * port, the value of port_setting; stream sockets also listen.  Up to
 * max_sockets are put in sockets; their number is returned.  worker names
 * the worker in the messages.
 */
int
dolon_listen(const char *worker, const char *setting, const char *addresses,
			 const char *port_setting, int port, int socktype,
			 pgsocket *sockets, int max_sockets)
{
	char	   *list = pstrdup(addresses);
	List	   *names;
	ListCell   *lc;
	char		port_text[16];
	int			nsockets = 0;

	if (!SplitGUCList(list, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in %s", setting)));
	snprintf(port_text, sizeof(port_text), "%d", port);

	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);
		struct addrinfo hints;
		struct addrinfo *found;
		struct addrinfo *ai;
		int			rc;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = socktype;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		rc = getaddrinfo(strcmp(name, "*") == 0 ? NULL : name, port_text,
						 &hints, &found);
		if (rc != 0)
		{
			ereport(WARNING,
					(errmsg("%s could not resolve listen address \"%s\": %s",
							worker, name, gai_strerror(rc))));
			continue;
		}
		for (ai = found; ai != NULL && nsockets < max_sockets; ai = ai->ai_next)
		{
			pgsocket	sock;
			int			one = 1;

			sock = socket(ai->ai_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
						  ai->ai_protocol);
			if (sock == PGINVALID_SOCKET)
				continue;
			if (ai->ai_family == AF_INET6)
				(void) setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			if (socktype == SOCK_STREAM)
				(void) setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(sock, ai->ai_addr, ai->ai_addrlen) != 0 ||
				(socktype == SOCK_STREAM && listen(sock, LISTEN_BACKLOG) != 0))
			{
				ereport(WARNING,
						(errcode_for_socket_access(),
						 errmsg("%s could not listen on \"%s\" port %d: %m",
								worker, name, port)));
				close(sock);
				continue;
			}
			sockets[nsockets++] = sock;
		}
		freeaddrinfo(found);
	}
	list_free(names);
	pfree(list);

	if (nsockets == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s could not listen on any address of \"%s\"",
						worker, addresses),
				 errhint("Check %s and %s.", setting, port_setting)));
	return nsockets;
}
