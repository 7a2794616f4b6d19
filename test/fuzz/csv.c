/*-------------------------------------------------------------------------
 *
 * csv.c
 *		Fuzzing harness of the CSV quoting of text, dolon.csv_field() in
 *		src/render.c, which dolon.trace_csv() applies to the app_name and
 *		column names that datagrams bring to the collector.
 *
 * Each input is a text value (it ends at a NUL, as text does).  The field
 * made of it must read back, as RFC 4180 reads a field, to the value itself,
 * or to the value after a single quote when the value begins with a
 * character that makes a spreadsheet take it for a formula (=, +, -, @, a
 * tab or a carriage return); then it never begins with one of those.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "support.h"

extern Datum dolon_csv_field(PG_FUNCTION_ARGS);

/* Read one field of CSV, the whole of field; NULL if it is not one */
static char *
read_csv_field(const char *field)
{
	char	   *value = palloc(strlen(field) + 1);
	char	   *to = value;
	const char *c;

	if (field[0] != '"')
	{
		if (strpbrk(field, "\",\r\n") != NULL)
			return NULL;
		return strcpy(value, field);
	}
	for (c = field + 1;; c++)
	{
		if (*c == '\0')
			return NULL;		/* no closing quote */
		if (*c == '"')
		{
			if (c[1] != '"')
				break;
			c++;
		}
		*to++ = *c;
	}
	if (c[1] != '\0')
		return NULL;			/* something after the closing quote */
	*to = '\0';
	return value;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *value = fuzz_input_string(data, size);
	bool		formula = value[0] != '\0' && strchr("=+-@\t\r", value[0]) != NULL;
	LOCAL_FCINFO(fcinfo, 1);
	char	   *field;
	char	   *read_back;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = PointerGetDatum(cstring_to_text_with_len(value,
																			 strlen(value)));
	fcinfo->args[0].isnull = false;
	field = TextDatumGetCString(dolon_csv_field(fcinfo));

	read_back = read_csv_field(field);
	if (read_back == NULL)
		fuzz_finding("a field is not a field of CSV");
	if (formula ? read_back[0] != '\'' || strcmp(read_back + 1, value) != 0 :
		strcmp(read_back, value) != 0)
		fuzz_finding("a field does not read back to its value");
	if (read_back[0] != '\0' && strchr("=+-@\t\r", read_back[0]) != NULL)
		fuzz_finding("a field reads as a formula");

	fuzz_reset_memory();
	return 0;
}
