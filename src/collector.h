/*-------------------------------------------------------------------------
 *
 * collector.h
 *		The collector: an embedded mnemic backend.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_COLLECTOR_H
#define DOLON_COLLECTOR_H


extern Size dolon_collector_shmem_size(void);
extern void dolon_collector_shmem_init(void);
extern void dolon_register_collector(void);
extern PGDLLEXPORT void dolon_collector_main(Datum main_arg);

#endif							/* DOLON_COLLECTOR_H */
