# Reloading the settings: new runs, new backends, new schedules, bad values
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DolonTest;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('reload', $receiver->port,
	"dolon.tracer_name = 'before'",
	"dolon.profilers = 'idle, live_msgs'");
$node->start;

my $run = $receiver->wait_for_run('before');
is_deeply($run->{column_names}, [qw(idle live_msgs)], 'first run: configured columns');

# Changing the profilers starts a new run with the new columns
$node->append_conf('postgresql.conf', "dolon.profilers = 'active_tasks, dead_msgs, idle'");
$node->reload;
my $second = $receiver->wait_for(sub { $_[0]->{msg_type} eq 'create_trace_run' && $_[0]->{uuid} ne $run->{uuid} },
	'a new run after changing dolon.profilers');
is_deeply($second->{column_names}, [qw(active_tasks dead_msgs idle)],
	'a reload of dolon.profilers gives a run with the new columns');
isnt($second->{uuid}, $run->{uuid}, '... under a new uuid');
is($second->{app_name}, 'before', '... and the same name');
is(scalar @{ $receiver->wait_for_row($second->{uuid})->{row_data} }, 3,
	'rows of the new run have the new number of values');

# Changing the tracer name starts a new run too
$node->append_conf('postgresql.conf', "dolon.tracer_name = 'after'");
$node->reload;
my $third = $receiver->wait_for_run('after');
isnt($third->{uuid}, $second->{uuid}, 'a reload of dolon.tracer_name gives a new uuid');
is_deeply($third->{column_names}, $second->{column_names}, '... with the same columns');

# An invalid value is refused: the old value stays, and the log says why
my $log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "dolon.profilers = 'idle, no_such_profiler'");
$node->append_conf('postgresql.conf', "dolon.port = 0");
$node->reload;
ok($node->wait_for_log(qr/invalid value for parameter "dolon.profilers": "idle, no_such_profiler"/, $log_offset),
	'a reload with an unknown profiler is logged');
ok($node->wait_for_log(qr/0 is outside the valid range for parameter "dolon.port" \(1 \.\. 65535\)/, $log_offset),
	'a reload with an invalid port is logged');
$receiver->drain;
my $row = $receiver->wait_for_row($third->{uuid});
is(scalar @{ $row->{row_data} }, 3, 'after the bad reload the tracer goes on with its run');
is($node->safe_psql('postgres', 'SHOW dolon.profilers'), 'active_tasks, dead_msgs, idle',
	'the old value of dolon.profilers stays in force');

# A new backend address keeps the run and announces it there
my $other = DolonTest::Receiver->new;
$node->append_conf('postgresql.conf', "dolon.profilers = 'active_tasks, dead_msgs, idle'");
$node->append_conf('postgresql.conf', "dolon.port = " . $other->port);
$node->reload;
my $moved = $other->wait_for_run('after');
is($moved->{uuid}, $third->{uuid}, 'a new backend port keeps the run, announced to the new backend');
ok(defined $other->wait_for_row($third->{uuid}), 'rows go to the new backend');

# A new frequency applies within one tick, on a fixed schedule
$node->append_conf('postgresql.conf', "dolon.frequency = '500ms'");
$node->reload;
$other->wait_for_row($third->{uuid}) for 1 .. 2;
my $start = time;
$other->wait_for_row($third->{uuid}) for 1 .. 6;
my $elapsed = time - $start;
cmp_ok($elapsed, '>', 2.0, 'six rows at 500ms take about 3 s, not 0.6 s');
cmp_ok($elapsed, '<', 10.0, 'six rows at 500ms take about 3 s, not 10 s');

# dolon.tracer reflects the reloaded settings
is($node->safe_psql('postgres',
	"CREATE EXTENSION dolon; SELECT tracer_name, port, frequency, run_uuid FROM dolon.tracer"),
	"after|" . $other->port . "|00:00:00.5|$third->{uuid}",
	'dolon.tracer shows the reloaded name, port, frequency and run');

# An empty host turns the configured tracer off, and a host on again
$log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "dolon.host = ''");
$node->reload;
$node->wait_for_log(qr/dolon tracer "after" is off: dolon.host is empty/, $log_offset);
is($node->safe_psql('postgres', 'SELECT count(*) FROM dolon.tracer'), '0',
	'a tracer turned off is not listed in dolon.tracer');
is($node->safe_psql('postgres', 'SHOW dolon.host'), '', 'dolon.host may be empty');
$other->drain;
my $quiet = $other->next_message(2);
is($quiet, undef, 'a tracer turned off sends nothing');
is(DolonTest::tracer_pid($node) ne '', 1, '... and its worker stays, to restore the tracers started from SQL');
$node->append_conf('postgresql.conf', "dolon.host = '127.0.0.1'");
$node->reload;
my $back = $other->wait_for_run('after');
isnt($back->{uuid}, $third->{uuid}, 'turned on again, the tracer starts a new run');
ok(defined $other->wait_for_row($back->{uuid}), '... and sends its rows');

$node->stop;
DolonTest::check_log_clean($node);

done_testing();
