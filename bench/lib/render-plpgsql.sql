--
-- The reading functions of dolon as they were in PL/pgSQL, before they were
-- written in C (src/render.c), in the schema render_plpgsql: bench/lib/run-render
-- times them on the same run as the C ones, for a ratio.  They call
-- dolon.run_columns() and dolon.csv_field(), which are the extension's own.
--
CREATE SCHEMA render_plpgsql;

CREATE FUNCTION render_plpgsql.trace(run uuid)
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

CREATE FUNCTION render_plpgsql.trace_csv(run uuid)
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

  -- Column names are text fields; times and numbers are never quoted
  SELECT 'time' || coalesce(string_agg(',' || dolon.csv_field(c.name),
                                       '' ORDER BY c.position), '') || E'\n'
  INTO header
  FROM unnest(columns) WITH ORDINALITY AS c (name, position);

  -- Times in UTC, to the microsecond (an infinite one as text); values as
  -- the shortest text that reads back as the stored real, an empty field
  -- when unknown: numbers, -2.5 as much as 2.5, which stay numbers in a
  -- spreadsheet
  SELECT string_agg(
           coalesce(to_char(w.date_time AT TIME ZONE 'UTC',
                            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    dolon.csv_field(w.date_time::text))
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

CREATE FUNCTION render_plpgsql.sparkline(run uuid, column_name text, width integer DEFAULT 60)
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

CREATE FUNCTION render_plpgsql.plot(run uuid)
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

