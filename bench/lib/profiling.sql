-- Functions of the function profiling benchmark (bench/lib/run-profiling),
-- created in the scratch cluster's database "postgres".
\set ON_ERROR_STOP 1

CREATE EXTENSION dolon;
-- A C function that is not built-in: btree_gist's int4_dist(int4, int4),
-- |a - b|, the function of its <-> operator on integers
CREATE EXTENSION btree_gist;
CREATE SCHEMA prof;

-- PL/pgSQL
CREATE FUNCTION prof.plpgsql_add(i int) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
	RETURN i + 1;
END
$$;

-- SQL that the planner inlines: the call becomes i + 1 in the query
CREATE FUNCTION prof.sql_add(i int) RETURNS int
LANGUAGE sql AS 'SELECT i + 1';

-- SQL that the planner does not inline (a body with LIMIT is never
-- inlined): each call runs the body's plan through the SQL function
-- executor
CREATE FUNCTION prof.sql_add_limit(i int) RETURNS int
LANGUAGE sql AS 'SELECT i + 1 LIMIT 1';

-- A second entry point to the same C code: the same cost as int4_dist,
-- with its own counters when profiled
CREATE FUNCTION prof.int4_dist_2(int4, int4) RETURNS int4
AS '$libdir/btree_gist', 'int4_dist'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Profiled in states b and c, never called
CREATE FUNCTION prof.other(i int) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
	RETURN i;
END
$$;
