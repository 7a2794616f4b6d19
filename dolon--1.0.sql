/* dolon--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION dolon" to load this file. \quit

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
'the row the tracer would send now: one value per profiler of dolon.profilers, in column order';

--
-- The tracer worker
--
CREATE FUNCTION tracer_status(
    OUT pid integer,
    OUT run_uuid uuid,
    OUT run_started timestamptz,
    OUT tracer_name text,
    OUT host text,
    OUT port integer,
    OUT frequency interval,
    OUT samples bigint,
    OUT rows_sent bigint,
    OUT send_errors bigint,
    OUT last_error text,
    OUT last_error_time timestamptz,
    OUT last_sample_us float8,
    OUT mean_sample_us float8)
RETURNS record
AS 'MODULE_PATHNAME', 'dolon_tracer_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW tracer AS
  SELECT * FROM tracer_status();

COMMENT ON VIEW tracer IS
'state of the dolon tracer background worker';

--
-- Reading the server's state is for monitoring roles only
--
REVOKE ALL ON FUNCTION idle(), count_db_connections(), active_tasks(),
    live_msgs(), dead_msgs(), diagnostics(), tracer_status() FROM PUBLIC;
REVOKE ALL ON tracer FROM PUBLIC;

GRANT USAGE ON SCHEMA @extschema@ TO pg_monitor;
GRANT EXECUTE ON FUNCTION idle(), count_db_connections(), active_tasks(),
    live_msgs(), dead_msgs(), diagnostics(), tracer_status() TO pg_monitor;
GRANT SELECT ON tracer TO pg_monitor;
