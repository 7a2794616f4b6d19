# The counters of profiled functions, kept by each backend and summed when
# read: against what PostgreSQL itself counts (pg_stat_user_functions, with
# track_functions = all), across backends that exit and leave their numbers
# to others, and when an entry of the set is taken again while a call of its
# last function is still in progress; the average time of a cheap function,
# timed on a sample of its calls, and of a longer one, timed on each; the
# slow first call of a backend that took the counters of another
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('counters', $receiver->port,
	"dolon.tracer_name = 'counters'",
	"dolon.profilers = 'idle'",
	"dolon.max_profiled_functions = 2",
	"track_functions = 'all'");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION dolon;

	-- Well under a microsecond a call: timed on a sample of the calls
	CREATE FUNCTION cheap(i int) RETURNS int LANGUAGE plpgsql
	AS $$ BEGIN RETURN i; END $$;

	-- Tens of microseconds a call: every call timed
	CREATE FUNCTION spin(n int) RETURNS bigint LANGUAGE plpgsql
	AS $$
	DECLARE
		s bigint := 0;
	BEGIN
		FOR i IN 1 .. n LOOP
			s := s + i;
		END LOOP;
		RETURN s;
	END $$;

	CREATE FUNCTION other(i int) RETURNS int LANGUAGE plpgsql
	AS $$ BEGIN RETURN i; END $$;

	-- Waits for advisory lock 42, then calls other() twice
	CREATE FUNCTION held() RETURNS void LANGUAGE plpgsql
	AS $$
	BEGIN
		PERFORM pg_advisory_lock_shared(42);
		PERFORM pg_advisory_unlock_shared(42);
		PERFORM other(1);
		PERFORM other(2);
	END $$;
});

# hits|active_instances|completed_calls of a profiled function
sub stats
{
	my ($signature) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT hits || '|' || active_instances || '|' || completed_calls
		FROM dolon.function_stats WHERE funcid = '$signature'::regprocedure});
}

# calls of a function as pg_stat_user_functions counts them, once every
# backend that called it has reported them (they all exited)
sub pg_calls
{
	my ($signature, $expected) = @_;
	$node->poll_query_until('postgres', qq{
		SELECT coalesce((SELECT calls FROM pg_stat_user_functions
			WHERE funcid = '$signature'::regprocedure), 0)}, $expected);
	return $node->safe_psql('postgres', qq{
		SELECT calls FROM pg_stat_user_functions WHERE funcid = '$signature'::regprocedure});
}

# The ratio of dolon's average time of a function to PostgreSQL's
sub average_ratio
{
	my ($signature) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT d.average_time / (p.total_time / 1000 / p.calls)
		FROM dolon.function_stats AS d
		JOIN pg_stat_user_functions AS p USING (funcid)
		WHERE funcid = '$signature'::regprocedure});
}

# Backends that exit: each call of safe_psql is a backend of its own, which
# on PostgreSQL 15 and 16 takes the lowest free backend number, the one the
# previous had (on 17 and later, a number freed goes to the back of the
# list: the new backends take other ones).  A session that stays connected
# calls the function between them.
$node->safe_psql('postgres', q{
	SELECT dolon.profile('cheap(int)');
	SELECT dolon.profile('spin(int)');
});
my $stayer = $node->background_psql('postgres');
my $total = 0;
foreach my $n (1000, 2000, 3000, 4000, 5000, 6000)
{
	$node->safe_psql('postgres', "SELECT sum(cheap(i)) FROM generate_series(1, $n) AS i");
	$stayer->query_safe('SELECT sum(cheap(i)) FROM generate_series(1, 500) AS i');
	$total += $n + 500;
}
is(stats('cheap(int)'), "$total|0|$total",
	"$total calls from six backends that exited and one still connected: all counted");
$stayer->quit;
is(pg_calls('cheap(int)', $total), $total,
	'... as many as pg_stat_user_functions counts');

# The average time: of spin(), every call timed, as PostgreSQL times it (its
# interval is within dolon's, by a few clock reads); of cheap(), from the
# sample, near it (dolon's interval holds PostgreSQL's bookkeeping of the
# call, a good part of a cheap call)
$node->safe_psql('postgres', 'SELECT spin(2000) FROM generate_series(1, 300)');
is(pg_calls('spin(int)', 300), 300, 'spin(): 300 calls');
my $ratio = average_ratio('spin(int)');
ok($ratio > 0.95 && $ratio < 1.05,
	"spin(): the average time is pg_stat_user_functions' total_time / calls (ratio $ratio)");
# (up to 2.06 seen on a loaded machine; built with the sanitizers, dolon's
# own code within that interval is slower, and PostgreSQL's is not: up to
# 2.01 seen then)
# A million calls more first: each timed call stands for its whole gap, so
# that one the machine's load delayed by a few milliseconds weighs on a
# small sample (7 times the average, with 24,000 calls on a loaded machine)
# and hardly on thousands of timed calls.
$node->safe_psql('postgres', 'SELECT sum(cheap(i)) FROM generate_series(1, 1000000) AS i');
$ratio = average_ratio('cheap(int)');
ok($ratio > 0.5 && $ratio < 3,
	"cheap(): the average time from a sample of the calls is near pg_stat_user_functions' (ratio $ratio)");

# An entry taken again at once, while a call of its last function is still
# in progress: held() waits for a lock in the middle of a profiled call;
# unprofiling it frees the second entry, which other() takes.  Calls of
# other() in another session count from zero; so do those that held() makes
# once it goes on, and its end leaves other() without a phantom change.
$node->safe_psql('postgres', q{
	SELECT dolon.unprofile('spin(int)');
	SELECT dolon.profile('held()');
});
my $locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(42)');
my $waiter = $node->background_psql('postgres');
$waiter->query_until(qr/started/, "\\echo started\nSELECT held();\n");
ok($node->poll_query_until('postgres', q{
		SELECT active_instances FROM dolon.function_stats WHERE funcid = 'held()'::regprocedure},
		'1'),
	'held() waits in a profiled call: 1 active instance');
my ($ret, $stdout, $stderr) = $node->psql('postgres', q{
	SELECT dolon.unprofile('held()');
	SELECT dolon.profile('other(int)');});
is("$ret|$stdout|$stderr", "0|t\nt|",
	'with dolon.max_profiled_functions = 2, other() takes the entry of held() at once');
$node->safe_psql('postgres', 'SELECT other(i) FROM generate_series(1, 3) AS i');
is(stats('other(int)'), '3|0|3', 'other(): 3 calls from another session');
$locker->query_safe('SELECT pg_advisory_unlock(42)');
$waiter->query_safe('SELECT 1');    # held() has returned
is(stats('other(int)'), '5|0|5',
	'once held() returns: its 2 calls of other() added, no active instance left, no more completed');
$waiter->quit;
$locker->quit;
is(pg_calls('other(int)', 5), 5, '... 5 calls, as pg_stat_user_functions counts them');

# A backend's first call of a function is timed for itself alone: often the
# slowest (it compiles the function, fills caches), it must not be left out
# of the sample, nor stand for the calls around it.  A backend makes enough
# cheap calls for its counters to time one in 32, and exits; on PostgreSQL
# 15 and 16 the next backend takes its number, and with it its counters and
# their countdown to the next timed call.  That backend's first call counts
# 3,000,000 rows, a long call among cheap ones: dolon's total time (average
# times calls) is PostgreSQL's.
$node->safe_psql('postgres', q{
	CREATE FUNCTION slow_first(n int) RETURNS int LANGUAGE plpgsql
	AS $$ BEGIN IF n > 0 THEN PERFORM count(*) FROM generate_series(1, n); END IF; RETURN 1; END $$;
	SELECT dolon.unprofile('other(int)');
	SELECT dolon.profile('slow_first(int)');
});
my $cheap_caller = $node->safe_psql('postgres', q{
	SELECT pg_backend_pid() FROM (SELECT sum(slow_first(0))
		FROM generate_series(1, 100000)) AS calls});
ok(DolonTest::poll_until(sub { !-e "/proc/$cheap_caller" }),
	'the backend of 100,000 cheap calls of slow_first() has exited');
$node->safe_psql('postgres', 'SELECT slow_first(3000000)');
is(pg_calls('slow_first(int)', 100001), 100001, 'slow_first(): 100,001 calls');
my ($dolon_total, $pg_total) = split /\|/, $node->safe_psql('postgres', q{
	SELECT round((d.average_time * d.hits)::numeric, 3) || '|' ||
		round((p.total_time / 1000)::numeric, 3)
	FROM dolon.function_stats AS d
	JOIN pg_stat_user_functions AS p USING (funcid)
	WHERE funcid = 'slow_first(int)'::regprocedure});
ok($dolon_total / $pg_total > 0.8 && $dolon_total / $pg_total < 1.25,
	"slow_first(): a new backend's slow first call counts once: dolon's total "
	  . "$dolon_total s, pg_stat_user_functions' $pg_total s");

$node->stop;
DolonTest::check_log_clean($node);

done_testing();
