/*-------------------------------------------------------------------------
 *
 * backends.h
 *		The backend a tracer sends to: its protocol, named by the scheme of
 *		the tracer's host, and its address.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_BACKENDS_H
#define DOLON_BACKENDS_H

#include "dolon_common.h"

/* The protocols a tracer speaks; see backends.c */
typedef enum DolonProtocol
{
	DOLON_PROTOCOL_MNEMIC,		/* mnemic's JSON datagrams, runs announced */
	DOLON_PROTOCOL_INFLUX,		/* InfluxDB line protocol over UDP */
	DOLON_PROTOCOL_GRAPHITE,	/* Graphite plaintext over TCP */
	DOLON_PROTOCOL_STATSD		/* StatsD gauges over UDP */
} DolonProtocol;

/* A tracer's host, parsed */
typedef struct DolonBackend
{
	DolonProtocol protocol;
	char		address[DOLON_MAX_HOST_BYTES];	/* host name or address */
} DolonBackend;

extern bool dolon_parse_backend(const char *host, DolonBackend *backend,
								DolonFailure *failure);
extern const char *dolon_protocol_name(DolonProtocol protocol);
extern bool dolon_protocol_is_stream(DolonProtocol protocol);

#endif							/* DOLON_BACKENDS_H */
