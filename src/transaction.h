/*-------------------------------------------------------------------------
 *
 * transaction.h
 *		A worker's steps: each in a transaction of its own or outside any,
 *		and what comes between two.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_TRANSACTION_H
#define DOLON_TRANSACTION_H


extern char *dolon_run_in_transaction(void (*step) (void *arg), void *arg,
									  bool with_snapshot);
extern char *dolon_run_outside_transaction(void (*step) (void *arg),
										   void *arg,
										   MemoryContext step_context);
extern ErrorData *dolon_run_in_subtransaction(void (*step) (void *arg),
											  void *arg);
extern void dolon_handle_interrupts(void);
extern bool dolon_between_steps(void);

#endif							/* DOLON_TRANSACTION_H */
