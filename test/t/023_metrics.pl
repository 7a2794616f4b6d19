# The metrics endpoint (dolon.metrics_port): what it serves, in which
# format, to whom; its values against their ground truth in the statistics
# views, in a state the test controls; and what hostile clients (garbage,
# huge requests, many connections held open, slow ones) can do to it:
# nothing that outlives them.
use strict;
use warnings;

use Encode ();
use IO::Select;
use JSON::PP qw(decode_json);
use IO::Socket::INET;
use MIME::Base64 ();
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use DolonTest;
use DolonMetrics;

my $sink = DolonTest::Receiver->new;
my $port = DolonMetrics::free_tcp_port();
my $collector_port = DolonMetrics::free_tcp_port();
my $node = DolonTest::new_node('metrics', $sink->port,
	"dolon.metrics_port = $port",
	"dolon.metrics_listen_addresses = '127.0.0.1, ::1'",
	"dolon.collector_port = $collector_port");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dolon');

sub metrics_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'dolon metrics'");
}

# The worker is up when it answers
DolonTest::poll_until(sub { DolonMetrics::get($port, '/metrics')->{status} == 200 })
  or die 'the metrics endpoint does not answer';
my $pid = metrics_pid();
like($pid, qr/^\d+$/, 'the worker "dolon metrics" runs');
like(slurp_file($node->logfile), qr/dolon metrics listening on 127\.0\.0\.1, ::1 port $port/,
	'it logs where it listens');

# ---- The endpoint ----

my $response = DolonMetrics::get($port, '/metrics');
is($response->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
	'GET /metrics: the Prometheus text format 0.0.4');
my $text = DolonMetrics::parse($response->{content});
is(join("\n", @{ $text->{errors} }), '', '... well formed: every sample of a declared family, no series twice');
is($text->{samples}{pg_up}, 1, 'pg_up is 1');
is($text->{samples}{pg_settings_max_connections},
	$node->safe_psql('postgres', 'SHOW max_connections'),
	'pg_settings_max_connections is the setting');
is($text->{types}{pg_stat_database_xact_commit}, 'counter', 'counters are counters');
is($text->{types}{pg_stat_activity_count}, 'gauge', 'gauges are gauges');

my $open = DolonMetrics::get($port, '/metrics',
	{ Accept => 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' });
is($open->{headers}{'content-type'}, 'application/openmetrics-text; version=1.0.0; charset=utf-8',
	'OpenMetrics when the scraper asks for it, as Prometheus does');
like($open->{content}, qr/\n# EOF\n\z/, '... ending with # EOF');
my $om = DolonMetrics::parse($open->{content});
is(join("\n", @{ $om->{errors} }), '', '... well formed');
is($om->{types}{pg_stat_database_xact_commit}, 'unknown',
	'... the exporter\'s counters without _total are of type unknown there, under the same names');
is(join(',', sort keys %{ $om->{types} }),
	join(',', sort map { $text->{types}{$_} eq 'counter' && /^dolon_/ ? s/_total$//r : $_ } keys %{ $text->{types} }),
	'... the same families in both formats (dolon\'s counters named without _total in OpenMetrics, their samples with it)');
is(join(',', sort grep { /^dolon_/ } keys %{ $om->{samples} }),
	join(',', sort grep { /^dolon_/ } keys %{ $text->{samples} }),
	'... and the same series');

is(DolonMetrics::get($port, '/metrics', { Accept => 'application/openmetrics-text;q=0, text/plain' })
	  ->{headers}{'content-type'},
	'text/plain; version=0.0.4; charset=utf-8', 'OpenMetrics refused (q=0): the text format');
is(DolonMetrics::get($port, '/metrics', {}, '::1')->{status}, 200,
	'it answers on ::1 too');
my $head = DolonMetrics::get($port, '/metrics', {}, undef, 'HEAD');
is($head->{status}, 200, 'HEAD /metrics: 200');
is($head->{content} // '', '', '... with no body');
my $post = DolonMetrics::get($port, '/metrics', {}, undef, 'POST');
is($post->{status}, 405, 'POST: 405');
is($post->{headers}{allow}, 'GET, HEAD', '... saying what is allowed');
is(DolonMetrics::get($port, '/nothing')->{status}, 404, 'another path: 404');

# ---- Values against their ground truth ----

# A database where only the test works: its counters move only when the
# test makes them
$node->safe_psql('postgres', 'CREATE DATABASE watched');
$node->safe_psql('watched', q{
	CREATE TABLE tidy (id int);
	CREATE SCHEMA "odd ""schema""";
	CREATE TABLE "odd ""schema""".messy (id int);
	INSERT INTO tidy SELECT generate_series(1, 100);
	INSERT INTO "odd ""schema""".messy SELECT generate_series(1, 50);
	DELETE FROM "odd ""schema""".messy WHERE id <= 20;
	UPDATE tidy SET id = id + 1 WHERE id <= 10;
	ANALYZE tidy;
	VACUUM "odd ""schema""".messy;
});
$node->safe_psql('watched', 'SELECT * FROM tidy') for 1 .. 3;

# Sessions in each state, in the watched database: two idle, one idle in a
# transaction, one whose transaction failed, one active
my @idle = map { $node->background_psql('watched') } 1 .. 2;
my $in_transaction = $node->background_psql('watched');
$in_transaction->query_safe('BEGIN; SELECT txid_current()');
my $aborted = $node->background_psql('watched', on_error_stop => 0);
$aborted->query('BEGIN; SELECT 1 / 0');
my $active = $node->background_psql('watched', on_error_stop => 0);
$active->query_until(qr/sleeping/, "\\echo sleeping\nSELECT pg_sleep(600);\n");

# The ground truth, once the statistics of the work above are flushed and
# the sessions are in their states
my $states_sql = q{
	SELECT string_agg(state || '=' || n, ',' ORDER BY state)
	FROM (SELECT state, count(*) AS n FROM pg_stat_activity
	      WHERE datname = 'watched' AND state IS NOT NULL GROUP BY state) s};
$node->poll_query_until('postgres', "SELECT ($states_sql) = 'active=1,idle=2,idle in transaction=1,idle in transaction (aborted)=1'")
  or die 'the sessions are not in their states: ' . $node->safe_psql('postgres', $states_sql);
my $tables_sql = q{
	SELECT schemaname, relname, seq_scan, seq_tup_read, n_tup_ins, n_tup_upd,
	       n_tup_del, n_tup_hot_upd, n_live_tup, n_dead_tup, n_mod_since_analyze,
	       vacuum_count, autovacuum_count, analyze_count, autoanalyze_count
	FROM pg_stat_user_tables ORDER BY relid};
$node->poll_query_until('watched',
	"SELECT n_tup_del = 20 AND vacuum_count = 1 FROM pg_stat_user_tables WHERE relname = 'messy'")
  or die 'the statistics of the watched tables are not flushed';

sub labels_of { my ($key) = @_; return $key =~ /\{(.*)\}/ ? $1 : ''; }

# Databases: a scrape between two reads of pg_stat_database that agree
my @database_columns = qw(numbackends xact_commit xact_rollback blks_read blks_hit
  tup_returned tup_fetched tup_inserted tup_updated tup_deleted temp_files
  temp_bytes deadlocks);
my $database_sql = 'SELECT ' . join(", ", @database_columns)
  . " FROM pg_stat_database WHERE datname = 'watched'";

# A scrape between two reads of the ground truth that agree, by a session
# that stays (a new connection would move the counters of shared objects)
my $truth = $node->background_psql('postgres');
sub steady_scrape
{
	my ($sql) = @_;
	my ($before, $metrics, $after);
	DolonTest::poll_until(
		sub {
			$before = $truth->query_safe($sql);
			$metrics = DolonMetrics::scrape($port);
			$after = $truth->query_safe($sql);
			return $before eq $after;
		})
	  or die "the ground truth does not keep still: $before / $after";
	return ($before, $metrics);
}
my ($before, $metrics) = steady_scrape($database_sql);
my $datid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'watched'");
my %truth;
@truth{@database_columns} = split /\|/, $before;
my %seen;
@seen{@database_columns} = map {
	$metrics->{samples}{ DolonMetrics::series_key("pg_stat_database_$_",
		{ datid => $datid, datname => 'watched' }) } // 'missing'
} @database_columns;
is_deeply(\%seen, \%truth, 'pg_stat_database_* of the watched database equal pg_stat_database, column by column');
is($seen{numbackends}, 5, '... numbackends counts its 5 sessions');
cmp_ok($seen{tup_inserted}, '>=', 150, '... tup_inserted counts the inserts');

# Every database of pg_database, and the row of shared objects, have a row
my $databases = $node->safe_psql('postgres',
	"SELECT string_agg(oid || ':' || datname, ',' ORDER BY oid) FROM pg_database");
my @rows = sort { (split /:/, $a)[0] <=> (split /:/, $b)[0] }
  map { my $l = $metrics->{labels}{$_}; "$l->{datid}:$l->{datname}" }
  grep { /^pg_stat_database_xact_commit\{/ } keys %{ $metrics->{samples} };
is(join(',', @rows), "0:,$databases",
	'pg_stat_database_*: a row per database, and the row of shared objects (datid 0)');
my $shared_sql = 'SELECT ' . join(", ", @database_columns)
  . ' FROM pg_stat_database WHERE datid = 0';
my ($shared_truth, $shared_metrics) = steady_scrape($shared_sql);
is(join('|', map { $shared_metrics->{samples}{ DolonMetrics::series_key("pg_stat_database_$_",
	{ datid => 0, datname => '' }) } } @database_columns),
	$shared_truth, '... the shared row equals pg_stat_database\'s');

# Sessions: per database and state, with zeros
my %counts;
foreach my $key (grep { /^pg_stat_activity_count\{/ } keys %{ $metrics->{samples} })
{
	my $l = $metrics->{labels}{$key};
	next unless $l->{datname} eq 'watched';
	$counts{ $l->{state} } = $metrics->{samples}{$key};
}
is_deeply(\%counts,
	{ active => 1, idle => 2, 'idle in transaction' => 1,
	  'idle in transaction (aborted)' => 1, 'fastpath function call' => 0, disabled => 0 },
	'pg_stat_activity_count of watched: its sessions in each state, and zeros for the other states');
my $activity_databases = $node->safe_psql('postgres',
	'SELECT string_agg(datname, \',\' ORDER BY datname) FROM pg_database');
my %activity_datnames = map { $metrics->{labels}{$_}{datname} => 1 }
  grep { /^pg_stat_activity_count\{/ } keys %{ $metrics->{samples} };
is(join(',', sort keys %activity_datnames), $activity_databases,
	'... a row for every database of pg_database');
is(scalar(grep { /^pg_stat_activity_count\{/ } keys %{ $metrics->{samples} }),
	6 * scalar(keys %activity_datnames), '... six states each');

# The age of the transaction held open, as pg_stat_activity gives it, read
# just before and just after a scrape
my $age_sql = q{
	SELECT extract(epoch FROM clock_timestamp() - xact_start) FROM pg_stat_activity
	WHERE datname = 'watched' AND state = 'idle in transaction'};
my $age_key = DolonMetrics::series_key('pg_stat_activity_max_tx_duration',
	{ datname => 'watched', state => 'idle in transaction' });
my $age_before = $node->safe_psql('postgres', $age_sql);
my $age = DolonMetrics::scrape($port)->{samples}{$age_key};
my $age_after = $node->safe_psql('postgres', $age_sql);
ok($age >= $age_before - 0.001 && $age <= $age_after + 0.001,
	"pg_stat_activity_max_tx_duration of the open transaction ($age s) is its age in pg_stat_activity ($age_before to $age_after s)");
is($metrics->{samples}{ DolonMetrics::series_key('pg_stat_activity_max_tx_duration',
	{ datname => 'watched', state => 'disabled' }) }, 0, '... and 0 for a state with no session');

# Tables: the user tables of the database dolon connects to.  The watched
# tables are in another database, so it is the tables of postgres that are
# reported; make some there too.
$node->safe_psql('postgres', q{
	CREATE TABLE here (id int);
	INSERT INTO here SELECT generate_series(1, 42);
	DELETE FROM here WHERE id > 40;
	CREATE TABLE "new
line" (id int);
	INSERT INTO "new
line" VALUES (1);
});
$node->poll_query_until('postgres',
	"SELECT n_live_tup = 40 AND n_dead_tup = 2 FROM pg_stat_user_tables WHERE relname = 'here'")
  or die 'the statistics of the tables of postgres are not flushed';
my @table_columns = qw(seq_scan seq_tup_read n_tup_ins n_tup_upd n_tup_del n_tup_hot_upd
  n_live_tup n_dead_tup n_mod_since_analyze vacuum_count autovacuum_count
  analyze_count autoanalyze_count);
my $table_sql = 'SELECT schemaname, relname, ' . join(', ', @table_columns)
  . ' FROM pg_stat_user_tables ORDER BY schemaname, relname';
my $table_truth;
($table_truth, $metrics) = steady_scrape($table_sql);
my %tables;
foreach my $key (grep { /^pg_stat_user_tables_/ } keys %{ $metrics->{samples} })
{
	my $l = $metrics->{labels}{$key};
	my ($column) = $key =~ /^pg_stat_user_tables_(\w+)\{/;
	is($l->{datname}, 'postgres', "$key is of the database dolon connects to")
	  unless $l->{datname} eq 'postgres';
	$tables{"$l->{schemaname}|$l->{relname}"}{$column} = $metrics->{samples}{$key};
}
my $seen_tables = join("\n", map {
	my $t = $_;
	join('|', $t, map { $tables{$t}{$_} // 'missing' } @table_columns)
} sort keys %tables);
is($seen_tables, $table_truth,
	'pg_stat_user_tables_* equal pg_stat_user_tables, table by table and column by column (a name with a line feed included)');
ok(!grep({ /\|messy$|\|tidy$/ } keys %tables), '... and the tables of other databases are not there');


# ---- dolon's own ----

# Profiled functions: calls, completed calls, time, active instances, as
# dolon.function_stats counts them
$node->safe_psql('postgres', q{
	CREATE FUNCTION add_one(i integer) RETURNS integer LANGUAGE plpgsql
	AS $$ BEGIN RETURN i + 1; END $$;
	SELECT dolon.profile('add_one(integer)');
});
$node->safe_psql('postgres', 'SELECT add_one(g) FROM generate_series(1, 7) g');
# The time of completed calls is a whole number of nanoseconds on both
# sides, each side's double within far less than a nanosecond of it: at 9
# decimals both round to it, where at 6 a time ending in 500 ns would round
# either way
my $function_sql = q{
	SELECT hits, active_instances, completed_calls, round((average_time * completed_calls)::numeric, 9)
	FROM dolon.function_stats WHERE function = 'add_one(integer)'};
my ($function_truth, $function_metrics) = steady_scrape($function_sql);
my %function_labels = (datname => 'postgres', function => 'add_one(integer)',
	funcid => $node->safe_psql('postgres', q{SELECT 'add_one(integer)'::regprocedure::oid}));
my @function_seen = map { $function_metrics->{samples}{ DolonMetrics::series_key($_, \%function_labels) } // 'missing' }
  qw(dolon_function_calls_total dolon_function_active_instances dolon_function_completed_calls_total
  dolon_function_seconds_total);
$function_seen[3] = sprintf('%.9f', $function_seen[3]) if $function_seen[3] ne 'missing';
is(join('|', @function_seen), $function_truth,
	'dolon_function_calls_total, _active_instances, _completed_calls_total and _seconds_total equal dolon.function_stats');
is($function_seen[0], 7, '... 7 calls');
is($function_metrics->{types}{dolon_function_calls_total}, 'counter', '... counters named _total');

# Tracers: their counters between two reads of dolon.tracers
my $tracer_sql = q{SELECT samples, rows_sent, send_errors, profiler_errors FROM dolon.tracers WHERE tracer_name = 'metrics'};
my $tracers_before = $truth->query_safe($tracer_sql);
my $tracer_metrics = DolonMetrics::scrape($port);
my $tracers_after = $truth->query_safe($tracer_sql);
my @tracer_before = split /\|/, $tracers_before;
my @tracer_after = split /\|/, $tracers_after;
my @tracer_seen = map { $tracer_metrics->{samples}{ DolonMetrics::series_key($_, { tracer => 'metrics' }) } }
  qw(dolon_tracer_samples_total dolon_tracer_rows_sent_total dolon_tracer_send_errors_total
  dolon_tracer_profiler_errors_total);
ok((!grep { !defined $tracer_seen[$_] || $tracer_seen[$_] < $tracer_before[$_] || $tracer_seen[$_] > $tracer_after[$_] } 0 .. 3),
	"dolon_tracer_{samples,rows_sent,send_errors,profiler_errors}_total of the configured tracer are between two reads of dolon.tracers ($tracers_before; @tracer_seen; $tracers_after)");
cmp_ok($tracer_seen[0], '>', 0, '... it has samples');
is($tracer_metrics->{samples}{ DolonMetrics::series_key('dolon_tracer_running', { tracer => 'metrics' }) }, 1,
	'dolon_tracer_running is 1');

# The collector: a malformed datagram and a run counted as dolon.collector counts them
my $to_collector = DolonTest::udp_sender($collector_port);
DolonTest::send_all($to_collector, 'not json at all');
$node->poll_query_until('postgres', 'SELECT malformed = 1 FROM dolon.collector')
  or die 'the malformed datagram is not counted';
my $collector_sql = q{SELECT received, stored_runs, stored_rows, malformed, refused, dropped FROM dolon.collector};
my ($collector_truth, $collector_metrics) = steady_scrape($collector_sql);
is(join('|', map { $collector_metrics->{samples}{"dolon_collector_${_}_total"} // 'missing' }
	qw(received stored_runs stored_rows malformed refused dropped)),
	$collector_truth, 'dolon_collector_*_total equal dolon.collector');
is($collector_metrics->{samples}{dolon_collector_running}, 1, 'dolon_collector_running is 1');

# The host: memory in use between 0 and 100 %; no CPU, which would be
# since whatever scrape came before
my $host_metrics = DolonMetrics::scrape($port);
my $memory_percent = $host_metrics->{samples}{dolon_host_virtual_memory_percent};
ok(defined $memory_percent && $memory_percent > 0 && $memory_percent < 100,
	'dolon_host_virtual_memory_percent is a percentage (' . ($memory_percent // 'missing') . ')');

$aborted->query('ROLLBACK');
$_->quit for @idle, $in_transaction, $aborted, $truth;
$node->safe_psql('postgres', "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%'");
$active->quit;

# ---- The token ----

# Set at server start only: a reload would log its new value
$node->append_conf('postgresql.conf', "dolon.metrics_token = 'Sesame-7f3a'");
$node->restart;
DolonTest::poll_until(sub { DolonMetrics::get($port, '/metrics')->{status} == 401 })
  or die 'the token is not asked for after a restart';
$pid = metrics_pid();
my $refused = DolonMetrics::get($port, '/metrics');
is($refused->{status}, 401, 'with dolon.metrics_token set, a scrape without the token: 401');
is_deeply($refused->{headers}{'www-authenticate'},
	[ 'Bearer realm="dolon"', 'Basic realm="dolon", charset="UTF-8"' ],
	'... asking for a bearer token, or Basic credentials (what a browser can give)');
unlike($refused->{content}, qr/pg_up/, '... and no metrics');
is(DolonMetrics::get($port, '/metrics', { Authorization => 'Bearer Sesame-7f3b' })->{status}, 401,
	'a wrong token: 401');
is(DolonMetrics::get($port, '/metrics', { Authorization => 'Bearer Sesame-7f3a0' })->{status}, 401,
	'a longer token: 401');
is(DolonMetrics::get($port, '/nothing')->{status}, 401,
	'a path that does not exist, without the token: 401, not 404');
is(DolonMetrics::get($port, $_)->{status}, 401, "$_ without the token: 401")
  for '/', '/status.json', '/dolon.js';
is(DolonMetrics::get($port, '/metrics',
		{ Authorization => 'Basic ' . MIME::Base64::encode_base64('prometheus:Sesame-7f3a', '') })->{status},
	200, 'Basic credentials with the token as password (any user): 200');
is(DolonMetrics::get($port, '/',
		{ Authorization => 'Basic ' . MIME::Base64::encode_base64(':Sesame-7f3a', '') })->{status},
	200, '... the live page too, with an empty user');
for my $credentials ('prometheus:Sesame-7f3b', 'Sesame-7f3a', 'Sesame-7f3a:x', 'a:Sesame-7f3a:')
{
	is(DolonMetrics::get($port, '/metrics',
			{ Authorization => 'Basic ' . MIME::Base64::encode_base64($credentials, '') })->{status},
		401, "Basic credentials \"$credentials\": 401");
}
is(DolonMetrics::get($port, '/metrics', { Authorization => 'Basic !!not base64!!' })->{status},
	401, 'Basic credentials that are not base64: 401');
my $granted = DolonMetrics::get($port, '/metrics', { Authorization => 'Bearer Sesame-7f3a' });
is($granted->{status}, 200, 'the right token: 200');
like($granted->{content}, qr/^pg_up 1$/m, '... with the metrics');
$node->safe_psql('postgres', 'CREATE ROLE watcher LOGIN IN ROLE pg_read_all_stats');
my ($rc, $stdout, $stderr) = $node->psql('postgres', 'SHOW dolon.metrics_token',
	extra_params => [ '-U', 'watcher' ]);
like($stderr, qr/permission denied|must be superuser|privileges of pg_read_all_settings/,
	'a role without pg_read_all_settings cannot read the token');
$node->append_conf('postgresql.conf', "dolon.metrics_token = 'Sesame-8e2b'");
$node->reload;
ok(DolonTest::poll_until(sub {
	slurp_file($node->logfile) =~ /parameter "dolon.metrics_token" cannot be changed without restarting the server/ }),
	'a reload with another token says it takes a restart');
is(DolonMetrics::get($port, '/metrics', { Authorization => 'Bearer Sesame-7f3a' })->{status}, 200,
	'... and the token of the server start still holds');
unlike(slurp_file($node->logfile), qr/Sesame/, 'no token is ever written to the server log');
$node->append_conf('postgresql.conf', "dolon.metrics_token = ''");
$node->restart;
DolonTest::poll_until(sub { DolonMetrics::get($port, '/metrics')->{status} == 200 })
  or die 'the token is still asked for after it was removed';
$pid = metrics_pid();

# ---- Hostile clients ----

sub raw_exchange
{
	my ($bytes, $wait) = @_;
	my $socket = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
		Proto => 'tcp') or die "cannot connect: $!";
	$socket->autoflush(1);
	local $SIG{PIPE} = 'IGNORE';
	print $socket $bytes;
	shutdown($socket, 1) unless $wait;
	my $reply = '';
	my $deadline = time + 30;
	my $select = IO::Select->new($socket);
	while (time < $deadline)
	{
		next unless $select->can_read(1);
		my $read = sysread($socket, my $chunk, 65536);
		last unless $read;
		$reply .= $chunk;
	}
	close $socket;
	return $reply;
}

# Seconds until the server closes a connection, sending it $byte every
# $interval seconds meanwhile (none if $byte is undefined); at most 30
sub seconds_until_closed
{
	my ($byte, $interval) = @_;
	my $socket = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
		Proto => 'tcp') or die "cannot connect: $!";
	$socket->autoflush(1);
	local $SIG{PIPE} = 'IGNORE';
	my $select = IO::Select->new($socket);
	my $opened = time;
	my $next_byte = $opened;
	while (time < $opened + 30)
	{
		if (defined $byte && time >= $next_byte)
		{
			syswrite($socket, $byte);
			$next_byte += $interval;
		}
		next unless $select->can_read(0.1);
		my $read = sysread($socket, my $chunk, 65536);
		last if !$read;
	}
	my $seconds = time - $opened;
	close $socket;
	return $seconds;
}

sub timed_exchange
{
	my ($bytes, $wait) = @_;
	my $started = time;
	my $reply = raw_exchange($bytes, $wait);
	return ($reply, time - $started);
}

my ($reply, $took) = timed_exchange("\x00\xff\x17garbage\r\n\r\n");
ok($reply !~ /^HTTP\/1\.1 [23]/ && $took < 15,
	sprintf('binary garbage: no answer but an error, and the connection closed (after %.1f s)', $took));
($reply, $took) = timed_exchange("GARBAGE\r\n\r\n");
ok($reply !~ /^HTTP\/1\.1 [23]/ && $took < 15,
	sprintf('a request line that is not one: no answer but an error, and the connection closed (after %.1f s)', $took));
($reply) = timed_exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " . ('a' x (4 * 1024 * 1024)) . "\r\n\r\n", 1);
like($reply, qr/^HTTP\/1\.1 431 /, 'a request of 4 MB of headers: 431, at once');
($reply) = timed_exchange('GET /' . ('a' x 100_000) . " HTTP/1.1\r\nHost: x\r\n\r\n", 1);
like($reply, qr/^HTTP\/1\.1 414 /, 'a path of 100 kB: 414');
is(DolonMetrics::get($port, '/metrics')->{status}, 200, 'a scrape still works after them');

# A client sending a byte of its request every second, never finishing it,
# is cut at the deadline of a request (10 s); one sending nothing, at the
# idle timeout (5 s)
my $trickled = seconds_until_closed('G', 1);
ok($trickled > 8 && $trickled < 15,
	sprintf('a request trickled a byte a second is cut at its deadline (after %.1f s)', $trickled));
my $silent = seconds_until_closed(undef);
ok($silent > 3 && $silent < 10,
	sprintf('a silent connection is closed at the idle timeout (after %.1f s)', $silent));

# As many connections as the worker takes at once (64), each trickling a
# byte every 2 s from another process: a scrape gets through once their
# deadline cuts them, not later
my $trickler = fork();
die "fork: $!" unless defined $trickler;
if ($trickler == 0)
{
	my @held = map {
		IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	} 1 .. 64;
	local $SIG{PIPE} = 'IGNORE';
	for (1 .. 30)
	{
		defined $_ and syswrite($_, 'G') for @held;
		sleep 2;
	}
	POSIX::_exit(0);
}
DolonTest::poll_until(sub {
	my $connected = () = slurp_file("/proc/net/tcp") =~ /^\s*\d+: 0100007F:@{[sprintf('%04X', $port)]} \S+ 01 /mg;
	return $connected >= 64;
}) or diag('the trickling connections were not all seen');
my $scrape_started = time;
is(DolonMetrics::get($port, '/metrics')->{status}, 200, 'with 64 connections trickling bytes, a scrape is answered');
my $waited = time - $scrape_started;
cmp_ok($waited, '<', 25, sprintf('... once their deadline cuts them (after %.1f s)', $waited));
kill 'KILL', $trickler;
waitpid($trickler, 0);

# Many more connections than it takes, opened at once without waiting:
# the worker does not restart, and once they are gone it scrapes as before
my @flood = grep { defined } map {
	IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
		Blocking => 0)
} 1 .. 1000;
cmp_ok(scalar(@flood), '>', 0, 'a flood of connections (' . scalar(@flood) . ')');
close $_ for @flood;
DolonTest::poll_until(sub { DolonMetrics::get($port, '/metrics')->{status} == 200 })
  or die 'the endpoint does not come back after the flood';
is(metrics_pid(), $pid, 'the worker did not restart');

# 300 scrapes: the worker's memory does not grow with them
sub worker_memory
{
	my $status = slurp_file("/proc/$pid/status");
	my ($anon) = $status =~ /^RssAnon:\s+(\d+) kB/m;
	return $anon;
}
DolonMetrics::scrape($port) for 1 .. 50;
my $memory_before = worker_memory();
DolonMetrics::scrape($port) for 1 .. 300;
my $memory_after = worker_memory();
SKIP:
{
	skip 'memory grows by design under AddressSanitizer', 1 if DolonTest::sanitized();
	cmp_ok($memory_after - $memory_before, '<', 256,
		"300 more scrapes grow the worker's anonymous memory by less than 256 kB ($memory_before kB to $memory_after kB)");
}
is(metrics_pid(), $pid, 'the worker never restarted');


# ---- Off by default ----

my $plain = DolonTest::new_node('plain', $sink->port);
$plain->start;
is($plain->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'dolon metrics'"),
	'0', 'with dolon.metrics_port unset (0), no metrics worker runs');
$plain->stop;

# ---- The tables of other databases: dolon.metrics_databases ----

# A helper connected to each database names its tables; the statistics are
# read from shared memory at each scrape, as for the database dolon
# connects to
$node->safe_psql('postgres',
	"ALTER SYSTEM SET dolon.metrics_databases = 'postgres, watched, watched'; SELECT pg_reload_conf()");
my $watched_key = DolonMetrics::series_key('pg_stat_user_tables_n_tup_del',
	{ datname => 'watched', schemaname => 'odd "schema"', relname => 'messy' });
ok( DolonTest::poll_until(sub { defined DolonMetrics::scrape($port)->{samples}{$watched_key} }),
	'with dolon.metrics_databases = \'postgres, watched, watched\', the tables of watched are reported (once: the scrape parses)');
my $watched_sql = 'SELECT schemaname, relname, ' . join(', ', @table_columns)
  . ' FROM pg_stat_user_tables ORDER BY schemaname, relname';
my ($watched_truth, $watched_metrics);
DolonTest::poll_until(
	sub {
		my $before = $node->safe_psql('watched', $watched_sql);
		$watched_metrics = DolonMetrics::scrape($port);
		$watched_truth = $node->safe_psql('watched', $watched_sql);
		return $before eq $watched_truth;
	})
  or die 'the statistics of watched do not keep still';
my %by_database;
foreach my $key (grep { /^pg_stat_user_tables_/ } keys %{ $watched_metrics->{samples} })
{
	my $l = $watched_metrics->{labels}{$key};
	my ($column) = $key =~ /^pg_stat_user_tables_(\w+)\{/;
	$by_database{ $l->{datname} }{"$l->{schemaname}|$l->{relname}"}{$column} =
	  $watched_metrics->{samples}{$key};
}
sub table_lines
{
	my ($tables) = @_;
	return join("\n", map {
		my $t = $_;
		join('|', $t, map { $tables->{$t}{$_} // 'missing' } @table_columns)
	} sort keys %$tables);
}
is(table_lines($by_database{watched}), $watched_truth,
	'... equal to pg_stat_user_tables of watched, table by table and column by column');
ok(exists $by_database{postgres}{'public|here'}, '... beside those of postgres');
is(join(',', sort keys %by_database), 'postgres,watched', '... and of no other database');

# A table created later is named by the next helper; a dropped one leaves
# with the next list
$node->safe_psql('watched', 'CREATE TABLE later (id int); INSERT INTO later SELECT generate_series(1, 5)');
my $later_key = DolonMetrics::series_key('pg_stat_user_tables_n_tup_ins',
	{ datname => 'watched', schemaname => 'public', relname => 'later' });
ok( DolonTest::poll_until(sub { (DolonMetrics::scrape($port)->{samples}{$later_key} // -1) == 5 }),
	'a table created in watched is reported once a helper has named it, with its 5 insertions');
$node->safe_psql('watched', 'DROP TABLE later');
ok(DolonTest::poll_until(sub { !defined DolonMetrics::scrape($port)->{samples}{$later_key} }),
	'a table dropped in watched is gone once a helper has listed the tables again');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'dolon metrics tables'"),
	'the helpers exit once they have named the tables');

# A helper held up does not hold up the scrapes: with pg_namespace of
# watched locked by a session, the next helper waits for the lock, and the
# scrapes meanwhile name the tables of watched as the last list did
my $locker = $node->background_psql('watched');
$locker->query_safe('BEGIN; LOCK TABLE pg_catalog.pg_namespace IN ACCESS EXCLUSIVE MODE');
ok( DolonTest::poll_until(sub {
		DolonMetrics::scrape($port);
		return $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'dolon metrics tables' AND wait_event_type = 'Lock'") eq '1';
	}),
	'a helper waits for a lock that a session of watched holds');
ok(defined DolonMetrics::scrape($port)->{samples}{$watched_key},
	'... while a scrape is answered, with the tables of watched of the last list');
$locker->query_safe('ROLLBACK');
$locker->quit;
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'dolon metrics tables'"),
	'... and the helper ends once the lock is released');

# A database that does not exist is logged; the others are reported still
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET dolon.metrics_databases = 'nowhere, watched'; SELECT pg_reload_conf()");
ok($node->wait_for_log(qr/WARNING:  dolon metrics could not list the tables of database "nowhere"/, $log_offset),
	'a database of dolon.metrics_databases that does not exist is logged');
ok( DolonTest::poll_until(sub {
		my $m = DolonMetrics::scrape($port);
		return defined $m->{samples}{$watched_key}
		  && !grep { /^pg_stat_user_tables_/ && /datname="postgres"/ } keys %{ $m->{samples} };
	}),
	'... the tables of watched are reported still, and those of postgres, no longer listed, are not');
my (undef, undef, $unparsed) = $node->psql('postgres',
	q{ALTER SYSTEM SET dolon.metrics_databases = 'watched, "unclosed'});
like($unparsed, qr/invalid value for parameter "dolon\.metrics_databases".*\n.*DETAIL:  The list of databases is not a comma-separated list of names\./,
	'a list that does not parse is refused, with the reason');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET dolon.metrics_databases; SELECT pg_reload_conf()');
ok( DolonTest::poll_until(sub {
		my $m = DolonMetrics::scrape($port);
		return !defined $m->{samples}{$watched_key}
		  && defined $m->{samples}{ DolonMetrics::series_key('pg_stat_user_tables_n_live_tup',
			{ datname => 'postgres', schemaname => 'public', relname => 'here' }) };
	}),
	'reset, dolon.metrics_databases reports the tables of dolon.database alone');

# ---- Names in another encoding ----

# A server whose database is in LATIN1: the names are served in UTF-8, as a
# scraper requires, converted as a session of that database reads them
my $latin_port = DolonMetrics::free_tcp_port();
my $latin_collector_port = DolonMetrics::free_tcp_port();
my $latin = DolonTest::new_node('latin', $sink->port,
	{ extra => [ '--encoding=LATIN1', '--locale=C' ] },
	"dolon.metrics_port = $latin_port",
	"dolon.collector_port = $latin_collector_port");
$latin->start;
my $latin_run = '6a1f0c2e-5b7d-4e8a-9c3f-1d2e3f4a5b6c';
{
	local $ENV{PGCLIENTENCODING} = 'UTF8';
	$latin->safe_psql('postgres', qq{CREATE TABLE "caf\xc3\xa9" (i int)});
	$latin->safe_psql('postgres', qq{CREATE DATABASE "na\xc3\xafve"});
	# a run of the collector's store named in LATIN1, for the live page
	$latin->safe_psql('postgres', qq{
		CREATE EXTENSION dolon;
		INSERT INTO dolon.tracing_run VALUES ('$latin_run', 'caf\xc3\xa9', '{d\xc3\xa9bit}');
		INSERT INTO dolon.tracing_row VALUES ('$latin_run', '{1}', now() - interval '1 s'),
			('$latin_run', '{2}', now());
	});
}
DolonTest::poll_until(sub { DolonMetrics::get($latin_port, '/metrics')->{status} == 200 })
  or die 'the metrics endpoint of the LATIN1 server does not answer';
my $latin_text = DolonMetrics::get($latin_port, '/metrics')->{content};
ok(defined eval { Encode::decode('UTF-8', my $copy = $latin_text, Encode::FB_CROAK) },
	'the metrics of a LATIN1 database are valid UTF-8');
like($latin_text, qr/relname="caf\xc3\xa9"/, '... a table named in LATIN1 is named in UTF-8');
like($latin_text, qr/datname="na\xc3\xafve"/, '... and so is a database');
# A UTF8 database of that server, in dolon.metrics_databases: its helper
# sends the names in UTF-8, which the endpoint serves as they are
$latin->safe_psql('postgres',
	"CREATE DATABASE utf ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
{
	local $ENV{PGCLIENTENCODING} = 'UTF8';
	$latin->safe_psql('utf', qq{CREATE TABLE "\xc3\xa9t\xc3\xa9" (i int)});
}
$latin->safe_psql('postgres',
	"ALTER SYSTEM SET dolon.metrics_databases = 'postgres, utf'; SELECT pg_reload_conf()");
ok( DolonTest::poll_until(sub {
		DolonMetrics::get($latin_port, '/metrics')->{content} =~ /datname="utf",schemaname="public",relname="\xc3\xa9t\xc3\xa9"/;
	}),
	'a table of a UTF8 database, listed by its helper, is named in UTF-8 by a LATIN1 server');
my $latin_chart = DolonMetrics::get($latin_port, "/runs/$latin_run.svg");
is($latin_chart->{status}, 200, 'the live page\'s chart of a run named in LATIN1');
unlike($latin_chart->{content}, qr/[^\x09\x0a\x20-\x7e]/,
	'... is plain ASCII, as its declaration of UTF-8 allows');
like($latin_chart->{content}, qr{<title>caf&#233; &#8212; $latin_run</title>.*>d&#233;bit</text>}s,
	'... with the names as character references');
my $latin_status = DolonMetrics::get($latin_port, '/status.json');
is(eval { decode_json($latin_status->{content})->{collector}{runs}[0]{app_name} }, "caf\x{e9}",
	'status.json names the run in UTF-8');
$latin->stop;
DolonTest::check_log_clean($latin);

$node->stop;
DolonTest::check_log_clean($node,
	allow => [ qr/^division by zero$/, qr/^canceling statement due to user request$/,
		qr/^dolon metrics could not list the tables of database "nowhere"$/,
		qr/^database "nowhere" does not exist$/,
		qr/^terminating background worker "dolon metrics tables of \w+" due to administrator command$/,
		qr/^invalid value for parameter "dolon\.metrics_databases": "watched, \"unclosed"$/,
		qr/^(?:must be superuser or have privileges of pg_read_all_settings|permission denied) to examine "dolon\.metrics_token"$/ ]);
DolonTest::check_log_clean($plain);

done_testing();
