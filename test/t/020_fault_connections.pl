# Connection churn: 1,000 connections opened and closed by pgbench (-C, a
# connection per transaction) while a tracer samples every 10 ms.  Every
# sampled count stays within what can exist at that moment: no fewer than
# the sessions the test holds open, no more than those plus pgbench's
# clients, each with its connection and at most one closing one; and when
# the loop ends the counts are those of pg_stat_activity again, nothing
# left behind.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use DolonTest;

my $held = 5;			# idle sessions the test holds open all along
my $clients = 4;		# pgbench's clients, each with one connection at a time
my $connections = 1000;
my $max_connections = 100;
my @profilers = qw(idle active_tasks count_db_connections connections_percent);
my %column = map { $profilers[$_] => $_ } 0 .. $#profilers;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('churn', $receiver->port,
	"dolon.tracer_name = 'churn'",
	"dolon.frequency = '10ms'",
	"max_connections = $max_connections",
	"dolon.profilers = '" . join(', ', @profilers) . "'");
$node->start;
my $run = $receiver->wait_for_run('churn');

my @sessions = map { $node->background_psql('postgres') } 1 .. $held;

# The ground truth of each profiler, from the views, leaving out the
# session that asks
sub ground_truth
{
	my ($idle, $active, $connected, $percent) = split /\|/, $node->safe_psql('postgres', qq{
		SELECT count(*) FILTER (WHERE state = 'idle'),
		       count(*) FILTER (WHERE state = 'active') - 1,
		       (SELECT sum(numbackends) FROM pg_stat_database) - 1,
		       100.0 * (count(*) FILTER (WHERE backend_type = 'client backend') - 1) / $max_connections
		FROM pg_stat_activity});
	return {
		idle => $idle,
		active_tasks => $active,
		count_db_connections => $connected,
		connections_percent => $percent
	};
}

# Wait until every column holds its ground truth's value over several rows
sub settle
{
	my ($what) = @_;
	my $truth;
	my $settled = DolonTest::poll_until(
		sub {
			$truth = ground_truth();
			$receiver->drain;
			foreach my $name (@profilers)
			{
				my $value = $receiver->steady_value($run->{uuid}, $column{$name}, 5);
				return 0 if abs($value - $truth->{$name}) > 0.01;
			}
			return 1;
		});
	ok($settled, "$what: every count equals its ground truth")
	  or diag(explain($truth));
	return $truth;
}

my $before = settle('with the sessions held open');
is($before->{idle}, $held, "the $held sessions held open are idle");
my ($sessions_before) = $node->safe_psql('postgres',
	q{SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'});

# The loop: a connection per transaction, $clients at a time
my $script = PostgreSQL::Test::Utils::tempdir() . '/select.sql';
PostgreSQL::Test::Utils::append_to_file($script, "SELECT 1;\n");
my ($stdout, $stderr) = ('', '');
$receiver->drain;
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-C', '-f', $script, '-c', $clients, '-j', '2',
		'-t', $connections / $clients, '-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$stdout, '2>', \$stderr);
my @rows;
while ($pgbench->pumpable)
{
	push @rows, $receiver->rows_arrived($run->{uuid});
	$pgbench->pump_nb;
	usleep(5_000);
}
$pgbench->finish;
push @rows, $receiver->rows_arrived($run->{uuid});
like($stdout, qr/number of transactions actually processed: $connections\/$connections/,
	"pgbench opened and closed $connections connections")
  or diag("$stdout\n$stderr");
my ($sessions_after) = $node->safe_psql('postgres',
	q{SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'});
cmp_ok($sessions_after - $sessions_before, '>=', $connections,
	'pg_stat_database counts them as sessions');
cmp_ok(scalar(@rows), '>=', 50, scalar(@rows) . ' rows were sampled during the loop');

# What can exist at any moment: the sessions held open, plus each client's
# connection and the one it may have just closed, whose backend may not
# have exited yet.  Only a client's open connection can be active.
my %range = (
	idle => [ $before->{idle}, $before->{idle} + 2 * $clients ],
	active_tasks => [ 0, $clients ],
	count_db_connections =>
	  [ $before->{count_db_connections}, $before->{count_db_connections} + 2 * $clients ],
	connections_percent => [
		$before->{connections_percent},
		$before->{connections_percent} + 100.0 * 2 * $clients / $max_connections
	]);
foreach my $name (@profilers)
{
	my ($low, $high) = @{ $range{$name} };
	my @values = map { $_->{row_data}[ $column{$name} ] // 'null' } @rows;
	my @outside = grep { $_ eq 'null' || $_ < $low - 0.01 || $_ > $high + 0.01 } @values;
	my ($min, $max) = (sort { $a <=> $b } grep { $_ ne 'null' } @values)[ 0, -1 ];
	is(join(',', @outside), '',
		sprintf("%s stays within [%g, %g] in each of ", $name, $low, $high) . scalar(@values)
		  . " rows during the loop (seen from $min to $max)");
}

# Nothing left behind
my $after = settle('after the loop');
is_deeply($after, $before, 'the counts are those from before the loop');

$_->quit foreach @sessions;
$node->stop;
DolonTest::check_log_clean($node);

done_testing();
