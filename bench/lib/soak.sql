-- What the soak benchmark (bench/lib/run-soak) runs, created in the scratch
-- cluster's database "postgres" (dolon.database): a table of jobs that the
-- pgbench load works on through two profiled functions, two custom
-- profilers (one reads that table, one fails now and then) and the role
-- they run as.
\set ON_ERROR_STOP 1

CREATE EXTENSION dolon;
CREATE SCHEMA soak;
CREATE TABLE soak.jobs (id bigint PRIMARY KEY, payload text NOT NULL, done timestamptz);
INSERT INTO soak.jobs SELECT i, md5(i::text), NULL FROM generate_series(1, 10000) AS i;

-- Profiled, called by the load: a PL/pgSQL function that writes, and a SQL
-- function that reads (not inlined: it is profiled)
CREATE FUNCTION soak.process_job(job bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE soak.jobs SET payload = md5(payload),
		done = CASE WHEN done IS NULL THEN now() END
	WHERE id = job;
END
$$;
CREATE FUNCTION soak.job_age(job bigint) RETURNS double precision
LANGUAGE sql STABLE AS $$
	SELECT extract(epoch FROM now() - done)::double precision FROM soak.jobs WHERE id = job
$$;

-- Custom profilers: the jobs not done, and a value that fails one call in
-- twenty with an error (so that the runner's subtransactions abort often)
CREATE FUNCTION soak.queue_depth() RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT count(*) FROM soak.jobs WHERE done IS NULL
$$;
CREATE FUNCTION soak.flaky() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	IF random() < 0.05 THEN
		RAISE EXCEPTION 'soak.flaky failed, as it does one call in twenty';
	END IF;
	RETURN (random() * 100)::integer;
END
$$;

CREATE ROLE soak_runner;
GRANT USAGE ON SCHEMA soak TO soak_runner;
GRANT SELECT ON soak.jobs TO soak_runner;

SELECT dolon.profile('soak.process_job(bigint)'), dolon.profile('soak.job_age(bigint)');
