# The collector under bursts from another process, running and stopped
# (SIGSTOP, then SIGCONT), of several sizes up to many times what its socket
# buffer holds, a tenth of them malformed and a tenth refused (too many
# columns): every datagram sent is stored, found malformed, refused or
# counted as dropped, exactly; a burst that fits in the socket buffer loses
# nothing even while the collector is stopped; only good rows are stored,
# each once.  Bursts of the largest datagrams leave the collector's memory
# as it was before them.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my $max_columns = 8;
my @sizes = (200, 5_000, 50_000);

# The collector listens on a port just found free; its own tracer sends to
# a sink nobody reads
my $sink = DolonTest::Receiver->new;
my $free = DolonTest::Receiver->new;
my $port = $free->port;
$free->close;
my $node = DolonTest::new_node('bursts', $sink->port,
	"dolon.collector_port = $port",
	"dolon.collector_listen_addresses = '127.0.0.1'",
	"dolon.collector_max_columns = $max_columns");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dolon');
my $to_collector = DolonTest::udp_sender($port);

my $uuids = 0;
sub new_uuid { return sprintf('b0257000-c011-4ec7-8000-%012d', ++$uuids); }

sub stored_runs
{
	my ($uuid) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM dolon.tracing_run WHERE uuid = '$uuid'");
}

# Announce a run, until it is stored: the collector is ready
sub announce
{
	my ($uuid) = @_;
	DolonTest::poll_until(
		sub {
			DolonTest::send_all($to_collector, DolonTest::run_message($uuid, 'burst', 'n', 'half'));
			return stored_runs($uuid) eq '1';
		})
	  or die "run $uuid is not stored";
	return;
}

# The datagrams of a burst of $size: rows numbered 0 to $size - 1, of
# which those ending in 3 are not JSON and those ending in 7 have a column
# too many
sub burst_of
{
	my ($uuid, $size) = @_;
	return map {
		  $_ % 10 == 3 ? qq({"msg_type": "row", "row_data": [$_)
		: $_ % 10 == 7 ? DolonTest::row_message($uuid, $_, (0) x $max_columns)
		: DolonTest::row_message($uuid, $_, $_ / 2)
	} 0 .. $size - 1;
}

sub expected_bad
{
	my ($size, $digit) = @_;
	return scalar(grep { $_ % 10 == $digit } 0 .. $size - 1);
}

# Send a burst of @datagrams from another process, the collector stopped
# meanwhile if $stop; wait until each datagram is accounted for and what
# was received is dealt with; return how much each counter rose
sub burst
{
	my ($stop, @datagrams) = @_;
	my $size = @datagrams;
	my $before = DolonTest::collector_counters($node);
	kill 'STOP', $before->{pid} if $stop;
	DolonTest::send_apart($port, @datagrams);
	kill 'CONT', $before->{pid} if $stop;
	my $risen;
	DolonTest::poll_until(
		sub {
			my $now = DolonTest::collector_counters($node);
			$risen = { map { $_ => $now->{$_} - $before->{$_} } @DolonTest::collector_counters };
			$risen->{pid} = $now->{pid};
			return $risen->{received} + $risen->{dropped} >= $size
			  && $risen->{stored_rows} + $risen->{malformed} + $risen->{refused}
			  >= $risen->{received};
		});
	note(sprintf('burst of %d, collector %s: %d stored, %d malformed, %d refused, %d dropped',
			$size, $stop ? 'stopped' : 'running', map { $risen->{$_} } qw(stored_rows malformed refused dropped)));
	return $risen;
}

my $pid = DolonTest::collector_counters($node)->{pid};
foreach my $stop (0, 1)
{
	foreach my $size (@sizes)
	{
		my $what = sprintf('a burst of %d from another process, the collector %s',
			$size, $stop ? 'stopped' : 'running');
		my $uuid = new_uuid();
		announce($uuid);
		my $risen = burst($stop, burst_of($uuid, $size));
		is($risen->{stored_rows} + $risen->{malformed} + $risen->{refused} + $risen->{dropped},
			$size, "$what: each datagram is stored, malformed, refused or dropped");
		is($risen->{received}, $risen->{stored_rows} + $risen->{malformed} + $risen->{refused},
			'... each received one stored, malformed or refused');
		is($risen->{orphan_rows} . ' ' . $risen->{duplicate_runs} . ' ' . $risen->{stored_runs},
			'0 0 0', '... no orphan rows, no runs');
		is( $node->safe_psql('postgres', qq{
				SELECT count(*) || ' ' || count(DISTINCT row_data[1])
				  || ' ' || count(*) FILTER (WHERE row_data[1]::integer % 10 IN (3, 7)
				                             OR row_data[2] <> row_data[1] / 2
				                             OR row_data[1] NOT BETWEEN 0 AND $size - 1)
				FROM dolon.tracing_row WHERE uuid = '$uuid'}),
			"$risen->{stored_rows} $risen->{stored_rows} 0",
			'... the rows counted as stored are in dolon.tracing_row, each once, only good ones, as sent');
		if ($risen->{dropped} == 0)
		{
			is($risen->{malformed} . ' ' . $risen->{refused},
				expected_bad($size, 3) . ' ' . expected_bad($size, 7),
				'... none dropped: exactly the bad ones are malformed and refused');
		}
		if ($stop && $size == $sizes[0])
		{
			is($risen->{dropped}, 0, '... it fits in the socket buffer: none dropped');
		}
		if ($stop && $size == $sizes[-1])
		{
			cmp_ok($risen->{dropped}, '>', 0,
				"... it is larger than the socket buffer: $risen->{dropped} dropped");
		}
	}
}

# The collector's anonymous memory, in kB
sub anonymous_kb
{
	my $rollup = slurp_file("/proc/$pid/smaps_rollup");
	return $rollup =~ /^Anonymous:\s+(\d+) kB/m ? $1 : die "no Anonymous for $pid";
}

# Bursts of datagrams of 60,000 bytes, the collector running, then stopped
# until its socket buffer is full: each datagram of a batch in its own
# pages.  What they filled is back to the size it had, not a high-water mark
# that each larger burst raises.
my $anonymous = anonymous_kb();
my $large = 0;
foreach my $stop (0, 1)
{
	my $risen = burst($stop, ('x' x 60_000) x 200);
	$large += $risen->{received};
}
SKIP:
{
	skip 'AddressSanitizer keeps freed memory in quarantine', 1 if DolonTest::sanitized();
	my $grown = anonymous_kb() - $anonymous;
	cmp_ok($grown, '<', 256,
		"after $large datagrams of 60,000 bytes, the collector's anonymous memory grew $grown kB");
}

is(DolonTest::collector_counters($node)->{pid}, $pid, 'the collector went through every burst');

$node->stop;
DolonTest::check_log_clean($node);

done_testing();
