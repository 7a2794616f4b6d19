# dolon's processes ended from outside: pg_terminate_backend() and SIGKILL
# of the configured tracer, of a tracer started from SQL and of the
# collector, and SIGKILL of a client backend while the tracers sample (after
# which the postmaster restarts every process).  Each time everything comes
# back: the ended tracers with new runs (new uuids), the tracers started
# from SQL once each, and the collector storing what it receives.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my $configured = DolonTest::Receiver->new;
my $started = DolonTest::Receiver->new;
my $collector_port = do
{
	my $free = DolonTest::Receiver->new;
	$free->close;
	$free->port;
};
my $node = DolonTest::new_node('fault_kill', $configured->port,
	"dolon.tracer_name = 'configured'",
	"dolon.collector_port = $collector_port",
	"restart_after_crash = on");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dolon');

# Two tracers from SQL: one that reads the backend status entries every
# 10 ms, and one that sends to this server's collector
$node->safe_psql('postgres',
	"SELECT dolon.start_tracer('started', '10ms', '127.0.0.1', " . $started->port
	  . ", 'idle', 'active_tasks', 'count_db_connections')");
$node->safe_psql('postgres',
	"SELECT dolon.start_tracer('collected', '100ms', '127.0.0.1', $collector_port, 'idle')");

# The pid of each of dolon's processes, and the run of each tracer
sub processes
{
	my %p;
	foreach my $line (split /\n/, $node->safe_psql('postgres', q{
		SELECT tracer_name, coalesce(pid, 0), coalesce(run_uuid::text, '') FROM dolon.tracers
		UNION ALL
		SELECT 'collector', pid, '' FROM pg_stat_activity WHERE backend_type = 'dolon collector'}))
	{
		my ($name, $pid, $uuid) = split /\|/, $line;
		$p{$name} = { pid => $pid, uuid => $uuid };
	}
	return \%p;
}

# Are the three tracers and the collector running, each once, with a run
# for each tracer?  Not while the server restarts, and refuses connections
sub all_running
{
	my ($rc, $running) = $node->psql('postgres', q{
		SELECT (SELECT count(*) FROM dolon.tracers WHERE pid IS NOT NULL AND run_uuid IS NOT NULL) = 3
		   AND (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'dolon tracer') = 3
		   AND (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'dolon collector') = 1});
	return $rc == 0 && $running eq 't';
}

# Rows the collector stored of run $uuid
sub stored_rows
{
	my ($uuid) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM dolon.tracing_row WHERE uuid = '$uuid'");
}

# The announcement of run $uuid, past those of earlier runs
sub announcement
{
	my ($receiver, $uuid) = @_;
	return $receiver->wait_for(
		sub { $_[0]->{msg_type} eq 'create_trace_run' && $_[0]->{uuid} eq $uuid },
		"the announcement of run $uuid");
}

# After $what ended the processes in @$ended (names of processes), check that
# everything is back: the ended ones under new pids, the ended tracers with
# new runs and the others with theirs, the tracers once each, their rows
# arriving, and the collector storing rows of the current run of the tracer
# that sends to it.  Returns the new processes.
sub check_all_back
{
	my ($what, $before, $ended) = @_;
	my %ended = map { $_ => 1 } @$ended;
	my $after;
	DolonTest::poll_until(
		sub {
			return 0 unless all_running();
			$after = processes();
			return !grep { $after->{$_}{pid} == $before->{$_}{pid} } @$ended;
		})
	  or die "$what: the processes did not come back";
	pass("$what: every process of dolon runs again, each once");

	foreach my $name (qw(configured started collected))
	{
		if ($ended{$name})
		{
			isnt($after->{$name}{uuid}, $before->{$name}{uuid}, "$what: $name has a new run");
		}
		else
		{
			is($after->{$name}{uuid}, $before->{$name}{uuid}, "$what: $name keeps its run");
		}
	}
	ok(defined announcement($configured, $after->{configured}{uuid}),
		"$what: the configured tracer announces its new run")
	  if $ended{configured};
	ok(defined $configured->wait_for_row($after->{configured}{uuid}),
		"$what: rows of the configured tracer arrive");
	ok(defined announcement($started, $after->{started}{uuid}),
		"$what: the tracer started from SQL announces its new run")
	  if $ended{started};
	ok(defined $started->wait_for_row($after->{started}{uuid}),
		"$what: rows of the tracer started from SQL arrive");

	my $stored = stored_rows($after->{collected}{uuid});
	ok(DolonTest::poll_until(sub { stored_rows($after->{collected}{uuid}) >= $stored + 5 }),
		"$what: the collector stores the rows it receives");
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM dolon.runs WHERE uuid = '$after->{collected}{uuid}'"),
		'1', "$what: ... and the run they belong to");
	return $after;
}

ok(DolonTest::poll_until(\&all_running), 'the tracers and the collector run');
my $current = processes();
$current = check_all_back('at start', $current, []);

my @killed;
my @everything = qw(configured started collected collector);
foreach my $victim (qw(configured started collector))
{
	# The receivers' buffers take a few seconds of the 10 ms tracer: empty
	# them, so that the announcements after the restarts find room
	$_->drain for $configured, $started;
	my $pid = $current->{$victim}{pid};
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	$current = check_all_back("pg_terminate_backend() of $victim", $current,
		[$victim]);

	# SIGKILL: the postmaster restarts every process
	$_->drain for $configured, $started;
	$pid = $current->{$victim}{pid};
	kill 'KILL', $pid;
	push @killed, $pid;
	$current = check_all_back("SIGKILL of $victim", $current, \@everything);
}

# SIGKILL of a client backend while the tracers sample, every 10 ms
my ($out, $err);
my $psql = IPC::Run::start(
	[ $node->installed_command('psql'), '-X', '-d',
		$node->connstr('postgres') . ' application_name=victim', '-c', 'SELECT pg_sleep(600)' ],
	'>', \$out, '2>', \$err);
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'victim' AND wait_event = 'PgSleep'})
  or die 'the client backend does not sleep';
my $client = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE application_name = 'victim'");
$_->drain for $configured, $started;
kill 'KILL', $client;
push @killed, $client;
$psql->finish;
like($err, qr/server closed the connection unexpectedly/, 'the client backend was killed in its query');
$current = check_all_back('SIGKILL of a client backend', $current, \@everything);

$node->stop;
DolonTest::check_log_clean($node, killed => \@killed);

done_testing();
