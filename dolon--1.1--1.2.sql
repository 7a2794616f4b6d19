/* dolon--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION dolon UPDATE TO '1.2'" to load this file. \quit

--
-- A tracer's host may name a protocol other than mnemic's: tracer_states()
-- and the views dolon.tracers and dolon.tracer gain the column protocol,
-- and are made anew.
--
DROP VIEW tracer;
DROP VIEW tracers;
DROP FUNCTION tracer_states();

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

REVOKE ALL ON FUNCTION tracer_states() FROM PUBLIC;
REVOKE ALL ON tracer, tracers FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tracer_states() TO pg_monitor;
GRANT SELECT ON tracer, tracers TO pg_monitor;

--
-- The live page lists the latest runs, and the collector's retention deletes
-- the oldest: both by creation time
--
CREATE INDEX tracing_run_creation_time ON tracing_run (creation_time);
