# dolon.tracer_definitions and the running tracers cannot disagree: only
# dolon.start_tracer() and dolon.stop_tracer() write the table, what a
# superuser writes around them is checked and acted on, a row that is not
# valid is skipped with its reason logged, and a tracer that could not get
# a worker is started once one is free.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my $receiver = DolonTest::Receiver->new;
my $port = $receiver->port;
# The logical replication launcher and the configured tracer take two
# workers: two are left for tracers started from SQL
my $node = DolonTest::new_node('definitions', $port,
	"dolon.tracer_name = 'configured'",
	"max_worker_processes = 4");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION dolon;
	CREATE ROLE admin IN ROLE dolon_admin;
	GRANT USAGE ON SCHEMA dolon TO admin;
});

sub running
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM dolon.tracers WHERE tracer_name = '$name' AND pid IS NOT NULL");
}

sub wait_running
{
	my ($name, $expected, $what) = @_;
	ok($node->poll_query_until('postgres', qq{
		SELECT count(*) FROM dolon.tracers WHERE tracer_name = '$name' AND pid IS NOT NULL},
		$expected), $what);
}

# A member of dolon_admin starts and stops tracers, and reads the table, but
# cannot write it around the functions
my ($rc, $out, $err) = $node->psql('postgres', qq{
	SET ROLE admin;
	INSERT INTO dolon.tracer_definitions (tracer_name, frequency_ms, host, port, profilers)
	VALUES ('sneaky', 10, '127.0.0.1', $port, 'idle, idle')});
like($err, qr/permission denied for table tracer_definitions/, 'dolon_admin cannot insert a definition');
($rc, $out, $err) = $node->psql('postgres', q{
	SET ROLE admin; DELETE FROM dolon.tracer_definitions});
like($err, qr/permission denied for table tracer_definitions/, 'dolon_admin cannot delete definitions');
($rc, $out, $err) = $node->psql('postgres', q{
	SET ROLE admin; UPDATE dolon.tracer_definitions SET port = 1});
like($err, qr/permission denied for table tracer_definitions/, 'dolon_admin cannot update definitions');
$node->safe_psql('postgres', qq{
	SET ROLE admin;
	SELECT dolon.start_tracer('a', '100ms', '127.0.0.1', $port, 'idle');
	SELECT dolon.start_tracer('b', '100ms', '127.0.0.1', $port, 'idle');
});
is($node->safe_psql('postgres', q{
	SET ROLE admin; SELECT string_agg(tracer_name, ',' ORDER BY tracer_name) FROM dolon.tracer_definitions}),
	'a,b', 'dolon.start_tracer() records what dolon_admin starts');
wait_running('a', 1, 'a tracer started by dolon_admin runs');

# What a superuser writes is checked: rows dolon.start_tracer() would
# refuse are skipped, with their reasons logged, and take no worker
$node->safe_psql('postgres', qq{
	INSERT INTO dolon.tracer_definitions (tracer_name, frequency_ms, host, port, profilers) VALUES
	  ('bad_profilers', 100, '127.0.0.1', $port, 'idle, bogus'),
	  ('duplicates', 100, '127.0.0.1', $port, 'idle, idle'),
	  ('bad_host', 100, 'not a host', $port, 'idle'),
	  ('c', 100, '127.0.0.1', $port, 'active_tasks')});
my $log_offset = -s $node->logfile;
$node->restart;
wait_running('a', 1, 'after a restart, the first valid tracer is restored');
wait_running('b', 1, '... and the second');
my $log_at = $node->wait_for_log(qr/dolon does not run some tracers of dolon.tracer_definitions/, $log_offset);
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/tracer "bad_profilers": invalid profilers for tracer "bad_profilers" Unknown profiler "bogus"/,
	'a row with an unknown profiler is skipped, saying why');
like($log, qr/tracer "duplicates": invalid profilers for tracer "duplicates" Profiler "idle" is listed more than once/,
	'a row with a profiler twice is skipped, saying why');
like($log, qr/tracer "bad_host": invalid host for tracer "bad_host"/,
	'a row with an invalid host is skipped, saying why');
like($log, qr/tracer "c": could not start a worker for tracer "c"/,
	'a valid row for which no worker is free is skipped, saying why');
is(running('c'), '0', 'there was no worker for the third valid tracer');
unlike($log, qr/dolon tracer "(bad_profilers|duplicates|bad_host)"/,
	'the invalid rows took no worker');

# A tracer that could not get a worker starts once one is free
$node->safe_psql('postgres', q{SELECT dolon.stop_tracer('a')});
wait_running('c', 1, 'the tracer that found no worker starts once one is free');

# A row deleted or changed by a superuser stops its tracer, or changes it
$node->safe_psql('postgres', q{DELETE FROM dolon.tracer_definitions WHERE tracer_name = 'b'});
wait_running('b', 0, 'a tracer whose row is deleted stops');
$node->safe_psql('postgres', q{UPDATE dolon.tracer_definitions SET frequency_ms = 300 WHERE tracer_name = 'c'});
ok($node->poll_query_until('postgres', q{
	SELECT frequency = '300ms' AND pid IS NOT NULL FROM dolon.tracers WHERE tracer_name = 'c'}),
	'a tracer whose row is changed runs with the new definition');

# A row that becomes valid runs
$node->safe_psql('postgres', q{UPDATE dolon.tracer_definitions SET profilers = 'idle' WHERE tracer_name = 'duplicates'});
wait_running('duplicates', 1, 'a row made valid runs');
is($node->safe_psql('postgres', q{SELECT profilers FROM dolon.tracers WHERE tracer_name = 'duplicates'}),
	'idle', '... with its profilers');

# dolon.stop_tracer() removes a row that does not run
$node->safe_psql('postgres', q{SELECT dolon.stop_tracer('bad_host')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM dolon.tracer_definitions WHERE tracer_name = 'bad_host'}),
	'0', 'dolon.stop_tracer() removes a row that was skipped');

$node->stop;
DolonTest::check_log_clean($node,
	allow => [
		qr/^permission denied for table tracer_definitions$/,
		qr/^dolon does not run some tracers of dolon\.tracer_definitions$/,
	]);

done_testing();
