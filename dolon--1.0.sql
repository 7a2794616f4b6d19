/* dolon--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION dolon" to load this file. \quit

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
    created timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE tracer_definitions IS
'tracers started with dolon.start_tracer(), started again at server start';

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
    OUT slot integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dolon_tracer_states'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW tracers AS
  SELECT tracer_name, configured, pid, run_uuid, run_started, host, port,
         frequency, profilers, columns, samples, rows_sent, send_errors,
         profiler_errors, last_error, last_error_time, last_sample_us,
         mean_sample_us
  FROM tracer_states()
  ORDER BY slot;

COMMENT ON VIEW tracers IS
'every tracer: the configured one and those started with dolon.start_tracer()';

CREATE VIEW tracer AS
  SELECT tracer_name, pid, run_uuid, run_started, host, port, frequency,
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

CREATE FUNCTION run_columns(run uuid)
RETURNS text[]
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  columns text[];
  orphans bigint;
BEGIN
  SELECT r.column_names INTO columns
  FROM dolon.tracing_run r WHERE r.uuid = run;
  IF NOT FOUND THEN
    SELECT count(*) INTO orphans FROM dolon.tracing_row w WHERE w.uuid = run;
    IF orphans > 0 THEN
      RAISE EXCEPTION 'run "%" does not exist', run
        USING ERRCODE = 'undefined_object',
              DETAIL = format('The collector holds %s rows with this uuid, but never received the announcement of their run.', orphans),
              HINT = 'The runs are listed in the view dolon.runs.';
    END IF;
    RAISE EXCEPTION 'run "%" does not exist', run
      USING ERRCODE = 'undefined_object',
            HINT = 'The runs are listed in the view dolon.runs.';
  END IF;
  RETURN columns;
END
$$;

COMMENT ON FUNCTION run_columns(uuid) IS
'the column names of a run; an error if the collector never received its announcement';

CREATE FUNCTION trace(run uuid)
RETURNS TABLE ("time" timestamptz, column_name text, value float8)
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  columns text[];
BEGIN
  columns := dolon.run_columns(run);

  -- Rows stamped with the same time come in the order of their values, so
  -- that the output does not depend on the plan
  RETURN QUERY
    SELECT w.date_time, c.name, w.row_data[c.position]::float8
    FROM dolon.tracing_row w
    CROSS JOIN unnest(columns) WITH ORDINALITY AS c (name, position)
    WHERE w.uuid = run
    ORDER BY w.date_time, w.row_data, c.position;
END
$$;

COMMENT ON FUNCTION trace(uuid) IS
'the rows of a run, one (time, column_name, value) per row and column, in time then column order';

CREATE FUNCTION trace_csv(run uuid)
RETURNS text
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
DECLARE
  columns text[];
  header text;
  body text;
BEGIN
  columns := dolon.run_columns(run);

  -- RFC 4180: a field holding a comma, a double quote or a line break is
  -- quoted, its double quotes doubled.  Times and numbers never need it.
  SELECT 'time' || coalesce(string_agg(
           ',' || CASE WHEN c.name ~ '[",\r\n]'
                       THEN '"' || replace(c.name, '"', '""') || '"'
                       ELSE coalesce(c.name, '') END,
           '' ORDER BY c.position), '') || E'\n'
  INTO header
  FROM unnest(columns) WITH ORDINALITY AS c (name, position);

  -- Times in UTC, to the microsecond; values as the shortest text that
  -- reads back as the stored real, an empty field when unknown
  SELECT string_agg(
           coalesce(to_char(w.date_time AT TIME ZONE 'UTC',
                            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    w.date_time::text)
           || coalesce((SELECT string_agg(',' || coalesce(w.row_data[i]::text, ''),
                                          '' ORDER BY i)
                        FROM generate_series(1, cardinality(columns)) AS i), '')
           || E'\n',
           '' ORDER BY w.date_time, w.row_data)
  INTO body
  FROM dolon.tracing_row w
  WHERE w.uuid = run;

  RETURN header || coalesce(body, '');
END
$$;

COMMENT ON FUNCTION trace_csv(uuid) IS
'a run as CSV: a header line time,<columns>, then one line per row, times in UTC (ISO 8601)';

CREATE FUNCTION sparkline(run uuid, column_name text, width integer DEFAULT 60)
RETURNS text
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  columns text[];
  position integer;
  rows bigint;
  line text;
BEGIN
  columns := dolon.run_columns(run);
  position := array_position(columns, column_name);
  IF position IS NULL THEN
    RAISE EXCEPTION 'run "%" has no column "%"', run, column_name
      USING ERRCODE = 'undefined_column',
            HINT = format('Its columns are: %s.', array_to_string(columns, ', '));
  END IF;
  IF width < 1 THEN
    RAISE EXCEPTION 'sparkline width must be at least 1, not %', width
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF current_setting('server_encoding') <> 'UTF8' THEN
    RAISE EXCEPTION 'sparklines need a database encoded in UTF8'
      USING ERRCODE = 'character_not_in_repertoire',
            DETAIL = format('This database is encoded in %s, which has no block characters.',
                            current_setting('server_encoding'));
  END IF;

  SELECT count(*) INTO rows FROM dolon.tracing_row w WHERE w.uuid = run;

  -- One character per row, or per bucket of consecutive rows when there are
  -- more rows than characters: the mean of the bucket's known values, a
  -- space when it has none.  NaN and infinities count as unknown.  Eight
  -- levels, U+2581 to U+2588, between the lowest and the highest
  -- character's value; all U+2584 (lower half block) when they are equal.
  WITH point AS (
    SELECT (row_number() OVER (ORDER BY w.date_time, w.row_data) - 1) * least(width, rows) / rows
             AS bucket,
           CASE WHEN w.row_data[position] IN ('NaN', 'Infinity', '-Infinity') THEN NULL
                ELSE w.row_data[position]::float8 END AS value
    FROM dolon.tracing_row w
    WHERE w.uuid = run
  ), bucket AS (
    SELECT p.bucket, avg(p.value) AS value
    FROM point p
    GROUP BY p.bucket
  ), scale AS (
    SELECT min(b.value) AS lo, max(b.value) AS hi FROM bucket b
  )
  SELECT string_agg(
           CASE WHEN b.value IS NULL THEN ' '
                WHEN s.hi = s.lo THEN chr(9604)
                ELSE chr(9601 + least(7, floor((b.value - s.lo) / (s.hi - s.lo) * 8)::integer))
           END,
           '' ORDER BY b.bucket)
  INTO line
  FROM bucket b CROSS JOIN scale s;

  RETURN coalesce(line, '');
END
$$;

COMMENT ON FUNCTION sparkline(uuid, text, integer) IS
'one column of a run as a line of block characters, rows averaged into at most width characters';

CREATE FUNCTION plot(run uuid)
RETURNS text
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
DECLARE
  -- Geometry, in pixels: a heading, then one chart per column
  page_width constant integer := 640;
  heading constant integer := 52;
  chart_height constant integer := 120;
  plot_left constant integer := 82;
  plot_width constant integer := 538;
  plot_top constant integer := 26;      -- within a chart
  plot_height constant integer := 64;
  inset constant integer := 4;          -- between the extreme points and the frame
  columns text[];
  app text;
  first_time timestamptz;
  last_time timestamptz;
  span numeric;
  rows bigint;
  svg text;
  chart text;
  top integer;
  lo float8;
  hi float8;
  labels text[];
  series text;
  span_label text;
  time_format text;
  texts text[];   -- app_name, then the column names, escaped for XML
BEGIN
  columns := dolon.run_columns(run);

  SELECT r.app_name INTO app FROM dolon.tracing_run r WHERE r.uuid = run;

  -- XML's five special characters as entities; control characters (line
  -- breaks included: labels are one line) as spaces; the two non-characters
  -- XML does not allow as U+FFFD; in a UTF8 database, every other non-ASCII
  -- character as a character reference, so the document is plain ASCII and
  -- survives any client encoding
  SELECT array_agg(
           (SELECT coalesce(string_agg(
                     CASE WHEN ch.c = '&' THEN '&amp;'
                          WHEN ch.c = '<' THEN '&lt;'
                          WHEN ch.c = '>' THEN '&gt;'
                          WHEN ch.c = '"' THEN '&quot;'
                          WHEN ch.c = '''' THEN '&apos;'
                          WHEN ch.c ~ '[\x01-\x1f\x7f]' THEN ' '
                          WHEN ch.c ~ '[\ufffe\uffff]' THEN '&#65533;'
                          WHEN ch.c ~ '[^\x01-\x7e]' AND current_setting('server_encoding') = 'UTF8'
                            THEN '&#' || ascii(ch.c) || ';'
                          ELSE ch.c END,
                     '' ORDER BY ch.k), '')
            FROM regexp_split_to_table(coalesce(t.s, ''), '') WITH ORDINALITY AS ch (c, k))
           ORDER BY t.o)
  INTO texts
  FROM unnest(array_prepend(app, columns)) WITH ORDINALITY AS t (s, o);

  SELECT min(w.date_time), max(w.date_time), count(*)
  INTO first_time, last_time, rows
  FROM dolon.tracing_row w WHERE w.uuid = run;
  span := extract(epoch FROM last_time - first_time);
  time_format := CASE WHEN first_time::date = last_time::date THEN 'HH24:MI:SS'
                      ELSE 'MM-DD HH24:MI:SS' END;

  -- Durations in the largest unit that keeps them readable
  span_label := '+' || CASE
    WHEN span < 10 THEN trim_scale(round(span, 2))::text || ' s'
    WHEN span < 120 THEN round(span)::text || ' s'
    WHEN span < 7200 THEN CASE WHEN round(span) % 60 = 0
                               THEN (round(span)::bigint / 60)::text || ' min'
                               ELSE (round(span)::bigint / 60)::text || ' min '
                                    || (round(span)::bigint % 60)::text || ' s' END
    WHEN span < 172800 THEN CASE WHEN round(span / 60) % 60 = 0
                                 THEN (round(span / 60)::bigint / 60)::text || ' h'
                                 ELSE (round(span / 60)::bigint / 60)::text || ' h '
                                      || (round(span / 60)::bigint % 60)::text || ' min' END
    ELSE CASE WHEN round(span / 3600) % 24 = 0
              THEN (round(span / 3600)::bigint / 24)::text || ' d'
              ELSE (round(span / 3600)::bigint / 24)::text || ' d '
                   || (round(span / 3600)::bigint % 24)::text || ' h' END
  END;

  svg := '<?xml version="1.0" encoding="UTF-8"?>' || E'\n'
    || format('<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="DejaVu Sans, Verdana, Arial, sans-serif" font-size="11">',
              page_width, heading + chart_height * cardinality(columns) + 8,
              page_width, heading + chart_height * cardinality(columns) + 8) || E'\n'
    || format('<title>%s &#8212; %s</title>', texts[1], run) || E'\n'
    || format('<rect width="%s" height="%s" fill="#ffffff"/>',
              page_width, heading + chart_height * cardinality(columns) + 8) || E'\n'
    || format('<text x="12" y="22" font-size="15" font-weight="bold" fill="#222222">%s</text>',
              texts[1]) || E'\n'
    || format('<text x="12" y="40" fill="#666666">%s</text>',
              'run ' || run || ' &#183; '
              || CASE WHEN rows = 0 THEN 'no rows'
                      ELSE rows || CASE WHEN rows = 1 THEN ' row' ELSE ' rows' END
                           || CASE WHEN span = 0 THEN ' at ' ELSE ' from ' END
                           || to_char(first_time, 'YYYY-MM-DD HH24:MI:SS TZ')
                           || CASE WHEN span = 0 THEN '' ELSE ' (' || span_label || ')' END
                 END) || E'\n';

  FOR i IN 1 .. cardinality(columns) LOOP
    top := heading + chart_height * (i - 1);

    SELECT min(v), max(v) INTO lo, hi
    FROM (SELECT w.row_data[i]::float8 AS v
          FROM dolon.tracing_row w WHERE w.uuid = run) x
    WHERE v NOT IN ('NaN', 'Infinity', '-Infinity');

    chart := format('<g class="chart" transform="translate(0,%s)">', top) || E'\n'
      || format('<text x="%s" y="16" font-size="12" font-weight="bold" fill="#222222">%s</text>',
                plot_left, texts[i + 1]) || E'\n'
      -- light rules at the levels of the minimum and the maximum, then the axes
      || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e4e4e4"/>',
                plot_left, plot_top + inset, plot_left + plot_width, plot_top + inset) || E'\n'
      || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e4e4e4"/>',
                plot_left, plot_top + plot_height - inset, plot_left + plot_width, plot_top + plot_height - inset) || E'\n'
      || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#888888"/>',
                plot_left, plot_top, plot_left, plot_top + plot_height) || E'\n'
      || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#888888"/>',
                plot_left, plot_top + plot_height, plot_left + plot_width, plot_top + plot_height) || E'\n';

    IF span = 0 THEN
      -- rows all at one time: a single time, under the middle
      chart := chart
        || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#888888"/>',
                  plot_left + plot_width / 2, plot_top + plot_height,
                  plot_left + plot_width / 2, plot_top + plot_height + 4) || E'\n'
        || format('<text x="%s" y="%s" text-anchor="middle" fill="#444444">%s</text>',
                  plot_left + plot_width / 2, plot_top + plot_height + 16,
                  to_char(first_time, time_format)) || E'\n';
    ELSIF span > 0 THEN
      chart := chart
        || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#888888"/>',
                  plot_left + inset, plot_top + plot_height,
                  plot_left + inset, plot_top + plot_height + 4) || E'\n'
        || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#888888"/>',
                  plot_left + plot_width - inset, plot_top + plot_height,
                  plot_left + plot_width - inset, plot_top + plot_height + 4) || E'\n'
        || format('<text x="%s" y="%s" fill="#444444">%s</text>',
                  plot_left, plot_top + plot_height + 16, to_char(first_time, time_format)) || E'\n'
        || format('<text x="%s" y="%s" text-anchor="middle" fill="#888888">%s</text>',
                  plot_left + plot_width / 2, plot_top + plot_height + 16, span_label) || E'\n'
        || format('<text x="%s" y="%s" text-anchor="end" fill="#444444">%s</text>',
                  plot_left + plot_width, plot_top + plot_height + 16, to_char(last_time, time_format)) || E'\n';
    END IF;

    IF lo IS NULL THEN
      chart := chart
        || format('<text x="%s" y="%s" text-anchor="middle" fill="#999999">%s</text>',
                  plot_left + plot_width / 2, plot_top + plot_height / 2 + 4,
                  CASE WHEN rows = 0 THEN 'no rows' ELSE 'no known values' END) || E'\n';
    ELSE
      -- Value labels: six significant digits
      SELECT array_agg(CASE WHEN v = 0 THEN '0'
                            WHEN abs(v) >= 1e-4 AND abs(v) < 1e7
                              THEN trim_scale(round(v::numeric, 5 - floor(log(abs(v)))::integer))::text
                            ELSE regexp_replace(btrim(to_char(v, '9.99999EEEE')), '\.?0*e', 'e')
                       END ORDER BY o)
      INTO labels
      FROM unnest(ARRAY[lo, hi]) WITH ORDINALITY AS l (v, o);

      IF hi = lo THEN
        chart := chart
          || format('<text x="%s" y="%s" text-anchor="end" font-size="10" fill="#444444">%s</text>',
                    plot_left - 6, plot_top + plot_height / 2 + 4, labels[1]) || E'\n';
      ELSE
        chart := chart
          || format('<text x="%s" y="%s" text-anchor="end" font-size="10" fill="#444444">%s</text>',
                    plot_left - 6, plot_top + inset + 4, labels[2]) || E'\n'
          || format('<text x="%s" y="%s" text-anchor="end" font-size="10" fill="#444444">%s</text>',
                    plot_left - 6, plot_top + plot_height - inset + 4, labels[1]) || E'\n';
      END IF;

      -- The series: one point per pixel column (the mean of its rows' known
      -- values), broken where a pixel column has rows but no known value; a
      -- lone point is a dot
      WITH point AS (
        SELECT CASE WHEN span > 0
                    THEN inset + round(extract(epoch FROM w.date_time - first_time) / span
                                       * (plot_width - 2 * inset))
                    ELSE plot_width / 2 END AS x,
               CASE WHEN w.row_data[i] IN ('NaN', 'Infinity', '-Infinity') THEN NULL
                    ELSE w.row_data[i]::float8 END AS v
        FROM dolon.tracing_row w
        WHERE w.uuid = run
      ), pixel AS (
        SELECT p.x, avg(p.v) AS v
        FROM point p
        GROUP BY p.x
      ), placed AS (
        SELECT p.x + plot_left AS x,
               trim_scale(round((plot_top + plot_height - inset
                                 - CASE WHEN hi > lo THEN (p.v - lo) / (hi - lo) ELSE 0.5 END
                                   * (plot_height - 2 * inset))::numeric, 1)) AS y,
               p.v IS NULL AS gap,
               count(*) FILTER (WHERE p.v IS NULL) OVER (ORDER BY p.x) AS segment
        FROM pixel p
      ), segment AS (
        SELECT count(*) AS points,
               string_agg(s.x || ',' || s.y, ' ' ORDER BY s.x) AS coordinates,
               min(s.x) AS x, min(s.y) AS y
        FROM placed s
        WHERE NOT s.gap
        GROUP BY s.segment
      )
      SELECT string_agg(
               CASE WHEN g.points = 1
                    THEN format('<circle cx="%s" cy="%s" r="2.5" fill="#1f6fb4"/>', g.x, g.y)
                    ELSE format('<polyline points="%s" fill="none" stroke="#1f6fb4" stroke-width="1.5" stroke-linejoin="round"/>',
                                g.coordinates) END,
               E'\n' ORDER BY g.x)
      INTO series
      FROM segment g;

      chart := chart || series || E'\n';
    END IF;

    svg := svg || chart || '</g>' || E'\n';
  END LOOP;

  RETURN svg || '</svg>' || E'\n';
END
$$;

COMMENT ON FUNCTION plot(uuid) IS
'a run as an SVG document: one time-series chart per column';

--
-- Privileges: reading is for monitoring roles, changing what is traced for
-- dolon_admin; superusers can do everything
--
REVOKE ALL ON FUNCTION idle(), count_db_connections(), active_tasks(),
    live_msgs(), dead_msgs(), diagnostics(), diagnostics(text[]),
    tracer_states(), function_stats_all(), collector_state(),
    run_columns(uuid), trace(uuid), trace_csv(uuid), sparkline(uuid, text, integer),
    plot(uuid),
    start_tracer(text, interval, text, integer, text[]), stop_tracer(text),
    profile(regprocedure), unprofile(regprocedure), clear() FROM PUBLIC;
REVOKE ALL ON tracer, tracers, function_stats, tracer_definitions, collector,
    tracing_run, tracing_row, runs FROM PUBLIC;

GRANT USAGE ON SCHEMA @extschema@ TO pg_monitor, dolon_admin;
GRANT EXECUTE ON FUNCTION idle(), count_db_connections(), active_tasks(),
    live_msgs(), dead_msgs(), diagnostics(), diagnostics(text[]),
    tracer_states(), function_stats_all(), collector_state(),
    run_columns(uuid), trace(uuid), trace_csv(uuid), sparkline(uuid, text, integer),
    plot(uuid) TO pg_monitor;
GRANT SELECT ON tracer, tracers, function_stats, collector, tracing_run,
    tracing_row, runs TO pg_monitor;

GRANT EXECUTE ON FUNCTION start_tracer(text, interval, text, integer, text[]),
    stop_tracer(text), profile(regprocedure), unprofile(regprocedure), clear()
    TO dolon_admin;
GRANT SELECT, INSERT, DELETE ON tracer_definitions TO dolon_admin;
