/*-------------------------------------------------------------------------
 *
 * profilers.c
 *		Lists of profilers: their syntax, and the columns of a run.
 *
 * A list of profilers, in dolon.profilers or in dolon.start_tracer(), names
 * built-in profilers ("idle") and custom ones, which are SQL functions named
 * with their schema ("myschema.queue_depth").  Requiring the schema keeps
 * the function a tracer calls from depending on a search_path, and tells an
 * unknown built-in name from a function at a glance.  Parsing only looks at
 * the text, so that it can run in a GUC check hook anywhere.
 *
 * When a run starts, its columns are built from its list: one column per
 * profiler, named after the profiler (a custom profiler after its function),
 * then three per profiled function.  Column names are made plain lowercase
 * identifiers, as mnemic's viewer needs, and unique within the run.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "parser/scansup.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "custom_profilers.h"
#include "function_profiling.h"
#include "profilers.h"
#include "protocol.h"
#include "sampling.h"

/* Indexed by DolonBuiltinProfiler */
static const char *const builtin_profiler_names[NUM_BUILTIN_PROFILERS] = {
	[PROFILER_IDLE] = "idle",
	[PROFILER_COUNT_DB_CONNECTIONS] = "count_db_connections",
	[PROFILER_ACTIVE_TASKS] = "active_tasks",
	[PROFILER_LIVE_MSGS] = "live_msgs",
	[PROFILER_DEAD_MSGS] = "dead_msgs",
	[PROFILER_IDLE_IN_TRANSACTION] = "idle_in_transaction",
	[PROFILER_WAITING_ON_LOCKS] = "waiting_on_locks",
	[PROFILER_MAX_CONNECTIONS] = "max_connections",
	[PROFILER_CONNECTIONS_PERCENT] = "connections_percent",
	[PROFILER_OLDEST_TRANSACTION_SECONDS] = "oldest_transaction_seconds",
	[PROFILER_XACT_COMMIT_RATE] = "xact_commit_rate",
	[PROFILER_XACT_ROLLBACK_RATE] = "xact_rollback_rate",
	[PROFILER_DEADLOCKS] = "deadlocks",
	[PROFILER_REPLICATION_LAG_SECONDS] = "replication_lag_seconds",
	[PROFILER_CPU_PERCENT] = "cpu_percent",
	[PROFILER_VIRTUAL_MEMORY_PERCENT] = "virtual_memory_percent",
	[PROFILER_MEMORY_USE] = "memory_use",
	[PROFILER_MEM_ALLOCATION] = "mem_allocation",
};

const char *
dolon_builtin_profiler_name(DolonBuiltinProfiler id)
{
	Assert(id >= 0 && id < NUM_BUILTIN_PROFILERS);
	return builtin_profiler_names[id];
}

/*
 * The names of all built-in profilers, comma-separated, for error hints.
 */
char *
dolon_builtin_profiler_names(void)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < NUM_BUILTIN_PROFILERS; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
						 builtin_profiler_names[i]);
	return buf.data;
}

static bool
lookup_builtin_profiler(const char *name, DolonBuiltinProfiler *id)
{
	int			i;

	for (i = 0; i < NUM_BUILTIN_PROFILERS; i++)
	{
		if (strcmp(name, builtin_profiler_names[i]) == 0)
		{
			*id = (DolonBuiltinProfiler) i;
			return true;
		}
	}
	return false;
}

/*
 * Split a list at the commas that are not between double quotes, trimming
 * white space around each element.  Returns false if an element is empty
 * or a quote is not closed.
 */
static bool
split_list(char *text, List **elements)
{
	char	   *start = text;
	char	   *c;
	bool		quoted = false;

	*elements = NIL;
	for (c = text;; c++)
	{
		if (*c == '"')
			quoted = !quoted;	/* a doubled quote toggles twice */
		else if (*c == '\0' || (*c == ',' && !quoted))
		{
			bool		last = *c == '\0';
			char	   *end = c;

			while (scanner_isspace(*start))
				start++;
			while (end > start && scanner_isspace(end[-1]))
				end--;
			*end = '\0';
			if (*start == '\0' && !(last && *elements == NIL))
				return false;
			if (*start != '\0')
				*elements = lappend(*elements, start);
			if (last)
				return !quoted;
			start = c + 1;
		}
	}
}

/*
 * Parse a list of profilers into a DolonProfilerList allocated in the
 * current memory context.  Does not raise errors (a check hook calls it):
 * on failure, returns false with the failure for the caller to report.
 */
bool
dolon_parse_profilers(const char *text, DolonProfilerList **result,
					  DolonFailure *failure)
{
	char	   *detail = NULL;
	char	   *hint = NULL;
	char	   *copy = pstrdup(text);
	List	   *elements;
	ListCell   *lc;
	DolonProfilerList *list;
	int			custom_count = 0;

	if (!split_list(copy, &elements))
	{
		detail = pstrdup("List syntax is invalid.");
		goto fail;
	}
	if (elements == NIL)
	{
		detail = pstrdup("At least one profiler is needed.");
		hint = psprintf("Built-in profilers are: %s.",
						dolon_builtin_profiler_names());
		goto fail;
	}

	list = palloc0(DolonProfilerListSize(list_length(elements)));

	foreach(lc, elements)
	{
		char	   *element = (char *) lfirst(lc);
		char	   *element_copy = pstrdup(element);
		List	   *parts;
		DolonProfilerSpec *spec = &list->items[list->count];
		int			i;

		if (!SplitIdentifierString(element_copy, '.', &parts) ||
			list_length(parts) > 2)
		{
			detail = psprintf("\"%s\" is not a profiler name.", element);
			hint = pstrdup("Name a built-in profiler, or a function with its schema, as in myschema.queue_depth.");
			break;
		}
		if (list_length(parts) == 1)
		{
			if (!lookup_builtin_profiler(linitial(parts), &spec->builtin))
			{
				detail = psprintf("Unknown profiler \"%s\".", element);
				hint = psprintf("Built-in profilers are: %s. A function used as a profiler is named with its schema, as in myschema.queue_depth.",
								 dolon_builtin_profiler_names());
				break;
			}
		}
		else
		{
			spec->builtin = PROFILER_CUSTOM;
			strlcpy(spec->schema, linitial(parts), NAMEDATALEN);
			strlcpy(spec->function, lsecond(parts), NAMEDATALEN);
		}

		if (spec->builtin == PROFILER_CUSTOM &&
			++custom_count > DOLON_MAX_CUSTOM_PROFILERS)
		{
			detail = psprintf("A list has at most %d custom profilers.",
							   DOLON_MAX_CUSTOM_PROFILERS);
			break;
		}
		for (i = 0; i < list->count; i++)
		{
			if (memcmp(&list->items[i], spec, sizeof(DolonProfilerSpec)) == 0)
			{
				detail = psprintf("Profiler \"%s\" is listed more than once.",
								   element);
				break;
			}
		}
		if (detail != NULL)
			break;
		list->count++;
	}

	if (detail != NULL)
	{
		pfree(list);
		goto fail;
	}
	*result = list;
	return true;

fail:
	dolon_set_failure(failure, ERRCODE_INVALID_PARAMETER_VALUE,
					  pstrdup("invalid list of profilers"), detail, hint);
	return false;
}

/*
 * The profilers given as a text[] (the VARIADIC arguments of the SQL
 * functions), as the text of a list.  Returns NULL if an element is null,
 * with its position (from 1) in *null_position.
 */
char *
dolon_profiler_array_text(ArrayType *array, int *null_position)
{
	Datum	   *elements;
	bool	   *element_nulls;
	int			count;
	StringInfoData joined;
	int			i;

	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT,
					  &elements, &element_nulls, &count);
	initStringInfo(&joined);
	for (i = 0; i < count; i++)
	{
		if (element_nulls[i])
		{
			*null_position = i + 1;
			return NULL;
		}
		appendStringInfo(&joined, "%s%s", i > 0 ? "," : "",
						 TextDatumGetCString(elements[i]));
	}
	return joined.data;
}

/*
 * The canonical text of a list of profilers, which parses back to it.
 */
char *
dolon_profilers_text(const DolonProfilerList *list)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < list->count; i++)
	{
		const DolonProfilerSpec *spec = &list->items[i];

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (spec->builtin == PROFILER_CUSTOM)
			appendStringInfo(&buf, "%s.%s", quote_identifier(spec->schema),
							 quote_identifier(spec->function));
		else
			appendStringInfoString(&buf, builtin_profiler_names[spec->builtin]);
	}
	return buf.data;
}

bool
dolon_same_profilers(const DolonProfilerList *a, const DolonProfilerList *b)
{
	return a->count == b->count &&
		memcmp(a->items, b->items, a->count * sizeof(DolonProfilerSpec)) == 0;
}

bool
dolon_has_custom_profilers(const DolonProfilerList *list)
{
	int			i;

	for (i = 0; i < list->count; i++)
	{
		if (list->items[i].builtin == PROFILER_CUSTOM)
			return true;
	}
	return false;
}

/* Is a name taken by one of the first columns of a run? */
typedef struct EarlierColumns
{
	const DolonColumns *columns;
	int			count;
} EarlierColumns;

static bool
taken_by_earlier_column(const char *candidate, void *arg)
{
	EarlierColumns *earlier = (EarlierColumns *) arg;
	int			i;

	for (i = 0; i < earlier->count; i++)
	{
		if (strcmp(earlier->columns->items[i].name, candidate) == 0)
			return true;
	}
	return false;
}

/*
 * Give every column a plain name, unique within the run: a name taken by an
 * earlier column gets the suffix _2, _3 and so on.
 */
static void
make_column_names_unique(DolonColumns *columns)
{
	EarlierColumns earlier = {columns, 0};

	for (earlier.count = 0; earlier.count < columns->count; earlier.count++)
	{
		DolonColumn *column = &columns->items[earlier.count];
		char		name[DOLON_MAX_COLUMN_BYTES];

		strlcpy(name, column->name, sizeof(name));
		mnemic_unique_column_name(name, column->name, sizeof(column->name),
								  taken_by_earlier_column, &earlier);
	}
}

/*
 * The columns of a run with these profilers, followed by those of the
 * profiled functions, allocated in the current memory context.  The
 * function of a custom profiler is looked up by name at each sample, so
 * that it may be created, or dropped and created again, while the run goes
 * on; with check_functions, each must be usable now, or an error is raised
 * (this needs a transaction).
 */
DolonColumns *
dolon_build_columns(const DolonProfilerList *profilers, bool check_functions)
{
	DolonColumns *columns;
	int			i;

	columns = palloc0(offsetof(DolonColumns, items) +
					  profilers->count * sizeof(DolonColumn));
	for (i = 0; i < profilers->count; i++)
	{
		const DolonProfilerSpec *spec = &profilers->items[i];
		DolonColumn *column = &columns->items[columns->count++];

		column->builtin = spec->builtin;
		if (spec->builtin != PROFILER_CUSTOM)
		{
			column->kind = COLUMN_BUILTIN;
			strlcpy(column->name, builtin_profiler_names[spec->builtin],
					sizeof(column->name));
			continue;
		}

		column->kind = COLUMN_CUSTOM;
		column->custom = *spec;
		strlcpy(column->name, spec->function, sizeof(column->name));
		if (check_functions)
		{
			Oid			function;
			Oid			result_type;
			DolonFailure failure;

			if (!dolon_check_profiler_function(spec, &function, &result_type,
											   &failure))
				dolon_report_failure(ERROR, &failure);
		}
	}

	dolon_add_function_columns(&columns);
	make_column_names_unique(columns);
	return columns;
}

/*
 * Does computing a row of these columns need a transaction now?  A custom
 * profiler runs SQL; a built-in one may have catalogs to scan again (see
 * dolon_builtin_needs_transaction()); a function column reads shared memory
 * only.  The caller has processed the pending invalidations just before.
 */
bool
dolon_row_needs_transaction(const DolonColumns *columns)
{
	int			i;

	for (i = 0; i < columns->count; i++)
	{
		const DolonColumn *column = &columns->items[i];

		if (column->kind == COLUMN_CUSTOM ||
			(column->kind == COLUMN_BUILTIN &&
			 dolon_builtin_needs_transaction(column->builtin)))
			return true;
	}
	return false;
}

/*
 * Compute one row: the value of each column, in order, but those of custom
 * profilers, which are left null for the caller to fill in: a session calls
 * them itself, a tracer has its profiler runner call them.
 */
void
dolon_sample_row(DolonSample *sample, const DolonColumns *columns,
				 double *values, bool *nulls)
{
	DolonFunctionCounters function;
	int			summed_entry = -1;
	bool		profiled = false;
	int			i;

	for (i = 0; i < columns->count; i++)
	{
		const DolonColumn *column = &columns->items[i];

		switch (column->kind)
		{
			case COLUMN_BUILTIN:
				values[i] = dolon_builtin_value(sample, column->builtin,
												&nulls[i]);
				break;
			case COLUMN_CUSTOM:
				/* Called by the caller, in its own way: see its callers */
				values[i] = 0;
				nulls[i] = true;
				break;
			case COLUMN_FUNCTION_HITS:
			case COLUMN_FUNCTION_ACTIVE_INSTANCES:
			case COLUMN_FUNCTION_AVERAGE_TIME:
				/* A function's columns follow one another: summed once */
				if (column->entry != summed_entry)
				{
					profiled = dolon_sum_function_column(column, &function);
					summed_entry = column->entry;
				}
				nulls[i] = !profiled;
				values[i] = profiled ?
					dolon_function_column_value(column, &function) : 0;
				break;
		}
	}
}
