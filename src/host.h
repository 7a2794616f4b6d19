/*-------------------------------------------------------------------------
 *
 * host.h
 *		The built-in profilers read from /proc.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_HOST_H
#define DOLON_HOST_H


/* Readings of /proc/stat, kept from one sample to the next */
typedef struct DolonCpuReading
{
	uint64		busy;
	uint64		total;
	bool		valid;
} DolonCpuReading;

extern bool dolon_read_cpu_percent(DolonCpuReading *previous, double *percent);
extern bool dolon_read_virtual_memory_percent(double *percent);
extern bool dolon_read_server_memory(double *pss_gb, double *private_mb);

#endif							/* DOLON_HOST_H */
