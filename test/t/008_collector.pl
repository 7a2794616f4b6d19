# The collector, an embedded mnemic backend: it stores what a tracer of
# another cluster and the original client send, as they sent it (Python's
# NaN and Infinity included); counts and survives bad datagrams; stores or
# counts every row of a burst, without waiting for a later datagram; holds
# what comes before CREATE EXTENSION dolon and stores it then; expires old
# traces; and lets monitoring roles, and only them, read the traces back
use strict;
use warnings;

use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DolonTest;

# Three datagrams captured from the original Python client, one per line
my @golden = split /\n/, <<'EOT';
{"msg_type": "create_trace_run", "app_name": "golden-app", "column_names": ["cpu_percent", "virtual_memory_percent", "mem_allocation", "queue_depth", "work_hits", "work_active_instances", "work_average_time"], "uuid": "32fb2b8f-573d-4eb2-afa4-0410ba054160"}
{"msg_type": "row", "row_data": [4.2, 1.6, 0.004159, 4, 33, 1, 0.030839406250000003], "uuid": "32fb2b8f-573d-4eb2-afa4-0410ba054160"}
{"msg_type": "row", "row_data": [1.0, 1.6, 0.004671, 6, 63, 1, 0.031736903225806454], "uuid": "32fb2b8f-573d-4eb2-afa4-0410ba054160"}
EOT
my $golden_uuid = '32fb2b8f-573d-4eb2-afa4-0410ba054160';
my @golden_columns = qw(cpu_percent virtual_memory_percent mem_allocation queue_depth
  work_hits work_active_instances work_average_time);
my @golden_rows = ([ 4.2, 1.6, 0.004159, 4, 33, 1, 0.030839406250000003 ],
	[ 1.0, 1.6, 0.004671, 6, 63, 1, 0.031736903225806454 ]);

# Can this Perl send UDP over IPv6, to ::1?
my $have_ipv6 = eval {
	require IO::Socket::IP;
	IO::Socket::IP->new(Proto => 'udp', LocalHost => '::1', LocalPort => 0)
	  or die;
	1;
};

# A UDP port free on 127.0.0.1 (and on ::1 if IPv6 works)
sub free_udp_port
{
	for (1 .. 20)
	{
		my $v4 = IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.1',
			LocalPort => 0)
		  or die "cannot bind a UDP socket: $!";
		my $port = $v4->sockport;
		my $v6 = !$have_ipv6
		  || IO::Socket::IP->new(Proto => 'udp', LocalHost => '::1',
			LocalPort => $port);
		$v4->close;
		return $port if $v6;
	}
	die 'no free UDP port found';
}

my $uuids = 0;
sub new_uuid { return sprintf('d0100000-c011-4ec7-8000-%012d', ++$uuids); }

# Wait until $count more datagrams than at $before have been received and
# dealt with (stored, found malformed or duplicate, or dropped), and return
# by how much each counter has risen
sub counters_risen
{
	my ($node, $before, $count, $database) = @_;
	my $risen;
	DolonTest::poll_until(
		sub {
			my $now = DolonTest::collector_counters($node, $database);
			$risen = { map { $_ => $now->{$_} - $before->{$_} } @DolonTest::collector_counters };
			my $dealt_with = 0;
			$dealt_with += $risen->{$_}
			  foreach qw(stored_runs stored_rows duplicate_runs malformed dropped);
			return $risen->{received} >= ($count // 0) && $dealt_with >= ($count // 0);
		});
	return $risen;
}

# Every counter's expected rise, 0 where not given
sub rises
{
	my (%expected) = @_;
	return { map { $_ => $expected{$_} // 0 } @DolonTest::collector_counters };
}

sub count_rows
{
	my ($node, $uuid) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM dolon.tracing_row WHERE uuid = '$uuid'");
}

# Send @datagrams so that the collector of $node stores them in one batch:
# it is held up by a lock on dolon.tracing_row, storing $first_row, while
# they arrive
sub send_in_one_batch
{
	my ($node, $database, $socket, $first_row, @datagrams) = @_;
	my $lock_holder = $node->background_psql($database);
	$lock_holder->query_safe('BEGIN; LOCK TABLE dolon.tracing_row IN SHARE MODE');
	DolonTest::send_all($socket, $first_row);
	DolonTest::poll_until(
		sub {
			$node->safe_psql($database,
				"SELECT count(*) FROM pg_locks WHERE relation = 'dolon.tracing_row'::regclass AND NOT granted") eq '1';
		})
	  or die 'the collector does not wait for the lock';
	DolonTest::send_all($socket, @datagrams);
	$lock_holder->query_safe('COMMIT');
	$lock_holder->quit;
	return;
}

# Run $query; returns whether it succeeded, its output and its errors
sub try_sql
{
	my ($node, $query) = @_;
	my ($rc, $stdout, $stderr) = $node->psql('postgres', $query);
	return ($rc == 0, $stdout, $stderr);
}

# Are these equal as real (float4)?
sub same_real
{
	my ($x, $y) = @_;
	return defined $x && defined $y && $x =~ /^-?[\d.]+(?:e[-+]?\d+)?$/i
	  && pack('f', $x) eq pack('f', $y);
}

# The nodes: the collector, a traced node whose tracer sends through a
# recording proxy, and a collector whose extension is not created yet.  The
# collectors' own tracers send to a sink nobody reads.
my $sink = DolonTest::Receiver->new;
my $port = free_udp_port();
my $collector = DolonTest::new_node('collector', $sink->port,
	"dolon.collector_port = $port",
	"dolon.collector_listen_addresses = '127.0.0.1, ::1'");
$collector->start;
$collector->safe_psql('postgres', 'CREATE EXTENSION dolon');

my $empty_port = free_udp_port();
my $empty = DolonTest::new_node('empty', $sink->port,
	"dolon.collector_port = $empty_port");
$empty->start;

my $proxy = DolonTest::Receiver->new;
my $traced = DolonTest::new_node('traced', $proxy->port,
	"dolon.tracer_name = 'traced-app'",
	"dolon.profilers = 'idle, count_db_connections, live_msgs'");
$traced->start;

my $to_collector = DolonTest::udp_sender($port);

# The collector runs, listens where it was told, and stores once it has seen
# the extension (probe with an announcement until it is stored)
my $probe = new_uuid();
ok( DolonTest::poll_until(
		sub {
			DolonTest::send_all($to_collector, DolonTest::run_message($probe, 'probe', 'a'));
			return $collector->safe_psql('postgres',
				"SELECT count(*) FROM dolon.tracing_run WHERE uuid = '$probe'") eq '1';
		}),
	'the collector stores an announcement');
is( $collector->safe_psql('postgres',
		'SELECT pid IS NOT NULL, listen_addresses, port, waiting_for_extension FROM dolon.collector'),
	"t|127.0.0.1, ::1|$port|f",
	'dolon.collector shows the running collector and where it listens');
ok($collector->log_contains(qr/dolon collector listening on 127\.0\.0\.1, ::1 port $port/),
	'the log says where the collector listens');

# A tracer of another cluster, through a proxy that records every
# datagram and forwards it unchanged: the collector stores the run and its
# rows as they were sent
my ($announcement, @recorded_rows);
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (@recorded_rows < 5)
{
	my $message = $proxy->next_message($deadline - time)
	  // die 'timed out waiting for the traced node';
	DolonTest::send_all($to_collector, $message->{raw});
	if ($message->{msg_type} eq 'create_trace_run')
	{
		$announcement //= $message;
	}
	elsif (defined $announcement && $message->{uuid} eq $announcement->{uuid})
	{
		push @recorded_rows, $message;
	}
}
$traced->stop;
my $run = $announcement->{uuid};
ok(DolonTest::poll_until(sub { count_rows($collector, $run) == @recorded_rows }),
	'the rows of the traced node are stored');
is( $collector->safe_psql('postgres',
		"SELECT app_name, column_names::text FROM dolon.tracing_run WHERE uuid = '$run'"),
	'traced-app|{' . join(',', @{ $announcement->{column_names} }) . '}',
	'the run is stored with the uuid, app_name and column_names it was announced with');
my @stored = split /\n/, $collector->safe_psql('postgres',
	"SELECT row_data::text FROM dolon.tracing_row WHERE uuid = '$run' ORDER BY date_time");
my $i = 0;
my @recorded_values = split /\n/, $collector->safe_psql('postgres',
	'SELECT ARRAY(SELECT value::real FROM json_array_elements_text(datagram::json -> \'row_data\')'
	  . ' WITH ORDINALITY AS e(value, n) ORDER BY n)::text'
	  . ' FROM (VALUES '
	  . join(', ', map { '(' . ++$i . ', $j$' . $_->{raw} . '$j$)' } @recorded_rows)
	  . ') AS recorded(n, datagram) ORDER BY n');
is_deeply(\@stored, \@recorded_values, 'the rows are stored in order, with the values that were sent, as real');

# The datagrams of the original client are stored exactly
my $before = DolonTest::collector_counters($collector);
foreach my $i (0 .. $#golden)
{
	# each received before the next is sent: arrival times in order
	DolonTest::send_all($to_collector, $golden[$i]);
	counters_risen($collector, $before, $i + 1);
}
is_deeply(counters_risen($collector, $before, 3),
	rises(received => 3, stored_runs => 1, stored_rows => 2),
	'the datagrams of the original client: one run and two rows stored');
is( $collector->safe_psql('postgres',
		"SELECT app_name, column_names::text FROM dolon.tracing_run WHERE uuid = '$golden_uuid'"),
	'golden-app|{' . join(',', @golden_columns) . '}',
	'the run of the original client is stored with its app_name and columns');
is( $collector->safe_psql('postgres',
		"SELECT array_agg(CASE row_data "
		  . join(' ', map { "WHEN ARRAY[" . join(', ', @{ $golden_rows[$_] }) . ']::real[] THEN ' . ($_ + 1) } 0 .. 1)
		  . " END ORDER BY date_time) FROM dolon.tracing_row WHERE uuid = '$golden_uuid'"),
	'{1,2}', 'its two rows are stored with their values as real, in order');

# Bad datagrams: each counted as malformed and dropped, the collector goes
# on; a run announced twice is stored once; a row of a run never announced is
# stored and counted
my $log_offset = -s $collector->logfile;
$before = DolonTest::collector_counters($collector);
my $bad = 0;
sub bad_uuid { return sprintf('bad00000-0000-4000-8000-%012d', ++$bad); }
my %malformed = (
	'not JSON' => 'this is not JSON {',
	'invalid UTF-8' => DolonTest::run_message(bad_uuid(), "caf\xC3\x28", 'a'),
	'a byte-order mark' => "\xEF\xBB\xBF" . DolonTest::run_message(bad_uuid(), 'bom', 'a'),
	'an unknown msg_type' => qq({"msg_type": "delete_trace_run", "app_name": "x", "column_names": ["a"], "uuid": ") . bad_uuid() . '"}',
	'app_name a number' => qq({"msg_type": "create_trace_run", "app_name": 42, "column_names": ["a"], "uuid": ") . bad_uuid() . '"}',
	'column_names not a list' => qq({"msg_type": "create_trace_run", "app_name": "x", "column_names": "a, b", "uuid": ") . bad_uuid() . '"}',
	'a column name not a string' => DolonTest::run_message(bad_uuid(), 'x', 'a", 7, "b'),
	'empty column_names' => qq({"msg_type": "create_trace_run", "app_name": "x", "column_names": [], "uuid": ") . bad_uuid() . '"}',
	'row_data containing a string' => DolonTest::row_message(bad_uuid(), 1, '"2"'),
	'row_data not a list' => qq({"msg_type": "row", "row_data": 1, "uuid": ") . bad_uuid() . '"}',
	'a uuid that is not a UUID' => DolonTest::row_message('32fb2b8f-573d-4eb2-afa4-0410ba05416g', 1),
	'a uuid too short' => DolonTest::row_message('32fb2b8f-573d-4eb2-afa4', 1),
	'a top-level array' => '[' . DolonTest::row_message(bad_uuid(), 1) . ']',
	'a value beyond real' => DolonTest::row_message(bad_uuid(), 1, '1e39'),
	'a negative value beyond real' => DolonTest::row_message(bad_uuid(), '-1e39'),
	'a double beyond real, as Python writes 1e300' => DolonTest::row_message(bad_uuid(), '1e+300'),
	'a bare nan in lowercase' => DolonTest::row_message(bad_uuid(), 'nan'),
	'a bare -NaN' => DolonTest::row_message(bad_uuid(), '-NaN'),
	'a bare +Infinity' => DolonTest::row_message(bad_uuid(), '+Infinity'),
	'a bare Inf' => DolonTest::row_message(bad_uuid(), 'Inf'),
	'NaN glued to a number' => DolonTest::row_message(bad_uuid(), '1NaN'),
	'Infinity glued to a letter' => DolonTest::row_message(bad_uuid(), 'Infinityx'),
	'two NaN without a comma' => DolonTest::row_message(bad_uuid(), 'NaN NaN'),
	'a bare NaN as msg_type' => qq({"msg_type": NaN, "row_data": [1], "uuid": ") . bad_uuid() . '"}',
	'a bare NaN as a key' => qq({"msg_type": "row", NaN: 1, "row_data": [1], "uuid": ") . bad_uuid() . '"}',
	'a bare Infinity as a column name' => qq({"msg_type": "create_trace_run", "app_name": "x", "column_names": [Infinity], "uuid": ") . bad_uuid() . '"}',
	'a bare NaN as the whole datagram' => 'NaN',
	'a string "NaN" as a value' => DolonTest::row_message(bad_uuid(), '"NaN"'),
	'a boolean as app_name' => qq({"msg_type": "create_trace_run", "app_name": true, "column_names": ["a"], "uuid": ") . bad_uuid() . '"}',
	'an app_name of 129 characters' => DolonTest::run_message(bad_uuid(), 'a' x 129, 'a'),
	'no msg_type' => qq({"row_data": [1], "uuid": ") . bad_uuid() . '"}');
my $duplicate = new_uuid();
my $orphan = new_uuid();
DolonTest::send_all($to_collector, values %malformed);
DolonTest::send_all($to_collector,
	DolonTest::run_message($duplicate, 'announced-twice', 'a'),
	DolonTest::run_message($duplicate, 'announced-twice', 'a'),
	DolonTest::row_message($orphan, 1),
	DolonTest::row_message($duplicate, 2));
my $too_large = 0;
SKIP:
{
	skip 'no Perl module here sends UDP over IPv6 (IO::Socket::IP)', 1 unless $have_ipv6;
	# Too large for IPv4 (65,507 bytes): only IPv6 carries it
	my $v6 = {
		socket => IO::Socket::IP->new(Proto => 'udp', PeerHost => '::1', PeerPort => $port)
		  || die "cannot create an IPv6 UDP socket: $!" };
	my $head = '{"msg_type": "row", "row_data": [1], "uuid": "' . bad_uuid() . '", "padding": "';
	my $datagram = $head . ('x' x (65_520 - length($head) - 2)) . '"}';
	is(length($datagram), 65_520, 'a datagram of 65,520 bytes');
	DolonTest::send_all($v6, $datagram);
	$too_large = 1;
}
my $malformed = keys(%malformed) + $too_large;
is_deeply(
	counters_risen($collector, $before, $malformed + 4),
	rises(received => $malformed + 4, malformed => $malformed, stored_runs => 1,
		duplicate_runs => 1, stored_rows => 2, orphan_rows => 1),
	"$malformed malformed datagrams counted, a run announced twice stored once, an orphan row stored");
is( $collector->safe_psql('postgres',
		"SELECT (SELECT count(*) FROM dolon.tracing_run WHERE uuid::text LIKE 'bad00000-%' OR app_name = 'bom')"
		  . " + (SELECT count(*) FROM dolon.tracing_row WHERE uuid::text LIKE 'bad00000-%')"),
	'0', 'nothing of the malformed datagrams is stored');
is( $collector->safe_psql('postgres',
		"SELECT count(*) FROM dolon.tracing_run WHERE uuid = '$duplicate'") . ' '
	  . count_rows($collector, $orphan),
	'1 1', 'the run announced twice is stored once, the orphan row is stored');
is(DolonTest::collector_counters($collector)->{pid}, $before->{pid}, 'the collector survived them all');

# A run announced again later, as tracers do: not stored again, counted
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, DolonTest::run_message($duplicate, 'announced-twice', 'a'),
	DolonTest::row_message($duplicate, 3));
is_deeply(counters_risen($collector, $before, 2),
	rises(received => 2, duplicate_runs => 1, stored_rows => 1),
	'a run announced again later is counted as a duplicate');
is($collector->safe_psql('postgres', "SELECT count(*) FROM dolon.tracing_run WHERE uuid = '$duplicate'"),
	'1', '... and still stored once');

# An app_name of 128 characters, some of them multibyte, is not too long
SKIP:
{
	skip 'the database encoding is not UTF8', 1
	  unless $collector->safe_psql('postgres', 'SHOW server_encoding') eq 'UTF8';
	my $long_name = ("\xC3\xA9" x 64) . ('a' x 64);
	my $long = new_uuid();
	$before = DolonTest::collector_counters($collector);
	DolonTest::send_all($to_collector, DolonTest::run_message($long, $long_name, 'a'));
	counters_risen($collector, $before, 1);
	is( $collector->safe_psql('postgres',
			"SELECT char_length(app_name) FROM dolon.tracing_run WHERE uuid = '$long'"),
		'128', 'an app_name of 128 characters (192 bytes of UTF-8) is stored');
}

# Malformed datagrams are logged, at most once a minute
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, ('not JSON') x 20);
is(counters_risen($collector, $before, 20)->{malformed}, 20,
	'20 more malformed datagrams are counted');
like($collector->safe_psql('postgres', 'SELECT last_error FROM dolon.collector'),
	qr/^malformed datagram: the datagram is not JSON$/,
	'dolon.collector shows the last problem');
eval { $collector->wait_for_log(qr/dolon collector: malformed datagram/, $log_offset) };
my $reports = () = slurp_file($collector->logfile, $log_offset) =~ /dolon collector: malformed datagram/g;
ok($reports >= 1 && $reports <= 2,
	'the log reports malformed datagrams, at most once a minute: '
	  . ($malformed + 20) . " datagrams, $reports lines");
is(DolonTest::collector_counters($collector)->{pid}, $before->{pid}, 'the collector still runs, the same process');

# A deeply nested datagram is malformed like any other: it costs the valid
# datagrams of its batch nothing
my $nested_run = new_uuid();
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, DolonTest::run_message($nested_run, 'nested', 'a'));
counters_risen($collector, $before, 1);
$before = DolonTest::collector_counters($collector);
send_in_one_batch($collector, 'postgres', $to_collector, DolonTest::row_message($nested_run, 0),
	DolonTest::row_message($nested_run, 1), '[' x 65_000, DolonTest::row_message($nested_run, 2));
is_deeply(counters_risen($collector, $before, 4),
	rises(received => 4, malformed => 1, stored_rows => 3),
	'a datagram of 65,000 nested arrays is counted as malformed, the rows of its batch are stored');

# Nesting is refused beyond 64 levels, the datagram's object included, and
# only then: a row whose extra key nests 63 arrays or objects is stored, one
# level more is malformed; arrays side by side are no deeper than one.  Each
# row carries its case's number.
sub row_with
{
	my ($uuid, $n, $extra) = @_;
	return qq({"msg_type": "row", "row_data": [$n], "uuid": "$uuid", $extra});
}
my @nesting = (
	[ '64 levels: 63 nested arrays in an extra key',
		qq("extra": ) . ('[' x 63) . (']' x 63), 1 ],
	[ '64 levels: 62 nested objects and an array',
		qq("extra": ) . ('{"k": ' x 62) . '[1]' . ('}' x 62), 1 ],
	[ '32 levels: 31 nested arrays', qq("extra": ) . ('[' x 31) . (']' x 31), 1 ],
	[ '61 keys holding an array each', join(', ', map { qq("k$_": [$_]) } 1 .. 61), 1 ],
	[ '1,000 arrays side by side', qq("extra": [) . join(', ', ('[1]') x 1000) . ']', 1 ],
	[ '65 levels: 64 nested arrays', qq("extra": ) . ('[' x 64) . (']' x 64), 0 ],
	[ '65 levels: 63 nested objects and an array',
		qq("extra": ) . ('{"k": ' x 63) . '[1]' . ('}' x 63), 0 ]);
my $levels = new_uuid();
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, DolonTest::run_message($levels, 'levels', 'case'));
counters_risen($collector, $before, 1);
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, map { row_with($levels, $_, $nesting[$_][1]) } 0 .. $#nesting);
my @kept = grep { $nesting[$_][2] } 0 .. $#nesting;
is_deeply(counters_risen($collector, $before, scalar @nesting),
	rises(received => scalar @nesting, stored_rows => scalar @kept,
		malformed => @nesting - @kept),
	'nesting: ' . @kept . ' rows stored, ' . (@nesting - @kept) . ' malformed');
my %stored_cases = map { $_ => 1 } split /\n/, $collector->safe_psql('postgres',
	"SELECT row_data[1] FROM dolon.tracing_row WHERE uuid = '$levels'");
foreach my $n (0 .. $#nesting)
{
	is(exists $stored_cases{$n} ? 1 : 0, $nesting[$n][2],
		$nesting[$n][0] . ($nesting[$n][2] ? ': stored' : ': malformed'));
}

# A key given twice counts once, the last one, as JSON parsers do (and
# mnemic's): the values of the two row_data are not put together
my $twice = new_uuid();
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, DolonTest::run_message($twice, 'twice', 'a'),
	qq({"msg_type": "row", "row_data": [1], "row_data": [2], "uuid": "$twice"}));
counters_risen($collector, $before, 2);
is( $collector->safe_psql('postgres', "SELECT string_agg(row_data::text, ' ') FROM dolon.tracing_row WHERE uuid = '$twice'"),
	'{2}', 'a row with row_data given twice has the values of the last one');

# Key order does not matter, extra keys are ignored, and the number of values
# is not checked against the columns, as in mnemic
my $loose = new_uuid();
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, DolonTest::run_message($loose, 'loose', 'a'),
	qq({"uuid": "$loose", "extra": {"k": [1, "s"]}, "row_data": [1, 2, 3], "msg_type": "row"}));
counters_risen($collector, $before, 2);
is($collector->safe_psql('postgres', "SELECT string_agg(row_data::text, ' ') FROM dolon.tracing_row WHERE uuid = '$loose'"),
	'{1,2,3}', 'a row with its keys in another order, an extra key and more values than columns is stored');

# Values become real as PostgreSQL turns them into real, as in mnemic's
# table: 2^24 + 1 rounds to even, null stays null; the double nearest to
# 1 + 2^-24 (as Python writes it) rounds up; the largest real, as PostgreSQL
# writes it, is within range, and so is a subnormal one
my %rounding = (
	'common values' => [ '16777217', undef, '-1e-05', '0.1' ],
	'a value just above halfway between two reals' => ['1.0000000596046448'],
	'the largest real' => ['3.4028235e+38'],
	'a subnormal real' => ['1e-40']);
foreach my $case (sort keys %rounding)
{
	my $uuid = new_uuid();
	my @values = @{ $rounding{$case} };
	$before = DolonTest::collector_counters($collector);
	DolonTest::send_all($to_collector, DolonTest::run_message($uuid, 'rounding', map { "v$_" } 1 .. @values),
		DolonTest::row_message($uuid, @values));
	counters_risen($collector, $before, 2);
	is( $collector->safe_psql('postgres',
			"SELECT row_data::text FROM dolon.tracing_row WHERE uuid = '$uuid'"),
		$collector->safe_psql('postgres',
			'SELECT ARRAY[' . join(', ', map { defined $_ ? "'$_'::real" : 'NULL::real' } @values) . ']::text'),
		"$case (" . join(', ', map { $_ // 'null' } @values) . '): stored as PostgreSQL rounds to real');
}

# The original client writes with Python's json.dumps: a value that is not
# finite as the bare tokens NaN, Infinity and -Infinity (outside JSON, and
# only those spellings), a boolean as true or false, a value too small for
# real as it is.  mnemic's backend stores NaN, the infinities, 1 and 0, and
# 0 for the value too small; a double beyond real is malformed (above).
my @python = (
	[ 'NaN', '[NaN, 1]', '{NaN,1}' ],
	[ 'infinities', '[Infinity, -Infinity]', '{Infinity,-Infinity}' ],
	[ 'booleans', '[true, false]', '{1,0}' ],
	[ 'a value below the range of real', '[1e-50, 1]', '{0,1}' ],
	[ 'a negative value below the range of real', '[-1e-50]', '{-0}' ],
	[ 'the tokens without spaces, among numbers and null',
		'[-Infinity,NaN,2.5,null,Infinity,true]', '{-Infinity,NaN,2.5,NULL,Infinity,1}' ],
	[ 'the tokens among zeros', '[0, NaN, 0, -Infinity, -0]', '{0,NaN,0,-Infinity,-0}' ],
	[ 'the tokens across lines', "[\n NaN\n,\tInfinity\r\n]", '{NaN,Infinity}' ]);
my $python_run = new_uuid();
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, DolonTest::run_message($python_run, 'python', 'a', 'b'));
counters_risen($collector, $before, 1);
foreach my $case (@python)
{
	my ($what, $row_data, $expected) = @$case;
	my $uuid = new_uuid();
	$before = DolonTest::collector_counters($collector);
	DolonTest::send_all($to_collector, qq({"msg_type": "row", "row_data": $row_data, "uuid": "$uuid"}));
	counters_risen($collector, $before, 1);
	(my $shown = $row_data) =~ s/([\t\n\r])/sprintf('\\x%02x', ord $1)/ge;
	is($collector->safe_psql('postgres', "SELECT row_data::text FROM dolon.tracing_row WHERE uuid = '$uuid'"),
		$expected, "as the original client writes them, $what ($shown): stored as mnemic does");
}
# The tokens elsewhere: in a key the collector ignores they are valid, as
# Python reads them; inside strings they are text
my $elsewhere = new_uuid();
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector,
	DolonTest::run_message($elsewhere, 'NaN Infinity', 'NaN', '-Infinity'),
	qq({"msg_type": "row", "row_data": [1], "uuid": "$elsewhere", "extra": {"a": NaN, "b": [Infinity, -Infinity, "NaN"]}}));
is_deeply(counters_risen($collector, $before, 2), rises(received => 2, stored_runs => 1, stored_rows => 1),
	'the tokens in an ignored key, and in strings, are valid');
is( $collector->safe_psql('postgres',
		"SELECT app_name, column_names::text, (SELECT row_data::text FROM dolon.tracing_row w WHERE w.uuid = r.uuid)"
		  . " FROM dolon.tracing_run r WHERE uuid = '$elsewhere'"),
	'NaN Infinity|{NaN,-Infinity}|{1}', '... and stored as sent');

# A collector whose extension is not created yet says so, holds what it
# receives, as much as its buffer takes (8,192 datagrams), and stores it once
# CREATE EXTENSION dolon has run: the datagrams that came first are kept,
# those beyond are counted as dropped.  Its counters are read from another
# database, whose extension it does not use.
ok(eval { $empty->wait_for_log(qr/dolon collector is waiting for CREATE EXTENSION dolon in database "postgres"/) },
	'the collector waiting for its extension says so in the log');
$empty->safe_psql('postgres', 'CREATE DATABASE elsewhere');
$empty->safe_psql('elsewhere', 'CREATE EXTENSION dolon');
my $to_empty = DolonTest::udp_sender($empty_port);

# What it holds when it exits is counted as dropped; it starts again
my $lost = new_uuid();
DolonTest::send_all($to_empty, map { DolonTest::row_message($lost, $_) } 1 .. 3);
ok( DolonTest::poll_until(
		sub {
			$empty->safe_psql('elsewhere', 'SELECT received FROM dolon.collector') eq '3';
		}),
	'datagrams come while the collector waits for its extension');
is( $empty->safe_psql('elsewhere',
		'SELECT waiting_for_extension, stored, malformed, dropped FROM dolon.collector'),
	't|0|0|0', 'dolon.collector shows the collector waiting, holding them: none stored, none dropped');
my $exited = DolonTest::collector_counters($empty, 'elsewhere')->{pid};
$empty->safe_psql('elsewhere', "SELECT pg_terminate_backend($exited)");
ok( DolonTest::poll_until(
		sub {
			$empty->safe_psql('elsewhere',
				"SELECT dropped = 3 AND pid IS DISTINCT FROM $exited FROM dolon.collector") eq 't';
		}),
	'the datagrams it held when it exited are counted as dropped');
ok( DolonTest::poll_until(
		sub {
			$empty->safe_psql('elsewhere',
				"SELECT pid IS NOT NULL AND pid <> $exited FROM dolon.collector") eq 't';
		}),
	'the collector starts again');

my $early = new_uuid();
DolonTest::send_all($to_empty, DolonTest::run_message($early, 'early', 'a'), map { DolonTest::row_message($early, $_) } 1 .. 4);
ok( DolonTest::poll_until(
		sub {
			$empty->safe_psql('elsewhere', 'SELECT received FROM dolon.collector') eq '8';
		}),
	'datagrams keep coming while the collector waits');
is( $empty->safe_psql('elsewhere', 'SELECT stored, dropped FROM dolon.collector'),
	'0|3', '... held: none stored, none more dropped');

# More than the buffer holds, 200 at a time so that the kernel drops none
# even with a small receive buffer: the buffer keeps the first, the rest is
# dropped
my $flood = new_uuid();
my $flood_sent = 0;
foreach my $chunk (1 .. 50)
{
	DolonTest::send_all($to_empty, map { DolonTest::row_message($flood, $flood_sent + $_) } 0 .. 199);
	$flood_sent += 200;
	DolonTest::poll_until(
		sub {
			$empty->safe_psql('elsewhere', 'SELECT received FROM dolon.collector')
			  >= 8 + $flood_sent;
		});
}
is( $empty->safe_psql('elsewhere',
		'SELECT received, dropped, stored FROM dolon.collector'),
	(8 + $flood_sent) . '|' . (3 + 5 + $flood_sent - 8192) . '|0',
	"$flood_sent more rows: the buffer holds 8,192 datagrams, the rest is dropped, counted");

my $extension_created = $empty->safe_psql('postgres', 'SELECT clock_timestamp()');
$log_offset = -s $empty->logfile;
$empty->safe_psql('postgres', 'CREATE EXTENSION dolon');
ok(eval { $empty->wait_for_log(qr/dolon collector stores traces in database "postgres" from now on/, $log_offset) },
	'the log says when the collector finds the extension');
ok(DolonTest::poll_until(sub { count_rows($empty, $early) == 4 }),
	'once CREATE EXTENSION dolon has run, the rows held are stored, nothing more being sent');
is( $empty->safe_psql('postgres',
		"SELECT app_name, creation_time < '$extension_created',"
		  . " (SELECT bool_and(date_time < '$extension_created') FROM dolon.tracing_row w WHERE w.uuid = r.uuid)"
		  . " FROM dolon.tracing_run r WHERE uuid = '$early'"),
	'early|t|t', '... their run too, both stamped with their arrival, before CREATE EXTENSION');
is( $empty->safe_psql('postgres',
		"SELECT count(*), min(row_data[1]), max(row_data[1]) FROM dolon.tracing_row WHERE uuid = '$flood'"),
	'8187|0|8186', '... and the first 8,187 rows of the flood, in the buffer with them');
my $late = new_uuid();
DolonTest::send_all($to_empty, DolonTest::run_message($late, 'late', 'a'), map { DolonTest::row_message($late, $_) } 1 .. 3);
ok(DolonTest::poll_until(sub { count_rows($empty, $late) == 3 }),
	'after CREATE EXTENSION dolon, the rows are stored');
is( $empty->safe_psql('postgres',
		'SELECT waiting_for_extension, received, stored_runs, stored_rows, dropped, malformed FROM dolon.collector'),
	'f|' . (12 + $flood_sent) . '|2|' . (7 + 8187) . '|' . (3 + $flood_sent - 8187) . '|0',
	'... the run too; every datagram is stored or dropped, counted');

# With dolon.database in LATIN1, an announcement whose app_name LATIN1
# cannot hold is malformed; the valid datagrams of its batch are stored
$empty->safe_psql('postgres',
	"CREATE DATABASE latin ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$empty->safe_psql('latin', 'CREATE EXTENSION dolon');
$empty->append_conf('postgresql.conf', "dolon.database = 'latin'");
$empty->restart;
my $latin = new_uuid();
ok( DolonTest::poll_until(
		sub {
			DolonTest::send_all($to_empty, DolonTest::run_message($latin, 'latin', 'a'));
			return $empty->safe_psql('latin',
				"SELECT count(*) FROM dolon.tracing_run WHERE uuid = '$latin'") eq '1';
		}),
	'the collector stores into a LATIN1 database');
$before = DolonTest::collector_counters($empty, 'latin');
send_in_one_batch($empty, 'latin', $to_empty, DolonTest::row_message($latin, 0),
	DolonTest::row_message($latin, 1), DolonTest::run_message(new_uuid(), "\xE6\xBC\xA2", 'a'), DolonTest::row_message($latin, 2));
is_deeply(counters_risen($empty, $before, 4, 'latin'),
	rises(received => 4, malformed => 1, stored_rows => 3),
	'an app_name with a character LATIN1 lacks is malformed, the rows of its batch are stored');

# Bursts of rows, as fast as Perl sends them: every row is stored or
# counted as dropped, when the collector keeps up, and when it is held up
# (by a lock, or stopped) so that the kernel drops what its receive buffer
# cannot hold.  Nothing is sent after a burst: the count of drops must be
# right within 2 s of the collector having stored all it received.
sub burst
{
	my ($uuid, $count, $after_sending) = @_;
	my $before = DolonTest::collector_counters($collector);
	my ($sent, $start) = (0, time);
	while ($sent < $count && time - $start < 10)
	{
		DolonTest::send_all($to_collector, DolonTest::row_message($uuid, $sent, $sent / 2));
		$sent++;
	}
	my $seconds = time - $start;
	$after_sending->() if $after_sending;

	# Poll until received plus dropped is what was sent, noting since when
	# the collector has stored all it received (caught up); give up 5 s
	# after it caught up
	my ($risen, $caught_up, $accounted);
	DolonTest::poll_until(
		sub {
			$risen = counters_risen($collector, $before);
			my $now = time;
			if ($risen->{stored_rows} + $risen->{malformed} < $risen->{received})
			{
				undef $caught_up;
			}
			else
			{
				$caught_up //= $now;
			}
			$accounted = $now if $risen->{received} + $risen->{dropped} >= $sent;
			return defined $accounted || (defined $caught_up && $now - $caught_up > 5);
		});
	my $lag = !defined $accounted ? undef
	  : defined $caught_up ? $accounted - $caught_up : 0;
	# Then wait until what was received is stored
	DolonTest::poll_until(
		sub {
			$risen = counters_risen($collector, $before);
			return $risen->{stored_rows} + $risen->{malformed} >= $risen->{received};
		});
	diag(sprintf('burst: %d rows sent in %.2f s, %d stored, %d dropped, accounted for %s',
			$sent, $seconds, $risen->{stored_rows}, $risen->{dropped},
			defined $lag ? sprintf('%.2f s after catching up', $lag) : 'never'));
	return ($sent, $risen, $lag);
}

my $burst = new_uuid();
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, DolonTest::run_message($burst, 'burst', 'n', 'half'));
counters_risen($collector, $before, 1);
my ($sent, $risen, $lag) = burst($burst, 50_000);
is($risen->{stored_rows} + $risen->{dropped}, $sent, "each of $sent rows is stored or counted as dropped");
is(count_rows($collector, $burst), $risen->{stored_rows}, 'the rows counted as stored are in dolon.tracing_row');
is($risen->{malformed}, 0, 'none of them is malformed');

my $lock_holder = $collector->background_psql('postgres');
$lock_holder->query_safe('BEGIN; LOCK TABLE dolon.tracing_row IN SHARE MODE');
my $held = new_uuid();
($sent, $risen, $lag) = burst($held, 50_000, sub { $lock_holder->query_safe('COMMIT'); });
$lock_holder->quit;
is($risen->{stored_rows} + $risen->{dropped}, $sent,
	"held up by a lock: each of $sent rows is stored or counted as dropped, with nothing sent after them");
ok(defined $lag && $lag <= 2, '... counted within 2 s of the collector catching up')
  or diag('lag: ' . ($lag // 'never'));
cmp_ok($risen->{dropped}, '>', 0, '... and the kernel dropped some');
is(count_rows($collector, $held), $risen->{stored_rows}, '... the rows counted as stored are in dolon.tracing_row');

# The collector stopped (SIGSTOP) while a burst larger than its receive
# buffer comes, then resumed: the drops show without any datagram after them
my $stopped = new_uuid();
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, DolonTest::run_message($stopped, 'stopped', 'n', 'half'));
counters_risen($collector, $before, 1);
kill 'STOP', $before->{pid};
($sent, $risen, $lag) = burst($stopped, 50_000, sub { kill 'CONT', $before->{pid}; });
is($risen->{received} + $risen->{dropped}, $sent,
	"stopped during a burst: each of $sent rows is received or counted as dropped, with nothing sent after them");
ok(defined $lag && $lag <= 2, '... counted within 2 s of the collector catching up')
  or diag('lag: ' . ($lag // 'never'));
cmp_ok($risen->{dropped}, '>', 0, '... and the kernel dropped some');
is($risen->{stored_rows}, $risen->{received}, '... every row received is stored');
is(count_rows($collector, $stopped), $risen->{stored_rows}, '... and in dolon.tracing_row');
is(DolonTest::collector_counters($collector)->{pid}, $before->{pid}, 'the collector went through the bursts');

# Reading back: the runs, a trace as rows, as CSV, as a sparkline, as SVG
my ($ok, $out, $err) = try_sql($collector,
	"SELECT app_name, column_names::text, row_count, last_row >= started FROM dolon.runs WHERE uuid = '$golden_uuid'");
is($out, 'golden-app|{' . join(',', @golden_columns) . '}|2|t', 'dolon.runs shows the run of the original client')
  or diag $err;
($ok, $out, $err) = try_sql($collector,
	"SELECT count(*), string_agg(value::text, ',' ORDER BY time) FILTER (WHERE column_name = 'work_hits')"
	  . " FROM dolon.trace('$golden_uuid')");
is($out, '14|33,63', 'dolon.trace gives each value of each row') or diag $err;
($ok, $out, $err) = try_sql($collector, "SELECT dolon.trace_csv('$golden_uuid')");
my @lines = split /\r?\n/, $out // '';
is($lines[0], join(',', 'time', @golden_columns), 'dolon.trace_csv has a header') or diag $err;
is(scalar(@lines), 3, '... and a line per row');
foreach my $row (0 .. 1)
{
	my (undef, @csv_values) = split /,/, $lines[ $row + 1 ] // '';
	ok(@csv_values == 7 && !grep({ !same_real($csv_values[$_], $golden_rows[$row][$_]) } 0 .. 6),
		'... with the values of row ' . ($row + 1))
	  or diag 'line: ' . ($lines[ $row + 1 ] // '(none)');
}
($ok, $out, $err) = try_sql($collector, "SELECT dolon.sparkline('$golden_uuid', 'work_hits')");
ok($ok && $out ne '', 'dolon.sparkline draws a column') or diag $err;
($ok, $out, $err) = try_sql($collector,
	"SELECT xml_is_well_formed_document(svg),"
	  . " (xpath('count(//svg:g[\@class=\"chart\"])', svg::xml, ARRAY[ARRAY['svg', 'http://www.w3.org/2000/svg']]))[1]::text::int"
	  . " FROM dolon.plot('$golden_uuid') AS svg");
is($out, 't|7', 'dolon.plot is a well-formed SVG document with one chart per column') or diag $err;

# Monitoring roles read the traces; other roles cannot, even with USAGE on
# the schema; nobody but superusers writes into them
$collector->safe_psql('postgres', q{
	CREATE ROLE watcher IN ROLE pg_monitor;
	CREATE ROLE outsider;
	GRANT USAGE ON SCHEMA dolon TO outsider;
	CREATE ROLE admin IN ROLE dolon_admin;
});
foreach my $read ('SELECT count(*) FROM dolon.collector',
	'SELECT count(*) FROM dolon.runs',
	'SELECT count(*) FROM dolon.tracing_run',
	'SELECT count(*) FROM dolon.tracing_row',
	"SELECT count(*) FROM dolon.trace('$golden_uuid')",
	"SELECT dolon.trace_csv('$golden_uuid')",
	"SELECT dolon.sparkline('$golden_uuid', 'work_hits')",
	"SELECT dolon.plot('$golden_uuid')")
{
	($ok, undef, $err) = try_sql($collector, "SET ROLE watcher; $read");
	ok($ok, "a member of pg_monitor can: $read") or diag $err;
	($ok, undef, $err) = try_sql($collector, "SET ROLE outsider; $read");
	like($err, qr/permission denied/, "other roles cannot: $read");
}
foreach my $role (qw(watcher admin))
{
	foreach my $write (
		"INSERT INTO dolon.tracing_run VALUES ('" . new_uuid() . "', 'forged', '{a}', now())",
		"INSERT INTO dolon.tracing_row VALUES ('$golden_uuid', '{1,2,3,4,5,6,7}', now())")
	{
		($ok, undef, $err) = try_sql($collector, "SET ROLE $role; $write");
		like($err, qr/permission denied/, "$role cannot: $write");
	}
}
is($collector->safe_psql('postgres', "SELECT count(*) FROM dolon.tracing_run WHERE app_name = 'forged'"),
	'0', 'nothing was forged');

# Retention: with dolon.collector_retention = 2s the old rows, then the
# runs left without rows, are deleted; rows that just arrived stay
my $old_rows = $collector->safe_psql('postgres', 'SELECT count(*) FROM dolon.tracing_row');
$before = DolonTest::collector_counters($collector);
$collector->safe_psql('postgres',
	"ALTER SYSTEM SET dolon.collector_retention = '2s'; SELECT pg_reload_conf()");
ok( DolonTest::poll_until(
		sub {
			$collector->safe_psql('postgres',
				"SELECT count(*) FROM dolon.tracing_row WHERE date_time < now() - interval '10 s'") eq '0'
			  && DolonTest::collector_counters($collector)->{expired_rows} > $before->{expired_rows};
		}),
	'with a retention of 2 s, old rows are deleted');
ok(DolonTest::poll_until(sub { $collector->safe_psql('postgres', 'SELECT count(*) FROM dolon.tracing_row') eq '0' }),
	'all the rows, which are older than 2 s, are deleted');
is(DolonTest::collector_counters($collector)->{expired_rows} - $before->{expired_rows}, $old_rows,
	"dolon.collector counts the $old_rows rows deleted");
is($collector->safe_psql('postgres', 'SELECT count(*) FROM dolon.tracing_run'), '0',
	'... and the runs left without rows are deleted too');
my $fresh = new_uuid();
DolonTest::send_all($to_collector, DolonTest::run_message($fresh, 'fresh', 'a'), DolonTest::row_message($fresh, 1));
ok(DolonTest::poll_until(sub { count_rows($collector, $fresh) == 1 }), 'a row arrives');
my $arrived = $collector->safe_psql('postgres',
	"SELECT date_time FROM dolon.tracing_row WHERE uuid = '$fresh'");
# Watch it until it is deleted, and its age then
my $gone_at_age;
ok( DolonTest::poll_until(
		sub {
			my ($count, $age) = split /\|/, $collector->safe_psql('postgres',
				"SELECT count(*), extract(epoch FROM clock_timestamp() - '$arrived'::timestamptz)
				 FROM dolon.tracing_row WHERE uuid = '$fresh'");
			$gone_at_age = $age;
			return $count == 0;
		}),
	'... and is deleted');
cmp_ok($gone_at_age, '>=', 2, "... not before it is 2 s old (gone at $gone_at_age s)");
ok( DolonTest::poll_until(
		sub {
			$collector->safe_psql('postgres',
				"SELECT count(*) FROM dolon.tracing_run WHERE uuid = '$fresh'") eq '0';
		}),
	'... then its run');
is(DolonTest::collector_counters($collector)->{pid}, $before->{pid}, 'the same collector ran all along');

# A run or a row of more columns than dolon.collector_max_columns is refused
$collector->append_conf('postgresql.conf', 'dolon.collector_max_columns = 5');
$collector->reload;
$collector->poll_query_until('postgres', 'SELECT current_setting($$dolon.collector_max_columns$$) = $$5$$')
  or die 'the setting is not in force';
my ($wide, $narrow) = (new_uuid(), new_uuid());
my ($refused_before) = $collector->safe_psql('postgres', 'SELECT refused FROM dolon.collector');
$before = DolonTest::collector_counters($collector);
DolonTest::send_all($to_collector, DolonTest::run_message($wide, 'wide', map { "c$_" } 1 .. 6),
	DolonTest::row_message($wide, 1 .. 6), DolonTest::run_message($narrow, 'narrow', map { "c$_" } 1 .. 5),
	DolonTest::row_message($narrow, 1 .. 5));
ok( DolonTest::poll_until(
		sub {
			$collector->safe_psql('postgres', 'SELECT refused FROM dolon.collector')
			  == $refused_before + 2 && count_rows($collector, $narrow) == 1;
		}),
	'a run and a row of 6 columns are refused and counted, when 5 are the most');
is($collector->safe_psql('postgres',
		"SELECT count(*) FROM dolon.tracing_run WHERE uuid IN ('$wide', '$narrow')") . ' '
	  . count_rows($collector, $wide),
	'1 0', '... and not stored, while those of 5 columns are');
ok($collector->wait_for_log(qr/refused a run of 6 columns: dolon.collector_max_columns is 5/),
	'the log says why');

$collector->stop;
$empty->stop;
DolonTest::check_log_clean($collector,
	allow => [
		qr/^permission denied for (?:function (?:plot|sparkline|trace|trace_csv)|table tracing_(?:row|run)|view (?:collector|runs))$/,
	]);
DolonTest::check_log_clean($_) foreach ($traced, $empty);

done_testing();
