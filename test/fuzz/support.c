/*-------------------------------------------------------------------------
 *
 * support.c
 *		The few backend functions the fuzzing harnesses need, outside a
 *		server.
 *
 * The harnesses compile dolon's own source files, unchanged, and link them
 * with PostgreSQL's libpgcommon and libpgport (the JSON lexer and parser,
 * StringInfo, psprintf, the encodings' tables, the keyword list).  What
 * those libraries lack, because only the backend has it, is here, in its
 * smallest form:
 *
 * - memory: palloc and its family over malloc, each chunk its own block so
 *   that AddressSanitizer sees every overrun.  There is one memory context,
 *   emptied by fuzz_reset_memory() after each input; a chunk's header is
 *   poisoned while the chunk is in use.
 * - errors: the parsers under test must not raise one (a check hook, or the
 *   collector's batch, calls them), so ereport(ERROR) and worse abort, which
 *   makes a finding of it; lower levels are dropped.
 * - lappend(), the one List function the parsers use.
 * - the database encoding, UTF-8, as in the tests; the conversions to
 *   another encoding are never reached then, and pg_verify_mbstr() is
 *   libpgcommon's verifier.
 * - cluster_name, the server's name in InfluxDB's lines.
 * - text values: only ever made here, in plain form (4-byte header, not
 *   toasted), so that taking one apart is reading its header.
 * - SplitIdentifierString(), written to its contract in varlena.h: split at
 *   the separator outside double quotes, "" inside quotes is a quote,
 *   unquoted names trimmed, downcased (ASCII) and, as every identifier,
 *   truncated to NAMEDATALEN - 1 bytes on a character boundary.
 * - quote_identifier(), to its contract in builtins.h: a name stays bare if
 *   it is made of lowercase letters, digits and underscores, does not start
 *   with a digit and is no keyword but an unreserved one; otherwise it is
 *   double-quoted, its double quotes doubled.
 *
 * The harnesses are linked by lld with --gc-sections, so that the functions
 * of dolon's files that no harness reaches are left out, and what only they
 * call need not be defined.  But archive members are linked before that:
 * a file compiled for a harness must not refer, even from such a function,
 * to what only libpgcommon's fe_memutils.o defines (add_size(), pg_malloc()),
 * which would bring in its own palloc() to clash with the one here.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/keywords.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "nodes/pg_list.h"
#include "parser/scansup.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"			/* a header of its own from 16 on */
#endif

#include "support.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define POISON(p, size) ASAN_POISON_MEMORY_REGION(p, size)
#define UNPOISON(p, size) ASAN_UNPOISON_MEMORY_REGION(p, size)
#endif
#endif
#ifndef POISON
#define POISON(p, size) ((void) 0)
#define UNPOISON(p, size) ((void) 0)
#endif

/* Memory: every chunk in use, in one list, freed after each input */
typedef struct Chunk
{
	struct Chunk *prev;
	struct Chunk *next;
	Size		size;
} Chunk;

/* Keeps the pointer returned MAXALIGNed */
#define CHUNK_HEADER MAXALIGN(sizeof(Chunk))

static Chunk chunks = {&chunks, &chunks, 0};

MemoryContext CurrentMemoryContext = NULL;

static Chunk *
chunk_of(void *pointer)
{
	Chunk	   *chunk = (Chunk *) ((char *) pointer - CHUNK_HEADER);

	UNPOISON(chunk, CHUNK_HEADER);
	return chunk;
}

static void
chunk_unlink(Chunk *chunk)
{
	UNPOISON(chunk->prev, CHUNK_HEADER);
	UNPOISON(chunk->next, CHUNK_HEADER);
	chunk->prev->next = chunk->next;
	chunk->next->prev = chunk->prev;
	if (chunk->prev != &chunks)
		POISON(chunk->prev, CHUNK_HEADER);
	if (chunk->next != &chunks)
		POISON(chunk->next, CHUNK_HEADER);
}

static void *
chunk_link(Chunk *chunk, Size size)
{
	chunk->size = size;
	chunk->prev = &chunks;
	chunk->next = chunks.next;
	UNPOISON(chunks.next, CHUNK_HEADER);
	chunks.next->prev = chunk;
	if (chunks.next != &chunks)
		POISON(chunks.next, CHUNK_HEADER);
	chunks.next = chunk;
	POISON(chunk, CHUNK_HEADER);
	return (char *) chunk + CHUNK_HEADER;
}

void *
palloc(Size size)
{
	Chunk	   *chunk;

	if (!AllocSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	chunk = malloc(CHUNK_HEADER + size);
	if (chunk == NULL)
		elog(ERROR, "out of memory");
	return chunk_link(chunk, size);
}

void *
palloc0(Size size)
{
	void	   *pointer = palloc(size);

	memset(pointer, 0, size);
	return pointer;
}


void
pfree(void *pointer)
{
	Chunk	   *chunk = chunk_of(pointer);

	chunk_unlink(chunk);
	free(chunk);
}

void *
repalloc(void *pointer, Size size)
{
	Chunk	   *chunk = chunk_of(pointer);
	Size		old_size = chunk->size;
	void	   *moved;

	POISON(chunk, CHUNK_HEADER);
	/* a new block each time, so that a pointer kept to the old one is seen */
	moved = palloc(size);
	memcpy(moved, pointer, Min(size, old_size));
	pfree(pointer);
	return moved;
}

char *
pstrdup(const char *in)
{
	Size		size = strlen(in) + 1;

	return memcpy(palloc(size), in, size);
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

void
fuzz_reset_memory(void)
{
	while (chunks.next != &chunks)
	{
		UNPOISON(chunks.next, CHUNK_HEADER);
		pfree((char *) chunks.next + CHUNK_HEADER);
	}
}

/*
 * Errors: the elevel of the report being built, and whether it is one; an
 * ERROR or worse aborts, anything lower is dropped.
 */
static int	error_level;

bool
errstart(int elevel, const char *domain)
{
	error_level = elevel;
	return elevel >= ERROR;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	fprintf(stderr, "%s:%d: %s: %s raised by a parser that must raise none\n",
			filename, lineno, funcname, error_level >= FATAL ? "FATAL" : "ERROR");
	abort();
}



int
errmsg_internal(const char *fmt,...)
{
	return 0;
}




/* Lists: one cell more each time, in a block of its own */
List *
lappend(List *list, void *datum)
{
	if (list == NIL)
	{
		list = palloc0(offsetof(List, initial_elements));
		list->type = T_List;
	}
	list->length++;
	list->max_length = list->length;
	list->elements = list->elements == NULL ?
		palloc(sizeof(ListCell)) :
		repalloc(list->elements, list->length * sizeof(ListCell));
	lfirst(&list->elements[list->length - 1]) = datum;
	return list;
}

/* The database encoding: UTF-8 */
int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}


/* pg_verify_mbstr() of mbutils.c, by libpgcommon's verifier */
bool
pg_verify_mbstr(int encoding, const char *mbstr, int len, bool noError)
{
	if (pg_encoding_verifymbstr(encoding, mbstr, len) == len)
		return true;
	if (!noError)
		elog(FATAL, "invalid byte sequence for encoding \"%s\"",
			 pg_enc2name_tbl[encoding].name);
	return false;
}

/* The database's text is UTF-8 already: a conversion to it is none */
char *
pg_server_to_any(const char *s, int len, int encoding)
{
	if (encoding != PG_UTF8)
		elog(FATAL, "no conversion to another encoding than UTF-8 here");
	return unconstify(char *, s);
}

/* The server's name (cluster_name) */
char	   *cluster_name = "fuzz";

Oid
FindDefaultConversionProc(int32 for_encoding, int32 to_encoding)
{
	elog(FATAL, "no conversion to another encoding than UTF-8 here");
	return InvalidOid;
}

int
pg_do_encoding_conversion_buf(Oid proc, int src_encoding, int dest_encoding,
							  unsigned char *src, int srclen,
							  unsigned char *dest, int destlen,
							  bool noError)
{
	elog(FATAL, "no conversion to another encoding than UTF-8 here");
	return 0;
}

/* Text values, in plain form only */
struct varlena *
pg_detoast_datum_packed(struct varlena *datum)
{
	if (VARATT_IS_EXTENDED(datum))
		elog(FATAL, "only plain text values here");
	return datum;
}

text *
cstring_to_text_with_len(const char *s, int len)
{
	text	   *result = palloc(len + VARHDRSZ);

	SET_VARSIZE(result, len + VARHDRSZ);
	memcpy(VARDATA(result), s, len);
	return result;
}

char *
text_to_cstring(const text *t)
{
	text	   *plain = (text *) pg_detoast_datum_packed((struct varlena *) t);

	return pnstrdup(VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
}

const char *
quote_identifier(const char *ident)
{
	bool		bare = (ident[0] >= 'a' && ident[0] <= 'z') || ident[0] == '_';
	StringInfoData quoted;
	int			keyword;

	for (const char *c = ident; *c != '\0' && bare; c++)
		bare = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
	if (bare)
	{
		keyword = ScanKeywordLookup(ident, &ScanKeywords);
		if (keyword < 0 || ScanKeywordCategories[keyword] == UNRESERVED_KEYWORD)
			return ident;
	}
	initStringInfo(&quoted);
	appendStringInfoChar(&quoted, '"');
	for (const char *c = ident; *c != '\0'; c++)
	{
		if (*c == '"')
			appendStringInfoChar(&quoted, '"');
		appendStringInfoChar(&quoted, *c);
	}
	appendStringInfoChar(&quoted, '"');
	return quoted.data;
}

/*
 * Split rawstring in place at separator into identifiers; see the header
 * comment.  Returns false on a syntax error: an empty name, a quote not
 * closed, or something else than white space or the separator after a
 * name.
 */
bool
SplitIdentifierString(char *rawstring, char separator, List **namelist)
{
	char	   *next = rawstring;

	*namelist = NIL;
	while (scanner_isspace(*next))
		next++;
	if (*next == '\0')
		return true;			/* an empty string is an empty list */

	for (;;)
	{
		char	   *name;
		char	   *end;
		int			length;
		bool		last;

		if (*next == '"')
		{
			/* a quoted name: "" is a quote; collapse those in place */
			char	   *to;

			name = to = ++next;
			for (;;)
			{
				if (*next == '\0')
					return false;
				if (*next == '"')
				{
					if (next[1] != '"')
						break;
					next++;
				}
				*to++ = *next++;
			}
			end = to;
			next++;
		}
		else
		{
			name = next;
			while (*next != '\0' && *next != separator &&
				   !scanner_isspace(*next))
				next++;
			end = next;
			if (end == name)
				return false;
			for (char *c = name; c < end; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c += 'a' - 'A';
		}
		length = end - name;
		if (length == 0)
			return false;

		while (scanner_isspace(*next))
			next++;
		if (*next != '\0' && *next != separator)
			return false;
		last = *next == '\0';

		/* truncated as every identifier, on a character boundary */
		if (length >= NAMEDATALEN)
			length = pg_encoding_mbcliplen(PG_UTF8, name, length,
										   NAMEDATALEN - 1);
		name[length] = '\0';
		*namelist = lappend(*namelist, name);

		if (last)
			return true;
		next++;
		while (scanner_isspace(*next))
			next++;
	}
}

bool
scanner_isspace(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

int
pg_encoding_mbcliplen(int encoding, const char *mbstr, int len, int limit)
{
	int			clen = 0;

	while (len > 0 && *mbstr)
	{
		int			l = pg_encoding_mblen(encoding, mbstr);

		if (clen + l > limit)
			break;
		clen += l;
		len -= l;
		mbstr += l;
	}
	return clen;
}

/* Harnesses' helpers */
char *
fuzz_input_string(const uint8_t *data, size_t size)
{
	return pnstrdup((const char *) data, size);
}

void
fuzz_finding(const char *what)
{
	fprintf(stderr, "finding: %s\n", what);
	abort();
}
