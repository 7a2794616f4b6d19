# The metrics endpoint with the real programs of the monitoring stack, from
# Debian's packages, on loopback: prometheus-postgres-exporter on the same
# server, family by family and series by series for every family both
# report; Prometheus and VictoriaMetrics scraping the endpoint every second,
# the values they store equal to the ground truth, and following it when it
# changes.
use strict;
use warnings;

use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;
use DolonMetrics;
use DolonPeers;

my $sink = DolonTest::Receiver->new;
my $port = DolonMetrics::free_tcp_port();
my $node = DolonTest::new_node('peers', $sink->port, "dolon.metrics_port = $port");
$node->start;
DolonTest::poll_until(sub { DolonMetrics::get($port, '/metrics')->{status} == 200 })
  or die 'the metrics endpoint does not answer';

# The state: a database where only the test works, with sessions in it, and
# tables in the database dolon connects to
$node->safe_psql('postgres', 'CREATE DATABASE watched');
$node->safe_psql('watched', 'CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)');
$node->safe_psql('postgres', q{
	CREATE TABLE here (id int);
	INSERT INTO here SELECT generate_series(1, 42);
	DELETE FROM here WHERE id > 40;
	CREATE TABLE "Other ""one""" (id int);
});
my @idle = map { $node->background_psql('watched') } 1 .. 2;
my $in_transaction = $node->background_psql('watched');
$in_transaction->query_safe('BEGIN; SELECT txid_current()');
$node->poll_query_until('postgres',
	"SELECT n_live_tup = 40 AND n_dead_tup = 2 FROM pg_stat_user_tables WHERE relname = 'here'")
  or die 'the statistics of here are not flushed';
$node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM pg_stat_activity WHERE datname = 'watched' AND state IS NOT NULL")
  or die 'the sessions of watched are not there';

my $dir = "$PostgreSQL::Test::Utils::tmp_check/peers_$$";
make_path($dir);

# ---- prometheus-postgres-exporter, side by side ----

my $user = $node->safe_psql('postgres', 'SELECT current_user');
my $exporter_port = DolonMetrics::free_tcp_port();
local $ENV{DATA_SOURCE_NAME} = sprintf('host=%s port=%d user=%s dbname=postgres sslmode=disable',
	$node->host, $node->port, $user);

sub start_exporter
{
	my @options = @_;
	return DolonPeers->start('postgres-exporter',
		[ 'prometheus-postgres-exporter', "--web.listen-address=127.0.0.1:$exporter_port", @options ],
		"http://127.0.0.1:$exporter_port/metrics");
}

sub exporter_metrics
{
	my $response = DolonMetrics::get($exporter_port, '/metrics');
	die "the exporter failed: $response->{status}" unless $response->{status} == 200;
	return DolonMetrics::parse($response->{content});
}

# The exporter reads pg_stat_user_tables with a query of its example
# queries.yaml, unless it has a collector for it (newer versions)
my $exporter = start_exporter();
my $theirs = exporter_metrics();
if (!exists $theirs->{types}{pg_stat_user_tables_n_live_tup})
{
	my ($example) = grep { -f } map { "/usr/share/doc/prometheus-postgres-exporter/examples/$_" }
	  qw(queries.yaml);
	die 'the exporter has neither a collector nor an example query for pg_stat_user_tables'
	  unless $example;
	my ($query) = slurp_file($example) =~ /^(pg_stat_user_tables:\n(?:[ \t].*\n|\n)+)/m
	  or die "no query pg_stat_user_tables in $example";
	append_to_file("$dir/queries.yaml", $query);
	$exporter->stop;
	$exporter = start_exporter("--extend.query-path=$dir/queries.yaml");
	$theirs = exporter_metrics();
}
my $ours = DolonMetrics::scrape($port);

# Families both report: the same type, the same series (the exporter's
# label "server", the address it connected to, aside)
my @common = sort grep { exists $theirs->{types}{$_} } keys %{ $ours->{types} };
# The families a dashboard built for the exporter reads first
my @wanted = qw(pg_up pg_settings_max_connections pg_stat_activity_count
  pg_stat_activity_max_tx_duration pg_stat_database_numbackends
  pg_stat_database_xact_commit pg_stat_database_xact_rollback
  pg_stat_database_deadlocks pg_stat_user_tables_n_live_tup
  pg_stat_user_tables_n_dead_tup);
is(join(',', grep { !exists $theirs->{types}{$_} } @wanted), '',
	'the exporter reports every family of those a dashboard reads first');
is(join(',', grep { !exists $theirs->{types}{$_} } sort grep { /^pg_/ } keys %{ $ours->{types} }), '',
	'every family dolon reports under an exporter\'s name (pg_*), the exporter reports too');

# The series of a family, keyed by the label names of dolon's series of it:
# other labels (the exporter's "server", and those newer exporters add to
# pg_stat_activity_*: application_name, backend_type, usename, wait_event,
# wait_event_type) are summed over, or for the longest transaction, the
# greatest taken
sub series_of
{
	my ($metrics, $family, $names) = @_;
	my %series;
	foreach my $key (keys %{ $metrics->{samples} })
	{
		next unless $key =~ /^\Q$family\E(?:\{|$)/;
		my $labels = $metrics->{labels}{$key};
		my %kept = map { $_ => $labels->{$_} // '' } @$names;
		my $kept_key = DolonMetrics::series_key($family, \%kept);
		my $value = $metrics->{samples}{$key};
		if (!exists $series{$kept_key})
		{
			$series{$kept_key} = $value;
		}
		elsif ($family eq 'pg_stat_activity_max_tx_duration')
		{
			$series{$kept_key} = $value if $value > $series{$kept_key};
		}
		else
		{
			$series{$kept_key} += $value;
		}
	}
	return \%series;
}

# The label names of dolon's series of a family
sub label_names
{
	my ($family) = @_;
	my %names;
	foreach my $key (grep { /^\Q$family\E(?:\{|$)/ } keys %{ $ours->{samples} })
	{
		$names{$_} = 1 foreach keys %{ $ours->{labels}{$key} };
	}
	return [ sort keys %names ];
}

# Debian 12's exporter (0.11) labels as dolon does; newer ones add labels to
# pg_stat_activity_* and leave out pg_stat_database's row of shared objects
# (datid 0), which dolon keeps, as the view has it
my ($exporter_version) = `prometheus-postgres-exporter --version 2>&1` =~ /version (\d+\.\d+)/;
my $same_labels = ($exporter_version // '') eq '0.11';
foreach my $family (@common)
{
	my $their_type = $theirs->{types}{$family};
	is($ours->{types}{$family}, $their_type, "$family: the exporter's type ($their_type)")
	  unless $their_type eq 'untyped';
	my $names = label_names($family);
	my $our_series = series_of($ours, $family, $names);
	my $their_series = series_of($theirs, $family, $names);
	if ($same_labels)
	{
		is(join("\n", sort keys %$our_series), join("\n", sort keys %$their_series),
			"$family: the exporter's series, label for label");
	}
	else
	{
		is(join("\n", grep { !exists $our_series->{$_} } sort keys %$their_series), '',
			"$family: every series of exporter $exporter_version is one of dolon's, its other labels summed over");
	}

	# Values: where the exporter's own work does not move them (it connects
	# to postgres, and its queries read the shared catalogs)
	my @compared = grep {
		exists $their_series->{$_}
		  && ($family !~ /^pg_stat_(?:database|activity)_/ || /datname="watched"/)
		  && $family ne 'pg_stat_activity_max_tx_duration'
	} sort keys %$our_series;
	is(join("\n", map { "$_ $our_series->{$_}" } @compared),
		join("\n", map { "$_ $their_series->{$_}" } @compared),
		"$family: the exporter's values (" . scalar(@compared) . ' series compared)')
	  if @compared;
}

# The age of the open transaction, read one after the other
my $age_key = DolonMetrics::series_key('pg_stat_activity_max_tx_duration',
	{ datname => 'watched', state => 'idle in transaction' });
my $age_names = label_names('pg_stat_activity_max_tx_duration');
my $their_age = series_of(exporter_metrics(), 'pg_stat_activity_max_tx_duration', $age_names)->{$age_key};
my $our_age = series_of(DolonMetrics::scrape($port), 'pg_stat_activity_max_tx_duration', $age_names)->{$age_key};
ok(defined $their_age && defined $our_age && abs($our_age - $their_age) < 2,
	"pg_stat_activity_max_tx_duration of the open transaction: dolon says $our_age s, the exporter "
	  . ($their_age // 'nothing'));
$exporter->stop;

# ---- Prometheus and VictoriaMetrics, scraping every second ----

my $scrape_config = <<"EOF";
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: dolon
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
append_to_file("$dir/scrape.yml", $scrape_config);

my $prometheus_port = DolonMetrics::free_tcp_port();
my $prometheus = DolonPeers->start('prometheus',
	[ 'prometheus', "--config.file=$dir/scrape.yml", "--storage.tsdb.path=$dir/prometheus",
	  "--web.listen-address=127.0.0.1:$prometheus_port" ],
	"http://127.0.0.1:$prometheus_port/-/ready");
my $victoria_port = DolonMetrics::free_tcp_port();
my $victoria = DolonPeers->start('victoria-metrics',
	[ 'victoria-metrics', "-promscrape.config=$dir/scrape.yml", "-storageDataPath=$dir/victoria",
	  "-httpListenAddr=127.0.0.1:$victoria_port", '-retentionPeriod=1d',
	  '-search.latencyOffset=0s' ],
	"http://127.0.0.1:$victoria_port/health");
my %stores = (
	Prometheus => "http://127.0.0.1:$prometheus_port",
	VictoriaMetrics => "http://127.0.0.1:$victoria_port");

# What a store has for a query: the value of its one series, or undef
sub stored
{
	my ($base, $promql) = @_;
	my @result = DolonPeers::instant_query($base, $promql);
	return @result == 1 ? $result[0][1] + 0 : undef;
}

# Wait until a store has $expected for the query; return what it had last
sub wait_stored
{
	my ($base, $promql, $expected) = @_;
	my $value;
	DolonTest::poll_until(sub {
		$value = stored($base, $promql);
		return defined $value && $value == $expected;
	});
	return $value;
}

my %truth = (
	'up{job="dolon"}' => 1,
	'pg_up{job="dolon"}' => 1,
	'pg_stat_user_tables_n_live_tup{relname="here"}' =>
	  $node->safe_psql('postgres', "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'here'"),
	'pg_stat_user_tables_n_dead_tup{relname="here"}' =>
	  $node->safe_psql('postgres', "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'here'"),
	'pg_stat_database_numbackends{datname="watched"}' =>
	  $node->safe_psql('postgres', "SELECT numbackends FROM pg_stat_database WHERE datname = 'watched'"),
	'pg_stat_database_xact_commit{datname="watched"}' =>
	  $node->safe_psql('postgres', "SELECT xact_commit FROM pg_stat_database WHERE datname = 'watched'"),
	'pg_stat_activity_count{datname="watched",state="idle in transaction"}' => 1,
	'pg_settings_max_connections' => $node->safe_psql('postgres', 'SHOW max_connections'));

foreach my $store (sort keys %stores)
{
	foreach my $promql (sort keys %truth)
	{
		is(wait_stored($stores{$store}, $promql, $truth{$promql}), $truth{$promql},
			"$store stores $promql = $truth{$promql}, the ground truth");
	}
}

# The state changes: the stores follow
$node->safe_psql('postgres', 'INSERT INTO here SELECT generate_series(1, 10)');
$in_transaction->query_safe('COMMIT');
$node->poll_query_until('postgres',
	"SELECT n_live_tup = 50 FROM pg_stat_user_tables WHERE relname = 'here'")
  or die 'the insert is not counted';
foreach my $store (sort keys %stores)
{
	is(wait_stored($stores{$store}, 'pg_stat_user_tables_n_live_tup{relname="here"}', 50), 50,
		"$store follows n_live_tup to 50 after an insert");
	is(wait_stored($stores{$store},
		'pg_stat_activity_count{datname="watched",state="idle in transaction"}', 0), 0,
		"$store follows the session out of its transaction");
}

$prometheus->stop;
$victoria->stop;
$_->quit for @idle, $in_transaction;
$node->stop;
DolonTest::check_log_clean($node);

done_testing();
