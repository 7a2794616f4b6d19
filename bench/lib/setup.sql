-- Helpers of the dolon benchmarks, created in the scratch cluster's database
-- "postgres" (the database the tracer worker samples).
\set ON_ERROR_STOP 1

CREATE EXTENSION dolon;
CREATE SCHEMA bench;
-- The user tables of the live_msgs measurements
CREATE SCHEMA msgs;

-- Microseconds taken by one execution of query q, run to completion.
CREATE FUNCTION bench.elapsed_us(q text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	t1 timestamptz;
BEGIN
	t0 := clock_timestamp();
	EXECUTE q;
	t1 := clock_timestamp();
	RETURN extract(epoch FROM t1 - t0) * 1e6;
END
$$;

-- Microseconds per iteration of a loop query.  template is a query with one
-- %s, the number of iterations.  The loop count is doubled from 1 until a run
-- takes a tenth of target_ms (which also warms up caches), then set so that
-- a run takes about target_ms; the result is the median of reps such runs.
CREATE FUNCTION bench.per_call_us(template text, target_ms float8, reps int)
RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
	k bigint := 1;
	e float8;
	results float8[] := '{}';
BEGIN
	LOOP
		e := bench.elapsed_us(format(template, k));
		EXIT WHEN e >= target_ms * 100 OR k >= 100000000;
		k := k * 2;
	END LOOP;
	k := greatest(1, ceil(k * target_ms * 1000 / greatest(e, 1)));
	FOR r IN 1 .. reps LOOP
		results := results || (bench.elapsed_us(format(template, k)) / k);
	END LOOP;
	RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x)
			FROM unnest(results) AS x);
END
$$;

-- Evaluate each query of qs, k times over, in this backend, the way a
-- collector's statements would be evaluated, minus the round trip: each
-- query is parsed, planned and executed anew (dynamic SQL), and the
-- statistics snapshot is discarded before each, as the end of a
-- transaction would (otherwise pg_stat_activity would be read from the
-- backend-local copy made by the first iteration).
CREATE FUNCTION bench.sql_loop(qs text[], k bigint) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
	q text;
	n numeric;
	total numeric := 0;
BEGIN
	FOR i IN 1 .. k LOOP
		FOREACH q IN ARRAY qs LOOP
			PERFORM pg_stat_clear_snapshot();
			EXECUTE q INTO n;
			total := total + coalesce(n, 0);
		END LOOP;
	END LOOP;
	RETURN total;
END
$$;

-- Create the user tables msgs.t<first> .. msgs.t<last>, three rows each.
CREATE PROCEDURE bench.create_tables(first int, last int)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN first .. last LOOP
		EXECUTE format('CREATE TABLE msgs.t%s (id int)', i);
		EXECUTE format('INSERT INTO msgs.t%s VALUES (1), (2), (3)', i);
		IF i % 1000 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END
$$;

-- The tracer worker's sample count and mean sample time so far.  The
-- count is the samples column where dolon.tracer has one, else rows_sent
-- (equal to the samples taken while every send succeeds).
CREATE FUNCTION bench.tracer_state(OUT samples bigint, OUT mean_us float8)
LANGUAGE sql AS $$
	SELECT coalesce((to_jsonb(t) ->> 'samples')::bigint, t.rows_sent),
		   coalesce(t.mean_sample_us, 0)
	FROM dolon.tracer AS t
$$;
