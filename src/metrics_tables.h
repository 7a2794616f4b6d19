/*-------------------------------------------------------------------------
 *
 * metrics_tables.h
 *		The tables of the databases of dolon.metrics_databases, for the
 *		per-table metrics: their names, read by a helper connected to each.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_METRICS_TABLES_H
#define DOLON_METRICS_TABLES_H

/* A user table of a database, as pg_stat_user_tables names it */
typedef struct DolonTableName
{
	Oid			relid;
	char	   *schemaname;
	char	   *relname;
} DolonTableName;

/*
 * A database of dolon.metrics_databases: this worker's own, whose tables
 * are read from its catalogs at each scrape, or another, whose tables are
 * those its last helper listed (none before the first)
 */
typedef struct DolonMetricsDatabase
{
	char	   *datname;		/* as listed */
	bool		own;			/* the database the worker is connected to */
	Oid			dboid;			/* another's: as its helper found it */
	DolonTableName *tables;		/* another's: as its helper listed them */
	int			ntables;
} DolonMetricsDatabase;

extern void dolon_metrics_tables_work(bool reloaded);
extern const DolonMetricsDatabase *dolon_metrics_databases_list(int *count);
extern PGDLLEXPORT void dolon_metrics_tables_main(Datum main_arg);

#endif							/* DOLON_METRICS_TABLES_H */
