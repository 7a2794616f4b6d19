/*-------------------------------------------------------------------------
 *
 * profilers.c
 *		Fuzzing harness of the parser of lists of profilers,
 *		dolon_parse_profilers() in src/profilers.c.
 *
 * Each input is the text of a list, as in dolon.profilers or the arguments
 * of dolon.start_tracer() (text ends at a NUL there).  The parser runs in
 * check hooks, so it must not raise an error: it accepts the list or fills
 * in a failure with a message and a detail.  An accepted list has at least
 * one profiler, each a known built-in one or a function with a schema, both
 * names within NAMEDATALEN and not empty, none listed twice; its canonical
 * text (dolon_profilers_text(), what a tracer's definition shows) parses
 * back to the same list.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "profilers.h"
#include "support.h"

static void
check_name(const char *name)
{
	if (strnlen(name, NAMEDATALEN) == NAMEDATALEN)
		fuzz_finding("a name of an accepted profiler is not terminated");
	if (name[0] == '\0')
		fuzz_finding("a name of an accepted profiler is empty");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = fuzz_input_string(data, size);
	DolonProfilerList *list = NULL;
	DolonProfilerList *again = NULL;
	DolonFailure failure = {0};

	if (!dolon_parse_profilers(text, &list, &failure))
	{
		if (failure.message == NULL || failure.detail == NULL)
			fuzz_finding("a list is refused without a message and a detail");
	}
	else
	{
		int			i;
		int			j;

		if (list->count < 1)
			fuzz_finding("an accepted list is empty");
		for (i = 0; i < list->count; i++)
		{
			const DolonProfilerSpec *spec = &list->items[i];

			if (spec->builtin == PROFILER_CUSTOM)
			{
				check_name(spec->schema);
				check_name(spec->function);
			}
			else if (spec->builtin < 0 || spec->builtin >= NUM_BUILTIN_PROFILERS)
				fuzz_finding("an accepted profiler is neither built in nor custom");
			for (j = 0; j < i; j++)
			{
				if (memcmp(spec, &list->items[j], sizeof(DolonProfilerSpec)) == 0)
					fuzz_finding("an accepted list has a profiler twice");
			}
		}
		if (!dolon_parse_profilers(dolon_profilers_text(list), &again, &failure))
			fuzz_finding("the canonical text of a list is refused");
		if (!dolon_same_profilers(list, again))
			fuzz_finding("the canonical text of a list parses to another list");
	}

	fuzz_reset_memory();
	return 0;
}
