# Fault: the system clock steps back, as an NTP step or a virtual machine
# restored from a snapshot makes it.  The server runs with libfaketime
# preloaded: its wall clock is offset by what a file of the test's says
# (read again every second), its monotonic clock is left alone, as a step
# leaves it.  The clock goes back an hour.  The tracer samples on at its
# frequency (the deadlines it set before the step would have stopped it for
# the hour), and a Graphite stream whose connection failed before the step
# connects as soon as its Graphite listens, not an hour later; its lines
# carry the server's new time.
use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use DolonMetrics;
use DolonTest;

my ($faketime) = glob('/usr/lib/*/faketime/libfaketime.so.1');
plan skip_all => 'no libfaketime' unless $faketime;

my $offset_file = PostgreSQL::Test::Utils::tempdir() . '/offset';
sub set_offset
{
	my ($offset) = @_;
	open my $fh, '>', $offset_file or die "cannot write $offset_file: $!";
	print $fh "$offset\n";
	close $fh or die "cannot write $offset_file: $!";
	return;
}
set_offset('+0');

my $receiver = DolonTest::Receiver->new;
my $graphite_port = DolonMetrics::free_tcp_port();
my $node = DolonTest::new_node('clock', $receiver->port,
	"dolon.tracer_name = 'clock'",
	"dolon.profilers = 'idle'");
# Before 16, the postmaster starts background workers from its signal
# handlers (16 moved that work out of them); the workers it forks there keep
# the real time under libfaketime
plan skip_all => 'libfaketime does not reach background workers before PostgreSQL 16'
  if $node->pg_version < 16;
plan skip_all => 'a server with both AddressSanitizer and libfaketime preloaded does not start'
  if DolonTest::sanitized();
{
	local $ENV{LD_PRELOAD} = join ':', grep { defined && length } $ENV{LD_PRELOAD}, $faketime;
	local $ENV{FAKETIME_TIMESTAMP_FILE} = $offset_file;
	local $ENV{FAKETIME_CACHE_DURATION} = 1;
	local $ENV{FAKETIME_DONT_FAKE_MONOTONIC} = 1;
	$node->start;
}
$node->safe_psql('postgres', 'CREATE EXTENSION dolon');

# The server's wall clock less the test's, in seconds
sub server_lag
{
	return Time::HiRes::time() -
	  $node->safe_psql('postgres', 'SELECT extract(epoch FROM clock_timestamp())');
}

my $run = $receiver->wait_for_run('clock')->{uuid};
$receiver->wait_for_row($run);

# A stream that fails before the step: nothing listens on its port
$node->safe_psql('postgres', qq{
	SELECT dolon.start_tracer('stream', '100ms', 'graphite://127.0.0.1', $graphite_port, 'idle')});
ok( $node->poll_query_until('postgres',
		q{SELECT send_errors > 0 FROM dolon.tracers WHERE tracer_name = 'stream'}),
	'a Graphite stream to a port where nothing listens fails');

cmp_ok(abs(server_lag()), '<', 60, "the server's clock is the test's");
set_offset('-1h');
ok(DolonTest::poll_until(sub { server_lag() > 3500 }),
	"the server's clock steps an hour back");

# The tracer samples on: 20 rows, 2 s at 100 ms
$receiver->drain;
my $rows = 0;
eval {
	for (1 .. 20)
	{
		$receiver->wait_for_row($run);
		$rows++;
	}
};
is($rows, 20, 'the tracer samples on after the step: 20 rows more');

# Graphite listens: the stream connects within its back-off
my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $graphite_port,
	Proto => 'tcp', Listen => 5, ReuseAddr => 1) or die "cannot listen on $graphite_port: $!";
my $connected = ok(IO::Select->new($listener)->can_read($PostgreSQL::Test::Utils::timeout_default),
	'the stream that failed before the step connects when Graphite listens');
# Its first lines are those kept from before the step; then come the new
my ($received, $stepped) = ('', undef);
if ($connected)
{
	my $connection = $listener->accept;
	while (!defined $stepped && IO::Select->new($connection)->can_read(60))
	{
		last unless sysread($connection, $received, 65536, length $received);
		($stepped) = grep { Time::HiRes::time() - $_ > 3000 }
		  $received =~ /^dolon\.stream\.idle [0-9]+ ([0-9]+\.[0-9]+)\n/mg;
	}
	close $connection;
}
close $listener;
ok(defined $stepped && Time::HiRes::time() - 3600 - $stepped < 120,
	"... and sends its lines, stamped with the server's time, an hour back"
	  . (defined $stepped ? " ($stepped)" : ''));

$node->stop;
DolonTest::check_log_clean($node);

done_testing();
