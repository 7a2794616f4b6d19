/*-------------------------------------------------------------------------
 *
 * render.h
 *		Reading the collector's store back: the SVG chart of a run, for
 *		those that draw it outside SQL.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_RENDER_H
#define DOLON_RENDER_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/uuid.h"

/* The width of dolon.plot()'s charts, and the least a chart can have */
#define DOLON_PLOT_WIDTH 640
#define DOLON_PLOT_MIN_WIDTH 360

extern void dolon_render_plot(const pg_uuid_t *uuid, TimestampTz since, int width,
							  StringInfo svg);

#endif							/* DOLON_RENDER_H */
