/*-------------------------------------------------------------------------
 *
 * transaction.c
 *		Running one step of a background worker in a transaction of its own,
 *		and surviving its errors.
 *
 * The tracers and the collector work in steps (a sample, a batch, a
 * retention pass, starting the recorded tracers), each in a transaction of
 * its own.  An error in a step must not end the worker, whose exit would
 * also cost the next samples: it is caught, the transaction rolled back,
 * and its message handed to the caller to count, record and log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"

#include "dolon.h"

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
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		error = pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller_context);
	return error;
}
