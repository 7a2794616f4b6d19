/* dolon--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION dolon UPDATE TO '1.1'" to load this file. \quit

--
-- The schema dolon must be a superuser's: its owner could rename it and put
-- tables of its own, with triggers, where dolon's workers and functions
-- write and read as a superuser.
--
DO $$
DECLARE
  owner pg_catalog.name;
BEGIN
  SELECT r.rolname INTO owner
  FROM pg_catalog.pg_namespace n
  JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
  WHERE n.oid = '@extschema@'::pg_catalog.regnamespace AND NOT r.rolsuper;
  IF FOUND THEN
    RAISE EXCEPTION USING
      ERRCODE = 'insufficient_privilege',
      MESSAGE = 'schema "@extschema@" must be owned by a superuser',
      DETAIL = pg_catalog.format('Its owner, role %I, could put objects of its own where dolon writes as a superuser.', owner),
      HINT = 'Drop or rename the schema, or make the current user its owner: ALTER SCHEMA @extschema@ OWNER TO CURRENT_USER.';
  END IF;
END
$$;

--
-- A tracer's custom profilers read with the rights of dolon.profiler_role
-- only while the role that started it has them: each tracer records its
-- starter.  Those started under 1.0 count as started by whoever updates.
--
ALTER TABLE tracer_definitions
    ADD COLUMN started_by regrole NOT NULL DEFAULT current_user::regrole;

COMMENT ON COLUMN tracer_definitions.started_by IS
'the role that started the tracer: its custom profilers run only while it has the privileges of dolon.profiler_role';

--
-- The collector counts what it refuses: a new column, refused, before
-- dropped.  Its function's columns change, so it and its view are made anew.
--
DROP VIEW collector;
DROP FUNCTION collector_state();

CREATE FUNCTION collector_state(
    OUT pid integer,
    OUT listen_addresses text,
    OUT port integer,
    OUT waiting_for_extension boolean,
    OUT received bigint,
    OUT stored bigint,
    OUT stored_runs bigint,
    OUT stored_rows bigint,
    OUT duplicate_runs bigint,
    OUT orphan_rows bigint,
    OUT malformed bigint,
    OUT refused bigint,
    OUT dropped bigint,
    OUT batches bigint,
    OUT expired_rows bigint,
    OUT last_error text,
    OUT last_error_time timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'dolon_collector_state'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW collector AS
  SELECT * FROM collector_state();

COMMENT ON VIEW collector IS
'the collector: what it received, stored, found malformed and dropped';

--
-- The collector's store under mnemic's own names and types, for mnemic's
-- tools (see dolon--1.1.sql)
--
CREATE SCHEMA mnemic;

COMMENT ON SCHEMA mnemic IS
'the collector''s store under mnemic''s own names and types, for mnemic''s tools';

CREATE VIEW mnemic.tracing_run AS
  SELECT r.uuid::varchar AS uuid, r.app_name, r.column_names,
         r.creation_time::timestamp AS creation_time
  FROM @extschema@.tracing_run r;

COMMENT ON VIEW mnemic.tracing_run IS
'the runs of dolon.tracing_run as mnemic has them: uuid as varchar, creation_time without time zone';

CREATE VIEW mnemic.tracing_row AS
  SELECT w.uuid::varchar AS uuid, w.row_data,
         w.date_time::timestamp AS date_time
  FROM @extschema@.tracing_row w;

COMMENT ON VIEW mnemic.tracing_row IS
'the rows of dolon.tracing_row as mnemic has them: uuid as varchar, date_time without time zone';

--
-- The reading functions, in C rather than PL/pgSQL.  trace_csv returns a
-- set of lines rather than one text, so it is made anew.
--
CREATE OR REPLACE FUNCTION run_columns(run uuid)
RETURNS text[]
AS 'MODULE_PATHNAME', 'dolon_run_columns'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION trace(run uuid)
RETURNS TABLE ("time" timestamptz, column_name text, value float8)
AS 'MODULE_PATHNAME', 'dolon_trace'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10000;

CREATE FUNCTION csv_field(value text)
RETURNS text
AS 'MODULE_PATHNAME', 'dolon_csv_field'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION csv_field(text) IS
'a text field of CSV: quoted as RFC 4180 requires, and never taken by a spreadsheet for a formula';

DROP FUNCTION trace_csv(uuid);

CREATE FUNCTION trace_csv(run uuid)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'dolon_trace_csv'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1000;

COMMENT ON FUNCTION trace_csv(uuid) IS
'a run as CSV, one line per record: a header time,<columns>, then one line per row, times in UTC (ISO 8601)';

CREATE OR REPLACE FUNCTION sparkline(run uuid, column_name text, width integer DEFAULT 60)
RETURNS text
AS 'MODULE_PATHNAME', 'dolon_sparkline'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION sparkline(uuid, text, integer) IS
'one column of a run as a line of block characters, at most width, each showing the extreme of its bucket of time';

CREATE OR REPLACE FUNCTION plot(run uuid)
RETURNS text
AS 'MODULE_PATHNAME', 'dolon_plot'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION plot(uuid) IS
'a run as an SVG document: one time-series chart per column, with round axis numbers and units';

--
-- Privileges of the new objects as in dolon--1.1.sql; tracer definitions
-- only change through start_tracer and stop_tracer
--
REVOKE ALL ON FUNCTION collector_state(), csv_field(text), trace_csv(uuid)
    FROM PUBLIC;
REVOKE ALL ON collector, mnemic.tracing_run, mnemic.tracing_row FROM PUBLIC;
REVOKE ALL ON SCHEMA mnemic FROM PUBLIC;

GRANT USAGE ON SCHEMA mnemic TO pg_monitor;
GRANT EXECUTE ON FUNCTION collector_state(), csv_field(text), trace_csv(uuid)
    TO pg_monitor;
GRANT SELECT ON collector, mnemic.tracing_run, mnemic.tracing_row TO pg_monitor;

REVOKE INSERT, DELETE ON tracer_definitions FROM dolon_admin;
