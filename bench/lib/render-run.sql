--
-- A run for the render benchmark, written directly into the collector's
-- tables: :seconds rows one second apart (604,800 for 7 days), 20 columns,
-- uuid :run.  Each column is a slow wave with noise; the first has one spike
-- of 1000 in the middle of the run.
--
INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
SELECT :'run', 'render-bench',
       array_agg(CASE WHEN c = 1 THEN 'cpu_percent' ELSE 'app.column_' || c END ORDER BY c),
       '2025-01-01 00:00:00+00'
FROM generate_series(1, 20) AS c;

INSERT INTO dolon.tracing_row (uuid, row_data, date_time)
SELECT :'run',
       ARRAY(SELECT CASE WHEN c = 1 AND s = :seconds / 2 THEN 1000
                         ELSE 50 + 40 * sin(s / 3600.0 + c) + 5 * random() END::real
             FROM generate_series(1, 20) AS c
             WHERE s >= 0  -- a subquery of each row, not computed once
             ORDER BY c),
       '2025-01-01 00:00:00+00'::timestamptz + s * interval '1 second'
FROM generate_series(0, :seconds - 1) AS s;

VACUUM ANALYZE dolon.tracing_row;
