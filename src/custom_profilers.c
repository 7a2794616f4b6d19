/*-------------------------------------------------------------------------
 *
 * custom_profilers.c
 *		SQL functions used as profilers: their validation and their calls.
 *
 * Any function without arguments that returns smallint, integer, bigint,
 * real, double precision or numeric can be a profiler.  It is looked up by
 * its qualified name at each sample (a syscache lookup), so that a function
 * created, or dropped and created again, after the run started is found.
 * It is called through the function manager rather than through SQL text,
 * in a subtransaction of the sample's transaction:
 *
 *	- as dolon.profiler_role, which must not be a superuser, with
 *	  SECURITY_RESTRICTED_OPERATION, as the server runs index expressions;
 *	- in a tracer, with a statement timeout of dolon.profiler_timeout (in a
 *	  session calling dolon.diagnostics(), the session's statement_timeout
 *	  applies, which must not be replaced).
 *
 * An error, a timeout or a NULL result makes the value of that sample null
 * and rolls back the subtransaction alone: the other profilers of the row
 * are unaffected, and the caller reports the failure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

#include "dolon.h"

static bool
is_numeric_type(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID ||
		type == FLOAT4OID || type == FLOAT8OID || type == NUMERICOID;
}

/*
 * Find the function of a custom profiler and check that it can be one.
 * Needs a transaction; raises no error.  Returns NULL if the function is
 * fit, and otherwise a message, with a detail and a hint (or NULL).
 */
const char *
dolon_check_profiler_function(const DolonProfilerSpec *spec, Oid *function,
							  Oid *result_type, char **detail, char **hint)
{
	List	   *name = list_make2(makeString(pstrdup(spec->schema)),
								  makeString(pstrdup(spec->function)));
	const char *signature = NameListToString(name);
	HeapTuple	tuple;
	Form_pg_proc proc;

	*detail = NULL;
	*hint = NULL;

	*function = LookupFuncName(name, 0, NULL, true);
	if (!OidIsValid(*function))
	{
		if (!OidIsValid(get_namespace_oid(spec->schema, true)))
			*detail = psprintf("Schema \"%s\" does not exist.", spec->schema);
		else if (FuncnameGetCandidates(name, -1, NIL, false, false, false, true))
			*detail = psprintf("Functions named %s exist, but none without arguments.",
							   signature);
		*hint = pstrdup("A profiler function takes no arguments and returns a number.");
		return psprintf("profiler function %s() does not exist", signature);
	}

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(*function));
	if (!HeapTupleIsValid(tuple))
		return psprintf("cache lookup failed for function %u", *function);
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	*result_type = proc->prorettype;

	if (proc->prokind != PROKIND_FUNCTION || proc->proretset)
		*detail = psprintf("%s() is not a plain function returning one value.",
						   signature);
	else if (!is_numeric_type(proc->prorettype))
	{
		*detail = psprintf("%s() returns %s.", signature,
						   format_type_be(proc->prorettype));
		*hint = pstrdup("A profiler function returns smallint, integer, bigint, real, double precision or numeric.");
	}
	ReleaseSysCache(tuple);

	if (*detail != NULL)
		return psprintf("function %s() cannot be a profiler", signature);
	return NULL;
}

/*
 * The role that custom profilers run as: dolon.profiler_role.  Returns
 * InvalidOid, with the reason in *problem, if it is not set, does not exist
 * or is a superuser.  Needs a transaction.
 */
Oid
dolon_profiler_role_oid(char **problem)
{
	Oid			role;

	*problem = NULL;
	if (dolon_profiler_role == NULL || dolon_profiler_role[0] == '\0')
	{
		*problem = pstrdup("dolon.profiler_role is not set");
		return InvalidOid;
	}
	role = get_role_oid(dolon_profiler_role, true);
	if (!OidIsValid(role))
		*problem = psprintf("role \"%s\" of dolon.profiler_role does not exist",
							dolon_profiler_role);
	else if (superuser_arg(role))
		*problem = psprintf("role \"%s\" of dolon.profiler_role is a superuser",
							dolon_profiler_role);
	return *problem ? InvalidOid : role;
}

/*
 * Convert a profiler's result to a double.
 */
static double
result_as_double(Datum result, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(result);
		case INT4OID:
			return DatumGetInt32(result);
		case INT8OID:
			return (double) DatumGetInt64(result);
		case FLOAT4OID:
			return DatumGetFloat4(result);
		case FLOAT8OID:
			return DatumGetFloat8(result);
		case NUMERICOID:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
													  result));
	}
	elog(ERROR, "unexpected result type %u of a profiler function", type);
	return 0;					/* keep compiler quiet */
}

static void
record_failure(DolonSample *sample, const char *message)
{
	sample->profiler_failures++;
	strlcpy(sample->profiler_error, message, sizeof(sample->profiler_error));
	if (sample->warn_each_failure)
		ereport(WARNING,
				(errmsg("%s", message),
				 errdetail("The value of the profiler is null.")));
}

/*
 * Call the function of a custom profiler, as described at the top of this
 * file.  Returns false if there is no value; a failure is counted in the
 * sample, with its message.
 */
bool
dolon_call_profiler_function(DolonSample *sample, const DolonColumn *column,
							 double *value)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	bool		isnull = true;
	Oid			function;
	Oid			result_type;
	const char *problem;
	char	   *detail;
	char	   *hint;

	if (!OidIsValid(sample->profiler_role))
		return false;

	problem = dolon_check_profiler_function(&column->custom, &function,
											&result_type, &detail, &hint);
	if (problem != NULL)
	{
		record_failure(sample, psprintf("profiler %s: %s%s%s", column->name,
										problem, detail ? ": " : "",
										detail ? detail : ""));
		return false;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		Oid			save_userid;
		int			save_sec_context;
		FmgrInfo	flinfo;
		LOCAL_FCINFO(fcinfo, 0);
		Datum		result;

		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(sample->profiler_role,
							   save_sec_context |
							   SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		if (pg_proc_aclcheck(function, sample->profiler_role,
							 ACL_EXECUTE) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION,
						   get_func_name(function));

		PushActiveSnapshot(GetTransactionSnapshot());
		if (IsBackgroundWorker)
			enable_timeout_after(STATEMENT_TIMEOUT, dolon_profiler_timeout_ms);

		fmgr_info(function, &flinfo);
		InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL, NULL);
		result = FunctionCallInvoke(fcinfo);
		isnull = fcinfo->isnull;
		if (!isnull)
			*value = result_as_double(result, result_type);

		if (IsBackgroundWorker)
			disable_timeout(STATEMENT_TIMEOUT, false);
		PopActiveSnapshot();
		SetUserIdAndSecContext(save_userid, save_sec_context);

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (IsBackgroundWorker)
			disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();

		/* This restores the user id and pops the snapshot, too */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;

		record_failure(sample, psprintf("profiler %s: %s", column->name,
										edata->message));
		FreeErrorData(edata);
		return false;
	}
	PG_END_TRY();

	if (isnull)
	{
		record_failure(sample, psprintf("profiler %s returned null",
										column->name));
		return false;
	}
	return true;
}
