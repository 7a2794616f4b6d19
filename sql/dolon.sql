--
-- dolon: the SQL API against ground truth, bad settings, permissions
--
-- The scratch cluster runs with autovacuum off and dolon.profilers set to
-- all five built-in profilers, so that nothing but this test moves the
-- numbers.
--
CREATE EXTENSION dolon;
CREATE EXTENSION dblink;

-- The configured tracer works in this database, which pg_regress has just
-- created: wait until it has connected and taken samples
DO $$
BEGIN
  FOR i IN 1 .. 600 LOOP
    IF EXISTS (SELECT FROM dolon.tracer
               WHERE pid IS NOT NULL AND mean_sample_us > 0) THEN
      RETURN;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RAISE EXCEPTION 'the configured tracer has taken no sample in 30 seconds';
END
$$;

-- The objects of the extension, as \dx+ lists them up to PostgreSQL 16: from
-- 17 the row types of its tables and views are members too, and left out
SELECT pg_describe_object(d.classid, d.objid, 0) AS "Object description"
FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND
      d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dolon') AND
      NOT EXISTS (SELECT FROM pg_type t
                  LEFT JOIN pg_type e ON e.oid = t.typelem
                  WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid AND
                        (t.typrelid <> 0 OR e.typrelid <> 0))
ORDER BY 1;

--
-- Backend activity, against pg_stat_activity and pg_stat_database
--
CREATE FUNCTION ground_truth(OUT idle bigint, OUT active bigint,
                             OUT connections bigint) AS $$
  SELECT (SELECT count(*) FROM pg_stat_activity WHERE state = 'idle'),
         (SELECT count(*) FROM pg_stat_activity WHERE state = 'active'),
         (SELECT sum(numbackends) FROM pg_stat_database)
$$ LANGUAGE sql;

CREATE TABLE before AS
  SELECT dolon.idle(), dolon.active_tasks(), dolon.count_db_connections(),
         g.idle AS true_idle, g.active AS true_active,
         g.connections AS true_connections
  FROM ground_truth() g;
SELECT idle = true_idle AS idle_ok,
       active_tasks = true_active AS active_ok,
       count_db_connections = true_connections AS connections_ok,
       active_tasks >= 1 AS this_session_is_active
FROM before;

-- Open three sessions that stay idle
SELECT dblink_connect('idle' || i,
                      format('host=%s port=%s dbname=%s',
                             current_setting('unix_socket_directories'),
                             current_setting('port'), current_database()))
FROM generate_series(1, 3) i;

SELECT d.idle - b.idle AS idle_rise,
       d.count_db_connections - b.count_db_connections AS connections_rise,
       d.active_tasks - b.active_tasks AS active_rise,
       d.idle = g.idle AS idle_ok,
       d.count_db_connections = g.connections AS connections_ok
FROM before b,
     LATERAL (SELECT dolon.idle(), dolon.active_tasks(),
                     dolon.count_db_connections()) d,
     ground_truth() g;

SELECT dblink_disconnect('idle' || i) FROM generate_series(1, 3) i;

--
-- Table tuples, against pg_stat_user_tables
--
SELECT dolon.live_msgs() AS live, dolon.dead_msgs() AS dead;

CREATE TABLE messages (id int);
CREATE TABLE archive (id int);
INSERT INTO messages SELECT generate_series(1, 100);
INSERT INTO archive SELECT generate_series(1, 20);
DELETE FROM messages WHERE id <= 30;
SELECT pg_stat_force_next_flush();

SELECT dolon.live_msgs() AS live, dolon.dead_msgs() AS dead,
       dolon.live_msgs() = (SELECT sum(n_live_tup) FROM pg_stat_user_tables) AS live_ok,
       dolon.dead_msgs() = (SELECT sum(n_dead_tup) FROM pg_stat_user_tables) AS dead_ok;

-- A dropped table leaves the sums; a new one joins them
DROP TABLE archive;
CREATE TABLE later (id int);
INSERT INTO later SELECT generate_series(1, 5);
SELECT pg_stat_force_next_flush();
SELECT dolon.live_msgs() AS live, dolon.dead_msgs() AS dead;

-- Tables outside pg_stat_user_tables (catalogs) do not count
SELECT dolon.live_msgs() = (SELECT sum(n_live_tup) FROM pg_stat_user_tables) AS live_ok;

--
-- The row the tracer sends, in column order
--
SELECT name, value FROM dolon.diagnostics() WHERE name IN ('live_msgs', 'dead_msgs');
SELECT string_agg(name, ', ') AS columns FROM dolon.diagnostics();

--
-- The tracer worker
--
SELECT t.pid = a.pid AS pid_ok, t.tracer_name, t.host, t.port, t.frequency,
       t.run_uuid::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_v4,
       t.mean_sample_us > 0 AS sampled
FROM dolon.tracer t
JOIN pg_stat_activity a ON a.backend_type = 'dolon tracer';

--
-- Bad settings are refused with the valid values (ALTER SYSTEM validates
-- without applying)
--
ALTER SYSTEM SET dolon.port = 0;
ALTER SYSTEM SET dolon.port = 70000;
ALTER SYSTEM SET dolon.frequency = '5 parsecs';
-- a value out of range: its message names the unit from PostgreSQL 16 on, so
-- only its SQLSTATE here, and the range from pg_settings
\set VERBOSITY sqlstate
ALTER SYSTEM SET dolon.frequency = 0;
ALTER SYSTEM SET dolon.frequency = '-1s';
\set VERBOSITY default
SELECT min_val, max_val, unit FROM pg_settings WHERE name = 'dolon.frequency';
ALTER SYSTEM SET dolon.profilers = 'idle, bogus';
ALTER SYSTEM SET dolon.profilers = 'idle, live_msgs, idle';
ALTER SYSTEM SET dolon.profilers = '';
ALTER SYSTEM SET dolon.profilers = 'idle, "unterminated';
-- An empty host is accepted: it turns the configured tracer off
ALTER SYSTEM SET dolon.host = '';
ALTER SYSTEM SET dolon.host = 'a host';
ALTER SYSTEM SET dolon.host = '[::1]';
ALTER SYSTEM SET dolon.tracer_name = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx';
ALTER SYSTEM SET dolon.database = '';
-- the prefix is reserved (ALTER SYSTEM of an unknown setting says so only
-- from PostgreSQL 17 on)
SET dolon.no_such_setting = 1;
SET dolon.port = 12014;
SET dolon.database = 'other';
-- good values are taken
ALTER SYSTEM SET dolon.profilers = 'Active_Tasks,idle';
ALTER SYSTEM SET dolon.frequency = '1min';
ALTER SYSTEM SET dolon.tracer_name = 'ñandú';
ALTER SYSTEM RESET dolon.profilers;
ALTER SYSTEM RESET dolon.frequency;
ALTER SYSTEM RESET dolon.tracer_name;

--
-- Permissions: pg_monitor, and nobody else but superusers
--
CREATE ROLE dolon_nobody;
CREATE ROLE dolon_monitor IN ROLE pg_monitor;
SELECT p.proname,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS pg_monitor
FROM pg_proc p
WHERE p.pronamespace = 'dolon'::regnamespace
ORDER BY p.proname;
SELECT has_table_privilege('public', 'dolon.tracer', 'SELECT') AS public,
       has_table_privilege('pg_monitor', 'dolon.tracer', 'SELECT') AS pg_monitor;

SET ROLE dolon_nobody;
SELECT dolon.idle();
SELECT * FROM dolon.diagnostics();
SELECT pid FROM dolon.tracer;
RESET ROLE;

GRANT USAGE ON SCHEMA dolon TO dolon_nobody;
SET ROLE dolon_nobody;
SELECT dolon.idle();
SELECT dolon.live_msgs();
SELECT * FROM dolon.diagnostics();
SELECT pid FROM dolon.tracer;
SELECT pid FROM dolon.tracer_states();
RESET ROLE;

SET ROLE dolon_monitor;
SELECT dolon.idle() >= 0 AS idle, dolon.live_msgs() AS live;
SELECT count(*) FROM dolon.diagnostics();
SELECT tracer_name FROM dolon.tracer;
RESET ROLE;

DROP ROLE dolon_monitor;
REVOKE USAGE ON SCHEMA dolon FROM dolon_nobody;
DROP ROLE dolon_nobody;

DROP EXTENSION dolon;
DROP EXTENSION dblink;
