/* dolon--1.2.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION dolon" to load this file. \quit

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
-- The role allowed to change what is traced: start and stop tracers,
-- profile functions.  Roles belong to the cluster, not to the extension:
-- it may exist already, from another database, and outlives DROP EXTENSION.
--
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'dolon_admin') THEN
    CREATE ROLE dolon_admin NOLOGIN;
  END IF;
END
$$;

--
-- Diagnostics, computed now by the calling backend
--
CREATE FUNCTION idle()
RETURNS bigint
AS 'MODULE_PATHNAME', 'dolon_idle'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION idle() IS
'sessions whose state is idle, as counted by pg_stat_activity';

CREATE FUNCTION count_db_connections()
RETURNS bigint
AS 'MODULE_PATHNAME', 'dolon_count_db_connections'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION count_db_connections() IS
'processes connected to a database, as summed by pg_stat_database.numbackends';

CREATE FUNCTION active_tasks()
RETURNS bigint
AS 'MODULE_PATHNAME', 'dolon_active_tasks'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION active_tasks() IS
'sessions whose state is active, as counted by pg_stat_activity';

CREATE FUNCTION live_msgs()
RETURNS bigint
AS 'MODULE_PATHNAME', 'dolon_live_msgs'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION live_msgs() IS
'live tuples of the user tables of this database (pg_stat_user_tables.n_live_tup)';

CREATE FUNCTION dead_msgs()
RETURNS bigint
AS 'MODULE_PATHNAME', 'dolon_dead_msgs'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION dead_msgs() IS
'dead tuples of the user tables of this database (pg_stat_user_tables.n_dead_tup)';

CREATE FUNCTION diagnostics(OUT name text, OUT value float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dolon_diagnostics'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 8;

COMMENT ON FUNCTION diagnostics() IS
'the row the configured tracer would send now, one (name, value) per column';

CREATE FUNCTION diagnostics(VARIADIC profilers text[], OUT name text, OUT value float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dolon_diagnostics'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 8;

COMMENT ON FUNCTION diagnostics(text[]) IS
'the row these profilers give now, one (name, value) per column';

--
-- Tracers
--
CREATE TABLE tracer_definitions (
    tracer_name text PRIMARY KEY
        CHECK (char_length(tracer_name) BETWEEN 1 AND 128),
    frequency_ms integer NOT NULL CHECK (frequency_ms >= 10),
    host text NOT NULL CHECK (octet_length(host) BETWEEN 1 AND 255),
    port integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    profilers text NOT NULL CHECK (octet_length(profilers) BETWEEN 1 AND 2047),
    created timestamptz NOT NULL DEFAULT now(),
    started_by regrole NOT NULL DEFAULT current_user::regrole
);

COMMENT ON TABLE tracer_definitions IS
'tracers started with dolon.start_tracer(), started again at server start';

COMMENT ON COLUMN tracer_definitions.started_by IS
'the role that started the tracer: its custom profilers run only while it has the privileges of dolon.profiler_role';

SELECT pg_catalog.pg_extension_config_dump('tracer_definitions', '');

CREATE FUNCTION start_tracer(tracer_name text, frequency interval, host text,
                             port integer, VARIADIC profilers text[])
RETURNS uuid
AS 'MODULE_PATHNAME', 'dolon_start_tracer'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION start_tracer(text, interval, text, integer, text[]) IS
'start a tracer, kept until stopped; returns the uuid of its first run';

CREATE FUNCTION stop_tracer(tracer_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'dolon_stop_tracer'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION stop_tracer(text) IS
'stop a tracer started with dolon.start_tracer()';

CREATE FUNCTION tracer_states(
    OUT tracer_name text,
    OUT configured boolean,
    OUT pid integer,
    OUT run_uuid uuid,
    OUT run_started timestamptz,
    OUT host text,
    OUT port integer,
    OUT frequency interval,
    OUT profilers text,
    OUT columns integer,
    OUT samples bigint,
    OUT rows_sent bigint,
    OUT send_errors bigint,
    OUT profiler_errors bigint,
    OUT last_error text,
    OUT last_error_time timestamptz,
    OUT last_sample_us float8,
    OUT mean_sample_us float8,
    OUT slot integer,
    OUT protocol text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dolon_tracer_states'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW tracers AS
  SELECT tracer_name, configured, pid, run_uuid, run_started, protocol, host,
         port, frequency, profilers, columns, samples, rows_sent, send_errors,
         profiler_errors, last_error, last_error_time, last_sample_us,
         mean_sample_us
  FROM tracer_states()
  ORDER BY slot;

COMMENT ON VIEW tracers IS
'every tracer: the configured one and those started with dolon.start_tracer()';

CREATE VIEW tracer AS
  SELECT tracer_name, pid, run_uuid, run_started, protocol, host, port, frequency,
         profilers, columns, samples, rows_sent, send_errors, profiler_errors,
         last_error, last_error_time, last_sample_us, mean_sample_us
  FROM tracer_states()
  WHERE configured;

COMMENT ON VIEW tracer IS
'the tracer configured in postgresql.conf';

--
-- Function profiling
--
CREATE FUNCTION profile(regprocedure)
RETURNS boolean
AS 'MODULE_PATHNAME', 'dolon_profile'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION profile(regprocedure) IS
'count the calls of a function; false if it was profiled already';

CREATE FUNCTION unprofile(regprocedure)
RETURNS boolean
AS 'MODULE_PATHNAME', 'dolon_unprofile'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION unprofile(regprocedure) IS
'stop counting the calls of a function; false if it was not profiled';

CREATE FUNCTION clear()
RETURNS bigint
AS 'MODULE_PATHNAME', 'dolon_clear'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION clear() IS
'stop profiling every function, of every database; returns how many were';

CREATE FUNCTION function_stats_all(
    OUT dbid oid,
    OUT database text,
    OUT funcid oid,
    OUT function text,
    OUT column_name text,
    OUT hits bigint,
    OUT active_instances bigint,
    OUT completed_calls bigint,
    OUT average_time float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dolon_function_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW function_stats AS
  SELECT * FROM function_stats_all();

COMMENT ON VIEW function_stats IS
'calls of the profiled functions: hits, active instances, average time in seconds';

--
-- The collector's store, in the shape of mnemic's own tables
--
CREATE TABLE tracing_run (
    uuid uuid PRIMARY KEY,
    app_name varchar(128) NOT NULL,
    column_names text[] NOT NULL,
    creation_time timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tracing_run_creation_time ON tracing_run (creation_time);

COMMENT ON TABLE tracing_run IS
'runs announced to the collector (create_trace_run)';

CREATE TABLE tracing_row (
    uuid uuid NOT NULL,
    row_data real[] NOT NULL,
    date_time timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tracing_row_uuid_date_time ON tracing_row (uuid, date_time);
CREATE INDEX tracing_row_date_time ON tracing_row USING brin (date_time);

COMMENT ON TABLE tracing_row IS
'rows received by the collector, stamped with their arrival time';

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
-- tools: they query tracing_run and tracing_row without a schema, and find
-- these with search_path = mnemic.  The uuid is text (varchar), which
-- mnemic's front end encodes as JSON as it comes.  Times are timestamps
-- without time zone, as mnemic's store has them (the CURRENT_TIMESTAMP of
-- the session that inserted the row): the wall-clock time of the reading
-- session's TimeZone, by default the server's.
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
-- Reading the collector's store back: runs, their rows as (time, column,
-- value), CSV, sparklines and SVG charts
--
CREATE VIEW runs AS
  SELECT r.app_name, r.uuid, r.column_names, r.creation_time AS started,
         l.last_row, c.row_count
  FROM dolon.tracing_run r
  LEFT JOIN LATERAL (SELECT max(w.date_time) AS last_row
                     FROM dolon.tracing_row w
                     WHERE w.uuid = r.uuid) l ON true
  LEFT JOIN LATERAL (SELECT count(*) AS row_count
                     FROM dolon.tracing_row w
                     WHERE w.uuid = r.uuid) c ON true;

COMMENT ON VIEW runs IS
'runs received by the collector: columns, start, time of the last row, number of rows';

-- The functions are in C (src/render.c): each reads the run's rows once, in
-- (date_time, ctid) order; those of many rows return them as a set, which
-- spills to disk beyond work_mem; the charts downsample to their width.
CREATE FUNCTION run_columns(run uuid)
RETURNS text[]
AS 'MODULE_PATHNAME', 'dolon_run_columns'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION run_columns(uuid) IS
'the column names of a run; an error if the collector never received its announcement';

CREATE FUNCTION trace(run uuid)
RETURNS TABLE ("time" timestamptz, column_name text, value float8)
AS 'MODULE_PATHNAME', 'dolon_trace'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10000;

COMMENT ON FUNCTION trace(uuid) IS
'the rows of a run, one (time, column_name, value) per row and column, in time then column order';

CREATE FUNCTION csv_field(value text)
RETURNS text
AS 'MODULE_PATHNAME', 'dolon_csv_field'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION csv_field(text) IS
'a text field of CSV: quoted as RFC 4180 requires, and never taken by a spreadsheet for a formula';

CREATE FUNCTION trace_csv(run uuid)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'dolon_trace_csv'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1000;

COMMENT ON FUNCTION trace_csv(uuid) IS
'a run as CSV, one line per record: a header time,<columns>, then one line per row, times in UTC (ISO 8601)';

CREATE FUNCTION sparkline(run uuid, column_name text, width integer DEFAULT 60)
RETURNS text
AS 'MODULE_PATHNAME', 'dolon_sparkline'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION sparkline(uuid, text, integer) IS
'one column of a run as a line of block characters, at most width, each showing the extreme of its bucket of time';

CREATE FUNCTION plot(run uuid)
RETURNS text
AS 'MODULE_PATHNAME', 'dolon_plot'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION plot(uuid) IS
'a run as an SVG document: one time-series chart per column, with round axis numbers and units';

--
-- Privileges: reading is for monitoring roles, changing what is traced for
-- dolon_admin; superusers can do everything
--
REVOKE ALL ON FUNCTION idle(), count_db_connections(), active_tasks(),
    live_msgs(), dead_msgs(), diagnostics(), diagnostics(text[]),
    tracer_states(), function_stats_all(), collector_state(),
    run_columns(uuid), csv_field(text), trace(uuid), trace_csv(uuid),
    sparkline(uuid, text, integer), plot(uuid),
    start_tracer(text, interval, text, integer, text[]), stop_tracer(text),
    profile(regprocedure), unprofile(regprocedure), clear() FROM PUBLIC;
REVOKE ALL ON tracer, tracers, function_stats, tracer_definitions, collector,
    tracing_run, tracing_row, runs, mnemic.tracing_run, mnemic.tracing_row
    FROM PUBLIC;
REVOKE ALL ON SCHEMA mnemic FROM PUBLIC;

GRANT USAGE ON SCHEMA @extschema@ TO pg_monitor, dolon_admin;
GRANT USAGE ON SCHEMA mnemic TO pg_monitor;
GRANT EXECUTE ON FUNCTION idle(), count_db_connections(), active_tasks(),
    live_msgs(), dead_msgs(), diagnostics(), diagnostics(text[]),
    tracer_states(), function_stats_all(), collector_state(),
    run_columns(uuid), csv_field(text), trace(uuid), trace_csv(uuid),
    sparkline(uuid, text, integer), plot(uuid) TO pg_monitor;
GRANT SELECT ON tracer, tracers, function_stats, collector, tracing_run,
    tracing_row, runs, mnemic.tracing_run, mnemic.tracing_row TO pg_monitor;

GRANT EXECUTE ON FUNCTION start_tracer(text, interval, text, integer, text[]),
    stop_tracer(text), profile(regprocedure), unprofile(regprocedure), clear()
    TO dolon_admin;
GRANT SELECT ON tracer_definitions TO dolon_admin;
