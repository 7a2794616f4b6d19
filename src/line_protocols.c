/*-------------------------------------------------------------------------
 *
 * line_protocols.c
 *		A tracer's rows in the line protocols of the time-series engines
 *		(backends.c names them by the scheme of the tracer's host).
 *
 * influx://   InfluxDB line protocol, over UDP:
 *                 dolon,tracer=<tracer>,server=<server> <column>=<value>,... <ns>
 *             server is cluster_name, else the host name; the timestamp is
 *             the sample's, in nanoseconds since 1970.  Tag values and field
 *             keys escape commas, equal signs and spaces with a backslash.
 * graphite:// Graphite plaintext, over a TCP stream, a line per column:
 *                 dolon.<tracer>.<column> <value> <unix seconds>
 *             in seconds with milliseconds, which Graphite's carbon rounds
 *             down to its retention and VictoriaMetrics keeps.
 * statsd://   StatsD gauges, over UDP, a line per column:
 *                 dolon.<tracer>.<column>:<value>|g
 *             A negative gauge is set by "0|g" then the value, since StatsD
 *             reads a signed value as a change to the gauge.  StatsD stamps
 *             rows when it flushes them.
 *
 * In Graphite's and StatsD's paths, a tracer or column name keeps its ASCII
 * letters, digits, '-' and '_'; any other character becomes one '_': the
 * dot that separates a path's nodes, the space and colon that end a path,
 * and any character beyond ASCII, since carbon splits its lines at
 * Unicode's spaces too.  In InfluxDB's lines, names are in UTF-8
 * (utf8_text.c), and a control character, which no protocol can carry,
 * becomes '_', as does a backslash, which the engines unescape
 * differently.  Names are made once a run, in the sample's transaction,
 * which a conversion from the database's encoding needs.
 *
 * A null value, or one that is not finite, is left out (none of these
 * protocols has a null); a row with no value left sends nothing.  Values
 * are written as mnemic's are.  Where a protocol allows it, a row is cut
 * into several datagrams of at most a safe size (dolon_encode_lines); an
 * InfluxDB line is cut into several lines with the same tags and
 * timestamp, which the engines merge into one point.
 *
 * None of these protocols has runs: a new run changes nothing in what is
 * sent, and a run's columns that another run does not have simply stop.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>
#include <unistd.h>

#include "utils/guc.h"

#include "line_protocols.h"
#include "protocol.h"
#include "utf8_text.h"

/* Room for " <timestamp>\n" at the end of a line */
#define TIMESTAMP_ROOM 32

/* Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01 */
#define UNIX_TO_POSTGRES_USECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC)

/*
 * Append name, in UTF-8, as the protocol requires: for InfluxDB with its
 * commas, equal signs and spaces escaped; for Graphite and StatsD as a
 * node of a path.
 */
static void
append_name(StringInfo buf, DolonProtocol protocol, const char *name)
{
	const unsigned char *c;

	for (c = (const unsigned char *) dolon_utf8_text(name); *c != '\0'; c++)
	{
		if (*c < 0x20 || *c == 0x7f || *c == '\\')
			appendStringInfoChar(buf, '_');
		else if (protocol == DOLON_PROTOCOL_INFLUX)
		{
			if (*c == ',' || *c == '=' || *c == ' ')
				appendStringInfoChar(buf, '\\');
			appendStringInfoChar(buf, *c);
		}
		else if (isalnum(*c) || *c == '-' || *c == '_')
			appendStringInfoChar(buf, *c);
		else if (*c < 0x80 || *c >= 0xc0)
			appendStringInfoChar(buf, '_');	/* a character, or its first byte */
	}
}

/*
 * The server's name for InfluxDB's tag server: cluster_name, else the host
 * name
 */
static const char *
server_name(void)
{
	static char host[256];

	if (cluster_name != NULL && cluster_name[0] != '\0')
		return cluster_name;
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		return "postgres";
	host[sizeof(host) - 1] = '\0';
	return host;
}

/*
 * What the lines of a run's rows begin with, for a tracer and the run's
 * columns, in the current memory context.  In a transaction, unless the
 * database's encoding is UTF-8 or SQL_ASCII.
 */
DolonLineFormat *
dolon_line_format(DolonProtocol protocol, const char *tracer,
				  const char *const *columns, int count)
{
	DolonLineFormat *format = palloc(sizeof(DolonLineFormat));
	StringInfoData buf;
	int			i;

	Assert(protocol != DOLON_PROTOCOL_MNEMIC);
	format->protocol = protocol;
	format->count = count;

	initStringInfo(&buf);
	if (protocol == DOLON_PROTOCOL_INFLUX)
	{
		appendStringInfoString(&buf, "dolon,tracer=");
		append_name(&buf, protocol, tracer);
		appendStringInfoString(&buf, ",server=");
		append_name(&buf, protocol, server_name());
		appendStringInfoChar(&buf, ' ');
	}
	else
	{
		appendStringInfoString(&buf, "dolon.");
		append_name(&buf, protocol, tracer);
		appendStringInfoChar(&buf, '.');
	}
	format->prefix = buf.data;

	format->keys = palloc(count * sizeof(char *));
	for (i = 0; i < count; i++)
	{
		initStringInfo(&buf);
		append_name(&buf, protocol, columns[i]);
		format->keys[i] = buf.data;
	}
	return format;
}

/*
 * Append one column's line, or for InfluxDB its field, to buf
 */
static void
append_column(StringInfo buf, const DolonLineFormat *format, int column,
			  double value, const char *stamp)
{
	switch (format->protocol)
	{
		case DOLON_PROTOCOL_INFLUX:
			if (buf->len > 0)
				appendStringInfoChar(buf, ',');
			else
				appendStringInfoString(buf, format->prefix);
			appendStringInfoString(buf, format->keys[column]);
			appendStringInfoChar(buf, '=');
			mnemic_append_number(buf, value, false);
			break;
		case DOLON_PROTOCOL_GRAPHITE:
			appendStringInfoString(buf, format->prefix);
			appendStringInfoString(buf, format->keys[column]);
			appendStringInfoChar(buf, ' ');
			mnemic_append_number(buf, value, false);
			appendStringInfoString(buf, stamp);
			break;
		case DOLON_PROTOCOL_STATSD:
			if (value < 0)
			{
				appendStringInfoString(buf, format->prefix);
				appendStringInfoString(buf, format->keys[column]);
				appendStringInfoString(buf, ":0|g\n");
			}
			appendStringInfoString(buf, format->prefix);
			appendStringInfoString(buf, format->keys[column]);
			appendStringInfoChar(buf, ':');
			mnemic_append_number(buf, value, false);
			appendStringInfoString(buf, "|g\n");
			break;
		case DOLON_PROTOCOL_MNEMIC:
			Assert(false);
			break;
	}
}

/*
 * Encode a row's values from column first on into buf, emptied first, in
 * at most limit bytes (0: no limit), but at least one column's whatever the
 * limit.  Returns the first column left for the next call: format->count
 * when the row is done.  buf may come back empty: the columns it covered
 * had no value.
 */
int
dolon_encode_lines(const DolonLineFormat *format, const double *values,
				   const bool *nulls, TimestampTz time, int first,
				   StringInfo buf, int limit)
{
	int64		unix_usecs = time + UNIX_TO_POSTGRES_USECS;
	char		stamp[TIMESTAMP_ROOM] = "";
	int			column;

	/* Graphite's timestamp ends each line: written once */
	if (format->protocol == DOLON_PROTOCOL_GRAPHITE)
	{
		int64		seconds = unix_usecs / USECS_PER_SEC;
		int64		usecs = unix_usecs % USECS_PER_SEC;

		if (usecs < 0)
		{
			seconds--;
			usecs += USECS_PER_SEC;
		}
		snprintf(stamp, sizeof(stamp), " " INT64_FORMAT ".%03d\n", seconds,
				 (int) (usecs / 1000));
	}

	resetStringInfo(buf);
	for (column = first; column < format->count; column++)
	{
		int			before = buf->len;

		if (nulls[column] || isnan(values[column]) || isinf(values[column]))
			continue;
		append_column(buf, format, column, values[column], stamp);
		if (limit > 0 && before > 0 &&
			buf->len + (format->protocol == DOLON_PROTOCOL_INFLUX ?
						TIMESTAMP_ROOM : 0) > limit)
		{
			/* Over the limit: this column goes into the next datagram */
			buf->len = before;
			buf->data[before] = '\0';
			break;
		}
	}
	if (format->protocol == DOLON_PROTOCOL_INFLUX && buf->len > 0)
		appendStringInfo(buf, " " INT64_FORMAT "000\n", unix_usecs);
	return column;
}
