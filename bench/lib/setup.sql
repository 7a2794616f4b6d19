-- Helpers of the dolon benchmarks, created in the scratch cluster's database
-- "postgres" (the database the tracer worker samples).
\set ON_ERROR_STOP 1

CREATE EXTENSION dolon;
CREATE SCHEMA bench;
-- The user tables of the live_msgs measurements
CREATE SCHEMA msgs;

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

-- The tracer worker's sample count and mean sample time so far, from
-- dolon.tracer.  The count is its samples column where it has one, else
-- rows_sent (equal to the samples taken while every send succeeds, as it
-- does towards the benchmark's UDP sink).
CREATE FUNCTION bench.tracer_state(OUT samples bigint, OUT mean_us float8)
LANGUAGE plpgsql AS $$
DECLARE
	r jsonb;
BEGIN
	EXECUTE 'SELECT to_jsonb(t) FROM dolon.tracer AS t LIMIT 1' INTO r;
	samples := coalesce((r ->> 'samples')::bigint, (r ->> 'rows_sent')::bigint, 0);
	mean_us := coalesce((r ->> 'mean_sample_us')::float8, 0);
END
$$;
