/*-------------------------------------------------------------------------
 *
 * line_protocols.h
 *		A tracer's rows in the line protocols of time-series engines:
 *		InfluxDB's line protocol, Graphite's plaintext and StatsD's gauges.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_LINE_PROTOCOLS_H
#define DOLON_LINE_PROTOCOLS_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "backends.h"

/*
 * The largest datagram of a line protocol over UDP: it fits an Ethernet
 * frame (MTU 1500) after IPv6's and UDP's headers, so that no datagram is
 * fragmented, which loses all of it when a fragment is lost
 */
#define DOLON_SAFE_DATAGRAM_BYTES 1432

/*
 * What the lines of a run's rows begin with, escaped once when the run
 * starts: see line_protocols.c
 */
typedef struct DolonLineFormat
{
	DolonProtocol protocol;
	char	   *prefix;			/* the measurement and tags, or the path */
	int			count;
	char	  **keys;			/* each column's field key or path node */
} DolonLineFormat;

extern DolonLineFormat *dolon_line_format(DolonProtocol protocol,
										  const char *tracer,
										  const char *const *columns,
										  int count);
extern int	dolon_encode_lines(const DolonLineFormat *format,
							   const double *values, const bool *nulls,
							   TimestampTz time, int first, StringInfo buf,
							   int limit);

#endif							/* DOLON_LINE_PROTOCOLS_H */
