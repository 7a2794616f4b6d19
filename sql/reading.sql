--
-- dolon: reading the collector's store back: the view dolon.runs and the
-- functions trace(), trace_csv(), sparkline() and plot()
--
-- Runs and rows are inserted directly, with fixed uuids and times, all on
-- 2024-05-01: a collector could add others, which the queries leave out.
--
CREATE EXTENSION dolon;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET extra_float_digits = 1;

-- The run captured from the original client: its announcement and two rows,
-- values stored as real
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('32fb2b8f-573d-4eb2-afa4-0410ba054160', 'golden-app',
        ARRAY['cpu_percent', 'virtual_memory_percent', 'mem_allocation',
              'queue_depth', 'work_hits', 'work_active_instances',
              'work_average_time'],
        '2024-05-01 12:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time) VALUES
  ('32fb2b8f-573d-4eb2-afa4-0410ba054160',
   ARRAY[4.2, 1.6, 0.004159, 4, 33, 1, 0.030839406250000003]::real[],
   '2024-05-01 12:00:00.25+00'),
  ('32fb2b8f-573d-4eb2-afa4-0410ba054160',
   ARRAY[1.0, 1.6, 0.004671, 6, 63, 1, 0.031736903225806454]::real[],
   '2024-05-01 12:00:01.25+00');

-- Unknown values, rows shorter and longer than the columns, NaN and infinity
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('11111111-1111-4111-8111-111111111111', 'gaps', ARRAY['a', 'b', 'c'],
        '2024-05-01 13:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time) VALUES
  ('11111111-1111-4111-8111-111111111111', '{1,NULL,3}', '2024-05-01 13:00:01+00'),
  ('11111111-1111-4111-8111-111111111111', '{NULL,NULL,4}', '2024-05-01 13:00:02+00'),
  ('11111111-1111-4111-8111-111111111111', '{2,NULL}', '2024-05-01 13:00:03+00'),
  ('11111111-1111-4111-8111-111111111111', '{3,NULL,5,99}', '2024-05-01 13:00:04+00'),
  ('11111111-1111-4111-8111-111111111111', '{NaN,NULL,Infinity}', '2024-05-01 13:00:05+00'),
  ('11111111-1111-4111-8111-111111111111', '{5,NULL,6}', '2024-05-01 13:00:06+00');

-- More rows than a sparkline is wide: 150 rows, one a second; the first
-- column unknown in rows 61 to 75
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('22222222-2222-4222-8222-222222222222', 'long', ARRAY['ramp', 'wave'],
        '2024-05-01 14:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time)
SELECT '22222222-2222-4222-8222-222222222222',
       ARRAY[CASE WHEN i BETWEEN 61 AND 75 THEN NULL ELSE i END,
             round(sin(i / 10.0) * 100) / 100]::real[],
       '2024-05-01 14:00:00+00'::timestamptz + i * interval '1 second'
FROM generate_series(1, 150) AS i;

-- No rows at all
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('33333333-3333-4333-8333-333333333333', 'silent', ARRAY['x'],
        '2024-05-01 15:00:00+00');

-- All values equal; a single known value
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('44444444-4444-4444-8444-444444444444', 'flat', ARRAY['same', 'once'],
        '2024-05-01 16:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time)
SELECT '44444444-4444-4444-8444-444444444444',
       ARRAY[7, CASE WHEN i = 3 THEN 1 END]::real[],
       '2024-05-01 16:00:00+00'::timestamptz + i * interval '10 minutes'
FROM generate_series(1, 5) AS i;

-- A single row
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('55555555-5555-4555-8555-555555555555', 'one', ARRAY['only'],
        '2024-05-01 17:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time)
VALUES ('55555555-5555-4555-8555-555555555555', '{42}', '2024-05-01 17:00:00+00');

-- Characters special to XML and to CSV, and beyond ASCII; extreme values
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('66666666-6666-4666-8666-666666666666', 'Tom & Jerry''s <"app"> température',
        ARRAY['a,b', 'say "hi"', E'two\nlines', 'température'],
        '2024-05-01 18:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time) VALUES
  ('66666666-6666-4666-8666-666666666666', '{1,2,3,4}', '2024-05-01 18:00:00+00'),
  ('66666666-6666-4666-8666-666666666666', '{-1e-7,2.5e38,-3e30,0}', '2024-05-01 21:30:00+00');

-- Rows whose run was never announced
INSERT INTO dolon.tracing_row (uuid, row_data, date_time) VALUES
  ('77777777-7777-4777-8777-777777777777', '{1,2}', '2024-05-01 19:00:00+00'),
  ('77777777-7777-4777-8777-777777777777', '{3,4}', '2024-05-01 19:00:01+00');

--
-- dolon.runs: one row per announced run; the unannounced rows are not a run
--
SELECT app_name, uuid, column_names, started, last_row, row_count
FROM dolon.runs
WHERE started >= '2024-05-01' AND started < '2024-05-02'
ORDER BY started;

--
-- dolon.trace(): one row per (row, column), in time then column order
--

-- The captured datagrams, as stored: float8 of the real, which prints as the
-- datagram's value again as real
SELECT "time", column_name, value, value::real AS as_real
FROM dolon.trace('32fb2b8f-573d-4eb2-afa4-0410ba054160');

-- Unknown values stay null; missing ones are null; extra ones are ignored
SELECT * FROM dolon.trace('11111111-1111-4111-8111-111111111111');

SELECT * FROM dolon.trace('66666666-6666-4666-8666-666666666666');

SELECT count(*) FROM dolon.trace('22222222-2222-4222-8222-222222222222');
SELECT count(*) FROM dolon.trace('33333333-3333-4333-8333-333333333333');

-- Rows stamped with the same time come in their physical order, whatever
-- their values: 2 was inserted before 1.  On 2024-05-02, out of the way of
-- the other runs.
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', 'ties', ARRAY['v'],
        '2024-05-02 11:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time) VALUES
  ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '{3}', '2024-05-02 11:00:01+00'),
  ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '{2}', '2024-05-02 11:00:00+00'),
  ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '{1}', '2024-05-02 11:00:00+00');
SELECT * FROM dolon.trace('dddddddd-dddd-4ddd-8ddd-dddddddddddd');

--
-- dolon.trace_csv(): a set of lines, one per record: a header, then one per
-- row, times in UTC
--
SELECT * FROM dolon.trace_csv('32fb2b8f-573d-4eb2-afa4-0410ba054160');
SELECT * FROM dolon.trace_csv('11111111-1111-4111-8111-111111111111');
SELECT * FROM dolon.trace_csv('33333333-3333-4333-8333-333333333333');

-- COPY streams it; in the select list too
COPY (SELECT * FROM dolon.trace_csv('32fb2b8f-573d-4eb2-afa4-0410ba054160')) TO STDOUT;
SELECT dolon.trace_csv('11111111-1111-4111-8111-111111111111') LIMIT 2;

-- Column names quoted as RFC 4180 requires: a record holding a line break
-- is still one line of the set
SELECT * FROM dolon.trace_csv('66666666-6666-4666-8666-666666666666');

-- Column names a spreadsheet would run as formulas (OWASP's CSV injection:
-- a cell beginning with =, +, -, @, a tab or a carriage return) are
-- neutralised: quoted, with a single quote first.  A dash elsewhere stays as
-- it is, and negative values stay numbers.  On 2024-05-02, out of the way of
-- the other runs.
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '=HYPERLINK("http://x")',
        ARRAY['=cmd|'' /C calc''!A0', '+SUM(1+1)', '-2+3', '@SUM(1)',
              E'\tTAB', E'\rCR', 'a-b', '=say "hi", twice', NULL],
        '2024-05-02 12:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time) VALUES
  ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '{-2.5,-1e-7,-0,3,-4,5,6,7,-8}',
   '2024-05-02 12:00:00+00'),
  ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '{1,2,3,4,5,6,7,8,-Infinity}',
   '-infinity');
SELECT * FROM dolon.trace_csv('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');

-- Split as RFC 4180 reads it, every header field unquoted is the column
-- name, with a single quote first where it began with one of those
-- characters (so is an infinite time, text too); the values read back as
-- the stored ones
WITH csv AS (
  SELECT string_agg(l || E'\n', '' ORDER BY n) AS text
  FROM dolon.trace_csv('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa') WITH ORDINALITY AS t (l, n)
), record AS (
  -- RFC 4180 records: fields separated by commas, quoted ones holding
  -- anything but a lone double quote
  SELECT r.n,
         (SELECT array_agg(CASE WHEN f.m[1] LIKE '"%'
                                THEN replace(substr(f.m[1], 2, length(f.m[1]) - 2), '""', '"')
                                ELSE f.m[1] END ORDER BY f.k)
          FROM regexp_matches(r.m[1], '(?:^|,)("(?:[^"]|"")*"|[^,"]*)', 'g')
               WITH ORDINALITY AS f (m, k)) AS field
  FROM csv,
       regexp_matches(csv.text, '((?:"(?:[^"]|"")*"|[^"\n])*)\n', 'g')
         WITH ORDINALITY AS r (m, n)
)
SELECT (SELECT field FROM record WHERE n = 1)
         = array_prepend('time',
                         (SELECT array_agg(CASE WHEN c ~ '^[-=+@\t\r]' THEN '''' || c
                                                ELSE coalesce(c, '') END ORDER BY k)
                          FROM dolon.tracing_run r,
                               unnest(r.column_names) WITH ORDINALITY AS u (c, k)
                          WHERE r.uuid = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'))
         AS header_read_back,
       (SELECT array_agg(field[2:]::real[] ORDER BY n) FROM record WHERE n > 1)
         = (SELECT array_agg(row_data ORDER BY date_time) FROM dolon.tracing_row
            WHERE uuid = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa') AS values_read_back,
       (SELECT field[1] FROM record WHERE n = 2) AS infinite_time,
       (SELECT count(*) FROM record) AS records;

-- Fields read back as the stored values
WITH line AS (
  SELECT string_to_array(l, ',') AS field, n
  FROM dolon.trace_csv('32fb2b8f-573d-4eb2-afa4-0410ba054160') WITH ORDINALITY AS t (l, n)
)
SELECT (SELECT array_agg(field[1]::timestamptz ORDER BY n) FROM line WHERE n > 1)
         = (SELECT array_agg(date_time ORDER BY date_time) FROM dolon.tracing_row
            WHERE uuid = '32fb2b8f-573d-4eb2-afa4-0410ba054160') AS times_read_back,
       (SELECT array_agg(field[2:8]::real[] ORDER BY n) FROM line WHERE n > 1)
         = (SELECT array_agg(row_data ORDER BY date_time) FROM dolon.tracing_row
            WHERE uuid = '32fb2b8f-573d-4eb2-afa4-0410ba054160') AS values_read_back;

-- The same text whatever the session's time zone, date style and float digits
SELECT string_agg(l, E'\n' ORDER BY n) AS csv
FROM dolon.trace_csv('66666666-6666-4666-8666-666666666666') WITH ORDINALITY AS t (l, n) \gset
SET TimeZone = 'Asia/Kolkata';
SET DateStyle = 'SQL, DMY';
SET extra_float_digits = -3;
SELECT string_agg(l, E'\n' ORDER BY n) = :'csv' AS same_csv
FROM dolon.trace_csv('66666666-6666-4666-8666-666666666666') WITH ORDINALITY AS t (l, n);
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET extra_float_digits = 1;

--
-- dolon.sparkline(): eight levels between the lowest and the highest
-- character; beyond width rows, one character per bucket of time showing
-- its value farthest from the column's mean
--

-- 150 rows into 60 characters (buckets of 2 or 3 seconds), the unknown rows
-- as spaces; into 10, where the bucket of the unknown rows also holds a
-- known one; one character a row when the width allows
SELECT c AS column_name, dolon.sparkline('22222222-2222-4222-8222-222222222222', c)
FROM unnest(ARRAY['ramp', 'wave']) AS c;
SELECT dolon.sparkline('22222222-2222-4222-8222-222222222222', 'ramp', 10);
SELECT char_length(dolon.sparkline('22222222-2222-4222-8222-222222222222', 'ramp')) AS default_width,
       char_length(dolon.sparkline('22222222-2222-4222-8222-222222222222', 'ramp', 150)) AS width_150,
       char_length(dolon.sparkline('22222222-2222-4222-8222-222222222222', 'ramp', 1000)) AS width_1000;

-- Unknown values, NaN and infinity as spaces; a column with no known value
SELECT c AS column_name, '[' || dolon.sparkline('11111111-1111-4111-8111-111111111111', c) || ']' AS sparkline
FROM unnest(ARRAY['a', 'b', 'c']) AS c;

-- All values equal: the middle level; a single row; no rows: empty
SELECT c AS column_name, '[' || dolon.sparkline('44444444-4444-4444-8444-444444444444', c) || ']' AS sparkline
FROM unnest(ARRAY['same', 'once']) AS c;
SELECT dolon.sparkline('55555555-5555-4555-8555-555555555555', 'only');
SELECT dolon.sparkline('33333333-3333-4333-8333-333333333333', 'x') = '' AS empty;

--
-- dolon.plot(): an SVG document, one chart per column
--
SELECT app_name,
       xml_is_well_formed_document(dolon.plot(uuid)) AS well_formed,
       (xpath('count(/svg:svg/svg:g[@class="chart"])', dolon.plot(uuid)::xml,
              ARRAY[ARRAY['svg', 'http://www.w3.org/2000/svg']]))[1]::text::integer
         = cardinality(column_names) AS one_chart_a_column
FROM dolon.runs
WHERE started >= '2024-05-01' AND started < '2024-05-02'
ORDER BY started;

-- The texts of chart i: its column, the times at both ends and the
-- duration between them (or what it shows instead of a series), the lowest
-- and highest known values, the ticks of the value axis
CREATE FUNCTION pg_temp.chart(svg text, i integer,
    OUT column_name text, OUT texts text, OUT minimum text, OUT maximum text,
    OUT ticks text)
LANGUAGE sql
AS $$
  SELECT (xpath(g || '/svg:text[1]/text()', x, ns))[1]::text,
         array_to_string(xpath(g || '/svg:text[not(@class)][position() > 1]/text()', x, ns), ' | '),
         (xpath(g || '/svg:text/svg:tspan[@class="min"]/text()', x, ns))[1]::text,
         (xpath(g || '/svg:text/svg:tspan[@class="max"]/text()', x, ns))[1]::text,
         array_to_string(xpath(g || '/svg:text[@class="tick"]/text()', x, ns), ' | ')
  FROM (SELECT svg::xml AS x, format('/svg:svg/svg:g[@class="chart"][%s]', i) AS g,
               ARRAY[ARRAY['svg', 'http://www.w3.org/2000/svg']] AS ns) AS s
$$;

-- The title; the charts, with the units of the built-in profilers' columns
-- (percent, MB, seconds) and none for others
SELECT (xpath('/svg:svg/svg:title/text()', dolon.plot('32fb2b8f-573d-4eb2-afa4-0410ba054160')::xml,
              ARRAY[ARRAY['svg', 'http://www.w3.org/2000/svg']]))[1] AS title;
SELECT c.*
FROM generate_series(1, 7) AS i,
     pg_temp.chart(dolon.plot('32fb2b8f-573d-4eb2-afa4-0410ba054160'), i) AS c;

SELECT c.*
FROM generate_series(1, 2) AS i,
     pg_temp.chart(dolon.plot('22222222-2222-4222-8222-222222222222'), i) AS c;

-- Lines broken at unknown values, a lone known value as a dot
SELECT (xpath('count(//svg:polyline)', p, ns))[1]::text AS polylines,
       (xpath('count(//svg:circle)', p, ns))[1]::text AS dots
FROM (SELECT dolon.plot('11111111-1111-4111-8111-111111111111')::xml AS p,
             ARRAY[ARRAY['svg', 'http://www.w3.org/2000/svg']] AS ns) AS s;

-- Special characters escaped, beyond ASCII as character references: the
-- texts read back are the app_name and the column names
SELECT position('<title>Tom &amp; Jerry&apos;s &lt;&quot;app&quot;&gt; temp&#233;rature &#8212; '
                IN dolon.plot('66666666-6666-4666-8666-666666666666')) > 0 AS escaped;
SELECT t.title,
       t.title = 'Tom & Jerry''s <"app"> température ' || chr(8212)
                 || ' 66666666-6666-4666-8666-666666666666' AS title_reads_back,
       t.heading = 'Tom & Jerry''s <"app"> température' AS heading_reads_back
FROM XMLTABLE(XMLNAMESPACES('http://www.w3.org/2000/svg' AS svg), '/svg:svg'
              PASSING CAST(dolon.plot('66666666-6666-4666-8666-666666666666') AS xml)
              COLUMNS title text PATH 'svg:title',
                      heading text PATH 'svg:text[1]') AS t;
SELECT t.column_name
FROM XMLTABLE(XMLNAMESPACES('http://www.w3.org/2000/svg' AS svg),
              '/svg:svg/svg:g[@class="chart"]'
              PASSING CAST(dolon.plot('66666666-6666-4666-8666-666666666666') AS xml)
              COLUMNS column_name text PATH 'svg:text[1]') AS t;

-- No rows, a single row
SELECT xpath('/svg:svg/svg:text/text()', dolon.plot(uuid)::xml,
             ARRAY[ARRAY['svg', 'http://www.w3.org/2000/svg']]) AS heading,
       c.*
FROM dolon.runs, pg_temp.chart(dolon.plot(uuid), 1) AS c
WHERE uuid IN ('33333333-3333-4333-8333-333333333333',
               '55555555-5555-4555-8555-555555555555')
ORDER BY started;

-- Units of the other built-in profilers' columns; round axis numbers for
-- small, large, negative and huge values.  On 2024-05-02, out of the way of
-- the other runs.
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'units',
        ARRAY['memory_use', 'xact_commit_rate', 'oldest_transaction_seconds',
              'connections_percent', 'deadlocks', 'app.negative', 'app.huge'],
        '2024-05-02 13:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time)
SELECT 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb',
       ARRAY[0.013 * i, 3 + 94 * (i - 1) / 9.0, 0.25 * i, 10 + i, i % 3,
             -1234 + 691.2 * (i - 1), 2e9 * i]::real[],
       '2024-05-02 13:00:00+00'::timestamptz + i * interval '1 minute'
FROM generate_series(1, 10) AS i;
SELECT c.*
FROM generate_series(1, 7) AS i,
     pg_temp.chart(dolon.plot('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'), i) AS c;

-- On every chart of every run: ticks evenly spaced by 1, 2 or 5 times a
-- power of ten, the lowest at or below the minimum, the highest at or above
-- the maximum
WITH chart AS (
  SELECT r.app_name, c.*
  FROM dolon.runs r,
       generate_series(1, cardinality(r.column_names)) AS i,
       pg_temp.chart(dolon.plot(r.uuid), i) AS c
  WHERE r.started >= '2024-05-01' AND r.started < '2024-05-03'
), tick AS (
  SELECT h.app_name, h.column_name, h.minimum, h.maximum, t.n,
         split_part(t.label, ' ', 1)::float8 AS value
  FROM chart h, regexp_split_to_table(h.ticks, ' \| ') WITH ORDINALITY AS t (label, n)
  WHERE h.ticks <> ''
), axis AS (
  SELECT t.app_name, t.column_name,
         split_part(t.minimum, ' ', 1)::float8 AS minimum,
         split_part(t.maximum, ' ', 1)::float8 AS maximum,
         array_agg(t.value ORDER BY t.n) AS ticks
  FROM tick t
  GROUP BY t.app_name, t.column_name, t.minimum, t.maximum
)
SELECT a.app_name,
       count(*) AS charts,
       bool_and(cardinality(a.ticks) BETWEEN 3 AND 6) AS three_to_six_ticks,
       bool_and((SELECT bool_and(abs(a.ticks[k + 1] - a.ticks[k] - (a.ticks[2] - a.ticks[1]))
                                 <= 1e-9 * abs(a.ticks[2] - a.ticks[1]))
                 FROM generate_series(1, cardinality(a.ticks) - 1) AS k)) AS evenly_spaced,
       bool_and(round((a.ticks[2] - a.ticks[1])
                      / 10 ^ floor(log(a.ticks[2] - a.ticks[1])))::integer IN (1, 2, 5)) AS round_step,
       bool_and(a.ticks[1] <= a.minimum
                AND a.ticks[cardinality(a.ticks)] >= a.maximum) AS around_the_values
FROM axis a
GROUP BY a.app_name
ORDER BY a.app_name;

-- Downsampling keeps a spike: 100,000 rows a second apart, all 1 but one of
-- 1000 at the middle and 2,000 rows of 2 near the end.  In the sparkline the
-- spike is the one top character and the plateau at the bottom (a bucket's
-- mean would show the plateau on top and the spike as 1.6); the chart's
-- maximum is the spike's value and its line reaches the top of the axis.
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
VALUES ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'spike', ARRAY['load'],
        '2024-05-02 14:00:00+00');
INSERT INTO dolon.tracing_row (uuid, row_data, date_time)
SELECT 'cccccccc-cccc-4ccc-8ccc-cccccccccccc',
       ARRAY[CASE WHEN i = 50000 THEN 1000 WHEN i BETWEEN 80001 AND 82000 THEN 2 ELSE 1 END]::real[],
       '2024-05-02 14:00:00+00'::timestamptz + i * interval '1 second'
FROM generate_series(1, 100000) AS i;
SELECT dolon.sparkline('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'load') AS sparkline,
       length(dolon.sparkline('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'load'))
         - length(replace(dolon.sparkline('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'load'), '█', ''))
         AS top_characters;
SELECT c.minimum, c.maximum, c.ticks,
       (SELECT min(m[1]::numeric)
        FROM unnest(xpath('//svg:polyline/@points', p, ns)) AS l (points),
             regexp_matches(l.points::text, ',([0-9.]+)', 'g') AS m) AS highest_point_y,
       (xpath('//svg:text[@class="tick"][last()]/@y', p, ns))[1]::text::numeric - 3.5 AS top_tick_y,
       octet_length(p::text) < 20000 AS small
FROM (SELECT dolon.plot('cccccccc-cccc-4ccc-8ccc-cccccccccccc') AS svg) AS d,
     LATERAL (SELECT d.svg::xml AS p, ARRAY[ARRAY['svg', 'http://www.w3.org/2000/svg']] AS ns) AS x,
     pg_temp.chart(d.svg, 1) AS c;

--
-- Errors
--
\set SHOW_CONTEXT never
SELECT * FROM dolon.trace('88888888-8888-4888-8888-888888888888');
-- rows without an announcement
SELECT * FROM dolon.trace('77777777-7777-4777-8777-777777777777');
SELECT * FROM dolon.trace_csv('88888888-8888-4888-8888-888888888888');
SELECT dolon.sparkline('88888888-8888-4888-8888-888888888888', 'x');
SELECT dolon.plot('88888888-8888-4888-8888-888888888888');
SELECT dolon.sparkline('32fb2b8f-573d-4eb2-afa4-0410ba054160', 'cpu');
SELECT dolon.sparkline('32fb2b8f-573d-4eb2-afa4-0410ba054160', 'cpu_percent', 0);
\set SHOW_CONTEXT errors

-- Null arguments, null results
SELECT count(*) FROM dolon.trace(NULL);
SELECT (SELECT count(*) FROM dolon.trace_csv(NULL)) AS csv_lines,
       dolon.sparkline('32fb2b8f-573d-4eb2-afa4-0410ba054160', NULL) IS NULL AS sparkline_null,
       dolon.plot(NULL) IS NULL AS plot_null;

--
-- The schema mnemic: the store under mnemic's own names and types, for
-- mnemic's tools, which query tracing_run and tracing_row unqualified
--

-- mnemic's columns and types: uuid as varchar, times without time zone
SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.relnamespace = 'mnemic'::regnamespace
ORDER BY c.relname, a.attnum;

-- The schema and its views belong to the extension
SELECT pg_describe_object(classid, objid, objsubid) AS object
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dolon')
  AND (classid = 'pg_namespace'::regclass AND objid = 'mnemic'::regnamespace
       OR classid = 'pg_class'::regclass
          AND objid IN ('mnemic.tracing_run'::regclass, 'mnemic.tracing_row'::regclass))
ORDER BY 1;

-- Readable by pg_monitor, not by PUBLIC
SELECT has_schema_privilege('public', 'mnemic', 'USAGE') AS public_usage,
       has_schema_privilege('pg_monitor', 'mnemic', 'USAGE') AS pg_monitor_usage;
SELECT c.relname,
       has_table_privilege('public', c.oid, 'SELECT') AS public,
       has_table_privilege('pg_monitor', c.oid, 'SELECT') AS pg_monitor,
       has_table_privilege('pg_monitor', c.oid, 'INSERT, UPDATE, DELETE') AS pg_monitor_writes
FROM pg_class c
WHERE c.relnamespace = 'mnemic'::regnamespace
ORDER BY c.relname;

-- The queries of mnemic's front end, as it prepares them, with the uuid
-- passed as text, run by a monitoring role with search_path = mnemic.
-- Times are those of the session's time zone, as mnemic's own store holds
-- them: 12:00 UTC is 17:30 in Kolkata.
CREATE ROLE regress_mnemic_viewer IN ROLE pg_monitor;
SET ROLE regress_mnemic_viewer;
SET search_path = mnemic;
SET TimeZone = 'Asia/Kolkata';

-- The runs, the most recent first; the tracers; the runs of one
SELECT uuid, app_name, column_names, creation_time
FROM tracing_run
WHERE app_name IN ('golden-app', 'gaps', 'long')
ORDER BY creation_time DESC;
SELECT DISTINCT app_name
FROM (SELECT app_name FROM tracing_run ORDER BY creation_time DESC) AS recent
WHERE app_name IN ('golden-app', 'gaps', 'long')
ORDER BY app_name;
PREPARE runs_of (text) AS
  SELECT to_char(creation_time, 'YYYY-MM-DD HH24:MI:SS') AS creation_time, uuid
  FROM tracing_run WHERE app_name = $1 ORDER BY creation_time DESC;
EXECUTE runs_of('golden-app');
SELECT pg_typeof(creation_time) AS creation_time, pg_typeof(uuid) AS uuid,
       pg_typeof(app_name) AS app_name, pg_typeof(column_names) AS column_names
FROM tracing_run WHERE uuid = '32fb2b8f-573d-4eb2-afa4-0410ba054160';

-- A run's columns, its information, its rows as CSV lines
PREPARE column_names_of AS
  SELECT name AS col_name, ordinality - 1 AS index
  FROM unnest((SELECT column_names FROM tracing_run WHERE uuid = $1)) WITH ORDINALITY AS name;
PREPARE run_info AS
  SELECT count(*) AS counter, min(date_time) AS from_time, max(date_time) AS to_time
  FROM tracing_row WHERE uuid = $1;
PREPARE rows_of AS
  SELECT to_char(date_time, 'YYYY-MM-DD HH24:MI:SS') AS timestamp,
         row_data[1] AS cpu_percent, row_data[5] AS work_hits
  FROM tracing_row WHERE uuid = $1 ORDER BY 1;
PREPARE latest_run AS
  SELECT uuid FROM tracing_run WHERE app_name = $1 ORDER BY creation_time DESC LIMIT 1;
SELECT name, parameter_types FROM pg_prepared_statements ORDER BY name;
EXECUTE column_names_of('32fb2b8f-573d-4eb2-afa4-0410ba054160');
EXECUTE run_info('32fb2b8f-573d-4eb2-afa4-0410ba054160');
EXECUTE rows_of('32fb2b8f-573d-4eb2-afa4-0410ba054160');
EXECUTE latest_run('golden-app');
SELECT pg_typeof(uuid) AS uuid, pg_typeof(row_data) AS row_data,
       pg_typeof(date_time) AS date_time
FROM tracing_row WHERE uuid = '32fb2b8f-573d-4eb2-afa4-0410ba054160' LIMIT 1;

-- Every run and row, the orphan rows included
SELECT (SELECT count(*) FROM tracing_run) = (SELECT count(*) FROM dolon.tracing_run) AS all_runs,
       (SELECT count(*) FROM tracing_row) = (SELECT count(*) FROM dolon.tracing_row) AS all_rows;
DEALLOCATE ALL;
RESET TimeZone;
RESET search_path;
RESET ROLE;
DROP ROLE regress_mnemic_viewer;

-- Read only: what mnemic's own backend would insert is refused
\set SHOW_CONTEXT never
INSERT INTO mnemic.tracing_run (uuid, app_name, column_names)
VALUES ('99999999-9999-4999-8999-999999999999', 'mnemic', '{a}');
INSERT INTO mnemic.tracing_row (uuid, row_data)
VALUES ('99999999-9999-4999-8999-999999999999', '{1}');
\set SHOW_CONTEXT errors

DROP EXTENSION dolon;

-- The schema mnemic goes with the extension; one that exists already is not
-- taken over
SELECT count(*) AS mnemic_schemas FROM pg_namespace WHERE nspname = 'mnemic';
CREATE SCHEMA mnemic;
-- (from PostgreSQL 18 the error says where in the script it arose: terse)
\set VERBOSITY terse
CREATE EXTENSION dolon;
\set VERBOSITY default
DROP SCHEMA mnemic;
