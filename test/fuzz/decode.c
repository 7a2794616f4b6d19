/*-------------------------------------------------------------------------
 *
 * decode.c
 *		Fuzzing harness of the collector's datagram decoder, mnemic_decode()
 *		in src/protocol.c.
 *
 * Each input is one datagram, in a block of exactly its length, as the
 * collector hands it over (it is not NUL-terminated there either).  The
 * decoder must accept it or say why not, without raising an error; what it
 * accepts must be what the collector stores: a run with an app_name of at
 * most 128 characters and at least one column name, or a row whose values
 * can all be read.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "protocol.h"
#include "support.h"

/* Check a string of an accepted message; return its length in characters */
static int
check_text(const char *text)
{
	int			characters = 0;

	if (text == NULL)
		fuzz_finding("a string of an accepted message is NULL");
	if (pg_encoding_verifymbstr(PG_UTF8, text, strlen(text)) != strlen(text))
		fuzz_finding("a string of an accepted message is not valid UTF-8");
	for (; *text != '\0'; text += pg_encoding_mblen(PG_UTF8, text))
		characters++;
	return characters;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *datagram = malloc(Max(size, 1));
	MnemicMessage message;
	const char *problem;

	memcpy(datagram, data, size);
	problem = mnemic_decode(datagram, (int) size, &message);
	if (problem != NULL)
	{
		if (problem[0] == '\0')
			fuzz_finding("a datagram is refused without a reason");
	}
	else if (message.type == MNEMIC_CREATE_TRACE_RUN)
	{
		ListCell   *lc;

		if (check_text(message.app_name) > DOLON_MAX_TRACER_NAME_CHARS)
			fuzz_finding("an accepted app_name is longer than 128 characters");
		if (message.column_names == NIL)
			fuzz_finding("an accepted run has no columns");
		foreach(lc, message.column_names)
			check_text(lfirst(lc));
	}
	else if (message.type == MNEMIC_ROW)
	{
		int			i;

		if (message.nvalues < 0 ||
			(message.nvalues > 0 && (message.values == NULL || message.nulls == NULL)))
			fuzz_finding("an accepted row has no room for its values");
		for (i = 0; i < message.nvalues; i++)
		{
			if (message.nulls[i] != false && message.nulls[i] != true)
				fuzz_finding("a null flag of an accepted row is not a boolean");
			if (message.nulls[i] && message.values[i] != 0)
				fuzz_finding("a null of an accepted row has a value");
		}
	}
	else
		fuzz_finding("an accepted message has no known type");

	fuzz_reset_memory();
	free(datagram);
	return 0;
}
