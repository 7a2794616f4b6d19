# Function profiling: dolon.profile(), unprofile() and clear(), the counters
# of dolon.function_stats and the tracer's columns, from concurrent sessions,
# through recursion, errors, terminations and restarts, and who may use it
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('profiling', $receiver->port,
	"dolon.tracer_name = 'profiling'",
	"dolon.profilers = 'idle'");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION dolon;
	CREATE EXTENSION pg_trgm;

	CREATE FUNCTION count_me(i int) RETURNS int LANGUAGE plpgsql
	AS $$ BEGIN RETURN i; END $$;

	CREATE FUNCTION nap(seconds float8) RETURNS void LANGUAGE plpgsql
	AS $$ BEGIN PERFORM pg_sleep(seconds); END $$;

	CREATE FUNCTION stuck() RETURNS void LANGUAGE plpgsql
	AS $$ BEGIN PERFORM pg_sleep(300); END $$;

	-- At its deepest level, how many instances of itself are active
	CREATE FUNCTION descend(depth int, target int) RETURNS bigint LANGUAGE plpgsql
	AS $$
	BEGIN
		IF depth < target THEN
			RETURN descend(depth + 1, target);
		END IF;
		RETURN (SELECT active_instances FROM dolon.function_stats
				WHERE funcid = 'descend(int, int)'::regprocedure);
	END $$;

	CREATE FUNCTION fail_now(i int) RETURNS int LANGUAGE plpgsql
	AS $$ BEGIN RAISE EXCEPTION 'failing on purpose (%)', i; END $$;

	-- Calls fail_now() n times, catching each error
	CREATE FUNCTION try_fail(n int) RETURNS int LANGUAGE plpgsql
	AS $$
	DECLARE
		caught int := 0;
	BEGIN
		FOR i IN 1 .. n LOOP
			BEGIN
				PERFORM fail_now(i);
			EXCEPTION WHEN raise_exception THEN
				caught := caught + 1;
			END;
		END LOOP;
		RETURN caught;
	END $$;

	-- A SQL function the planner inlines, and a PL/pgSQL caller of it
	CREATE FUNCTION add_one(x int) RETURNS int LANGUAGE sql IMMUTABLE
	AS 'SELECT x + 1';

	CREATE FUNCTION sum_add_one(n int) RETURNS bigint LANGUAGE plpgsql
	AS $$
	DECLARE
		s bigint := 0;
	BEGIN
		FOR i IN 1 .. n LOOP
			s := s + add_one(i);
		END LOOP;
		RETURN s;
	END $$;

	CREATE FUNCTION ov(i int) RETURNS int LANGUAGE sql AS 'SELECT i';
	CREATE FUNCTION ov(t text) RETURNS text LANGUAGE sql AS 'SELECT t';
});

# The counters of a profiled function, '|'-separated, by default
# hits|active_instances|completed_calls; empty if it is not profiled
sub stats
{
	my ($signature, $columns) = @_;
	$columns //= 'hits, active_instances, completed_calls';
	return $node->safe_psql('postgres',
		"SELECT $columns FROM dolon.function_stats "
		  . "WHERE funcid = '$signature'::regprocedure");
}

# Profiling changes start a new run: the datagrams received so far are
# discarded first, so that the socket has room for its announcement (wait for
# that announcement before calling these again)
sub profile
{
	my ($signature) = @_;
	$receiver->drain;
	return $node->safe_psql('postgres', "SELECT dolon.profile('$signature')");
}

sub unprofile
{
	my ($signature) = @_;
	$receiver->drain;
	return $node->safe_psql('postgres', "SELECT dolon.unprofile('$signature')");
}

# The announcement of a run of the tracer not returned before, whose column
# names satisfy $predicate (runs are announced again from time to time)
my %seen_runs;

sub wait_for_run_where
{
	my ($what, $predicate) = @_;
	my $run = $receiver->wait_for(
		sub {
			my ($m) = @_;
			return $m->{msg_type} eq 'create_trace_run'
			  && $m->{app_name} eq 'profiling'
			  && !$seen_runs{ $m->{uuid} }
			  && $predicate->($m->{column_names});
		},
		$what);
	$seen_runs{ $run->{uuid} } = 1;
	return $run;
}

sub has_column
{
	my ($names, $name) = @_;
	return scalar grep { $_ eq $name } @$names;
}

sub column_index
{
	my ($run, $name) = @_;
	my @names = @{ $run->{column_names} };
	my ($index) = grep { $names[$_] eq $name } 0 .. $#names;
	die "run $run->{uuid} has no column $name" unless defined $index;
	return $index;
}

# A row of run $uuid whose column $index holds $value, or undef if none
# comes within $timeout seconds
sub row_with_value
{
	my ($uuid, $index, $value, $timeout) = @_;
	return eval {
		$receiver->wait_for(
			sub {
				my ($m) = @_;
				return $m->{msg_type} eq 'row'
				  && $m->{uuid} eq $uuid
				  && defined $m->{row_data}[$index]
				  && $m->{row_data}[$index] == $value;
			},
			"a row of run $uuid with $value in column $index", $timeout);
	};
}

# psql as another role: (exit code, stdout, stderr)
sub psql_as
{
	my ($role, $sql) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql('postgres', $sql,
		stdout => \$stdout, stderr => \$stderr,
		extra_params => [ '-U', $role ]);
	return ($ret, $stdout, $stderr);
}

my @function_columns = qw(hits active_instances average_time);

# Tracer columns: profiling a function starts a new run that ends with its
# three columns; unprofiling starts one without them
my $first = wait_for_run_where('the first run', sub { 1 });
is_deeply($first->{column_names}, ['idle'],
	'with no function profiled, the run has the configured columns only');
is(profile('count_me(int)'), 't', 'dolon.profile() returns true for a new function');
my $run = wait_for_run_where('a run with the columns of count_me',
	sub { has_column($_[0], 'count_me_hits') });
is_deeply($run->{column_names},
	[ 'idle', map { "count_me_$_" } @function_columns ],
	'profiling a function starts a run ending with <f>_hits, <f>_active_instances, <f>_average_time');
isnt($run->{uuid}, $first->{uuid}, '... under a new uuid');
is(profile('count_me(int)'), 'f', 'dolon.profile() returns false when it is profiled already');
is(stats('count_me(int)', 'function, column_name'), 'count_me(integer)|count_me',
	'dolon.function_stats shows the function and the base of its column names');
is(unprofile('count_me(int)'), 't', 'dolon.unprofile() returns true for a profiled function');
my $without = wait_for_run_where('a run without the columns of count_me',
	sub { !has_column($_[0], 'count_me_hits') });
is_deeply($without->{column_names}, ['idle'], 'unprofiling starts a run without its columns');
isnt($without->{uuid}, $run->{uuid}, '... under a new uuid');
is(unprofile('count_me(int)'), 'f', 'dolon.unprofile() returns false for a function not profiled');
is(stats('count_me(int)'), '', 'dolon.function_stats no longer lists it');

# Overloaded functions get distinct plain column names
profile('ov(int)');
profile('ov(text)');
$run = wait_for_run_where('a run with both ov functions',
	sub { has_column($_[0], 'ov_hits') && has_column($_[0], 'ov_2_hits') });
is_deeply($run->{column_names},
	[ 'idle', (map { "ov_$_" } @function_columns), (map { "ov_2_$_" } @function_columns) ],
	'overloaded functions get distinct columns: ov_* and ov_2_*');
is($node->safe_psql('postgres',
	"SELECT string_agg(function || ' ' || column_name, ', ' ORDER BY column_name) "
	  . "FROM dolon.function_stats"),
	'ov(integer) ov, ov(text) ov_2',
	'dolon.function_stats shows the same column names');
unprofile('ov(int)');
unprofile('ov(text)');
wait_for_run_where('a run without the ov functions',
	sub { !has_column($_[0], 'ov_hits') && !has_column($_[0], 'ov_2_hits') });

# Hits from concurrent sessions: exact, in SQL and in the tracer's rows.
# The sessions connect before profiling starts and see it at once; they wait
# on a lock so as to call the function all at the same time.
my @sessions = map { $node->background_psql('postgres') } 1 .. 4;
$_->query_safe('SELECT count_me(0)') for @sessions;
profile('count_me(int)');
$run = wait_for_run_where('a run with the columns of count_me',
	sub { has_column($_[0], 'count_me_hits') });
my $gate = $node->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(7)');
my @calls = (10000, 20000, 30000, 40000);
my $total = 0;
$total += $_ for @calls;
for my $i (0 .. $#sessions)
{
	$sessions[$i]->query_until(qr/started/,
		"\\echo started\nSELECT pg_advisory_lock_shared(7);\n"
		  . "SELECT count(count_me(g)) FROM generate_series(1, $calls[$i]) g;\n");
}
$node->poll_query_until('postgres',
	"SELECT count(*) = 4 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
  or die 'the sessions do not wait for the lock';
$gate->query_safe('SELECT pg_advisory_unlock(7)');
$_->query_safe('SELECT pg_advisory_unlock_shared(7)') for @sessions;    # the calls ended
is(stats('count_me(int)'), "$total|0|$total",
	"calls from 4 concurrent sessions: exactly $total hits and completed calls, none active");
my $row = row_with_value($run->{uuid}, column_index($run, 'count_me_hits'), $total, 10);
ok(defined $row, "a tracer row shows count_me_hits = $total");
is($row ? $row->{row_data}[ column_index($run, 'count_me_active_instances') ] : undef, 0,
	'... and count_me_active_instances = 0');

# Active instances while calls sleep: 3 at once, in SQL and in the tracer;
# back to 0 afterwards; the average time is that of the sleep
profile('nap(float8)');
$run = wait_for_run_where('a run with the columns of nap',
	sub { has_column($_[0], 'nap_active_instances') });
my $active_column = column_index($run, 'nap_active_instances');
my $average_column = column_index($run, 'nap_average_time');
$_->query_until(qr/started/, "\\echo started\nSELECT nap(2);\n") for @sessions[ 0 .. 2 ];
ok($node->poll_query_until('postgres',
		"SELECT active_instances FROM dolon.function_stats WHERE funcid = 'nap(float8)'::regprocedure",
		'3'),
	'3 sessions sleeping in nap(): dolon.function_stats shows 3 active instances');
ok(defined row_with_value($run->{uuid}, $active_column, 3, 5),
	'... and a tracer row shows nap_active_instances = 3');
$_->query_safe('SELECT 1') for @sessions[ 0 .. 2 ];
is(stats('nap(float8)'), '3|0|3', 'once the calls end: 3 hits, 0 active, 3 completed');
my $average = stats('nap(float8)', 'average_time');
ok($average >= 2 && $average < 2.5, "average_time is the 2 s of the sleep (got $average)");
$row = row_with_value($run->{uuid}, $active_column, 0, 10);
ok(defined $row, 'a tracer row shows nap_active_instances back at 0');
my $row_average = $row ? $row->{row_data}[$average_column] : -1;
ok($row_average >= 2 && $row_average < 2.5,
	"... and nap_average_time of about 2 s (got $row_average)");

# Recursion: each level is an active instance
profile('descend(int, int)');
is($node->safe_psql('postgres', 'SELECT descend(1, 7)'), '7',
	'at depth 7 of a recursion, active_instances is 7');
is(stats('descend(int, int)'), '7|0|7', 'afterwards: 7 hits, 0 active, 7 completed');

# Errors: a call that fails is a completed call and leaves no active instance,
# whether the error is caught by a caller or ends the statement
profile('fail_now(int)');
profile('try_fail(int)');
my $failures = 0;
for my $i (0 .. $#sessions)
{
	my $n = 3 + $i;
	is($sessions[$i]->query_safe("SELECT try_fail($n)"), $n,
		"session $i catches the $n errors of fail_now()");
	$failures += $n;
}
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT fail_now(0)');
like($stderr, qr/failing on purpose \(0\)/, 'an error that ends the statement');
$failures++;
is(stats('fail_now(int)'), "$failures|0|$failures",
	"$failures failed calls: all hits, all completed, none active");
is(stats('try_fail(int)'), '4|0|4',
	'the profiled caller that caught them ended normally, 4 times');

# A backend terminated in the middle of a profiled call leaves no active
# instance behind
profile('stuck()');
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
$victim->query_until(qr/started/, "\\echo started\nSELECT stuck();\n");
ok($node->poll_query_until('postgres',
		"SELECT active_instances FROM dolon.function_stats WHERE funcid = 'stuck()'::regprocedure",
		'1'),
	'a session sleeping in stuck() is an active instance');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($victim_pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $victim_pid")
  or die 'the terminated backend does not exit';
is(stats('stuck()', 'hits, active_instances'), '1|0',
	'once the terminated backend has exited, stuck() has no active instance');
eval { $victim->quit };

# A C-language function of a contrib module is counted
is($node->safe_psql('postgres',
	"SELECT lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
	  . "WHERE p.oid = 'similarity(text, text)'::regprocedure"),
	'c', 'similarity() of pg_trgm is a C-language function');
is(profile('similarity(text, text)'), 't', 'it can be profiled');
$node->safe_psql('postgres',
	"SELECT count(similarity(g::text, 'word')) FROM generate_series(1, 7) g");
is(stats('similarity(text, text)'), '7|0|7', 'its 7 calls are counted');

# A built-in function is refused
($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT dolon.profile('lower(text)')");
isnt($ret, 0, 'profiling a built-in function fails');
like($stderr, qr/cannot profile built-in function lower\(text\)/,
	'... with an error saying it is built-in');
is(stats('lower(text)'), '', '... and it is not profiled');

# A profiled SQL function is not inlined, and its calls are counted: also in
# a session whose cached plans inlined it before profiling started
my $explain = "EXPLAIN (VERBOSE, COSTS OFF) SELECT add_one(g) FROM generate_series(1, 3) g";
my $old = $node->background_psql('postgres');
$old->query_safe('SELECT sum_add_one(5)');
$old->query_safe('PREPARE five AS SELECT sum(add_one(g)) FROM generate_series(1, 5) g');
$old->query_safe('EXECUTE five');
like($node->safe_psql('postgres', $explain), qr/Output: \(g \+ 1\)/,
	'before profiling, the planner inlines add_one()');
profile('add_one(int)');
like($node->safe_psql('postgres', $explain), qr/Output: add_one\(g\)/,
	'once profiled, add_one() is called, not inlined');
$node->safe_psql('postgres', 'SELECT sum(add_one(g)) FROM generate_series(1, 5) g');
is(stats('add_one(int)', 'hits'), 5, 'its 5 calls are counted');
$old->query_safe('SELECT sum_add_one(5)');
is(stats('add_one(int)', 'hits'), 10,
	'5 calls from a PL/pgSQL function planned before profiling started are counted');
$old->query_safe('EXECUTE five');
is(stats('add_one(int)', 'hits'), 15,
	'5 calls from a statement prepared before profiling started are counted');
$old->quit;
$_->quit for @sessions, $gate;

# Restart: the profiled set survives, counters start from 0, calls after the
# restart are counted, the tracer gets the columns again
my $listing = "SELECT string_agg(function, ', ' ORDER BY function) FROM dolon.function_stats";
my $profiled = $node->safe_psql('postgres', $listing);
my $profiled_count = $node->safe_psql('postgres', 'SELECT count(*) FROM dolon.function_stats');
is($profiled,
	'add_one(integer), count_me(integer), descend(integer,integer), fail_now(integer), '
	  . 'nap(double precision), similarity(text,text), stuck(), try_fail(integer)',
	'the profiled set before the restart');
$receiver->drain;
$node->restart;
is($node->safe_psql('postgres', $listing), $profiled,
	'after a restart, the same functions are profiled');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM dolon.function_stats '
	  . 'WHERE hits <> 0 OR active_instances <> 0 OR completed_calls <> 0 OR average_time <> 0'),
	'0', '... with every counter at 0');
$node->safe_psql('postgres', 'SELECT count_me(1); SELECT count_me(2); SELECT count_me(3)');
is(stats('count_me(int)'), '3|0|3', 'calls after the restart are counted');
$node->poll_query_until('postgres',
	"SELECT columns = 1 + 3 * $profiled_count FROM dolon.tracer")
  or die 'no run with the profiled functions after the restart';
my $uuid = $node->safe_psql('postgres', 'SELECT run_uuid FROM dolon.tracer');
$run = $receiver->wait_for(
	sub { $_[0]->{msg_type} eq 'create_trace_run' && $_[0]->{uuid} eq $uuid },
	"the announcement of run $uuid");
$seen_runs{$uuid} = 1;
ok(has_column($run->{column_names}, 'count_me_hits'),
	'after the restart, the tracer has the columns of the profiled functions');
ok(defined row_with_value($uuid, column_index($run, 'count_me_hits'), 3, 10),
	'... and shows the calls made since');

# dolon.clear() empties the set, for good
$receiver->drain;
is($node->safe_psql('postgres', 'SELECT dolon.clear()'), $profiled_count,
	"dolon.clear() returns how many functions were profiled ($profiled_count)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM dolon.function_stats'), '0',
	'... and none is any longer');
$run = wait_for_run_where('a run without the columns of count_me',
	sub { !has_column($_[0], 'count_me_hits') });
is_deeply($run->{column_names}, ['idle'], 'the tracer starts a run without function columns');
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM dolon.function_stats'), '0',
	'after another restart, still none is profiled');

# Permissions: dolon_admin members change what is profiled, pg_monitor members
# read the counters, others can do neither (even with access to the schema,
# so that the privileges of the functions themselves are what refuses)
$node->safe_psql('postgres', q{
	CREATE ROLE nobody_special LOGIN;
	GRANT USAGE ON SCHEMA dolon TO nobody_special;
	CREATE ROLE profiler_admin LOGIN IN ROLE dolon_admin;
	CREATE ROLE watcher LOGIN IN ROLE pg_monitor;
});
for my $call ("dolon.profile('count_me(int)')", "dolon.unprofile('count_me(int)')", 'dolon.clear()')
{
	my ($name) = $call =~ /^dolon\.(\w+)/;
	($ret, $stdout, $stderr) = psql_as('nobody_special', "SELECT $call");
	like($stderr, qr/permission denied for function $name/,
		"a role without dolon_admin cannot call dolon.$name()");
}
($ret, $stdout, $stderr) = psql_as('nobody_special', 'SELECT * FROM dolon.function_stats');
like($stderr, qr/permission denied/, '... nor read dolon.function_stats');
is($node->safe_psql('postgres', 'SELECT count(*) FROM dolon.function_stats'), '0',
	'nothing was profiled by it');

($ret, $stdout, $stderr) = psql_as('profiler_admin', "SELECT dolon.profile('count_me(int)')");
is("$ret|$stdout|$stderr", '0|t|', 'a member of dolon_admin can call dolon.profile()');
$node->safe_psql('postgres', 'SELECT count_me(1); SELECT count_me(2)');
($ret, $stdout, $stderr) = psql_as('watcher',
	'SELECT function, hits, active_instances FROM dolon.function_stats');
is("$ret|$stdout|$stderr", '0|count_me(integer)|2|0|',
	'a member of pg_monitor can read dolon.function_stats');
($ret, $stdout, $stderr) = psql_as('watcher', "SELECT dolon.unprofile('count_me(int)')");
like($stderr, qr/permission denied for function unprofile/,
	'... but not call dolon.unprofile()');
($ret, $stdout, $stderr) = psql_as('profiler_admin', "SELECT dolon.unprofile('count_me(int)')");
is("$ret|$stdout|$stderr", '0|t|', 'a member of dolon_admin can call dolon.unprofile()');
psql_as('profiler_admin', "SELECT dolon.profile('nap(float8)')");
($ret, $stdout, $stderr) = psql_as('profiler_admin', 'SELECT dolon.clear()');
is("$ret|$stdout|$stderr", '0|1|', 'a member of dolon_admin can call dolon.clear()');

$node->stop;
DolonTest::check_log_clean($node,
	allow => [
		qr/^cannot profile built-in function lower\(text\)$/,
		qr/^failing on purpose \(0\)$/,
		qr/^permission denied for (?:function (?:profile|unprofile|clear)|view function_stats)$/,
		# the backend terminated in the middle of a profiled call
		qr/^terminating connection due to administrator command$/,
	]);

done_testing();
