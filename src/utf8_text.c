/*-------------------------------------------------------------------------
 *
 * utf8_text.c
 *		Names and texts of the database in UTF-8, for what dolon serves
 *		outside it: the metrics (both formats require UTF-8, and a scraper
 *		refuses the whole exposition otherwise), the live page's JSON and
 *		the SVG charts of runs.
 *
 * A text is read as any session of this database reads it, in the
 * database's encoding, and converted; a byte sequence that is valid in
 * neither (a name written by a database of another encoding, or any byte
 * in SQL_ASCII) becomes U+FFFD.  Within a database, the conversion is that
 * of the server's own conversion functions, with no client in between.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"

#include "utf8_text.h"

/*
 * text in UTF-8: text itself when it is ASCII, else a converted copy in the
 * current memory context
 */
const char *
dolon_utf8_text(const char *text)
{
	int			encoding = GetDatabaseEncoding();
	int			length = strlen(text);

	if (encoding != PG_UTF8 && encoding != PG_SQL_ASCII &&
		pg_verify_mbstr(encoding, text, length, true))
		text = pg_server_to_any(text, length, PG_UTF8);
	return dolon_valid_utf8(text);
}

/*
 * text, meant to be UTF-8, with U+FFFD for each byte that is not: text
 * itself when it is valid, else a copy in the current memory context
 */
const char *
dolon_valid_utf8(const char *text)
{
	const char *c;
	StringInfoData valid;

	for (c = text; *c != '\0'; c++)
		if (IS_HIGHBIT_SET(*c))
			break;
	if (*c == '\0')
		return text;			/* ASCII, the common case */
	if (pg_verify_mbstr(PG_UTF8, text, strlen(text), true))
		return text;

	initStringInfo(&valid);
	for (c = text; *c != '\0';)
	{
		int			character = pg_encoding_mblen(PG_UTF8, c);

		if (strnlen(c, character) == character &&
			pg_utf8_islegal((const unsigned char *) c, character))
		{
			appendBinaryStringInfo(&valid, c, character);
			c += character;
		}
		else
		{
			appendStringInfoString(&valid, "\xEF\xBF\xBD");
			c++;
		}
	}
	return valid.data;
}
