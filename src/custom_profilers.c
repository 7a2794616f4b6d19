/*-------------------------------------------------------------------------
 *
 * custom_profilers.c
 *		SQL functions used as profilers: their validation and their calls.
 *
 * Any function without arguments that returns smallint, integer, bigint,
 * real, double precision or numeric can be a profiler.  It is looked up by
 * its qualified name at each call (a syscache lookup), so that a function
 * created, or dropped and created again, after the run started is found.
 * It is called through the function manager rather than through SQL text,
 * in a subtransaction that is always rolled back, so that nothing a
 * profiler does outlives its call: not what it writes, not the settings it
 * changes, SET SESSION included.  EXECUTE is checked as for any call:
 *
 *	- in a session (dolon.diagnostics()), for the caller, whose rights the
 *	  function runs with, under the session's statement_timeout, whose
 *	  cancel, as the user's, ends the whole statement;
 *	- in a tracer's profiler runner (profiler_runner.c), for
 *	  dolon.profiler_role, which must not be a superuser, and which the
 *	  function runs as, with SECURITY_RESTRICTED_OPERATION as the server runs
 *	  index expressions, and with a statement timeout.
 *
 * An error, a timeout or a NULL result gives no value; the caller reports
 * it.  The other profilers of the row are unaffected.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
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

#include "compat.h"
#include "custom_profilers.h"

static bool
is_numeric_type(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID ||
		type == FLOAT4OID || type == FLOAT8OID || type == NUMERICOID;
}

/*
 * Find the function of a custom profiler and check that it can be one.
 * Needs a transaction; raises no error.  Returns false, with the failure,
 * if the function is not fit.
 */
bool
dolon_check_profiler_function(const DolonProfilerSpec *spec, Oid *function,
							  Oid *result_type, DolonFailure *failure)
{
	List	   *name = list_make2(makeString(pstrdup(spec->schema)),
								  makeString(pstrdup(spec->function)));
	const char *signature = NameListToString(name);
	HeapTuple	tuple;
	Form_pg_proc proc;
	char	   *detail = NULL;
	char	   *hint = NULL;

	*function = LookupFuncName(name, 0, NULL, true);
	if (!OidIsValid(*function))
	{
		if (!OidIsValid(get_namespace_oid(spec->schema, true)))
			detail = psprintf("Schema \"%s\" does not exist.", spec->schema);
		else if (FuncnameGetCandidates(name, -1, NIL, false, false, false, true))
			detail = psprintf("Functions named %s exist, but none without arguments.",
							  signature);
		dolon_set_failure(failure, ERRCODE_UNDEFINED_FUNCTION,
						  psprintf("profiler function %s() does not exist",
								   signature),
						  detail,
						  pstrdup("A profiler function takes no arguments and returns a number."));
		return false;
	}

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(*function));
	if (!HeapTupleIsValid(tuple))
	{
		dolon_set_failure(failure, ERRCODE_UNDEFINED_FUNCTION,
						  psprintf("cache lookup failed for function %u",
								   *function),
						  NULL, NULL);
		return false;
	}
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	*result_type = proc->prorettype;

	if (proc->prokind != PROKIND_FUNCTION || proc->proretset)
		detail = psprintf("%s() is not a plain function returning one value.",
						  signature);
	else if (!is_numeric_type(proc->prorettype))
	{
		detail = psprintf("%s() returns %s.", signature,
						  format_type_be(proc->prorettype));
		hint = pstrdup("A profiler function returns smallint, integer, bigint, real, double precision or numeric.");
	}
	ReleaseSysCache(tuple);

	if (detail == NULL)
		return true;
	dolon_set_failure(failure, ERRCODE_WRONG_OBJECT_TYPE,
					  psprintf("function %s() cannot be a profiler", signature),
					  detail, hint);
	return false;
}

/*
 * The role that the custom profilers of a tracer run as, named by
 * dolon.profiler_role.  Returns InvalidOid, with the failure, if it is not
 * set, does not exist or is a superuser, or if started_by, the role that
 * started the tracer from SQL (InvalidOid for the configured tracer), does
 * not have its privileges: a tracer sends what its profilers read to a host
 * its starter chose, so they never read with rights the starter lacks, also
 * once the setting names another role.  Needs a transaction.
 */
Oid
dolon_profiler_role_oid(const char *role_name, Oid started_by,
						DolonFailure *failure)
{
	Oid			role = InvalidOid;
	char	   *detail = NULL;
	char	   *starter;

	if (role_name == NULL || role_name[0] == '\0')
		detail = pstrdup("dolon.profiler_role is not set.");
	else
	{
		role = get_role_oid(role_name, true);
		if (!OidIsValid(role))
			detail = psprintf("Role \"%s\" of dolon.profiler_role does not exist.",
							  role_name);
		else if (superuser_arg(role))
			detail = psprintf("Role \"%s\" of dolon.profiler_role is a superuser.",
							  role_name);
	}
	if (detail != NULL)
	{
		dolon_set_failure(failure, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
						  pstrdup("custom profilers cannot run"), detail,
						  pstrdup("Set dolon.profiler_role to a role that is not a superuser."));
		return InvalidOid;
	}
	if (!OidIsValid(started_by) || has_privs_of_role(started_by, role))
		return role;
	starter = GetUserNameFromId(started_by, true);
	dolon_set_failure(failure, ERRCODE_INSUFFICIENT_PRIVILEGE,
					  pstrdup("custom profilers cannot run"),
					  starter != NULL ?
					  psprintf("Role \"%s\", which started the tracer, does not have the privileges of role \"%s\" of dolon.profiler_role.",
							   starter, role_name) :
					  psprintf("Role %u, which started the tracer, no longer exists.",
							   started_by),
					  psprintf("Only superusers and members of \"%s\" may run tracers with custom profilers.",
							   role_name));
	return InvalidOid;
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

/*
 * A profiler's name as its list gives it: schema.function.
 */
char *
dolon_profiler_name(const DolonProfilerSpec *spec)
{
	return psprintf("%s.%s", quote_identifier(spec->schema),
					quote_identifier(spec->function));
}

/*
 * Call the function of a custom profiler, as described at the top of this
 * file: with the rights of role if it is valid (a tracer's runner), and
 * otherwise with the caller's own (a session); with a statement timeout of
 * timeout_ms unless it is 0.  Whatever the call did is undone after it.
 * Returns true with the value, or false with the reason there is none in
 * *error; raises no error of its own.
 */
bool
dolon_call_profiler(const DolonProfilerSpec *spec, Oid role, int timeout_ms,
					double *value, char **error)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	bool		isnull = true;
	Oid			function;
	Oid			result_type;
	DolonFailure failure;

	*error = NULL;
	if (!dolon_check_profiler_function(spec, &function, &result_type,
									   &failure))
	{
		*error = failure.message;
		return false;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		Oid			save_userid;
		int			save_sec_context;
		AclResult	aclresult;
		FmgrInfo	flinfo;
		LOCAL_FCINFO(fcinfo, 0);
		Datum		result;

		if (OidIsValid(role))
		{
			GetUserIdAndSecContext(&save_userid, &save_sec_context);
			SetUserIdAndSecContext(role,
								   save_sec_context |
								   SECURITY_LOCAL_USERID_CHANGE |
								   SECURITY_RESTRICTED_OPERATION);
		}
		aclresult = dolon_function_aclcheck(function, GetUserId(), ACL_EXECUTE);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(function));
		InvokeFunctionExecuteHook(function);

		PushActiveSnapshot(GetTransactionSnapshot());
		if (timeout_ms > 0)
			enable_timeout_after(STATEMENT_TIMEOUT, timeout_ms);

		fmgr_info(function, &flinfo);
		InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL, NULL);
		result = FunctionCallInvoke(fcinfo);
		isnull = fcinfo->isnull;
		if (!isnull)
			*value = result_as_double(result, result_type);

		if (timeout_ms > 0)
			disable_timeout(STATEMENT_TIMEOUT, false);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (timeout_ms > 0)
			disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();

		/*
		 * In a session, a cancel (the session's statement_timeout, or the
		 * user's) is for the whole statement, not for this profiler alone.
		 */
		if (!OidIsValid(role) && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		{
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(caller_context);
			CurrentResourceOwner = caller_owner;
			ReThrowError(edata);
		}
		*error = pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();

	/*
	 * Undo what the call did, whether it succeeded or not: what it wrote,
	 * the settings it changed (SET SESSION included), the user id and the
	 * snapshot.
	 */
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(caller_context);
	CurrentResourceOwner = caller_owner;

	if (*error != NULL)
		return false;
	if (isnull)
	{
		*error = pstrdup("it returned null");
		return false;
	}
	return true;
}
