# The diagnostics of clients, locks, transactions, deadlocks, replication,
# the host's CPU and memory and the server's memory, each against its SQL or
# /proc ground truth, in the stream and from dolon.diagnostics()
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use Time::HiRes qw(time);
use DolonTest;

my @columns = qw(idle_in_transaction waiting_on_locks max_connections
  connections_percent oldest_transaction_seconds xact_commit_rate
  xact_rollback_rate deadlocks replication_lag_seconds cpu_percent
  virtual_memory_percent memory_use mem_allocation);
my %column = map { $columns[$_] => $_ } 0 .. $#columns;
my $max_connections = 30;

# Passes if $got is a number within $tolerance of $expected
sub is_near
{
	my ($got, $expected, $tolerance, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = defined $got && $got ne '' && defined $expected && $expected ne ''
	  && abs($got - $expected) <= $tolerance;
	ok($ok, $name)
	  or diag(sprintf('got %s, expected %s within %s',
		$got // 'null', $expected // 'null', $tolerance));
	return $ok;
}

sub median
{
	my @sorted = sort { $a <=> $b } @_;
	return $sorted[$#sorted / 2];
}

# Busy and total CPU ticks of the host: the first line of /proc/stat, user
# to steal; busy is all of them but idle and iowait
sub cpu_ticks
{
	open my $fh, '<', '/proc/stat' or die "cannot read /proc/stat: $!";
	my $line = <$fh>;
	close $fh;
	my (undef, @ticks) = split ' ', $line;
	my $total = 0;
	$total += $_ for @ticks[0 .. 7];
	return [ $total - $ticks[3] - $ticks[4], $total ];
}

sub cpu_percent_between
{
	my ($before, $after) = @_;
	return 100.0 * ($after->[0] - $before->[0]) / ($after->[1] - $before->[1]);
}

# The share of the host's memory that is not available, in percent
sub memory_percent
{
	my %kb;
	open my $fh, '<', '/proc/meminfo' or die "cannot read /proc/meminfo: $!";
	while (<$fh>)
	{
		$kb{$1} = $2 if /^(\w+):\s+(\d+)/;
	}
	close $fh;
	return 100.0 * ($kb{MemTotal} - $kb{MemAvailable}) / $kb{MemTotal};
}

# The memory of a server, its postmaster and the postmaster's children:
# Pss summed in GB, Private_Clean + Private_Dirty summed in MB
sub server_memory
{
	my ($node) = @_;
	my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	my @pids = ($postmaster);
	opendir my $proc, '/proc' or die "cannot read /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir $proc)
	{
		open my $fh, '<', "/proc/$pid/stat" or next;
		my $stat = <$fh>;
		close $fh;
		push @pids, $pid
		  if defined $stat && $stat =~ /.*\)\s+\S+\s+(\d+)/ && $1 == $postmaster;
	}
	closedir $proc;
	my ($pss_kb, $private_kb) = (0, 0);
	for my $pid (@pids)
	{
		open my $fh, '<', "/proc/$pid/smaps_rollup" or next;
		while (<$fh>)
		{
			$pss_kb += $1 if /^Pss:\s+(\d+)/;
			$private_kb += $1 if /^Private_(?:Clean|Dirty):\s+(\d+)/;
		}
		close $fh;
	}
	return ($pss_kb / 1024**2, $private_kb / 1024);
}

# The value of a column in a row
sub value
{
	my ($row, $name) = @_;
	return $row->{row_data}[ $column{$name} ];
}

# The next row to arrive after this call, read as soon as it does
sub fresh_row
{
	my ($receiver, $uuid) = @_;
	$receiver->drain;
	return $receiver->wait_for_row($uuid);
}

# One line of a query's output, split into its columns
sub query_row
{
	my ($client, $sql) = @_;
	return split /\|/, $client->query_safe($sql), -1;
}

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('primary', $receiver->port, { allows_streaming => 1 },
	"dolon.tracer_name = 'diagnostics'",
	"dolon.profilers = '" . join(', ', @columns) . "'",
	"max_connections = $max_connections",
	"deadlock_timeout = '100ms'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION dolon;
	CREATE TABLE t (id int);
	CREATE TABLE pair (id int PRIMARY KEY, v int);
	INSERT INTO pair VALUES (1, 0), (2, 0);
});

# The value of a column once it holds over several rows sampled from now on
my $uuid;
sub steady
{
	my ($name) = @_;
	$receiver->drain;
	return $receiver->steady_value($uuid, $column{$name});
}

# The run has the columns; the first sample has no rate and no CPU
# utilisation yet, the next ones have; replication lag is null on a primary
my $run = $receiver->wait_for_run('diagnostics');
is_deeply($run->{column_names}, \@columns, 'the run has the configured columns');
$uuid = $run->{uuid};
my $first = $receiver->wait_for_row($uuid);
my $second = $receiver->wait_for_row($uuid);
is_deeply([ map { value($first, $_) } qw(xact_commit_rate xact_rollback_rate cpu_percent) ],
	[ undef, undef, undef ],
	'the first row has no transaction rates and no CPU utilisation');
ok((!grep { !defined value($second, $_) } qw(xact_commit_rate xact_rollback_rate cpu_percent)),
	'the second row has them');
ok((!grep { defined value($_, 'replication_lag_seconds') } $first, $second, fresh_row($receiver, $uuid)),
	'replication_lag_seconds is null on a primary');
is($node->safe_psql('postgres',
	"SELECT value IS NULL FROM dolon.diagnostics('replication_lag_seconds')"),
	't', 'dolon.diagnostics() gives a null replication lag on a primary');

# max_connections is the setting; connections_percent counts the four client
# backends held open (and not the tracer), out of max_connections
my @clients = map { $node->background_psql('postgres') } 1 .. 4;
is(steady('max_connections'), $max_connections, 'max_connections is the setting');
is(steady('waiting_on_locks'), 0, 'nobody waits on a lock yet');
is(steady('idle_in_transaction'), 0, 'no client is idle in a transaction yet');
my $percent = steady('connections_percent');
is_near($percent, 100.0 * 4 / $max_connections, 1e-9,
	'connections_percent counts the 4 clients out of max_connections');
my ($sql_percent, $true_percent) = query_row($clients[0], q{
	SELECT d.value, 100.0 * (SELECT count(*) FROM pg_stat_activity
	                         WHERE backend_type = 'client backend')
	                / current_setting('max_connections')::int
	FROM dolon.diagnostics('connections_percent') d});
is_near($percent, $true_percent, 1e-9, '... as the ground truth does');
is_near($sql_percent, $true_percent, 1e-9, 'dolon.diagnostics() gives the same connections_percent');
is($clients[0]->query_safe(q{
	SELECT value = current_setting('max_connections')::int
	FROM dolon.diagnostics('max_connections')}),
	't', 'dolon.diagnostics() gives the max_connections setting');

# With no transaction held open, the oldest is a few milliseconds old
cmp_ok(value(fresh_row($receiver, $uuid), 'oldest_transaction_seconds'), '<', 0.5,
	'oldest_transaction_seconds is about 0 when no transaction is held open');

# Three clients idle in a transaction, the first opened 2.5 s before the
# others, and one whose transaction failed ('idle in transaction (aborted)'):
# idle_in_transaction counts the three, oldest_transaction_seconds is the
# age of the first
my $oldest_sql = q{
	SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
	FROM pg_stat_activity};
$clients[1]->query_safe('BEGIN; SELECT 1');
$node->poll_query_until('postgres', "SELECT ($oldest_sql) >= 2.5")
  or die 'the transaction does not age';
$clients[$_]->query_safe('BEGIN; SELECT 1') for 2, 3;
my $aborted = $node->background_psql('postgres', on_error_stop => 0);
$aborted->query('BEGIN; SELECT 1 / 0');
is(steady('idle_in_transaction'), 3, 'idle_in_transaction counts the 3 clients, not the aborted one');
is($clients[0]->query_safe(q{
	SELECT d.value || '|' || (SELECT count(*) FROM pg_stat_activity
	                          WHERE state = 'idle in transaction')
	FROM dolon.diagnostics('idle_in_transaction') d}),
	'3|3', 'dolon.diagnostics() and the ground truth count them too');
$aborted->query('ROLLBACK');
$aborted->quit;
my $row = fresh_row($receiver, $uuid);
my $true_oldest = $clients[0]->query_safe($oldest_sql);
cmp_ok($true_oldest, '>=', 2.5, 'ground truth: the oldest transaction is over 2.5 s old');
is_near(value($row, 'oldest_transaction_seconds'), $true_oldest, 1,
	'oldest_transaction_seconds is the age of the oldest transaction');
my ($sql_oldest, $true_oldest_now) = query_row($clients[0],
	"SELECT d.value, ($oldest_sql) FROM dolon.diagnostics('oldest_transaction_seconds') d");
is_near($sql_oldest, $true_oldest_now, 0.5, 'dolon.diagnostics() gives the same age');

# One client holds an exclusive lock on t, three others wait for it:
# waiting_on_locks counts exactly them
$clients[1]->query_safe('LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
my @waiters = map { $node->background_psql('postgres') } 1 .. 3;
$_->query_until(qr/waiting/, "\\echo waiting\nSELECT count(*) FROM t;\n") for @waiters;
$node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
  or die 'the clients do not wait on the lock';
is(steady('waiting_on_locks'), 3, 'waiting_on_locks counts the 3 clients waiting on the lock');
is($clients[0]->query_safe(q{
	SELECT d.value || '|' || (SELECT count(*) FROM pg_stat_activity
	                          WHERE wait_event_type = 'Lock')
	FROM dolon.diagnostics('waiting_on_locks') d}),
	'3|3', 'dolon.diagnostics() and the ground truth count them too');
$clients[1]->query_safe('COMMIT');
$_->quit for @waiters;
$clients[$_]->query_safe('ROLLBACK') for 2, 3;
is(steady('waiting_on_locks'), 0, 'waiting_on_locks goes back to 0 when the lock is released');
is(steady('idle_in_transaction'), 0, 'idle_in_transaction goes back to 0');

# A deadlock between two clients: deadlocks rises by exactly 1, as
# sum(deadlocks) of pg_stat_database does
my $deadlocks_sql = 'SELECT sum(deadlocks) FROM pg_stat_database';
my $deadlocks_before = $node->safe_psql('postgres', $deadlocks_sql);
is(steady('deadlocks'), $deadlocks_before, 'deadlocks equals the ground truth before a deadlock');
my $log_offset = -s $node->logfile;
my @pair = map { $node->background_psql('postgres', on_error_stop => 0) } 1 .. 2;
$pair[0]->query_safe('BEGIN; UPDATE pair SET v = v + 1 WHERE id = 1');
$pair[1]->query_safe('BEGIN; UPDATE pair SET v = v + 1 WHERE id = 2');
$pair[0]->query_until(qr/locking/, "\\echo locking\nUPDATE pair SET v = v + 1 WHERE id = 2;\n");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
  or die 'the first client does not wait for the second';
$pair[1]->query('UPDATE pair SET v = v + 1 WHERE id = 1');
ok($node->wait_for_log(qr/ERROR:  deadlock detected/, $log_offset), 'the server detects the deadlock');
$_->query('ROLLBACK') for @pair;
$_->quit for @pair;    # a backend's statistics are flushed when it exits
$node->poll_query_until('postgres', "SELECT ($deadlocks_sql) > $deadlocks_before")
  or die 'the deadlock is not counted';
is($node->safe_psql('postgres', $deadlocks_sql), $deadlocks_before + 1,
	'ground truth: one more deadlock');
is(steady('deadlocks'), $deadlocks_before + 1, 'deadlocks rises by exactly 1');
is($node->safe_psql('postgres',
	"SELECT value FROM dolon.diagnostics('deadlocks')"),
	$deadlocks_before + 1, 'dolon.diagnostics() gives the same count');

# The host's memory in use, read from /proc/meminfo as soon as each row
# arrives
my @differences = map {
	abs(value(fresh_row($receiver, $uuid), 'virtual_memory_percent') - memory_percent())
} 1 .. 5;
cmp_ok(median(@differences), '<=', 0.5,
	'virtual_memory_percent is (MemTotal - MemAvailable) / MemTotal, within 0.5 point');
is_near($clients[0]->query_safe(
	"SELECT value FROM dolon.diagnostics('virtual_memory_percent')"),
	memory_percent(), 0.5, 'dolon.diagnostics() gives the same share');

# The server's memory, summed over the postmaster and its children from
# their smaps_rollup as soon as each row arrives: within 10%
my (@pss_ratios, @private_ratios);
for (1 .. 5)
{
	my $row = fresh_row($receiver, $uuid);
	my ($pss_gb, $private_mb) = server_memory($node);
	push @pss_ratios, value($row, 'memory_use') / $pss_gb;
	push @private_ratios, value($row, 'mem_allocation') / $private_mb;
}
note 'memory_use / Pss: ' . join(', ', @pss_ratios)
  . '; mem_allocation / Private_*: ' . join(', ', @private_ratios);
is_near(median(@pss_ratios), 1, 0.1,
	'memory_use is the proportional set size of the server, in GB');
is_near(median(@private_ratios), 1, 0.1,
	'mem_allocation is the private memory of the server, in MB');
my ($sql_pss, $sql_private) = split /\n/, $clients[0]->query_safe(
	"SELECT value FROM dolon.diagnostics('memory_use', 'mem_allocation')");
my ($pss_gb, $private_mb) = server_memory($node);
is_near($sql_pss / $pss_gb, 1, 0.1, 'dolon.diagnostics() gives the same memory_use');
is_near($sql_private / $private_mb, 1, 0.1, 'dolon.diagnostics() gives the same mem_allocation');
$_->quit for @clients;

# On a streaming standby, with its own tracer: replication_lag_seconds is the
# age of the last transaction replayed, 2 s after a commit on the primary
my $standby_receiver = DolonTest::Receiver->new;
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', join("\n",
	"dolon.port = " . $standby_receiver->port,
	"dolon.tracer_name = 'standby'") . "\n");
$standby->start;
my $standby_uuid = $standby_receiver->wait_for_run('standby')->{uuid};
$node->safe_psql('postgres', 'INSERT INTO t VALUES (1)');
$node->wait_for_catchup($standby);
my $lag_sql = q{
	SELECT CASE WHEN pg_is_in_recovery()
	            THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END};
$standby->poll_query_until('postgres', "SELECT ($lag_sql) >= 2")
  or die 'the replay timestamp does not age';
# The lag grows with time: bracket the row between two readings of the truth
my $lag_before = $standby->safe_psql('postgres', $lag_sql);
$row = fresh_row($standby_receiver, $standby_uuid);
my $lag_after = $standby->safe_psql('postgres', $lag_sql);
my $row_lag = value($row, 'replication_lag_seconds');
ok(defined $row_lag && $row_lag >= $lag_before - 0.5 && $row_lag <= $lag_after + 0.5,
	'on a standby, replication_lag_seconds is the age of the last replayed commit')
  or diag("got " . ($row_lag // 'null') . ", expected between $lag_before and $lag_after");
my ($sql_lag, $true_lag_now) = split /\|/, $standby->safe_psql('postgres',
	"SELECT d.value, ($lag_sql) FROM dolon.diagnostics('replication_lag_seconds') d");
is_near($sql_lag, $true_lag_now, 0.5, 'dolon.diagnostics() on the standby gives the same lag');
is($standby->safe_psql('postgres', 'SELECT last_error IS NULL FROM dolon.tracer'),
	't', 'the standby tracer samples without error');

# Transaction rates in the stream.  While one transaction stays open,
# oldest_transaction_seconds grows by the time between two samples.  A rate
# is the change over a window of at least 5 seconds, so over rows that
# start before the transactions and go on for more than the window after
# they are counted, the sum of rate * that time is, within the few percent
# by which the window varies, the number of transactions counted: at least
# the 2000 commits and 500 rollbacks run in between, at most what the
# ground truth counted from the window before the first row to the last.
my ($commits, $rollbacks) = (2000, 500);
my $workload = ("SELECT 1;\n" x $commits) . ("BEGIN; ROLLBACK;\n" x $rollbacks);
my $counters_sql = 'SELECT sum(xact_commit), sum(xact_rollback) FROM pg_stat_database';
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; SELECT 1');
my ($commits_before, $rollbacks_before) = split /\|/, $node->safe_psql('postgres', $counters_sql);
my $previous = fresh_row($receiver, $uuid);
$node->safe_psql('postgres', $workload);
$node->poll_query_until('postgres',
	"SELECT sum(xact_commit) >= $commits_before + $commits
	    AND sum(xact_rollback) >= $rollbacks_before + $rollbacks FROM pg_stat_database")
  or die 'the transactions are not counted';
my ($commits_seen, $rollbacks_seen) = (0, 0);
my $window_end = time + 7;
my @rows = ($receiver->rows_arrived($uuid), $receiver->wait_for_row($uuid));
push @rows, $receiver->wait_for_row($uuid) while time < $window_end;
for my $row (@rows)
{
	my $seconds = value($row, 'oldest_transaction_seconds')
	  - value($previous, 'oldest_transaction_seconds');
	$commits_seen += value($row, 'xact_commit_rate') * $seconds;
	$rollbacks_seen += value($row, 'xact_rollback_rate') * $seconds;
	$previous = $row;
}
my ($commits_after, $rollbacks_after) = split /\|/, $node->safe_psql('postgres', $counters_sql);
note "commits: $commits_seen in the rows, "
  . ($commits_after - $commits_before) . " by the ground truth; rollbacks: $rollbacks_seen, "
  . ($rollbacks_after - $rollbacks_before);
ok($commits_seen > 0.9 * $commits && $commits_seen < 1.1 * ($commits_after - $commits_before),
	"xact_commit_rate accounts for the $commits commits");
ok($rollbacks_seen > 0.9 * $rollbacks && $rollbacks_seen < 1.1 * ($rollbacks_after - $rollbacks_before),
	"xact_rollback_rate accounts for the $rollbacks rollbacks");

# Transaction rates from dolon.diagnostics(): null at the first call in a
# connection; at the next, the change of the ground truth since the first,
# divided by the time between them (measured as above).  A statistics
# snapshot makes the ground truth and dolon read the same counters.
my $rates_client = $node->background_psql('postgres');
$rates_client->query_safe('SET stats_fetch_consistency = snapshot');
my $rates_sql = q{
	WITH d AS (SELECT * FROM dolon.diagnostics('xact_commit_rate', 'xact_rollback_rate',
	                                           'oldest_transaction_seconds'))
	SELECT (SELECT sum(xact_commit) FROM pg_stat_database),
	       (SELECT sum(xact_rollback) FROM pg_stat_database),
	       (SELECT value FROM d WHERE name = 'xact_commit_rate'),
	       (SELECT value FROM d WHERE name = 'xact_rollback_rate'),
	       (SELECT value FROM d WHERE name = 'oldest_transaction_seconds')};
my ($commits1, $rollbacks1, $commit_rate1, $rollback_rate1, $age1) =
  query_row($rates_client, $rates_sql);
is("$commit_rate1|$rollback_rate1", '|',
	'dolon.diagnostics() gives null rates at its first call in a connection');
$node->safe_psql('postgres', $workload);
$node->poll_query_until('postgres',
	"SELECT sum(xact_commit) >= $commits1 + $commits
	    AND sum(xact_rollback) >= $rollbacks1 + $rollbacks FROM pg_stat_database")
  or die 'the transactions are not counted';
my ($commits2, $rollbacks2, $commit_rate2, $rollback_rate2, $age2) =
  query_row($rates_client, $rates_sql);
$rates_client->quit;
$holder->quit;
cmp_ok($commits2 - $commits1, '>=', $commits, 'ground truth: the commits are counted');
is_near($commit_rate2 * ($age2 - $age1), $commits2 - $commits1, 0.01,
	'xact_commit_rate is the change of sum(xact_commit) per second since the previous call');
is_near($rollback_rate2 * ($age2 - $age1), $rollbacks2 - $rollbacks1, 0.01,
	'xact_rollback_rate is the change of sum(xact_rollback) per second since the previous call');

# CPU utilisation, while a child process keeps one CPU busy: each row
# against /proc/stat read as soon as it and the previous row arrived
my $busy = fork // die "cannot fork: $!";
if ($busy == 0)
{
	my $end = time + 30;
	1 while time < $end;
	POSIX::_exit(0);    # and not exit, which would stop the nodes
}
my @pairs;
fresh_row($receiver, $uuid);
my $ticks = cpu_ticks();
for (1 .. 10)
{
	my $row = $receiver->wait_for_row($uuid);
	my $now = cpu_ticks();
	push @pairs, [ value($row, 'cpu_percent'), cpu_percent_between($ticks, $now) ];
	$ticks = $now;
}
my $cpu_client = $node->background_psql('postgres');
my $sql_first = $cpu_client->query_safe("SELECT value FROM dolon.diagnostics('cpu_percent')");
my $cpu_before = cpu_ticks();
# 200 ticks of the host's CPU time counted, so that a tick either way
# weighs little
DolonTest::poll_until(sub { cpu_ticks()->[1] - $cpu_before->[1] >= 200 })
  or die '/proc/stat counts no CPU time';
my $sql_cpu = $cpu_client->query_safe("SELECT value FROM dolon.diagnostics('cpu_percent')");
my $true_cpu = cpu_percent_between($cpu_before, cpu_ticks());
$cpu_client->quit;
kill 'KILL', $busy;
waitpid $busy, 0;
note 'cpu_percent against /proc/stat: ' . join(', ', map { sprintf '%.1f/%.1f', @$_ } @pairs);
cmp_ok(median(map { $_->[1] } @pairs), '>=', 40, 'ground truth: the busy child keeps the host over 40% busy');
cmp_ok(median(map { abs($_->[0] - $_->[1]) } @pairs), '<=', 15,
	'cpu_percent is the busy share of the CPU time since the previous sample, within 15 points');
is($sql_first, '', 'dolon.diagnostics() gives no CPU utilisation at its first call in a connection');
is_near($sql_cpu, $true_cpu, 10, 'dolon.diagnostics() gives the CPU utilisation since its previous call');

$standby->stop;
$node->stop;
DolonTest::check_log_clean($node,
	allow => [ qr/^deadlock detected$/, qr/^division by zero$/ ]);
DolonTest::check_log_clean($standby,
	allow => [ qr/^terminating walreceiver process due to administrator command$/ ]);

done_testing();
