/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The tracer background worker.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_WORKER_H
#define DOLON_WORKER_H


extern PGDLLEXPORT void dolon_tracer_main(Datum main_arg);

#endif							/* DOLON_WORKER_H */
