/*-------------------------------------------------------------------------
 *
 * lines.c
 *		Fuzzing harness of the line protocols' encoders, dolon_line_format()
 *		and dolon_encode_lines() in src/line_protocols.c.
 *
 * An input is a protocol (its first byte: InfluxDB, Graphite or StatsD),
 * a count of values (the second), the sample's time (8 bytes, within
 * 100,000 years of 2000), the values of a row (8 bytes each, a null for
 * each whose first byte is odd) and the tracer's and columns' names (the
 * rest, one a line).  The row is encoded as a tracer does, in
 * datagrams of at most DOLON_SAFE_DATAGRAM_BYTES but for Graphite's stream.
 * Whatever the names and values: each call makes progress; a datagram
 * over the limit holds one column only; what is sent is whole lines of the
 * protocol (InfluxDB: measurement and tags, fields, timestamp, split by
 * two unescaped spaces; Graphite and StatsD: a path of three nodes, and
 * the value, Graphite's then its timestamp in seconds and milliseconds),
 * with no control character, in valid UTF-8; and every value
 * that is not null and finite is there once (a negative StatsD gauge
 * twice, 0 first).
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "mb/pg_wchar.h"

#include "line_protocols.h"
#include "support.h"

#define MAX_COLUMNS 64

/* The fields of an InfluxDB line: its unescaped '=' after its first space */
static int
influx_fields(const char *line, int length)
{
	int			spaces = 0;
	int			fields = 0;
	int			i;

	for (i = 0; i < length; i++)
	{
		if (line[i] == '\\')
			i++;
		else if (line[i] == ' ')
			spaces++;
		else if (line[i] == '=' && spaces == 1)
			fields++;
	}
	if (spaces != 2 || strncmp(line, "dolon,tracer=", 13) != 0)
		fuzz_finding("an InfluxDB line is not measurement and tags, fields, timestamp");
	return fields;
}

/* A Graphite or StatsD line: a path of three nodes, and one value */
static void
check_path_line(DolonProtocol protocol, const char *line, int length)
{
	int			dots = 0;
	int			i;

	for (i = 0; i < length && line[i] != ' ' && line[i] != ':'; i++)
		if (line[i] == '.')
			dots++;
	if (dots != 2 || strncmp(line, "dolon.", 6) != 0)
		fuzz_finding("a path is not dolon.<tracer>.<column>");
	if (protocol == DOLON_PROTOCOL_STATSD &&
		(i == length || line[i] != ':' || memchr(line + i + 1, ':', length - i - 1) ||
		 length < 2 || strncmp(line + length - 2, "|g", 2) != 0))
		fuzz_finding("a StatsD line is not <path>:<value>|g");
	if (protocol == DOLON_PROTOCOL_GRAPHITE)
	{
		const char *stamp = NULL;
		int			stamp_length = 0;
		int			j;

		for (j = length - 1; j >= 0 && stamp == NULL; j--)
			if (line[j] == ' ')
				stamp = line + j;
		if (stamp != NULL)
			stamp_length = line + length - stamp - 1;

		if (i == length || line[i] != ' ' || stamp == line + i ||
			stamp_length < 5 || stamp[stamp_length - 3] != '.' ||
			strspn(stamp + 1, "-0123456789") != stamp_length - 4 ||
			strspn(stamp + stamp_length - 2, "0123456789") != 3)
			fuzz_finding("a Graphite line is not <path> <value> <seconds>.<ms>");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	DolonProtocol protocol;
	int			count;
	double		values[MAX_COLUMNS];
	bool		nulls[MAX_COLUMNS];
	const char *names[MAX_COLUMNS];
	char	   *text;
	char	   *tracer;
	char	   *next;
	DolonLineFormat *format;
	StringInfoData buf;
	int			limit;
	TimestampTz time;
	int			expected = 0;
	int			found = 0;
	int			first = 0;
	int			i;

	if (size < 10)
		return 0;
	protocol = DOLON_PROTOCOL_INFLUX + data[0] % 3;
	count = Min(data[1] % (MAX_COLUMNS + 1), (size - 10) / 8);
	memcpy(&time, data + 2, 8);
	time %= (int64) 100000 * 365 * SECS_PER_DAY * USECS_PER_SEC;
	data += 8;
	size -= 8;
	for (i = 0; i < count; i++)
	{
		memcpy(&values[i], data + 2 + 8 * i, 8);
		nulls[i] = data[2 + 8 * i] & 1;
		if (!nulls[i] && !isnan(values[i]) && !isinf(values[i]))
			expected += (protocol == DOLON_PROTOCOL_STATSD && values[i] < 0) ? 2 : 1;
	}
	text = fuzz_input_string(data + 2 + 8 * count, size - 2 - 8 * count);
	tracer = text;
	next = strchr(text, '\n');
	for (i = 0; i < count; i++)
	{
		if (next != NULL)
		{
			*next = '\0';
			names[i] = next + 1;
			next = strchr(next + 1, '\n');
		}
		else
			names[i] = "column";
	}
	if (next != NULL)
		*next = '\0';

	format = dolon_line_format(protocol, tracer, names, count);
	limit = protocol == DOLON_PROTOCOL_GRAPHITE ? 0 : DOLON_SAFE_DATAGRAM_BYTES;
	initStringInfo(&buf);
	while (first < count)
	{
		int			from = first;
		int			present = 0;
		int			start;

		first = dolon_encode_lines(format, values, nulls, time, first, &buf,
								   limit);
		if (first <= from)
			fuzz_finding("an encoding makes no progress");
		for (i = from; i < first; i++)
			if (!nulls[i] && !isnan(values[i]) && !isinf(values[i]))
				present++;
		if (limit > 0 && buf.len > limit && present > 1)
			fuzz_finding("a datagram over the limit holds more than one column");
		if (buf.len > 0 && buf.data[buf.len - 1] != '\n')
			fuzz_finding("a datagram does not end a line");
		if (pg_encoding_verifymbstr(PG_UTF8, buf.data, buf.len) != buf.len)
			fuzz_finding("what is sent is not valid UTF-8");
		for (start = 0; start < buf.len;)
		{
			char	   *end = memchr(buf.data + start, '\n', buf.len - start);
			int			length = end - (buf.data + start);
			int			j;

			for (j = 0; j < length; j++)
				if ((unsigned char) buf.data[start + j] < 0x20 ||
					buf.data[start + j] == 0x7f)
					fuzz_finding("a line has a control character");
			if (protocol == DOLON_PROTOCOL_INFLUX)
				found += influx_fields(buf.data + start, length);
			else
			{
				check_path_line(protocol, buf.data + start, length);
				found++;
			}
			start += length + 1;
		}
	}
	if (found != expected)
		fuzz_finding("a value is missing, or there twice");

	fuzz_reset_memory();
	return 0;
}
