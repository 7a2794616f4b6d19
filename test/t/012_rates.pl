# Transaction rates at sub-second frequencies.  Backends report their
# counts at most once a second, so a rate over one 250 ms interval would
# read 0, then four times the rate; over a window of a few seconds it is
# smooth.  Under a steady load, every value is close to the rate pgbench
# reports.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DolonTest;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('rates', $receiver->port,
	"dolon.tracer_name = 'rates'",
	"dolon.frequency = '250ms'",
	"dolon.profilers = 'xact_commit_rate'");
$node->start;
my $run = $receiver->wait_for_run('rates');

# A steady 200 transactions a second from two clients, each an insert
$node->safe_psql('postgres', 'CREATE TABLE load (v integer)');
my $script = PostgreSQL::Test::Utils::tempdir() . '/insert.sql';
PostgreSQL::Test::Utils::append_to_file($script, "INSERT INTO load VALUES (1);\n");
my $seconds = 14;
my ($stdout, $stderr) = ('', '');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-f', $script, '-c', '2', '-j', '2', '-R', '200',
		'-T', $seconds, '-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$stdout, '2>', \$stderr);
my $start = time;

# The rows of the steady state: after the window has filled, before the end
my @values;
while (time < $start + $seconds - 1)
{
	my $row = $receiver->wait_for_row($run->{uuid});
	push @values, $row->{row_data}[0] if time > $start + 7;
}
$pgbench->finish;
my ($tps) = $stdout =~ /tps = ([\d.]+)/ or die "no tps from pgbench: $stdout $stderr";
note "pgbench: $tps transactions a second; xact_commit_rate: @values";

cmp_ok(scalar(@values), '>=', 15, 'rows came every 250 ms during the steady load');
my @off = grep { !defined $_ || $_ < 0.5 * $tps || $_ > 1.5 * $tps } @values;
is(scalar(@off), 0,
	"every xact_commit_rate sampled every 250 ms is within 50 % of pgbench's $tps tps"
	  . (@off ? " (off: @{[ map { $_ // 'null' } @off ]})" : ''));

$node->stop;
DolonTest::check_log_clean($node);

done_testing();
