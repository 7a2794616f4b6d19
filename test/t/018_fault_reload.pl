# A storm of reloads: 200 reloads as fast as they go, each changing
# dolon.frequency, dolon.profilers and dolon.tracer_name, half by rewriting
# a file that postgresql.conf includes, half by ALTER SYSTEM.  Afterwards
# the last setting wins: the current run has the last name and columns and
# its rows arrive at the last frequency, nothing of an earlier setting
# arrives any more, and no worker died, the configured tracer's nor that of
# a tracer started from SQL, which keeps its run.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DolonTest;

my $receiver = DolonTest::Receiver->new;
my $bystander = DolonTest::Receiver->new;
my $node = DolonTest::new_node('fault_reload', $receiver->port,
	"dolon.tracer_name = 'storm-0'",
	"dolon.profilers = 'idle'",
	"include_if_exists = 'storm.conf'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dolon');
my $bystander_uuid = $node->safe_psql('postgres',
	"SELECT dolon.start_tracer('bystander', '100ms', '127.0.0.1', " . $bystander->port . ", 'idle')");
$receiver->wait_for_row($receiver->wait_for_run('storm-0')->{uuid});
$bystander->wait_for_row($bystander_uuid);

my %pids = map { $_ => $node->safe_psql('postgres',
		"SELECT pid FROM dolon.tracers WHERE tracer_name = '$_'") } qw(storm-0 bystander);
my $log_offset = -s $node->logfile;

# The settings of reload $i: every frequency, from 10 ms to a minute, and
# every list of profilers in turn; the last reload sets 250ms and four
# profilers
my @frequencies = qw(10ms 1min 30ms 1s 100ms 15ms 250ms);
my @profilers = (
	'idle',
	'active_tasks, idle',
	'count_db_connections, live_msgs, dead_msgs',
	'idle_in_transaction, active_tasks, idle, count_db_connections');
my $reloads = 200;
sub settings
{
	my ($i) = @_;
	return (
		'dolon.frequency' => $i == $reloads ? '250ms' : $frequencies[ $i % @frequencies ],
		'dolon.profilers' => $i == $reloads ? $profilers[-1] : $profilers[ $i % @profilers ],
		'dolon.tracer_name' => "storm-$i");
}

my $session = $node->background_psql('postgres');
my $start = time;
foreach my $i (1 .. $reloads / 2)
{
	my %s = settings($i);
	# Written whole, then renamed: a reload never reads half a file
	my $file = $node->data_dir . '/storm.conf';
	open my $fh, '>', "$file.new" or die "cannot write $file.new: $!";
	print $fh map { "$_ = '$s{$_}'\n" } sort keys %s;
	close $fh or die "cannot write $file.new: $!";
	rename "$file.new", $file or die "cannot rename $file.new: $!";
	$session->query_safe('SELECT pg_reload_conf()');
}
foreach my $i ($reloads / 2 + 1 .. $reloads)
{
	my %s = settings($i);
	$session->query_safe(join '',
		(map { "ALTER SYSTEM SET $_ = '$s{$_}';\n" } sort keys %s),
		'SELECT pg_reload_conf();');
}
$session->quit;
note(sprintf('%d reloads in %.1f s', $reloads, time - $start));

# The last setting wins
my $run = $receiver->wait_for_run("storm-$reloads");
is_deeply($run->{column_names}, [qw(idle_in_transaction active_tasks idle count_db_connections)],
	'after the storm, the current run has the last name and the last columns');
ok($node->poll_query_until('postgres', qq{
	SELECT tracer_name = 'storm-$reloads' AND run_uuid = '$run->{uuid}' AND frequency = '250ms'
	FROM dolon.tracer}), 'dolon.tracer shows the last name, its run and the last frequency');

# Its rows at 250 ms, measured from their arrival, and nothing else
$receiver->drain;
$receiver->wait_for_row($run->{uuid});
my @arrivals;
my @others;
while (@arrivals < 13)
{
	my $message = $receiver->wait_for(sub { 1 }, 'a datagram after the storm');
	if ($message->{msg_type} eq 'row' && $message->{uuid} eq $run->{uuid})
	{
		push @arrivals, time;
	}
	elsif ($message->{uuid} ne $run->{uuid})
	{
		push @others, $message->{raw};
	}
}
my $interval = 1000 * ($arrivals[-1] - $arrivals[0]) / (@arrivals - 1);
ok($interval > 200 && $interval < 300,
	sprintf('its rows arrive every %.0f ms, at the last frequency, 250ms', $interval));
is(join("\n", @others), '', 'no datagram of an earlier setting arrives any more');

# No worker died
is($node->safe_psql('postgres', "SELECT pid FROM dolon.tracers WHERE tracer_name = 'storm-$reloads'"),
	$pids{'storm-0'}, 'the configured tracer went through the storm in the same worker');
is($node->safe_psql('postgres',
	"SELECT format('%s %s', pid, run_uuid) FROM dolon.tracers WHERE tracer_name = 'bystander'"),
	"$pids{bystander} $bystander_uuid", 'the tracer started from SQL too, with its run');
$bystander->drain;
ok(defined $bystander->wait_for_row($bystander_uuid), '... whose rows still arrive');
unlike(slurp_file($node->logfile, $log_offset), qr/background worker "dolon [^"]*" \(PID \d+\) exited/,
	'no worker of dolon exited during the storm');

$node->stop;
DolonTest::check_log_clean($node);

done_testing();
