--
-- dolon: the tracing API in SQL: more built-in profilers, custom profilers,
-- tracers started from SQL, function profiling, permissions
--
-- The scratch cluster runs with dolon.database = contrib_regression,
-- dolon.max_tracers = 3, dolon.profiler_role = regress_dolon_profiler and
-- dolon.profiler_timeout = 200ms.
--
CREATE EXTENSION dolon;
CREATE EXTENSION dblink;
CREATE ROLE regress_dolon_profiler;

-- Waits until a query returning a boolean returns true, and says whether it
-- did within 30 seconds: workers start, sample and stop asynchronously
CREATE FUNCTION wait_until(condition text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  done boolean;
BEGIN
  FOR i IN 1 .. 600 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXECUTE condition INTO done;
    IF done THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN false;
END
$$;

-- Waits until a tracer has taken samples, or is gone
CREATE FUNCTION wait_for_tracer(name text, running boolean) RETURNS boolean
LANGUAGE sql AS $$
  SELECT wait_until(CASE
    WHEN running THEN format('SELECT EXISTS (SELECT FROM dolon.tracers
                              WHERE tracer_name = %L AND pid IS NOT NULL
                                AND samples > 0)', name)
    ELSE format('SELECT NOT EXISTS (SELECT FROM dolon.tracers
                                    WHERE tracer_name = %L)', name)
  END)
$$;

-- The configured tracer works in this database, which pg_regress creates
SELECT wait_for_tracer('regress', true);

--
-- Built-in profilers against their ground truth
--

-- Rates need a previous sample of the same process, and cpu_percent CPU
-- time counted in /proc/stat since: null at first
SELECT name, value IS NULL AS unknown
FROM dolon.diagnostics('xact_commit_rate', 'xact_rollback_rate', 'cpu_percent');
CREATE FUNCTION cpu_ticks() RETURNS numeric LANGUAGE sql AS $$
  SELECT sum(t::numeric)
  FROM unnest((regexp_split_to_array(split_part(pg_read_file('/proc/stat'), E'\n', 1),
                                     ' +'))[2:]) t
$$;
SELECT cpu_ticks() AS ticks \gset
SELECT wait_until(format('SELECT cpu_ticks() > %s', :'ticks')) AS cpu_time_counted;
SELECT name, value >= 0 AS known
FROM dolon.diagnostics('xact_commit_rate', 'xact_rollback_rate', 'cpu_percent');

SELECT name, value FROM dolon.diagnostics('max_connections', 'waiting_on_locks',
    'idle_in_transaction', 'deadlocks', 'replication_lag_seconds');

SELECT d.value = current_setting('max_connections')::float8 AS max_connections_ok
FROM dolon.diagnostics('max_connections') d;

SELECT abs(d.value - 100.0 * (SELECT count(*) FROM pg_stat_activity
                              WHERE backend_type = 'client backend')
                     / current_setting('max_connections')::int) < 1e-9 AS connections_percent_ok
FROM dolon.diagnostics('connections_percent') d;

-- A session left idle in a transaction, and the age of the oldest transaction
SELECT dblink_connect('held',
                      format('host=%s port=%s dbname=%s',
                             current_setting('unix_socket_directories'),
                             current_setting('port'), current_database()));
SELECT dblink_exec('held', 'BEGIN');
SELECT wait_until($$SELECT clock_timestamp() - xact_start >= interval '0.3 s'
                    FROM pg_stat_activity
                    WHERE state = 'idle in transaction'$$) AS held_for_0_3_s;
SELECT d.value AS idle_in_transaction,
       d.value = (SELECT count(*) FROM pg_stat_activity
                  WHERE state = 'idle in transaction') AS idle_in_transaction_ok
FROM dolon.diagnostics('idle_in_transaction') d;
SELECT d.value >= 0.3 AS oldest_at_least_its_age,
       abs(d.value - (SELECT max(extract(epoch FROM clock_timestamp() - xact_start))
                      FROM pg_stat_activity)) < 0.5 AS oldest_transaction_ok
FROM dolon.diagnostics('oldest_transaction_seconds') d;
SELECT dblink_exec('held', 'COMMIT');
SELECT dblink_disconnect('held');

-- Host and server memory, in their units (MB for mem_allocation, of which a
-- server built with a sanitizer has hundreds)
SELECT name, value > 0 AND
       value < CASE name WHEN 'mem_allocation' THEN 65536 ELSE 100 END AS plausible
FROM dolon.diagnostics('virtual_memory_percent', 'memory_use', 'mem_allocation');

--
-- Custom profilers: functions named with their schema.  In a session they
-- run as the caller, under the session's statement_timeout (in a tracer, as
-- dolon.profiler_role); what they change is undone after the call
--
CREATE SCHEMA app;
CREATE SCHEMA other;
GRANT USAGE ON SCHEMA app, other TO regress_dolon_profiler;
CREATE TABLE app.jobs (id int);
INSERT INTO app.jobs SELECT generate_series(1, 42);
GRANT SELECT ON app.jobs TO regress_dolon_profiler;
CREATE FUNCTION app.queue_depth() RETURNS integer
  LANGUAGE sql AS 'SELECT count(*)::int FROM app.jobs';
CREATE FUNCTION other.queue_depth() RETURNS bigint LANGUAGE sql AS 'SELECT 7::bigint';
CREATE FUNCTION app.ratio() RETURNS numeric LANGUAGE sql AS 'SELECT 0.25';
CREATE FUNCTION app.small() RETURNS smallint LANGUAGE sql AS 'SELECT 3::smallint';
CREATE FUNCTION app.boom() RETURNS bigint
  LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'queue is on fire'; END$$;
CREATE FUNCTION app.slow() RETURNS float8
  LANGUAGE sql AS 'SELECT pg_sleep(5); SELECT 1.0::float8';
CREATE FUNCTION app.nothing() RETURNS real LANGUAGE sql AS 'SELECT NULL::real';
CREATE FUNCTION app.runs_as() RETURNS integer LANGUAGE sql
  AS $$SELECT CASE WHEN current_user = session_user THEN 1 ELSE 0 END$$;
CREATE FUNCTION app.writes() RETURNS integer
  LANGUAGE sql AS 'INSERT INTO app.jobs VALUES (0) RETURNING 1';
CREATE FUNCTION app.not_a_number() RETURNS text LANGUAGE sql AS $$SELECT 'x'$$;
CREATE FUNCTION app.with_argument(n int) RETURNS integer LANGUAGE sql AS 'SELECT n';
CREATE FUNCTION app.many() RETURNS SETOF integer LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION app."Queue Depth!"() RETURNS integer LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION app."select"() RETURNS integer LANGUAGE sql AS 'SELECT 2';
CREATE FUNCTION app."1st"() RETURNS integer LANGUAGE sql AS 'SELECT 3';

-- Values, and failures that leave the other profilers of the row alone
SELECT name, value FROM dolon.diagnostics('idle_in_transaction', 'app.queue_depth',
    'app.ratio', 'app.small', 'app.boom', 'app.nothing',
    'app.runs_as', 'app.writes', 'max_connections');
-- In a session, its statement_timeout cancels the statement
SET statement_timeout = '500ms';
SELECT name, value FROM dolon.diagnostics('idle', 'app.slow');
RESET statement_timeout;

-- Column names are plain identifiers, unique in the row
SELECT name, value FROM dolon.diagnostics('app.queue_depth', 'other.queue_depth',
    'app."Queue Depth!"', 'app."select"', 'app."1st"');

-- Functions that cannot be profilers are refused, saying why
SELECT * FROM dolon.diagnostics('queue_depth');
SELECT * FROM dolon.diagnostics('app.no_such');
SELECT * FROM dolon.diagnostics('no_such_schema.queue_depth');
SELECT * FROM dolon.diagnostics('app.with_argument');
SELECT * FROM dolon.diagnostics('app.not_a_number');
SELECT * FROM dolon.diagnostics('app.many');
SELECT * FROM dolon.diagnostics('a.b.c');
SELECT * FROM dolon.diagnostics('idle, app.queue_depth, idle');
SELECT * FROM dolon.diagnostics('app.queue_depth', 'APP.Queue_Depth');
SELECT * FROM dolon.diagnostics('idle', NULL);

-- In dolon.database, ALTER SYSTEM checks the functions too
ALTER SYSTEM SET dolon.profilers = 'idle, app.no_such';
ALTER SYSTEM SET dolon.profilers = 'idle, app.not_a_number';
ALTER SYSTEM SET dolon.profilers = 'idle, app.queue_depth';
ALTER SYSTEM RESET dolon.profilers;

--
-- Tracers started from SQL
--
SELECT dolon.start_tracer(NULL, '1s', '127.0.0.1', 9, 'idle');
SELECT dolon.start_tracer('', '1s', '127.0.0.1', 9, 'idle');
SELECT dolon.start_tracer('t', '0', '127.0.0.1', 9, 'idle');
SELECT dolon.start_tracer('t', '-1s', '127.0.0.1', 9, 'idle');
SELECT dolon.start_tracer('t', '1 month', '127.0.0.1', 9, 'idle');
SELECT dolon.start_tracer('t', '1s', 'not a host', 9, 'idle');
SELECT dolon.start_tracer('t', '1s', '127.0.0.1', 0, 'idle');
SELECT dolon.start_tracer('t', '1s', '127.0.0.1', 65536, 'idle');
SELECT dolon.start_tracer('t', '1s', '127.0.0.1', 9, 'bogus');
SELECT dolon.start_tracer('t', '1s', '127.0.0.1', 9, 'idle', 'idle');
SELECT dolon.start_tracer('t', '1s', '127.0.0.1', 9, 'app.no_such');
SELECT dolon.start_tracer('t', '1s', '127.0.0.1', 9, VARIADIC ARRAY[]::text[]);
SELECT dolon.start_tracer('regress', '1s', '127.0.0.1', 9, 'idle');

SELECT dolon.start_tracer('second', '100ms', '127.0.0.1', 9,
                          'idle', 'app.queue_depth') AS second_uuid \gset
SELECT wait_for_tracer('second', true);
SELECT tracer_name, configured, host, port, frequency, profilers, columns,
       pid IS NOT NULL AS running
FROM dolon.tracers ORDER BY tracer_name;
SELECT run_uuid = :'second_uuid' AS first_run_is_the_returned_uuid
FROM dolon.tracers WHERE tracer_name = 'second';
SELECT tracer_name, frequency_ms, host, port, profilers FROM dolon.tracer_definitions;
SELECT dolon.start_tracer('second', '1s', '127.0.0.1', 9, 'idle');

-- The slots are full: dolon.max_tracers is 3, the configured tracer included
SELECT dolon.start_tracer('third', '1s', '127.0.0.1', 9, 'idle') IS NOT NULL AS started;
SELECT dolon.start_tracer('fourth', '1s', '127.0.0.1', 9, 'idle');

-- A tracer started in a transaction that rolls back does not run
SELECT dolon.stop_tracer('third');
SELECT wait_for_tracer('third', false);
BEGIN;
SELECT dolon.start_tracer('rolled_back', '100ms', '127.0.0.1', 9, 'idle') IS NOT NULL AS started;
ROLLBACK;
SELECT wait_for_tracer('rolled_back', false);
SELECT count(*) FROM dolon.tracers WHERE tracer_name = 'rolled_back';

-- A stop that rolls back leaves the tracer running: after the rollback it
-- goes on sampling (two samples more: it has checked for a stop since), in
-- the same process
SELECT pid AS second_pid FROM dolon.tracers WHERE tracer_name = 'second' \gset
BEGIN;
SELECT dolon.stop_tracer('second');
ROLLBACK;
SELECT samples AS second_samples FROM dolon.tracers WHERE tracer_name = 'second' \gset
SELECT wait_until(format('SELECT samples >= %s + 2 AND pid = %s
                          FROM dolon.tracers WHERE tracer_name = %L',
                         :second_samples, :second_pid, 'second')) AS still_sampling;

-- Stopping
SELECT dolon.stop_tracer('second');
SELECT wait_for_tracer('second', false);
SELECT count(*) FROM dolon.tracer_definitions;
SELECT dolon.stop_tracer('second');
SELECT dolon.stop_tracer('regress');

--
-- Function profiling
--
CREATE FUNCTION app.add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
CREATE FUNCTION app.add(a text, b text) RETURNS text LANGUAGE sql AS 'SELECT a || b';
CREATE FUNCTION app.depth(n int) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  IF n = 0 THEN
    RETURN (SELECT active_instances FROM dolon.function_stats
            WHERE funcid = 'app.depth'::regproc);
  END IF;
  RETURN app.depth(n - 1);
END
$$;
CREATE FUNCTION app.fail() RETURNS int
  LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'failed on purpose'; END$$;

-- A SQL function is inlined until it is profiled
EXPLAIN (VERBOSE, COSTS OFF) SELECT app.add(x, 1) FROM generate_series(1, 3) x;
SELECT dolon.profile('app.add(int, int)');
SELECT dolon.profile('app.add(int, int)');
EXPLAIN (VERBOSE, COSTS OFF) SELECT app.add(x, 1) FROM generate_series(1, 3) x;

-- Hits, active instances (recursion included), calls ending in an error
SELECT sum(app.add(x, 1)) FROM generate_series(1, 10) x;
SELECT dolon.profile('app.depth(int)');
SELECT app.depth(4) AS active_at_depth_5;
SELECT dolon.profile('app.fail()');
DO $$
BEGIN
  FOR i IN 1 .. 3 LOOP
    BEGIN
      PERFORM app.fail();
    EXCEPTION WHEN raise_exception THEN
      NULL;
    END;
  END LOOP;
END
$$;
SELECT dolon.profile('app.add(text, text)');
SELECT function, column_name, hits, active_instances, completed_calls,
       average_time > 0 AS timed
FROM dolon.function_stats ORDER BY function;

-- The row of the configured tracer gets three columns per function
SELECT string_agg(name, ', ') AS columns FROM dolon.diagnostics();
SELECT name, value FROM dolon.diagnostics('app.queue_depth')
WHERE name NOT LIKE '%average_time';

-- Built-in functions and aggregates cannot be profiled
SELECT dolon.profile('lower(text)');
SELECT dolon.profile('sum(int4)');

SELECT dolon.unprofile('app.add(int, int)');
SELECT dolon.unprofile('app.add(int, int)');
SELECT dolon.clear();
SELECT count(*) FROM dolon.function_stats;

--
-- Permissions: pg_monitor reads, dolon_admin changes what is traced
--
SELECT p.proname,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS pg_monitor,
       has_function_privilege('dolon_admin', p.oid, 'EXECUTE') AS dolon_admin
FROM pg_proc p
WHERE p.pronamespace = 'dolon'::regnamespace
ORDER BY p.proname, p.pronargs;
SELECT c.relname,
       has_table_privilege('public', c.oid, 'SELECT') AS public,
       has_table_privilege('pg_monitor', c.oid, 'SELECT') AS pg_monitor,
       has_table_privilege('dolon_admin', c.oid, 'SELECT') AS dolon_admin
FROM pg_class c
WHERE c.relnamespace = 'dolon'::regnamespace AND c.relkind IN ('r', 'v')
ORDER BY c.relname;

CREATE ROLE regress_nobody;
CREATE ROLE regress_monitor IN ROLE pg_monitor;
CREATE ROLE regress_admin IN ROLE dolon_admin;
GRANT USAGE ON SCHEMA dolon TO regress_nobody;

SET ROLE regress_nobody;
SELECT dolon.start_tracer('t', '1s', '127.0.0.1', 9, 'idle');
SELECT dolon.stop_tracer('t');
SELECT dolon.profile('dolon.idle()');
SELECT dolon.unprofile('dolon.idle()');
SELECT dolon.clear();
SELECT * FROM dolon.tracers;
SELECT * FROM dolon.function_stats;
SELECT * FROM dolon.diagnostics('idle');
RESET ROLE;

SET ROLE regress_monitor;
SELECT dolon.start_tracer('t', '1s', '127.0.0.1', 9, 'idle');
SELECT dolon.profile('dolon.idle()');
SELECT count(*) FROM dolon.tracers;
SELECT count(*) FROM dolon.function_stats;
RESET ROLE;

SET ROLE regress_admin;
SELECT dolon.start_tracer('by_admin', '100ms', '127.0.0.1', 9, 'idle') IS NOT NULL AS started;
SELECT dolon.stop_tracer('by_admin');
SELECT dolon.profile('dolon.idle()');
SELECT dolon.clear();
SELECT * FROM dolon.tracers;
RESET ROLE;
SELECT wait_for_tracer('by_admin', false);

-- In a session, a custom profiler runs with the caller's rights, never the
-- profiler role's: EXECUTE is checked for the caller, and what the function
-- reads or writes too
CREATE TABLE app.secret (v integer);
INSERT INTO app.secret VALUES (1234);
GRANT SELECT ON app.secret TO regress_dolon_profiler;
CREATE FUNCTION app.p_secret() RETURNS integer
  LANGUAGE sql AS 'SELECT v FROM app.secret';
REVOKE EXECUTE ON FUNCTION app.p_secret() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.p_secret() TO regress_dolon_profiler;
CREATE FUNCTION app.p_peek() RETURNS integer
  LANGUAGE sql AS 'SELECT v FROM app.secret';
CREATE TABLE app.audit (v integer);
GRANT INSERT ON app.audit TO regress_dolon_profiler;
CREATE FUNCTION app.p_insert() RETURNS integer
  LANGUAGE sql AS 'INSERT INTO app.audit VALUES (1) RETURNING 1';
GRANT USAGE ON SCHEMA app TO regress_monitor;
SET ROLE regress_monitor;
SELECT * FROM dolon.diagnostics('app.p_secret');
SELECT * FROM dolon.diagnostics('app.p_peek');
SELECT * FROM dolon.diagnostics('app.p_insert');
RESET ROLE;
SELECT count(*) AS audited FROM app.audit;
-- A superuser's call reads, and what a profiler writes is rolled back
SELECT * FROM dolon.diagnostics('app.p_secret', 'app.p_insert');
SELECT count(*) AS audited FROM app.audit;

REVOKE USAGE ON SCHEMA dolon FROM regress_nobody;
DROP EXTENSION dolon;
DROP EXTENSION dblink;
DROP SCHEMA app, other CASCADE;
DROP ROLE regress_nobody, regress_monitor, regress_admin, regress_dolon_profiler;
