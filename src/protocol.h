/*-------------------------------------------------------------------------
 *
 * protocol.h
 *		The messages of the mnemic protocol: encoding and decoding.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DOLON_PROTOCOL_H
#define DOLON_PROTOCOL_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/uuid.h"

#include "dolon_common.h"

/* A message of the mnemic protocol, decoded */
typedef enum MnemicMessageType
{
	MNEMIC_CREATE_TRACE_RUN,
	MNEMIC_ROW
} MnemicMessageType;

typedef struct MnemicMessage
{
	MnemicMessageType type;
	pg_uuid_t	uuid;
	char	   *app_name;		/* create_trace_run */
	List	   *column_names;	/* create_trace_run: of char * */
	int			nvalues;		/* row */
	float4	   *values;
	bool	   *nulls;
} MnemicMessage;

extern void mnemic_new_run_uuid(pg_uuid_t *uuid);
extern void mnemic_uuid_text(const pg_uuid_t *uuid, char *text);
extern void mnemic_plain_column_name(const char *name, char *column,
									 size_t size);
extern void mnemic_unique_column_name(const char *name, char *column,
									  size_t size,
									  bool (*taken) (const char *candidate,
													 void *arg),
									  void *arg);
extern void mnemic_append_number(StringInfo buf, double value, bool isnull);
extern void mnemic_encode_create_trace_run(StringInfo buf,
										   const char *app_name,
										   const char *const *column_names,
										   int count, const char *uuid_text);
extern void mnemic_encode_row(StringInfo buf, const double *values,
							  const bool *nulls, int count,
							  const char *uuid_text);
extern const char *mnemic_decode(char *data, int length,
								 MnemicMessage *message);

#endif							/* DOLON_PROTOCOL_H */
