/*-------------------------------------------------------------------------
 *
 * transaction.c
 *		The steps of a background worker: running one in a transaction of
 *		its own, or outside any, and surviving its errors, and what comes
 *		between two.
 *
 * The tracers and the collector work in steps (a sample, a batch, a retention
 * pass, starting the recorded tracers), each in a transaction of its own, and
 * some steps in parts, each in a subtransaction; a step that only reads
 * shared memory, as most of a tracer's samples do, runs outside any.  An
 * error in a step must not end the worker, whose exit would also cost the
 * next samples: it is caught, the transaction rolled back (or the locks of
 * a step outside one released), and its message handed to the caller to
 * count, record and log.  Between two steps, when the worker wakes up, it
 * handles its interrupts and reloads the settings if asked to.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "transaction.h"

/*
 * The message of the error being handled, copied into the caller's memory
 * context, which is made current; the error state is cleared.
 */
static char *
take_error_message(MemoryContext caller_context)
{
	ErrorData  *edata;
	char	   *message;

	MemoryContextSwitchTo(caller_context);
	edata = CopyErrorData();
	FlushErrorState();
	message = pstrdup(edata->message);
	FreeErrorData(edata);
	return message;
}

/*
 * Run step(arg) in a new transaction, with an active snapshot if asked (SQL
 * needs one).  Returns NULL if it committed, and otherwise the message of
 * the error that rolled it back, allocated in the caller's memory context,
 * which is current again on return either way.
 */
char *
dolon_run_in_transaction(void (*step) (void *arg), void *arg,
						 bool with_snapshot)
{
	MemoryContext caller_context = CurrentMemoryContext;
	char	   *error = NULL;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (with_snapshot)
			PushActiveSnapshot(GetTransactionSnapshot());
		step(arg);
		if (with_snapshot)
			PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		error = take_error_message(caller_context);
		AbortOutOfAnyTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller_context);
	return error;
}

/*
 * Run step(arg) outside any transaction, for a step that reads shared memory
 * and takes no heavyweight lock: a transaction's start and commit would cost
 * it more than its work.  Its allocations are made in step_context, reset on
 * return.  An error releases the lightweight locks the step held, as the
 * abort of a transaction would.  Returns NULL, or the message of the error,
 * allocated in the caller's memory context, which is current again on
 * return either way.
 */
char *
dolon_run_outside_transaction(void (*step) (void *arg), void *arg,
							  MemoryContext step_context)
{
	MemoryContext caller_context = CurrentMemoryContext;
	char	   *error = NULL;

	Assert(!IsTransactionState());
	PG_TRY();
	{
		MemoryContextSwitchTo(step_context);
		step(arg);
	}
	PG_CATCH();
	{
		error = take_error_message(caller_context);
		LWLockReleaseAll();
		ConditionVariableCancelSleep();
		pgstat_report_wait_end();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller_context);
	MemoryContextReset(step_context);
	return error;
}

/*
 * Run step(arg) in a subtransaction of the current transaction, released if
 * it ends well and rolled back if it raises an error.  Returns NULL, or the
 * error, copied into the caller's memory context, which is current again
 * on return either way, as is the caller's resource owner.
 */
ErrorData *
dolon_run_in_subtransaction(void (*step) (void *arg), void *arg)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	ErrorData  *edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		step(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller_context);
	CurrentResourceOwner = caller_owner;
	return edata;
}

/*
 * Handle the interrupts of a worker outside its steps: a shutdown request
 * ends it here.  A query cancel is for a statement, such as a custom
 * profiler that ran out of time; outside a step there is none to cancel,
 * so it is dropped.
 */
void
dolon_handle_interrupts(void)
{
	QueryCancelPending = false;
	CHECK_FOR_INTERRUPTS();
}

/*
 * Handle what woke the worker up between two steps: its interrupts, and a
 * reload of the settings, which is done, and true returned.
 */
bool
dolon_between_steps(void)
{
	dolon_handle_interrupts();

	if (!ConfigReloadPending)
		return false;
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	return true;
}
