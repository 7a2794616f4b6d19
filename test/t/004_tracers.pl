# Tracers started from SQL: several at once, each with its own backend and
# frequency; kept across restarts, crashes and terminations; stopped
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DolonTest;

my $configured = DolonTest::Receiver->new;
my $fast = DolonTest::Receiver->new;
my $slow = DolonTest::Receiver->new;
my $node = DolonTest::new_node('tracers', $configured->port,
	"dolon.tracer_name = 'configured'",
	"dolon.frequency = '1s'",
	"dolon.max_tracers = 4",
	"restart_after_crash = on");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dolon');

# Two tracers from SQL, to two backends, at two frequencies
my $fast_uuid = $node->safe_psql('postgres',
	"SELECT dolon.start_tracer('fast', '100ms', '127.0.0.1', " . $fast->port . ", 'idle', 'active_tasks')");
my $slow_uuid = $node->safe_psql('postgres',
	"SELECT dolon.start_tracer('slow', '500ms', '127.0.0.1', " . $slow->port . ", 'count_db_connections')");
my $fast_run = $fast->wait_for_run('fast');
my $slow_run = $slow->wait_for_run('slow');
is($fast_run->{uuid}, $fast_uuid, 'the first run of a started tracer has the uuid start_tracer returned');
is($slow_run->{uuid}, $slow_uuid, '... for each tracer');
is_deeply($fast_run->{column_names}, [qw(idle active_tasks)], 'each tracer has its own columns');
is_deeply($slow_run->{column_names}, [qw(count_db_connections)], '... and so has the other');

# Both run at once, each at its own pace: while the slow tracer sends 6
# rows, 5 intervals of 500 ms apart, the fast one sends about 25
$fast->wait_for_row($fast_uuid);
$slow->wait_for_row($slow_uuid);
$fast->drain;
$slow->drain;
my $start = time;
$slow->wait_for_row($slow_uuid) for 1 .. 6;
my $elapsed = time - $start;
my $fast_rows = () = $fast->rows_arrived($fast_uuid);
cmp_ok($elapsed, '>=', 2.4,
	sprintf('the 500ms tracer took %.1f s to send 6 rows: not more than its frequency allows', $elapsed));
cmp_ok($elapsed, '<=', 6, '... and at least one a second');
cmp_ok($fast_rows, '>=', 15, "the 100ms tracer sent $fast_rows rows meanwhile");
cmp_ok($fast_rows, '>', 2 * 6, 'the faster tracer sends more rows than the slower one');
ok(defined $configured->wait_for_run('configured'), 'the configured tracer runs alongside');

is($node->safe_psql('postgres',
	"SELECT string_agg(format('%s:%s:%s', tracer_name, configured, pid IS NOT NULL), ' ' ORDER BY tracer_name) FROM dolon.tracers"),
	'configured:t:t fast:f:t slow:f:t', 'dolon.tracers lists the three tracers, all running');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'dolon tracer'"),
	'3', 'one worker per tracer');

# Tracers are started in dolon.database only
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION dolon');
my ($ret, $stdout, $stderr) = $node->psql('other',
	"SELECT dolon.start_tracer('elsewhere', '1s', '127.0.0.1', 9, 'idle')");
like($stderr, qr/tracers can only be started and stopped in database "postgres"/,
	'a tracer cannot be started outside dolon.database');

# A terminated tracer comes back, with a new run
my $fast_pid = $node->safe_psql('postgres', "SELECT pid FROM dolon.tracers WHERE tracer_name = 'fast'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($fast_pid)");
my $fast_again = $fast->wait_for_run('fast');
isnt($fast_again->{uuid}, $fast_uuid, 'a terminated tracer comes back with a new run');
ok($node->poll_query_until('postgres',
	"SELECT pid IS NOT NULL AND pid <> $fast_pid FROM dolon.tracers WHERE tracer_name = 'fast'"),
	'... under a new pid');

# Across a restart, the tracers started from SQL run again
$node->restart;
my $fast_restarted = $fast->wait_for_run('fast');
my $slow_restarted = $slow->wait_for_run('slow');
ok(defined $fast->wait_for_row($fast_restarted->{uuid}), 'after a restart the fast tracer runs again');
ok(defined $slow->wait_for_row($slow_restarted->{uuid}), 'after a restart the slow tracer runs again');
is_deeply($slow_restarted->{column_names}, [qw(count_db_connections)], '... with its columns');

# After a crash, each tracer runs again, once
my $victim = $node->safe_psql('postgres', "SELECT pid FROM dolon.tracers WHERE tracer_name = 'slow'");
kill 'KILL', $victim;
$node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM pg_stat_activity WHERE backend_type = 'dolon tracer'")
  or die 'tracers did not come back after the crash';
# The workers of the shared memory before the crash are started again too,
# and leave when they find their slots gone.  Watch the tracers while the
# slow one takes 12 samples, 6 s: longer than the 5 s after which the
# server starts again a tracer that failed
my $most = 0;
DolonTest::poll_until(
	sub {
		my ($workers, $samples) = split /\|/, $node->safe_psql('postgres', q{
			SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'dolon tracer'),
			       (SELECT coalesce(max(samples), 0) FROM dolon.tracers WHERE tracer_name = 'slow')});
		$most = $workers if $workers > $most;
		return $samples >= 12;
	})
  or die 'the slow tracer did not take 12 samples after the crash';
is($most, 3, 'after a crash, each tracer runs once');
is($node->safe_psql('postgres',
	"SELECT string_agg(tracer_name, ' ' ORDER BY tracer_name) FROM dolon.tracers WHERE pid IS NOT NULL"),
	'configured fast slow', '... and dolon.tracers shows them');

# Stopping: no more rows, and the definition is gone
$node->safe_psql('postgres', "SELECT dolon.stop_tracer('fast')");
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM dolon.tracers WHERE tracer_name = 'fast')")
  or die 'the fast tracer did not stop';
$fast->drain;
is($fast->next_message(1), undef, 'a stopped tracer sends nothing more');
is($node->safe_psql('postgres', 'SELECT string_agg(tracer_name, \' \') FROM dolon.tracer_definitions'),
	'slow', 'only the definition of the running tracer remains');
$node->restart;
ok(defined $slow->wait_for_run('slow'), 'after another restart the slow tracer runs');
$fast->drain;
is($fast->next_message(2), undef, '... and the stopped one stays stopped');

# Stopped and started again at once under its name, in two statements: the
# new tracer waits for the old one to leave its slot, and runs
my $slow_pid = $node->safe_psql('postgres', "SELECT pid FROM dolon.tracers WHERE tracer_name = 'slow'");
my ($rc, $restarted, $err) = $node->psql('postgres',
	"SELECT dolon.stop_tracer('slow');\n"
	  . "SELECT dolon.start_tracer('slow', '500ms', '127.0.0.1', " . $slow->port . ", 'count_db_connections')");
is($rc, 0, 'a tracer stopped and started again at once under its name starts')
  or diag($err);
my $new_uuid = (split /\n/, $restarted)[-1];
my $slow_again = $slow->wait_for(
	sub { $_[0]->{msg_type} eq 'row' && $_[0]->{uuid} eq $new_uuid },
	"a row of the run $new_uuid");
ok(defined $slow_again, '... and sends rows of the run its start returned');
isnt($node->safe_psql('postgres', "SELECT pid FROM dolon.tracers WHERE tracer_name = 'slow'"),
	$slow_pid, '... in a worker of its own');

$node->stop;
DolonTest::check_log_clean($node,
	killed => [$victim],
	allow => [
		qr/^tracers can only be started and stopped in database "postgres"$/,
	]);

done_testing();
