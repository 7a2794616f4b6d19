/*-------------------------------------------------------------------------
 *
 * protocol.c
 *		Encoding and decoding of the messages of the mnemic tracing
 *		protocol.
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
 * Decoding, for the collector, is described below, before its code.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "catalog/namespace.h"
#include "common/jsonapi.h"
#include "common/keywords.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/json.h"

#include "compat.h"
#include "protocol.h"

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
 * Append a number, or null when it is unknown or not finite.  The line
 * protocols (line_protocols.c) write their numbers so too.
 */
void
mnemic_append_number(StringInfo buf, double value, bool isnull)
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
 * Make a name a plain column name, unique among those taken(candidate, arg)
 * says are taken: a name taken already gets the suffix _2, _3 and so on.
 * column has room for size bytes.
 */
void
mnemic_unique_column_name(const char *name, char *column, size_t size,
						  bool (*taken) (const char *candidate, void *arg),
						  void *arg)
{
	char	   *base = palloc(size);
	int			suffix = 1;

	mnemic_plain_column_name(name, base, size);
	strlcpy(column, base, size);
	while (taken(column, arg))
		snprintf(column, size, "%.*s_%d", (int) size - 12, base, ++suffix);
	pfree(base);
}

/*
 * {"msg_type": "create_trace_run", "app_name": ..., "column_names": [...],
 *  "uuid": ...}
 */
void
mnemic_encode_create_trace_run(StringInfo buf, const char *app_name,
							   const char *const *column_names, int count,
							   const char *uuid_text)
{
	int			i;

	resetStringInfo(buf);
	appendStringInfoString(buf, "{\"msg_type\": \"create_trace_run\", \"app_name\": ");
	escape_json(buf, app_name);
	appendStringInfoString(buf, ", \"column_names\": [");
	for (i = 0; i < count; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, column_names[i]);
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
		mnemic_append_number(buf, values[i], nulls[i]);
	}
	appendStringInfoString(buf, "], \"uuid\": ");
	escape_json(buf, uuid_text);
	appendStringInfoChar(buf, '}');
}

/*
 * Decoding, for the collector.
 *
 * A datagram is parsed by the server's own JSON parser (common/jsonapi.h),
 * whose semantic actions fill a MnemicMessage.  The actions cannot stop the
 * parser, so the first problem found is kept and the rest of the datagram
 * only parsed.  What is accepted, and what is refused, is what mnemic's own
 * backend accepts and drops: a JSON object with a known msg_type, a uuid, and
 * for a run an app_name of at most 128 characters and a non-empty list of
 * column names, for a row a list of values, each a number within the range
 * of real (one too close to zero for real is 0), a boolean (1 or 0), or
 * null.  Other keys are ignored.
 *
 * The original client writes with Python's json module, which writes a value
 * that is not finite as a bare NaN, Infinity or -Infinity: not JSON, and
 * refused by the server's parser.  Before parsing, each of these three
 * tokens that stands alone outside strings is replaced, in a copy of the
 * datagram, by the number 0 padded with spaces to the same length, and
 * noted; a value of row_data that ends where a noted 0 ends is then that
 * token's value.  Any other spelling (nan, -NaN, Inf) stays refused.
 */

/* One of Python's non-finite tokens, replaced before parsing */
typedef struct NonFiniteToken
{
	int			end;			/* offset just past the 0 that replaced it */
	float4		value;
} NonFiniteToken;

/* Where the parser is, in the fields we look at */
typedef enum DecodeField
{
	FIELD_NONE,					/* a key we ignore, or none yet */
	FIELD_MSG_TYPE,
	FIELD_APP_NAME,
	FIELD_UUID,
	FIELD_COLUMN_NAMES,
	FIELD_ROW_DATA
} DecodeField;

typedef struct DecodeState
{
	MnemicMessage *message;
	JsonLexContext *lex;
	const char *problem;		/* the first problem found */
	int			depth;			/* of objects and arrays */
	DecodeField field;			/* the top-level key being parsed */
	bool		in_field_array; /* inside the array of column_names or row_data */
	bool		have_msg_type;
	bool		have_uuid;
	bool		have_app_name;
	bool		have_column_names;
	bool		have_row_data;
	char	   *msg_type;
	int			values_allocated;
	NonFiniteToken *non_finite; /* in the order of the datagram */
	int			non_finite_count;
	int			non_finite_allocated;
	int			non_finite_next;	/* the first not yet passed */
} DecodeState;

static int
hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return pg_tolower((unsigned char) c) - 'a' + 10;
}

/*
 * Parse the text form of a UUID, as the original client writes it: 36
 * characters, hexadecimal digits in groups of 8-4-4-4-12.
 */
static bool
mnemic_parse_uuid(const char *text, pg_uuid_t *uuid)
{
	int			i;
	int			byte = 0;

	if (strlen(text) != DOLON_UUID_TEXT_LEN)
		return false;
	for (i = 0; i < DOLON_UUID_TEXT_LEN; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (text[i] != '-')
				return false;
			continue;
		}
		if (!isxdigit((unsigned char) text[i]) ||
			!isxdigit((unsigned char) text[i + 1]))
			return false;
		uuid->data[byte++] = (hex_digit_value(text[i]) << 4) |
			hex_digit_value(text[i + 1]);
		i++;
	}
	return true;
}

/* Characters of a UTF-8 string: the bytes that start one */
static int
utf8_characters(const char *text)
{
	int			count = 0;

	for (; *text != '\0'; text++)
		count += (*text & 0xC0) != 0x80;
	return count;
}

static void
decode_problem(DecodeState *state, const char *problem)
{
	if (state->problem == NULL)
		state->problem = problem;
}

static DolonJsonActionResult
decode_object_start(void *arg)
{
	DecodeState *state = (DecodeState *) arg;

	if (state->depth > 0 && state->field != FIELD_NONE)
		decode_problem(state, "a field holds an object");
	state->depth++;
	return DOLON_JSON_ACTION_DONE;
}

static DolonJsonActionResult
decode_object_end(void *arg)
{
	((DecodeState *) arg)->depth--;
	return DOLON_JSON_ACTION_DONE;
}

static DolonJsonActionResult
decode_array_start(void *arg)
{
	DecodeState *state = (DecodeState *) arg;

	if (state->depth == 0)
		decode_problem(state, "the datagram is not a JSON object");
	else if (state->depth == 1 &&
			 (state->field == FIELD_COLUMN_NAMES || state->field == FIELD_ROW_DATA))
	{
		/* A key given twice: the last value counts, as in mnemic */
		state->in_field_array = true;
		if (state->field == FIELD_COLUMN_NAMES)
		{
			state->have_column_names = true;
			state->message->column_names = NIL;
		}
		else
		{
			state->have_row_data = true;
			state->message->nvalues = 0;
		}
	}
	else if (state->field != FIELD_NONE)
		decode_problem(state, "a field holds an array where it should not");
	state->depth++;
	return DOLON_JSON_ACTION_DONE;
}

static DolonJsonActionResult
decode_array_end(void *arg)
{
	DecodeState *state = (DecodeState *) arg;

	state->depth--;
	if (state->depth == 1)
		state->in_field_array = false;
	return DOLON_JSON_ACTION_DONE;
}

static DolonJsonActionResult
decode_field_start(void *arg, char *name, bool isnull)
{
	DecodeState *state = (DecodeState *) arg;

	if (state->depth != 1)
		return DOLON_JSON_ACTION_DONE;
	if (strcmp(name, "msg_type") == 0)
		state->field = FIELD_MSG_TYPE;
	else if (strcmp(name, "app_name") == 0)
		state->field = FIELD_APP_NAME;
	else if (strcmp(name, "uuid") == 0)
		state->field = FIELD_UUID;
	else if (strcmp(name, "column_names") == 0)
		state->field = FIELD_COLUMN_NAMES;
	else if (strcmp(name, "row_data") == 0)
		state->field = FIELD_ROW_DATA;
	else
		state->field = FIELD_NONE;
	return DOLON_JSON_ACTION_DONE;
}

static DolonJsonActionResult
decode_field_end(void *arg, char *name, bool isnull)
{
	DecodeState *state = (DecodeState *) arg;

	if (state->depth == 1)
		state->field = FIELD_NONE;
	return DOLON_JSON_ACTION_DONE;
}

/*
 * Did the number just parsed replace one of Python's non-finite tokens?  If
 * so, set *value to that token's value.
 */
static bool
decode_non_finite(DecodeState *state, float4 *value)
{
	int			end = state->lex->prev_token_terminator - state->lex->input;

	while (state->non_finite_next < state->non_finite_count &&
		   state->non_finite[state->non_finite_next].end < end)
		state->non_finite_next++;
	if (state->non_finite_next < state->non_finite_count &&
		state->non_finite[state->non_finite_next].end == end)
	{
		*value = state->non_finite[state->non_finite_next++].value;
		return true;
	}
	return false;
}

/*
 * A value of row_data, as a real.
 */
static void
decode_row_value(DecodeState *state, char *token, JsonTokenType type)
{
	MnemicMessage *message = state->message;
	float4		value = 0;

	switch (type)
	{
		case JSON_TOKEN_NUMBER:
			if (decode_non_finite(state, &value))
				break;

			/*
			 * Read the number as PostgreSQL reads a real (float4in), rounding
			 * once.  A value beyond the range of real is an error for
			 * mnemic's backend, as for PostgreSQL's cast of a double to real,
			 * and the row is dropped; one too close to zero for real rounds
			 * to 0, as mnemic's backend stores it.
			 */
			errno = 0;
			value = strtof(token, NULL);
			if (errno == ERANGE && isinf(value))
			{
				decode_problem(state, "a value of row_data is beyond the range of real");
				return;
			}
			break;
		case JSON_TOKEN_TRUE:
			value = 1;
			break;
		case JSON_TOKEN_FALSE:
		case JSON_TOKEN_NULL:
			break;
		default:
			decode_problem(state, "a value of row_data is not a number");
			return;
	}

	if (message->nvalues == state->values_allocated)
	{
		state->values_allocated = Max(16, state->values_allocated * 2);
		if (message->values == NULL)
		{
			message->values = palloc(state->values_allocated * sizeof(float4));
			message->nulls = palloc(state->values_allocated * sizeof(bool));
		}
		else
		{
			message->values = repalloc(message->values,
									   state->values_allocated * sizeof(float4));
			message->nulls = repalloc(message->nulls,
									  state->values_allocated * sizeof(bool));
		}
	}
	message->values[message->nvalues] = value;
	message->nulls[message->nvalues] = type == JSON_TOKEN_NULL;
	message->nvalues++;
}

static DolonJsonActionResult
decode_scalar(void *arg, char *token, JsonTokenType type)
{
	DecodeState *state = (DecodeState *) arg;
	MnemicMessage *message = state->message;

	if (state->depth == 0)
	{
		decode_problem(state, "the datagram is not a JSON object");
		return DOLON_JSON_ACTION_DONE;
	}
	if (state->in_field_array)
	{
		if (state->field == FIELD_ROW_DATA)
			decode_row_value(state, token, type);
		else if (type != JSON_TOKEN_STRING)
			decode_problem(state, "a column name is not a string");
		else
			message->column_names = lappend(message->column_names, token);
		return DOLON_JSON_ACTION_DONE;
	}
	if (state->depth != 1)
		return DOLON_JSON_ACTION_DONE;

	switch (state->field)
	{
		case FIELD_NONE:
			break;
		case FIELD_MSG_TYPE:
			if (type != JSON_TOKEN_STRING)
				decode_problem(state, "msg_type is not a string");
			state->msg_type = token;
			state->have_msg_type = true;
			break;
		case FIELD_APP_NAME:
			if (type != JSON_TOKEN_STRING)
				decode_problem(state, "app_name is not a string");
			else if (utf8_characters(token) > DOLON_MAX_TRACER_NAME_CHARS)
				decode_problem(state, "app_name is longer than 128 characters");
			message->app_name = token;
			state->have_app_name = true;
			break;
		case FIELD_UUID:
			if (type != JSON_TOKEN_STRING || !mnemic_parse_uuid(token, &message->uuid))
				decode_problem(state, "uuid is not a UUID");
			state->have_uuid = true;
			break;
		case FIELD_COLUMN_NAMES:
			decode_problem(state, "column_names is not a list");
			break;
		case FIELD_ROW_DATA:
			decode_problem(state, "row_data is not a list");
			break;
	}
	return DOLON_JSON_ACTION_DONE;
}

/*
 * A message nests two levels (more in keys it ignores); the parser recurses
 * once per level and would raise an error, taking the whole batch down, on
 * a datagram of thousands.
 */
#define MAX_NESTING 64

/*
 * Convert a UTF-8 string to the server encoding, or return NULL if one of
 * its characters has no equivalent there.  Raises no error: a datagram must
 * not take its batch down.
 */
static char *
utf8_to_server(char *text)
{
	int			encoding = GetDatabaseEncoding();
	int			length = strlen(text);
	int			size = length * MAX_CONVERSION_GROWTH + 1;
	char	   *converted;
	Oid			proc;

	if (encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
		return text;
	proc = FindDefaultConversionProc(PG_UTF8, encoding);
	if (!OidIsValid(proc))
		return NULL;
	converted = palloc(size);
	if (pg_do_encoding_conversion_buf(proc, PG_UTF8, encoding,
									  (unsigned char *) text, length,
									  (unsigned char *) converted, size,
									  true) < length)
		return NULL;
	return converted;
}

/* Can this character stand next to a JSON value, outside strings? */
static bool
delimits_value(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == ',' || c == ':' || c == '[' || c == ']' || c == '}';
}

/*
 * If one of Python's non-finite tokens stands alone at offset i of data,
 * return its length and set *value to its value; otherwise return 0.
 */
static int
non_finite_token(const char *data, int length, int i, float4 *value)
{
	static const char *const tokens[] = {"NaN", "Infinity", "-Infinity"};
	int			t;

	if (i > 0 && !delimits_value(data[i - 1]))
		return 0;
	for (t = 0; t < lengthof(tokens); t++)
	{
		int			token_length = strlen(tokens[t]);

		if (token_length > length - i ||
			memcmp(data + i, tokens[t], token_length) != 0 ||
			(i + token_length < length && !delimits_value(data[i + token_length])))
			continue;
		if (t == 0)
			*value = get_float4_nan();
		else
			*value = t == 1 ? get_float4_infinity() : -get_float4_infinity();
		return token_length;
	}
	return 0;
}

/*
 * Scan a datagram before parsing it, outside its strings: return how deep
 * its arrays and objects nest, and replace Python's non-finite tokens,
 * noting them in state.  *data becomes a copy, made in the current memory
 * context, once one is replaced.
 */
static int
scan_datagram(char **data, int length, DecodeState *state)
{
	int			depth = 0;
	int			deepest = 0;
	bool		in_string = false;
	int			i;

	for (i = 0; i < length; i++)
	{
		char		c = (*data)[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			/* Max() evaluates its arguments twice: count the level first */
			depth++;
			deepest = Max(deepest, depth);
		}
		else if (c == ']' || c == '}')
			depth--;
		else if (c == 'N' || c == 'I' || c == '-')
		{
			float4		value;
			int			token_length = non_finite_token(*data, length, i, &value);

			if (token_length == 0)
				continue;
			if (state->non_finite_count == 0)
			{
				char	   *copy = palloc(length);

				memcpy(copy, *data, length);
				*data = copy;
			}
			if (state->non_finite_count == state->non_finite_allocated)
			{
				state->non_finite_allocated = Max(16, state->non_finite_allocated * 2);
				state->non_finite = state->non_finite == NULL ?
					palloc(state->non_finite_allocated * sizeof(NonFiniteToken)) :
					repalloc(state->non_finite,
							 state->non_finite_allocated * sizeof(NonFiniteToken));
			}
			(*data)[i] = '0';
			memset(*data + i + 1, ' ', token_length - 1);
			state->non_finite[state->non_finite_count].end = i + 1;
			state->non_finite[state->non_finite_count].value = value;
			state->non_finite_count++;
			i += token_length - 1;
		}
	}
	return deepest;
}

/*
 * Decode a datagram.  Returns NULL if it is a valid message, filled in
 * *message (allocated in the current memory context), and otherwise why it
 * is not.  Strings are converted to the server encoding, which takes a
 * transaction.
 */
const char *
mnemic_decode(char *data, int length, MnemicMessage *message)
{
	JsonSemAction actions;
	DecodeState state;
	JsonLexContext *lex;
	JsonParseErrorType error;

	memset(message, 0, sizeof(MnemicMessage));
	memset(&state, 0, sizeof(state));
	state.message = message;
	if (length >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		return "the datagram starts with a byte-order mark";
	if (pg_encoding_verifymbstr(PG_UTF8, data, length) != length)
		return "the datagram is not valid UTF-8";
	if (scan_datagram(&data, length, &state) > MAX_NESTING)
		return "the datagram nests arrays or objects too deep";
	memset(&actions, 0, sizeof(actions));
	actions.semstate = &state;
	actions.object_start = decode_object_start;
	actions.object_end = decode_object_end;
	actions.array_start = decode_array_start;
	actions.array_end = decode_array_end;
	actions.object_field_start = decode_field_start;
	actions.object_field_end = decode_field_end;
	actions.scalar = decode_scalar;

	lex = dolon_make_json_lexer(data, length, PG_UTF8, true);
	state.lex = lex;
	error = pg_parse_json(lex, &actions);
	/* what the lexer allocated is freed at once, wherever it came from */
	dolon_free_json_lexer(lex);
	state.lex = NULL;
	if (error != JSON_SUCCESS)
		return "the datagram is not JSON";
	if (state.problem != NULL)
		return state.problem;

	if (!state.have_msg_type || !state.have_uuid)
		return "msg_type or uuid is missing";
	if (strcmp(state.msg_type, "create_trace_run") == 0)
	{
		ListCell   *lc;

		message->type = MNEMIC_CREATE_TRACE_RUN;
		if (!state.have_app_name || !state.have_column_names)
			return "app_name or column_names is missing";
		if (message->column_names == NIL)
			return "column_names is empty";
		message->app_name = utf8_to_server(message->app_name);
		if (message->app_name == NULL)
			return "app_name has a character the database encoding lacks";
		foreach(lc, message->column_names)
		{
			lfirst(lc) = utf8_to_server(lfirst(lc));
			if (lfirst(lc) == NULL)
				return "a column name has a character the database encoding lacks";
		}
	}
	else if (strcmp(state.msg_type, "row") == 0)
	{
		message->type = MNEMIC_ROW;
		if (!state.have_row_data)
			return "row_data is missing";
	}
	else
		return "msg_type is unknown";
	return NULL;
}
