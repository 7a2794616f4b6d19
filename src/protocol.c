/*-------------------------------------------------------------------------
 *
 * protocol.c
 *		Encoding of the messages of the mnemic tracing protocol.
 *
 * A run is announced by a create_trace_run message naming its columns and
 * carrying a random (version 4) UUID; each sample is then a row message with
 * one number per column.  Each message is one JSON object, sent as one UDP
 * datagram.  Keys come in the order, and with the separators, of the
 * original Python client, so that captures compare byte for byte.
 *
 * Strings are escaped by escape_json(), the server's own JSON escaper.
 * Numbers that are whole are written as integers; others in the shortest
 * form that reads back as the same double, as the original client does.
 * JSON has no NaN or infinity, so those, like unknown values, are null.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "common/keywords.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "dolon.h"

/*
 * Whole numbers of at most this magnitude are written as integers: every
 * integer up to 2^53 is exact in a double.
 */
#define MAX_EXACT_INTEGER 9007199254740992.0

/*
 * Make a new random UUID of version 4 (RFC 4122, section 4.4).
 */
void
mnemic_new_run_uuid(pg_uuid_t *uuid)
{
	if (!pg_strong_random(uuid->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));

	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40;	/* version 4 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;	/* variant 10xx */
}

/*
 * Write the lowercase text form of a UUID into text, which has room for
 * DOLON_UUID_TEXT_LEN + 1 bytes.
 */
void
mnemic_uuid_text(const pg_uuid_t *uuid, char *text)
{
	char	   *formatted;

	formatted = DatumGetCString(DirectFunctionCall1(uuid_out,
													UUIDPGetDatum(uuid)));
	strlcpy(text, formatted, DOLON_UUID_TEXT_LEN + 1);
	pfree(formatted);
}

/*
 * Make a name a plain column name, as mnemic's viewer needs: a lowercase
 * identifier ([a-z_][a-z0-9_]*) that is not a reserved word, since the
 * viewer builds SQL from column names without quoting them.  Other
 * characters become underscores, a leading digit gets an underscore before
 * it and a reserved word one after it.  column has room for size bytes.
 */
void
mnemic_plain_column_name(const char *name, char *column, size_t size)
{
	size_t		length = 0;
	const char *c;
	int			keyword;

	Assert(size > 2);
	if (isdigit((unsigned char) name[0]) || name[0] == '\0')
		column[length++] = '_';
	for (c = name; *c != '\0' && length < size - 2; c++)
	{
		if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')
			column[length++] = *c;
		else if (*c >= 'A' && *c <= 'Z')
			column[length++] = *c - 'A' + 'a';
		else
			column[length++] = '_';
	}
	column[length] = '\0';

	keyword = ScanKeywordLookup(column, &ScanKeywords);
	if (keyword >= 0 && ScanKeywordCategories[keyword] == RESERVED_KEYWORD)
	{
		column[length++] = '_';
		column[length] = '\0';
	}
}

/*
 * Append a number, or null when it is unknown or not finite.
 */
static void
append_number(StringInfo buf, double value, bool isnull)
{
	if (isnull || isnan(value) || isinf(value))
		appendStringInfoString(buf, "null");
	else if (value == floor(value) && fabs(value) <= MAX_EXACT_INTEGER)
		appendStringInfo(buf, INT64_FORMAT, (int64) value);
	else
	{
		char		digits[DOUBLE_SHORTEST_DECIMAL_LEN];

		double_to_shortest_decimal_buf(value, digits);
		appendStringInfoString(buf, digits);
	}
}

/*
 * {"msg_type": "create_trace_run", "app_name": ..., "column_names": [...],
 *  "uuid": ...}
 */
void
mnemic_encode_create_trace_run(StringInfo buf, const char *app_name,
							   const DolonColumns *columns,
							   const char *uuid_text)
{
	int			i;

	resetStringInfo(buf);
	appendStringInfoString(buf, "{\"msg_type\": \"create_trace_run\", \"app_name\": ");
	escape_json(buf, app_name);
	appendStringInfoString(buf, ", \"column_names\": [");
	for (i = 0; i < columns->count; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, columns->items[i].name);
	}
	appendStringInfoString(buf, "], \"uuid\": ");
	escape_json(buf, uuid_text);
	appendStringInfoChar(buf, '}');
}

/*
 * {"msg_type": "row", "row_data": [...], "uuid": ...}
 */
void
mnemic_encode_row(StringInfo buf, const double *values, const bool *nulls,
				  int count, const char *uuid_text)
{
	int			i;

	resetStringInfo(buf);
	appendStringInfoString(buf, "{\"msg_type\": \"row\", \"row_data\": [");
	for (i = 0; i < count; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		append_number(buf, values[i], nulls[i]);
	}
	appendStringInfoString(buf, "], \"uuid\": ");
	escape_json(buf, uuid_text);
	appendStringInfoChar(buf, '}');
}
