/*-------------------------------------------------------------------------
 *
 * live_page.h
 *		The live page of the metrics endpoint: its files, the state of the
 *		server it shows, and the charts of the collector's runs.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_LIVE_PAGE_H
#define DOLON_LIVE_PAGE_H

#include "lib/stringinfo.h"
#include "utils/uuid.h"

extern char *dolon_read_page_file(const char *name, size_t *length);
extern void dolon_write_page_status(StringInfo out);
extern bool dolon_write_run_chart(const pg_uuid_t *run, StringInfo out);

#endif							/* DOLON_LIVE_PAGE_H */
