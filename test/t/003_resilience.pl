# The tracer survives: a backend that is down or unresolvable, being
# terminated, shutdown; and dolon loaded without shared_preload_libraries
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DolonTest;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('resilience', $receiver->port,
	"dolon.tracer_name = 'resilient'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dolon');

sub tracer_state
{
	my ($columns) = @_;
	return split /\|/, $node->safe_psql('postgres', "SELECT $columns FROM dolon.tracer");
}

my $run = $receiver->wait_for_run('resilient');
$receiver->wait_for_row($run->{uuid});

# The backend goes down: sampling goes on, errors are counted, logged once
my $log_offset = -s $node->logfile;
my ($samples_before) = tracer_state('samples');
$receiver->close;
$node->poll_query_until('postgres', 'SELECT send_errors >= 10 FROM dolon.tracer')
  or die 'no send errors counted';
my ($samples, $errors, $last_error) = tracer_state('samples, send_errors, last_error');
cmp_ok($samples, '>', $samples_before + 10, 'sampling goes on while the backend is down');
like($last_error, qr/could not send to "127\.0\.0\.1" port \d+: Connection refused/,
	'dolon.tracer shows why sending fails');
my $log = slurp_file($node->logfile, $log_offset);
my $reports = () = $log =~ /could not send to/g;
is($reports, 1, "$errors send errors are logged once (rate-limited)");
is(DolonTest::tracer_pid($node) ne '', 1, 'the tracer still runs');

# The backend comes back: the run is announced again, same uuid
$receiver->open;
my $again = $receiver->wait_for_run('resilient');
is($again->{uuid}, $run->{uuid}, 'when the backend comes back the run is announced again');
is_deeply($again->{column_names}, $run->{column_names}, '... with its columns');
ok(defined $receiver->wait_for_row($run->{uuid}), 'rows of the run follow');
ok($node->wait_for_log(qr/dolon tracer "resilient" is sending to "127\.0\.0\.1" port \d+ again/, $log_offset),
	'the recovery is logged');

# An unresolvable host: no crash, sampling goes on, the reason is shown
$node->append_conf('postgresql.conf', "dolon.host = 'no..such'");
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT last_error LIKE 'could not resolve host "no..such"%' FROM dolon.tracer})
  or die 'resolution failure not shown';
($samples_before) = tracer_state('samples');
$node->poll_query_until('postgres', "SELECT samples > $samples_before + 5 FROM dolon.tracer")
  or die 'sampling stopped';
pass('with an unresolvable host, sampling goes on and dolon.tracer says why');
$node->append_conf('postgresql.conf', "dolon.host = '127.0.0.1'");
$node->reload;
is($receiver->wait_for_run('resilient')->{uuid}, $run->{uuid},
	'back to a resolvable host, the run is announced there');

# pg_terminate_backend: the postmaster starts the tracer again
my $pid = DolonTest::tracer_pid($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
my $restarted = $receiver->wait_for_run('resilient');
isnt($restarted->{uuid}, $run->{uuid}, 'a terminated tracer comes back with a new run');
my $new_pid = DolonTest::tracer_pid($node);
ok($new_pid ne '' && $new_pid != $pid, 'the tracer runs again under a new pid');
is(($node->safe_psql('postgres', 'SELECT pid FROM dolon.tracer')), $new_pid,
	'dolon.tracer shows the new pid');

# Shutdown does not wait for the next sample
$node->append_conf('postgresql.conf', "dolon.frequency = '10min'");
$node->reload;
$node->poll_query_until('postgres', "SELECT frequency = '10min' FROM dolon.tracer")
  or die 'frequency not applied';
my $start = time;
$node->stop('fast');
my $took = time - $start;
cmp_ok($took, '<', 20, 'a fast shutdown with a 10 minute frequency completes at once');
DolonTest::check_log_clean($node);

# Loaded without shared_preload_libraries: a clear warning, diagnostics work
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->append_conf('postgresql.conf', 'autovacuum = off');
$plain->start;
my ($ret, $stdout, $stderr) = $plain->psql('postgres', 'CREATE EXTENSION dolon');
is($ret, 0, 'CREATE EXTENSION works without shared_preload_libraries');
like($stderr, qr/WARNING:  dolon is not loaded through shared_preload_libraries/,
	'... with a warning that dolon is not preloaded');
like($stderr, qr/HINT:  Add dolon to shared_preload_libraries/, '... that says what to do');
($ret, $stdout, $stderr) = $plain->psql('postgres', 'SELECT * FROM dolon.tracer');
like($stderr, qr/ERROR:  dolon must be loaded via shared_preload_libraries/,
	'dolon.tracer explains that the tracer needs shared_preload_libraries');
is($plain->safe_psql('postgres',
	q{SELECT dolon.idle() = (SELECT count(*) FROM pg_stat_activity WHERE state = 'idle')
	     AND dolon.count_db_connections() = (SELECT sum(numbackends) FROM pg_stat_database)}),
	't', 'the diagnostic functions work and match the ground truth');
$plain->stop;
DolonTest::check_log_clean($plain,
	allow => [
		qr/^dolon is not loaded through shared_preload_libraries$/,
		qr/^dolon must be loaded via shared_preload_libraries$/,
	]);

done_testing();
