/*-------------------------------------------------------------------------
 *
 * metrics_server.h
 *		The metrics endpoint: a background worker serving HTTP.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_METRICS_SERVER_H
#define DOLON_METRICS_SERVER_H

extern void dolon_register_metrics_server(void);
extern PGDLLEXPORT void dolon_metrics_main(Datum main_arg);

#endif							/* DOLON_METRICS_SERVER_H */
