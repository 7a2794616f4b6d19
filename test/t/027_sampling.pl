# Samples without a transaction.  The tracer takes a transaction only when
# it has catalogs to read; its other samples read shared memory only, with
# copies kept between samples (the user tables' statistics entries, the
# backend status entries that did not change).  Those copies must follow
# every change: tables created and dropped, statistics reset or lost in a
# crash, sessions coming and going.  Each value is compared with the
# statistics views.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my @columns = qw(idle count_db_connections active_tasks live_msgs dead_msgs);
my %column = map { $columns[$_] => $_ } 0 .. $#columns;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('sampling', $receiver->port,
	"dolon.tracer_name = 'sampling'",
	"dolon.frequency = '10ms'",
	"dolon.profilers = '" . join(', ', @columns) . "'");
$node->start;

# The test reads from a database of its own, so that the tracer's database
# counts the tracer's transactions alone
$node->safe_psql('postgres', 'CREATE DATABASE observer');
$node->safe_psql('observer', 'CREATE EXTENSION dolon');
my $run = $receiver->wait_for_run('sampling');
my $uuid = $run->{uuid};

# The user tables' tuples as pg_stat_user_tables sums them
sub true_tuples
{
	$node->safe_psql('postgres', 'SELECT pg_stat_force_next_flush()');
	return split /\|/, $node->safe_psql('postgres',
		'SELECT coalesce(sum(n_live_tup), 0), coalesce(sum(n_dead_tup), 0) '
		  . 'FROM pg_stat_user_tables');
}

# The tracer's values once a row carries the ground truth: a table whose
# statistics were lost is looked for again at most once a second
sub tuples_follow
{
	my ($what) = @_;
	my ($live, $dead) = true_tuples();
	$receiver->drain;
	DolonTest::poll_until(
		sub {
			my $row = $receiver->wait_for_row($uuid)->{row_data};
			return $row->[ $column{live_msgs} ] == $live
			  && $row->[ $column{dead_msgs} ] == $dead;
		});
	is($receiver->steady_value($uuid, $column{live_msgs}, 5), $live,
		"live_msgs equals sum(n_live_tup) $what");
	is($receiver->steady_value($uuid, $column{dead_msgs}, 5), $dead,
		"dead_msgs equals sum(n_dead_tup) $what");
}

$node->safe_psql('postgres', q{
	DO $$
	BEGIN
		FOR i IN 1 .. 40 LOOP
			EXECUTE format('CREATE TABLE t%s (id int)', i);
			EXECUTE format('INSERT INTO t%s SELECT generate_series(1, %s)', i, i);
		END LOOP;
	END $$;
	DELETE FROM t40 WHERE id <= 10;
});
my ($live, $dead) = true_tuples();
is($live, 40 * 41 / 2 - 10, 'ground truth: 40 tables of 1 to 40 rows, 10 deleted');
tuples_follow('over 40 tables');

# Most samples take no transaction: the tracer's database commits almost
# none while the tracer takes hundreds of samples
sub commits
{
	return $node->safe_psql('observer',
		"SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'");
}
my $samples = sub {
	$node->safe_psql('observer',
		"SELECT samples FROM dolon.tracer WHERE tracer_name = 'sampling'");
};
# Two seconds of samples, the time for a transaction's counts to be flushed
my $commits_before = commits();
my $samples_before = $samples->();
$node->poll_query_until('observer',
	"SELECT samples >= $samples_before + 200 FROM dolon.tracer WHERE tracer_name = 'sampling'")
  or die 'the tracer does not sample';
$node->poll_query_until('observer', "SELECT now() > '"
	  . $node->safe_psql('observer', 'SELECT now()')
	  . "'::timestamptz + interval '2 seconds'");
my $taken = $samples->() - $samples_before;
my $committed = commits() - $commits_before;
note "$taken samples, $committed transactions committed in their database";
cmp_ok($committed, '<', $taken / 20,
	"the tracer's samples commit fewer transactions than one in 20 ($committed for $taken)");

# Tables created, filled, emptied and dropped are followed
$node->safe_psql('postgres', q{
	CREATE TABLE later (id int);
	INSERT INTO later SELECT generate_series(1, 500);
	DELETE FROM later WHERE id > 400;
});
tuples_follow('after a table is created');
$node->safe_psql('postgres', 'DROP TABLE t1, t2, t3, t40');
tuples_follow('after tables are dropped');
$node->safe_psql('postgres', 'CREATE TABLE t1 (id int); INSERT INTO t1 VALUES (1), (2)');
tuples_follow('after a dropped table is created again');
$node->safe_psql('postgres', 'CREATE SCHEMA app; ALTER TABLE later SET SCHEMA app');
tuples_follow('after a table moves to another schema');

# Statistics reset: every counter of the database is zero
$node->safe_psql('postgres', 'SELECT pg_stat_reset()');
tuples_follow('after pg_stat_reset()');
($live) = true_tuples();
is($live, 0, 'ground truth: no live tuples after the reset');
$node->safe_psql('postgres', 'INSERT INTO app.later SELECT generate_series(1, 30)');
tuples_follow('after inserts since the reset');

# A crash loses the statistics: tables have no entry until they are used
# again, and those that get one are then found
$node->stop('immediate');
$node->start;
$run = $receiver->wait_for_run('sampling');
$uuid = $run->{uuid};
($live) = true_tuples();
is($live, 0, 'ground truth: no live tuples after a crash');
tuples_follow('after a crash');
$node->safe_psql('postgres', 'INSERT INTO t5 SELECT generate_series(1, 70)');
tuples_follow('after the first inserts since a crash');

# Sessions coming and going: backend status entries written again
sub true_idle
{
	return $node->safe_psql('observer',
		"SELECT count(*) FROM pg_stat_activity WHERE state = 'idle'");
}
my @sessions = map { $node->background_psql('postgres') } 1 .. 6;
$_->query_safe('SELECT 1') for @sessions;
my $idle = true_idle();
$receiver->drain;
is($receiver->steady_value($uuid, $column{idle}, 5), $idle,
	"idle equals pg_stat_activity's count with six sessions open ($idle)");
$sessions[$_]->quit for 0 .. 2;
@sessions = @sessions[3 .. 5];
$node->poll_query_until('observer',
	"SELECT count(*) = $idle - 3 FROM pg_stat_activity WHERE state = 'idle'")
  or die 'the sessions did not end';
$receiver->drain;
is($receiver->steady_value($uuid, $column{idle}, 5), $idle - 3,
	'idle follows three sessions that ended');
push @sessions, map { $node->background_psql('postgres') } 1 .. 2;
$_->query_safe('SELECT 1') for @sessions;
$receiver->drain;
is($receiver->steady_value($uuid, $column{idle}, 5), $idle - 1,
	'idle follows two new sessions in the slots of those that ended');
# A statement that runs until the test ends it: waiting for a lock
# another session holds
$sessions[0]->query_safe('SELECT pg_advisory_lock(27)');
$sessions[1]->query_until(qr/started/,
	"\\echo started\nSELECT pg_advisory_lock(27);\n");
$node->poll_query_until('observer',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE state = 'active' AND wait_event_type = 'Lock'")
  or die 'the session does not wait for the lock';
$receiver->drain;
is($receiver->steady_value($uuid, $column{active_tasks}, 5), 1,
	'a session running a statement is one active task');
$sessions[0]->query_safe('SELECT pg_advisory_unlock(27)');
$_->quit for @sessions;

# Their backends gone before the server stops: one still ending would be
# terminated, and say so in the log
$node->poll_query_until('observer',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'postgres' AND backend_type = 'client backend'")
  or die 'the sessions did not end';
$node->stop;
DolonTest::check_log_clean($node);

done_testing();
