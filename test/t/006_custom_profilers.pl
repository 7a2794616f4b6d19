# Custom profilers in a tracer: values, failures that leave the rest of the
# row alone, the role they run as, functions created after the run started
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('custom', $receiver->port,
	"dolon.tracer_name = 'custom'",
	"dolon.frequency = '500ms'",
	"dolon.profiler_timeout = '200ms'",
	"dolon.profilers = 'max_connections, app.queue_depth, app.boom, app.slow, app.nothing, app.runs_as, app.later'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION dolon;
	CREATE ROLE profiler_runner;
	CREATE SCHEMA app;
	GRANT USAGE ON SCHEMA app TO profiler_runner;
	CREATE TABLE app.jobs (id int);
	INSERT INTO app.jobs SELECT generate_series(1, 17);
	GRANT SELECT ON app.jobs TO profiler_runner;
	CREATE FUNCTION app.queue_depth() RETURNS bigint
	  LANGUAGE sql AS 'SELECT count(*) FROM app.jobs';
	CREATE FUNCTION app.boom() RETURNS integer
	  LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'queue is on fire'; END$$;
	CREATE FUNCTION app.slow() RETURNS float8
	  LANGUAGE sql AS 'SELECT pg_sleep(10); SELECT 1.0::float8';
	CREATE FUNCTION app.nothing() RETURNS numeric LANGUAGE sql AS 'SELECT NULL::numeric';
	CREATE FUNCTION app.runs_as() RETURNS integer LANGUAGE sql
	  AS $$SELECT CASE WHEN current_user = 'profiler_runner' THEN 1 ELSE 0 END$$;
});

my @columns = qw(max_connections queue_depth boom slow nothing runs_as later);
my %column = map { $columns[$_] => $_ } 0 .. $#columns;
my $run = $receiver->wait_for_run('custom');
is_deeply($run->{column_names}, \@columns, 'custom profilers are columns named after their functions');
my $uuid = $run->{uuid};

# Without dolon.profiler_role, custom profilers do not run; built-ins do
my $row = $receiver->wait_for_row($uuid);
is($row->{row_data}[$column{max_connections}], 100, 'without a profiler role the built-ins are sent');
is(scalar(grep { defined } @{ $row->{row_data} }[1 .. $#columns]), 0,
	'... and the custom profilers are null');
ok($node->wait_for_log(qr/dolon tracer "custom" does not run its custom profilers\n.*DETAIL:  dolon.profiler_role is not set\./),
	'the log says why custom profilers do not run');

# A superuser is refused as profiler role
$node->append_conf('postgresql.conf', "dolon.profiler_role = 'postgres'");
$node->reload;
$receiver->drain;
$row = $receiver->wait_for_row($uuid);
$row = $receiver->wait_for_row($uuid);
is(scalar(grep { defined } @{ $row->{row_data} }[1 .. $#columns]), 0,
	'a superuser as profiler role runs no custom profiler');

# With a role: values, and failures that leave the rest of the row alone
my $log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "dolon.profiler_role = 'profiler_runner'");
$node->reload;
$row = $receiver->wait_for(sub {
	$_[0]->{msg_type} eq 'row' && $_[0]->{uuid} eq $uuid
	  && defined $_[0]->{row_data}[$column{queue_depth}] }, 'a row with custom values');
is($row->{row_data}[$column{queue_depth}], 17, 'a custom profiler gives its value');
is($row->{row_data}[$column{runs_as}], 1, 'it runs as dolon.profiler_role');
is($row->{row_data}[$column{boom}], undef, 'a profiler that raises an error gives null');
is($row->{row_data}[$column{slow}], undef, 'a profiler that runs past dolon.profiler_timeout gives null');
is($row->{row_data}[$column{nothing}], undef, 'a profiler that returns NULL gives null');
is($row->{row_data}[$column{later}], undef, 'a profiler whose function does not exist gives null');
is($row->{row_data}[$column{max_connections}], 100, 'the built-ins of the same row are unaffected');

# The tracer goes on, counts the failures, and logs them at most once a minute
my @rows = map { $receiver->wait_for_row($uuid) } 1 .. 6;
is(scalar(grep { ($_->{row_data}[$column{queue_depth}] // -1) == 17 } @rows), 6,
	'the tracer goes on sampling, row after row');
my ($errors) = $node->safe_psql('postgres', 'SELECT profiler_errors FROM dolon.tracer');
cmp_ok($errors, '>=', 24, "dolon.tracer counts the failures ($errors)");
my $log = slurp_file($node->logfile, $log_offset);
my $warnings = () = $log =~ /WARNING:  dolon tracer "custom": profiler/g;
is($warnings, 1, 'the failures are logged once a minute at most');
like($log, qr/canceling statement due to statement timeout|queue is on fire|returned null|does not exist/,
	'the log says what failed');

# A function created while the run goes on is found at the next sample
$node->safe_psql('postgres', q{
	CREATE FUNCTION app.later() RETURNS real LANGUAGE sql AS 'SELECT 2.5::real';
	GRANT EXECUTE ON FUNCTION app.later() TO profiler_runner;
});
$row = $receiver->wait_for(sub {
	$_[0]->{msg_type} eq 'row' && defined $_[0]->{row_data}[$column{later}] },
	'a row with the new function');
is($row->{row_data}[$column{later}], 2.5, 'a function created after the run started gives its value');
is($row->{uuid}, $uuid, '... in the same run');

# Dropped and created again, it is found again
$node->safe_psql('postgres', q{
	DROP FUNCTION app.queue_depth();
	CREATE FUNCTION app.queue_depth() RETURNS integer LANGUAGE sql AS 'SELECT 99';
});
$row = $receiver->wait_for(sub {
	$_[0]->{msg_type} eq 'row' && ($_[0]->{row_data}[$column{queue_depth}] // 0) == 99 },
	'a row from the new function');
pass('a function dropped and created again is called again');

is(DolonTest::tracer_pid($node) ne '', 1, 'the tracer still runs');
$node->stop;
DolonTest::check_log_clean($node,
	allow => [
		qr/^dolon tracer "custom" does not run its custom profilers$/,
		qr/^dolon tracer "custom": profiler app\.later: profiler function app\.later\(\) does not exist$/,
	]);

done_testing();
