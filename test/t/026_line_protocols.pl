# The line protocols of the time-series engines: a tracer whose host names
# influx://, graphite:// or statsd:// sends its rows to the real engines,
# each started by the test on loopback: VictoriaMetrics (its InfluxDB and
# Graphite listeners), InfluxDB 1.x (its UDP listener) and graphite-carbon
# (its whisper files), and to a UDP socket of the test for StatsD and for a
# capture of InfluxDB's datagrams.  Against ground truth: a value the test
# sets, SHOW max_connections, the columns of the run, and dolon.tracer's
# count of the rows it sent, which each engine must hold, no more and no
# fewer.  Then a Graphite that is absent, then back; a name of two
# addresses, and one that does not resolve; three servers into one
# VictoriaMetrics; the hosts refused.
use strict;
use warnings;

use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::IP;
use JSON::PP;
use POSIX ();
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonMetrics;
use DolonPeers;
use DolonTest;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $http = HTTP::Tiny->new(timeout => 10);

# The CPU time a process has taken, in clock ticks (/proc/PID/stat)
sub cpu_ticks
{
	my ($pid) = @_;
	my $stat = slurp_file("/proc/$pid/stat");
	$stat =~ s/^.*\) //s;
	my @fields = split ' ', $stat;
	return $fields[11] + $fields[12];    # utime, stime
}

# ---- the engines ----

my $vm_port = DolonMetrics::free_tcp_port();
my $vm_influx_port = DolonMetrics::free_tcp_port();
my $vm_graphite_port = DolonMetrics::free_tcp_port();
my $victoria = DolonPeers->start('victoria-metrics',
	[ 'victoria-metrics', "-storageDataPath=$dir/victoria",
	  "-httpListenAddr=127.0.0.1:$vm_port",
	  "-influxListenAddr=127.0.0.1:$vm_influx_port",
	  "-graphiteListenAddr=127.0.0.1:$vm_graphite_port",
	  '-retentionPeriod=1d', '-search.latencyOffset=0s' ],
	"http://127.0.0.1:$vm_port/health");

my $influx_port = DolonMetrics::free_tcp_port();
my $influx_udp_port = DolonMetrics::free_tcp_port();
my $influx_rpc_port = DolonMetrics::free_tcp_port();
append_to_file("$dir/influxdb.conf", <<"EOF");
reporting-disabled = true
bind-address = "127.0.0.1:$influx_rpc_port"
[meta]
  dir = "$dir/influxdb/meta"
[data]
  dir = "$dir/influxdb/data"
  wal-dir = "$dir/influxdb/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$influx_port"
  log-enabled = false
[monitor]
  store-enabled = false
[[udp]]
  enabled = true
  bind-address = "127.0.0.1:$influx_udp_port"
  database = "dolon"
  batch-size = 100
  batch-timeout = "100ms"
EOF
my $influxdb = DolonPeers->start('influxdb',
	[ 'influxd', '-config', "$dir/influxdb.conf" ],
	sub { $http->get("http://127.0.0.1:$influx_port/ping")->{status} == 204 });

my $carbon_port = DolonMetrics::free_tcp_port();
my $carbon_pickle_port = DolonMetrics::free_tcp_port();
my $carbon_query_port = DolonMetrics::free_tcp_port();
mkdir "$dir/carbon";
append_to_file("$dir/carbon/carbon.conf", <<"EOF");
[cache]
STORAGE_DIR = $dir/carbon/storage/
LOCAL_DATA_DIR = $dir/carbon/storage/whisper/
CONF_DIR = $dir/carbon/
LOG_DIR = $dir/carbon/log/
PID_DIR = $dir/carbon/
DATABASE = whisper
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = $carbon_port
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = $carbon_pickle_port
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = $carbon_query_port
WHISPER_AUTOFLUSH = True
EOF
append_to_file("$dir/carbon/storage-schemas.conf", <<"EOF");
[dolon]
pattern = .*
retentions = 1s:1h
EOF
my $carbon = DolonPeers->start('carbon-cache',
	[ 'carbon-cache', "--config=$dir/carbon/carbon.conf", '--nodaemon', 'start' ],
	sub { DolonPeers::tcp_port_open($carbon_port) });

# ---- the server ----

# The tracer's name needs escaping in every protocol: InfluxDB's tag value
# keeps it, escaped; Graphite's and StatsD's paths have it as one node
my $tracer = 'lines, one=1';
my $node = DolonTest::new_node('lines', 1,
	"cluster_name = 'lines'",
	"dolon.tracer_name = '$tracer'",
	"dolon.host = ''",
	"dolon.profilers = 'max_connections, app.level'",
	"dolon.profiler_role = 'profiler_runner'",
	"dolon.max_tracers = 4");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION dolon;
	CREATE ROLE profiler_runner;
	CREATE SCHEMA app;
	GRANT USAGE ON SCHEMA app TO profiler_runner;
	CREATE TABLE app.knob (v float8);
	INSERT INTO app.knob VALUES (42);
	GRANT SELECT ON app.knob TO profiler_runner;
	CREATE FUNCTION app.level() RETURNS float8 LANGUAGE sql AS 'SELECT v FROM app.knob';
});
my $max_connections = $node->safe_psql('postgres', 'SHOW max_connections');

# Profiled functions give the run 3 columns each: with 30 of them, a row
# no longer fits one datagram of a safe size in InfluxDB's protocol or
# StatsD's
$node->safe_psql('postgres', join("\n", map {
	sprintf(q{CREATE FUNCTION app.f%02d() RETURNS int LANGUAGE sql AS 'SELECT 1';
			  SELECT dolon.profile('app.f%02d()');}, $_, $_) } 1 .. 30));

# Set the configured tracer's backend and frequency, and wait until its
# worker has them
sub configure
{
	my ($host, $port, $frequency) = @_;
	$node->safe_psql('postgres', qq{
		ALTER SYSTEM SET dolon.host = '$host';
		ALTER SYSTEM SET dolon.port = $port;
		ALTER SYSTEM SET dolon.frequency = '$frequency';
		SELECT pg_reload_conf();
	});
	my ($protocol, $address) = $host =~ m{^(?:(\w+)://)?(.*)$};
	$protocol //= 'mnemic';
	$node->poll_query_until('postgres', qq{
		SELECT protocol = '$protocol' AND host = '$address' AND port = $port
		  AND frequency = '$frequency'::interval AND columns IS NOT NULL
		FROM dolon.tracer})
	  or die "the tracer does not take $host port $port every $frequency";
	return;
}

# The rows the configured tracer has sent, with its frequency at an hour:
# none is being sent
sub rows_sent
{
	return $node->safe_psql('postgres', 'SELECT rows_sent FROM dolon.tracer');
}

# A UDP socket of the test's, and what arrives on it
my $socket = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
	Proto => 'udp') or die "no UDP socket: $!";
my $socket_port = $socket->sockport;

# The datagrams that arrive within $seconds, or until &$done(\@datagrams)
sub capture
{
	my ($seconds, $done) = @_;
	my @datagrams;
	my $select = IO::Select->new($socket);
	my $until = time + $seconds;
	while (time < $until)
	{
		next unless $select->can_read(0.2);
		my $datagram;
		$socket->recv($datagram, 65536);
		push @datagrams, $datagram;
		last if $done && $done->(\@datagrams);
	}
	return @datagrams;
}

# Empty the socket
sub drain
{
	my $select = IO::Select->new($socket);
	while ($select->can_read(0))
	{
		my $datagram;
		$socket->recv($datagram, 65536);
	}
	return;
}

# ---- InfluxDB's line protocol, captured ----

configure('influx://127.0.0.1', $socket_port, '100ms');
$node->poll_query_until('postgres', 'SELECT columns = 2 + 90 FROM dolon.tracer');
my $columns = $node->safe_psql('postgres', 'SELECT columns FROM dolon.tracer');
is($columns, 2 + 90, 'the run: the two profilers and 3 columns of each of the 30 profiled functions');
drain();
# The datagrams of rows up to a whole one: one of every column (the custom
# profiler's value may be missing from a row, when it comes too late)
my %fields_of;
my @sizes;
my $bad_lines = 0;
my @timestamps;
capture(10, sub {
	my ($datagrams) = @_;
	my $datagram = $datagrams->[-1];
	push @sizes, length $datagram;
	foreach my $line (split /\n/, $datagram)
	{
		if ($line =~ /^dolon,tracer=lines\\,\\ one\\=1,server=lines ((?:[a-z0-9_]+=-?[0-9.e+]+,)*[a-z0-9_]+=-?[0-9.e+]+) ([0-9]{19})$/)
		{
			push @timestamps, $2 unless @timestamps && $timestamps[-1] == $2;
			$fields_of{$2}{$_->[0]} = $_->[1] foreach map { [ split /=/ ] } split /,/, $1;
		}
		else
		{
			$bad_lines++;
			diag("not a line of dolon's: $line");
		}
	}
	return grep { keys %{ $fields_of{$_} } == $columns } @timestamps[ 0 .. $#timestamps - 1 ];
});
my ($whole) = grep { keys %{ $fields_of{$_} } == $columns } @timestamps[ 0 .. $#timestamps - 1 ];
ok(@timestamps >= 2, 'InfluxDB line protocol: rows arrive');
is($bad_lines, 0, '... every line a line of the protocol: measurement dolon, tags tracer (escaped) and server, fields, a timestamp in ns');
ok(@sizes > @timestamps, '... a row in several datagrams');
ok(!(grep { $_ > 1432 } @sizes), '... none over 1432 bytes (largest: ' . (sort { $b <=> $a } @sizes)[0] . ')');
ok(defined $whole, '... a whole row: a field for each column');
my $row = $fields_of{ $whole // $timestamps[0] };
is($row->{level}, 42, '... the custom profiler\'s value');
is($row->{max_connections}, $max_connections, '... max_connections as SHOW gives it');
my $now_ns = time * 1e9;
ok(abs($timestamps[0] - $now_ns) < 60e9, '... stamped now, in nanoseconds');

# ---- StatsD, captured ----

$node->safe_psql('postgres', 'UPDATE app.knob SET v = -5');
configure('statsd://127.0.0.1', $socket_port, '100ms');
drain();
my %gauges;
my @statsd_sizes;
$bad_lines = 0;
my $negative = 0;
capture(10, sub {
	my ($datagrams) = @_;
	my $datagram = $datagrams->[-1];
	push @statsd_sizes, length $datagram;
	my @lines = split /\n/, $datagram;
	for (my $i = 0; $i < @lines; $i++)
	{
		if ($lines[$i] =~ /^dolon\.lines__one_1\.([a-z0-9_]+):(-?[0-9.e+]+)\|g$/)
		{
			$gauges{$1} = $2;
			$negative++ if $2 < 0 && $i > 0 && $lines[ $i - 1 ] eq "dolon.lines__one_1.$1:0|g";
		}
		else
		{
			$bad_lines++;
			diag("not a gauge of dolon's: $lines[$i]");
		}
	}
	return $negative >= 2 && keys %gauges >= $columns;
});
is($bad_lines, 0, 'StatsD: every line a gauge, dolon.<tracer>.<column>:<value>|g, the tracer\'s name one node of the path');
is($gauges{level}, -5, '... the custom profiler\'s value');
ok($negative >= 2, '... a negative gauge set by 0 first, as StatsD reads a signed value as a change');
is($gauges{max_connections}, $max_connections, '... max_connections as SHOW gives it');
is(scalar(keys %gauges), $columns, '... a gauge for each column');
ok(!(grep { $_ > 1432 } @statsd_sizes), '... in datagrams of at most 1432 bytes (largest: ' . (sort { $b <=> $a } @statsd_sizes)[0] . ')');
$node->safe_psql('postgres', 'UPDATE app.knob SET v = 42');

# ---- VictoriaMetrics ----

# The series VictoriaMetrics holds for a selector, through its export API:
# a list of { metric, values, timestamps }
sub victoria_export
{
	my ($match) = @_;
	$http->get("http://127.0.0.1:$vm_port/internal/force_flush");
	my $response = $http->get("http://127.0.0.1:$vm_port/api/v1/export?"
		  . $http->www_form_urlencode({ 'match[]' => $match }));
	die "export $match: $response->{status} $response->{content}"
	  unless $response->{status} == 200;
	return map { decode_json($_) } grep { /\S/ } split /\n/, $response->{content};
}

# Each engine in turn: the tracer sends to it at 100 ms until it holds a
# row with the value the test sets, then a row with a new value; then the
# tracer waits an hour between samples, and the engine must hold exactly
# the rows the tracer counts as sent meanwhile (unless $count is false).
# $points->($column) reads what the engine holds of a column: a list of
# values.  The rows are counted by max_connections, which every row has (a
# custom profiler's value may be missing from the first row after a
# pause, while its runner starts).
sub check_engine
{
	my ($engine, $host, $port, $points, $count) = @_;
	configure($host, $port, '1h');
	my $before = rows_sent();
	$node->safe_psql('postgres', 'UPDATE app.knob SET v = 42');
	configure($host, $port, '100ms');
	ok(DolonTest::poll_until(sub { grep { $_ == 42 } $points->('level') }),
		"$engine holds the custom profiler's value");
	$node->safe_psql('postgres', 'UPDATE app.knob SET v = 43');
	ok(DolonTest::poll_until(sub { grep { $_ == 43 } $points->('level') }),
		'... and follows it as it changes');
	configure($host, $port, '1h');
	my $sent = rows_sent() - $before;
	my @max = $points->('max_connections');
	ok(!(grep { $_ != $max_connections } @max), '... max_connections as SHOW gives it, in every row');
	return unless $count;
	my $held;
	DolonTest::poll_until(sub { ($held = () = $points->('max_connections')) >= $sent });
	is($held, $sent, "... every row the tracer sent, no more and no fewer ($sent)");
	return;
}

check_engine('VictoriaMetrics, InfluxDB line protocol',
	'influx://127.0.0.1', $vm_influx_port, sub {
		map { @{ $_->{values} } } victoria_export("dolon_$_[0]\{tracer=\"lines, one=1\",server=\"lines\"}");
	}, 1);
my @series = victoria_export('{__name__=~"dolon_.*",tracer="lines, one=1"}');
is(scalar(@series), $columns, '... a series for each column, the row\'s several datagrams joined');
my ($max_series) = grep { $_->{metric}{__name__} eq 'dolon_max_connections' } @series;
is_deeply([ sort keys %{ $max_series->{metric} } ], [qw(__name__ server tracer)],
	'... labelled with the tags tracer and server alone');

# VictoriaMetrics keeps one point per series and timestamp; the version
# Debian 12 packages reads Graphite's timestamps to the second, so that it
# is checked for the values, not for the rows
check_engine('VictoriaMetrics, Graphite plaintext',
	'graphite://127.0.0.1', $vm_graphite_port, sub {
		map { @{ $_->{values} } } victoria_export("{__name__=\"dolon.lines__one_1.$_[0]\"}");
	});
is(scalar(victoria_export('{__name__=~"dolon[.]lines__one_1[.].*"}')), $columns,
	'... a series for each column');

check_engine('InfluxDB 1.x, its UDP listener', 'influx://127.0.0.1', $influx_udp_port, sub {
		my $response = $http->get("http://127.0.0.1:$influx_port/query?"
			  . $http->www_form_urlencode({ db => 'dolon', epoch => 'ms',
					q => q{SELECT "level", "max_connections" FROM "dolon" WHERE "tracer" = 'lines, one=1' AND "server" = 'lines'} }));
		return () unless $response->{status} == 200;
		my $answer = decode_json($response->{content});
		my $series = $answer->{results}[0]{series} or return ();
		my $index = $_[0] eq 'level' ? 1 : 2;
		return map { $_->[$index] // () } @{ $series->[0]{values} };
	}, 1);

# carbon keeps a point a second (retentions = 1s:1h): it is checked for
# the values, not for the rows
check_engine('graphite-carbon, its whisper files', 'graphite://127.0.0.1', $carbon_port, sub {
		my $whisper = "$dir/carbon/storage/whisper/dolon/lines__one_1/$_[0].wsp";
		return () unless -f $whisper;
		my $fetched = DolonPeers::run('whisper-fetch', '--from=' . (time - 600), $whisper);
		return map { /^\d+\t(-?[0-9.]+)$/ ? $1 : () } split /\n/, $fetched;
	});
ok(-f "$dir/carbon/storage/whisper/dolon/lines__one_1/max_connections.wsp",
	'... a whisper file for each column, under dolon/<tracer>/');

# ---- Graphite's stream, read by the test ----

# What arrives on a connection until nothing has arrived for $quiet
# seconds: its whole lines, and the part of a line after the last one
sub read_lines
{
	my ($connection, $quiet) = @_;
	my $received = '';
	my $reader = IO::Select->new($connection);
	while ($reader->can_read($quiet))
	{
		last unless sysread($connection, $received, 65536, length $received);
	}
	my @lines = split /\n/, $received;
	my $rest = $received =~ /\n\z/ ? '' : pop @lines;
	return (\@lines, $rest);
}

sub graphite_line
{
	return $_[0] =~ m{^dolon\.lines__one_1\.[a-z0-9_]+ -?[0-9.e+]+ [0-9]{10}\.[0-9]{3}$};
}

my $graphite_port = DolonMetrics::free_tcp_port();
my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $graphite_port,
	Proto => 'tcp', Listen => 5, ReuseAddr => 1) or die "cannot listen on $graphite_port: $!";
configure('graphite://127.0.0.1', $graphite_port, '1h');
my ($rows_before, $errors_before) = split /\|/,
  $node->safe_psql('postgres', 'SELECT rows_sent, send_errors FROM dolon.tracer');
configure('graphite://127.0.0.1', $graphite_port, '100ms');
my $select = IO::Select->new($listener);
$select->can_read(60) or die 'the tracer does not connect to Graphite';
my $connection = $listener->accept;
$node->poll_query_until('postgres', "SELECT rows_sent >= $rows_before + 10 FROM dolon.tracer");
configure('graphite://127.0.0.1', $graphite_port, '1h');
my ($rows_after, $errors_after) = split /\|/,
  $node->safe_psql('postgres', 'SELECT rows_sent, send_errors FROM dolon.tracer');
my ($lines, $rest) = read_lines($connection, 2);
is($errors_after, $errors_before, 'Graphite, read by the test: no send error');
is(scalar(grep { /^dolon\.lines__one_1\.max_connections / } @$lines),
	$rows_after - $rows_before, '... a row for each row the tracer sent');
is(scalar(grep { !/^dolon\.lines__one_1\.level / } @$lines), ($rows_after - $rows_before) * ($columns - 1),
	'... a line for each of its columns (the custom profiler\'s may have no value in a row)');
is(scalar(grep { !graphite_line($_) } @$lines) . $rest, '0',
	'... each whole: dolon.<tracer>.<column> <value> <unix seconds, to the millisecond>');
close $connection;

# Graphite goes away: the tracer samples on, counting its failed
# connections, and keeps what it could not send
close $listener;
configure('graphite://127.0.0.1', $graphite_port, '100ms');
my $samples = $node->safe_psql('postgres', 'SELECT samples FROM dolon.tracer');
ok( $node->poll_query_until('postgres', qq{
		SELECT samples > $samples + 10 AND send_errors > $errors_after
		  AND last_error LIKE 'could not connect to "127.0.0.1" port $graphite_port: Connection refused'
		FROM dolon.tracer}),
	'with no Graphite listening, the tracer samples on and counts its failed connections');
my $away_since = time;
$listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $graphite_port,
	Proto => 'tcp', Listen => 5, ReuseAddr => 1) or die "cannot listen on $graphite_port: $!";
$select = IO::Select->new($listener);
ok($select->can_read(60), '... connects again once Graphite listens, within its back-off');
$connection = $listener->accept;
configure('graphite://127.0.0.1', $graphite_port, '1h');
($lines, $rest) = read_lines($connection, 2);
is(scalar(grep { !graphite_line($_) } @$lines) . $rest, '0',
	'... whole lines, the first one included');
my ($first_second) = $lines->[0] =~ / ([0-9]+)\.[0-9]{3}$/;
ok($first_second <= $away_since, '... the rows of the time it was away among them, kept and sent');
close $connection;
close $listener;

# A tracer that exits in the middle of a line resets its connection, so that
# Graphite drops the part it has rather than take it as a line.  A tracer at
# 10 ms sends to a Graphite that accepts and does not read, until its socket
# and its buffer are full (it drops rows, counted as send errors): the last
# write the socket took most likely ended in the middle of a line.  Then the
# tracer stops; what arrives ends with a whole line, or with a reset.
$listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $graphite_port,
	Proto => 'tcp', Listen => 5, ReuseAddr => 1) or die "cannot listen on $graphite_port: $!";
$node->safe_psql('postgres', qq{
	SELECT dolon.start_tracer('midline', '10ms', 'graphite://127.0.0.1', $graphite_port, 'max_connections')});
IO::Select->new($listener)->can_read(60) or die 'the tracer "midline" does not connect';
$connection = $listener->accept;
ok( $node->poll_query_until('postgres',
		q{SELECT send_errors > 0 FROM dolon.tracers WHERE tracer_name = 'midline'}),
	'a tracer sending to a Graphite that does not read fills its buffer and drops rows');
$node->safe_psql('postgres', q{SELECT dolon.stop_tracer('midline')});
my ($received, $ending) = ('', 'nothing');
while (IO::Select->new($connection)->can_read(60))
{
	my $got = sysread($connection, $received, 65536, length $received);
	next if $got;
	$ending = defined $got ? 'end' : $!{ECONNRESET} ? 'reset' : "error: $!";
	last;
}
ok($ending eq 'reset' || ($ending eq 'end' && $received =~ /\n\z/),
	"stopped, it leaves Graphite no part of a line: its connection is reset, or ends after a whole line (got $ending after "
	  . length($received) . ' bytes' . ($received =~ /\n\z/ ? '' : ', the last line cut') . ')');
close $connection;
close $listener;

# A host name with several addresses: the stream tries each in turn.  The
# name resolves to 127.0.0.1, then ::1 (a hosts file of the test's, read by
# the server through nss_wrapper); Graphite listens on ::1 alone, so the
# first address refuses the connection and the second takes it.
SKIP:
{
	my ($nss_wrapper) = glob('/usr/lib/*/libnss_wrapper.so');
	my $port = DolonMetrics::free_tcp_port();
	my $listener6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => $port,
		Proto => 'tcp', Listen => 5, ReuseAddr => 1);
	skip 'no IPv6 loopback, or no nss_wrapper', 5 unless $listener6 && $nss_wrapper;
	my $hosts = PostgreSQL::Test::Utils::tempdir() . '/hosts';
	PostgreSQL::Test::Utils::append_to_file($hosts,
		"127.0.0.1 graphite.dolon.test\n::1 graphite.dolon.test\n");
	my $twohomes = DolonTest::new_node('twohomes', $port,
		"dolon.host = 'graphite://graphite.dolon.test'",
		"dolon.tracer_name = 'twohomes'",
		"dolon.profilers = 'max_connections'");
	{
		local $ENV{LD_PRELOAD} = join ':', grep { defined && length } $ENV{LD_PRELOAD}, $nss_wrapper;
		local $ENV{NSS_WRAPPER_HOSTS} = $hosts;
		$twohomes->start;
	}
	my $connected = ok(IO::Select->new($listener6)->can_read(60),
		'a host name of two addresses: the stream connects to the second when the first refuses');
	my $connection6 = $connected ? $listener6->accept : undef;
	my $received6 = '';
	while ($connection6 && ($received6 =~ tr/\n//) < 3 && IO::Select->new($connection6)->can_read(60))
	{
		last unless sysread($connection6, $received6, 65536, length $received6);
	}
	my @lines6 = grep { /\n\z/ } split /(?<=\n)/, $received6;
	ok(@lines6 >= 3 && !(grep { !/^dolon\.twohomes\.max_connections [0-9]+ [0-9]{10}\.[0-9]{3}\n\z/ } @lines6),
		'... and sends its lines there (' . scalar(@lines6) . ' read)');
	close $connection6 if $connection6;
	close $listener6;
	$twohomes->safe_psql('postgres', 'CREATE EXTENSION dolon');
	ok( $twohomes->poll_query_until('postgres', qq{
			SELECT last_error ~ '^could not connect to "graphite\\.dolon\\.test" port $port \\((127\\.0\\.0\\.1|::1)\\): Connection refused\$'
			FROM dolon.tracer}),
		'... and, refused on both, says which address refused');

	# A host name that does not resolve: a stream with lines to send waits
	# for the next lookup, due 10 s after the last, instead of trying again
	# in a loop.  From its first failure on, over 40 samples (4 s at 100 ms,
	# the back-off of 1 s passed), the tracer takes next to no CPU.
	$twohomes->safe_psql('postgres', qq{
		SELECT dolon.start_tracer('nowhere', '100ms', 'graphite://missing.dolon.test', $port,
			'max_connections')});
	ok( $twohomes->poll_query_until('postgres', q{
			SELECT last_error ~ '^could not resolve host "missing\.dolon\.test"'
			FROM dolon.tracers WHERE tracer_name = 'nowhere'}),
		'a host name that does not resolve: the tracer says so');
	my ($pid, $samples) = split /\|/, $twohomes->safe_psql('postgres', q{
		SELECT pid || '|' || samples FROM dolon.tracers WHERE tracer_name = 'nowhere'});
	my ($cpu, $start) = (cpu_ticks($pid), Time::HiRes::time());
	$twohomes->poll_query_until('postgres', qq{
		SELECT samples >= $samples + 40 FROM dolon.tracers WHERE tracer_name = 'nowhere'})
	  or die 'the tracer "nowhere" does not sample';
	my $share = (cpu_ticks($pid) - $cpu) / POSIX::sysconf(POSIX::_SC_CLK_TCK())
	  / (Time::HiRes::time() - $start);
	ok($share < 0.3,
		sprintf('... and waits for the next lookup: %.0f %% of a CPU over 40 samples', 100 * $share));
	$twohomes->stop;
}

# ---- dolon.start_tracer, dolon.tracers ----

$node->safe_psql('postgres', qq{
	SELECT dolon.start_tracer('started', '100ms', 'graphite://127.0.0.1', $carbon_port, 'max_connections')});
is($node->safe_psql('postgres', q{SELECT protocol || ' ' || host FROM dolon.tracers WHERE tracer_name = 'started'}),
	'graphite 127.0.0.1', 'dolon.tracers shows a started tracer\'s protocol, its host without the scheme');
ok( DolonTest::poll_until(sub { -f "$dir/carbon/storage/whisper/dolon/started/max_connections.wsp" }),
	'... and the tracer sends to carbon');
$node->safe_psql('postgres', q{SELECT dolon.stop_tracer('started')});

# ---- Hosts refused ----

my ($rc, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT dolon.start_tracer('bad', '1s', 'kafka://127.0.0.1', 9092, 'idle')});
like($stderr, qr/ERROR:  invalid host for tracer "bad"\nDETAIL:  "kafka" is not a protocol of dolon\.\nHINT:  The valid schemes are mnemic:\/\/, influx:\/\/, graphite:\/\/ and statsd:\/\/; a host without one speaks mnemic\./,
	'an unknown scheme is refused, with the valid ones');
($rc, $stdout, $stderr) = $node->psql('postgres', q{ALTER SYSTEM SET dolon.host = 'influx://'});
like($stderr, qr/ERROR:  invalid value for parameter "dolon.host": "influx:\/\/"\nDETAIL:  The host of the backend must not be empty\./,
	'a scheme without a host is refused');

# ---- Three servers into one VictoriaMetrics ----

configure('influx://127.0.0.1', $vm_influx_port, '100ms');
my @others;
# The third in LATIN1, its tracer's name with it: the names are sent in
# UTF-8, converted in the sample's transaction
foreach my $name (qw(second third))
{
	my $other = DolonTest::new_node($name, $vm_influx_port,
		$name eq 'third' ? { extra => [ '--encoding=LATIN1', '--locale=C' ] } : (),
		"cluster_name = '$name'",
		"dolon.host = 'influx://127.0.0.1'",
		"dolon.profilers = 'max_connections'",
		$name eq 'third' ? "dolon.tracer_name = 'troisi\xe8me'" : ());
	$other->start;
	push @others, $other;
}
my %servers;
ok( DolonTest::poll_until(sub {
		%servers = map { $_->{metric}{server} => $_->{metric}{tracer} }
		  victoria_export('dolon_max_connections');
		return keys %servers == 3;
	}),
	'three servers into one VictoriaMetrics: one query returns each, by its tag server');
is_deeply(\%servers, { lines => $tracer, second => 'second', third => "troisi\x{e8}me" },
	'... each with its tracer, a LATIN1 server\'s name in UTF-8');

$_->stop foreach @others;
DolonTest::check_log_clean($node, allow => [
	qr/^invalid host for tracer "bad"$/,
	# the runner of custom profilers starts again after each pause of an
	# hour, while the engines run on the same machine
	qr/^dolon tracer "lines, one=1": profiler app\.level: no value in time/,
	qr/^invalid value for parameter "dolon\.host": "influx:\/\/"$/,
]);

done_testing();
