# The stream of datagrams: its shape, and its values against SQL ground truth
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my @columns = qw(idle count_db_connections active_tasks live_msgs dead_msgs);
my %column = map { $columns[$_] => $_ } 0 .. $#columns;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('stream', $receiver->port,
	"dolon.tracer_name = 'stream-test'",
	"dolon.profilers = '" . join(', ', @columns) . "'");
$node->start;

# The run starts with its announcement
my $first = $receiver->next_message(60);
ok(defined $first, 'a datagram arrives');
is($first->{msg_type}, 'create_trace_run', 'the first datagram announces the run');
is($first->{app_name}, 'stream-test', 'the run carries the configured tracer name');
is_deeply($first->{column_names}, \@columns, 'the run carries the configured columns, in order');
like($first->{uuid}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
	'the run uuid is a lowercase version 4 uuid');
like($first->{raw},
	qr/^\{"msg_type": "create_trace_run", "app_name": "stream-test", "column_names": \["idle", "count_db_connections", "active_tasks", "live_msgs", "dead_msgs"\], "uuid": "[0-9a-f-]{36}"\}$/,
	'the announcement has the key order and separators of the original client');
my $uuid = $first->{uuid};

my @rows = map { $receiver->wait_for_row($uuid) } 1 .. 5;
is(scalar(grep { $_->{msg_type} eq 'row' && $_->{uuid} eq $uuid } @rows), 5,
	'rows follow, with the run uuid');
is(scalar(grep { scalar(@{ $_->{row_data} }) == @columns } @rows), 5,
	'every row has one value per column');
is(scalar(grep { my $r = $_; !grep { !defined $_ || !/^-?\d+$/ } @{ $r->{row_data} } } @rows), 5,
	'every value of these profilers is a whole number');
like($rows[0]{raw}, qr/^\{"msg_type": "row", "row_data": \[\d+(, \d+){4}\], "uuid": "\Q$uuid\E"\}$/,
	'a row has the key order and separators of the original client');

is(DolonTest::tracer_pid($node) ne '', 1, 'the tracer shows in pg_stat_activity');

# Idle sessions: N more held open give exactly N more
$node->safe_psql('postgres', 'CREATE EXTENSION dolon');
# the rows sampled while that session was connected are not the baseline
$receiver->drain;
my $idle_before = $receiver->steady_value($uuid, $column{idle});
my $connections_before = $receiver->steady_value($uuid, $column{count_db_connections});
my $n = 4;
my @sessions = map { $node->background_psql('postgres') } 1 .. $n;
$receiver->drain;
is($receiver->steady_value($uuid, $column{idle}), $idle_before + $n,
	"with $n more idle sessions, idle rises by exactly $n");
is($receiver->steady_value($uuid, $column{count_db_connections}), $connections_before + $n,
	"count_db_connections rises by exactly $n");
my $truth = $node->safe_psql('postgres',
	"SELECT (SELECT count(*) FROM pg_stat_activity WHERE state = 'idle'), "
	  . "(SELECT count(*) FROM pg_stat_activity WHERE state = 'active'), "
	  . "(SELECT sum(numbackends) FROM pg_stat_database)");
my ($true_idle, $true_active, $true_connections) = split /\|/, $truth;
is($true_idle, $idle_before + $n, 'pg_stat_activity counts the same idle sessions');

# While a session runs a statement, it is an active task
$sessions[0]->query_until(qr/started/, "\\echo started\nSELECT pg_sleep(3);\n");
$receiver->drain;
is($receiver->steady_value($uuid, $column{active_tasks}), 1,
	'a session running a statement is one active task');
is($receiver->steady_value($uuid, $column{idle}), $idle_before + $n - 1,
	'... and is no longer idle');
$_->quit for @sessions;
$receiver->drain;
is($receiver->steady_value($uuid, $column{idle}), $idle_before,
	'idle comes back down when the sessions end');

# Live and dead tuples, after the statistics are flushed
$node->safe_psql('postgres', q{
	CREATE TABLE queue (id int);
	CREATE TABLE done (id int);
	INSERT INTO queue SELECT generate_series(1, 1000);
	INSERT INTO done SELECT generate_series(1, 250);
	DELETE FROM queue WHERE id % 4 = 0;
	UPDATE done SET id = -id WHERE id <= 10;
	SELECT pg_stat_force_next_flush();
});
$node->safe_psql('postgres', 'SELECT 1');
my ($true_live, $true_dead) = split /\|/, $node->safe_psql('postgres',
	'SELECT sum(n_live_tup), sum(n_dead_tup) FROM pg_stat_user_tables');
is($true_live, 750 + 250, 'ground truth: live tuples');
is($true_dead, 250 + 10, 'ground truth: dead tuples');
$receiver->drain;
is($receiver->steady_value($uuid, $column{live_msgs}), $true_live,
	'live_msgs equals sum(n_live_tup) of pg_stat_user_tables');
is($receiver->steady_value($uuid, $column{dead_msgs}), $true_dead,
	'dead_msgs equals sum(n_dead_tup) of pg_stat_user_tables');

# A vacuum removes the dead tuples; the tracer sees it at the next samples
$node->safe_psql('postgres', 'VACUUM queue; VACUUM done');
$node->safe_psql('postgres', 'SELECT pg_stat_force_next_flush()');
$node->safe_psql('postgres', 'SELECT 1');
$receiver->drain;
is($receiver->steady_value($uuid, $column{dead_msgs}), 0,
	'dead_msgs drops to 0 after VACUUM');

# The SQL functions agree with the ground truth and with the stream
is($node->safe_psql('postgres',
	'SELECT dolon.live_msgs() = (SELECT sum(n_live_tup) FROM pg_stat_user_tables)'),
	't', 'dolon.live_msgs() equals the ground truth');
is($node->safe_psql('postgres',
	"SELECT string_agg(name, ',') FROM dolon.diagnostics()"),
	join(',', @columns), 'dolon.diagnostics() lists the columns of the run');

# The tracer counts what it sent
my ($rows_sent, $send_errors, $tracer_uuid) = split /\|/, $node->safe_psql('postgres',
	'SELECT rows_sent, send_errors, run_uuid FROM dolon.tracer');
cmp_ok($rows_sent, '>=', 10, 'dolon.tracer counts the rows sent');
is($send_errors, 0, 'no send errors to a listening backend');
is($tracer_uuid, $uuid, 'dolon.tracer shows the run uuid');

$node->stop;
DolonTest::check_log_clean($node);

done_testing();
