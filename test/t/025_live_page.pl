# The live page of the metrics endpoint (GET /): in a real browser, headless
# Chromium on a phone's screen, it lists the tracers with the values of their
# last sample and the collector's latest runs as charts, and follows them as
# they change; status.json, the charts and dolon_tracer_value against their
# ground truth (a value the test sets, dolon.tracers, dolon.collector, the
# collector's store); it loads nothing from elsewhere.
use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonBrowser;
use DolonMetrics;
use DolonTest;

my $port = DolonMetrics::free_tcp_port();
my $collector_port = DolonMetrics::free_tcp_port();
my $node = DolonTest::new_node('page', $collector_port,
	"dolon.metrics_port = $port",
	"dolon.collector_port = $collector_port",
	"dolon.tracer_name = 'page'",
	"dolon.frequency = '200ms'",
	"dolon.profilers = 'max_connections, app.level'",
	"dolon.profiler_role = 'profiler_runner'");
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
my $base = "http://127.0.0.1:$port";

sub status
{
	my $response = DolonMetrics::get($port, '/status.json');
	die "status.json: $response->{status}" unless $response->{status} == 200;
	return decode_json($response->{content});
}

# The value of a column in the page tracer's last sample, as status.json has it
sub status_value
{
	my ($status, $column) = @_;
	my ($tracer) = grep { $_->{name} eq 'page' } @{ $status->{tracers} };
	return undef unless $tracer;
	my ($pair) = grep { $_->[0] eq $column } @{ $tracer->{values} };
	return $pair ? $pair->[1] : undef;
}

# Ground truth: the collector stores the tracer's rows; wait for one of 42
my $run = $node->safe_psql('postgres', 'SELECT run_uuid FROM dolon.tracer');
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM dolon.tracing_run WHERE uuid = '$run'")
  or die 'the collector does not store the run';
ok( $node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM dolon.trace('$run') WHERE column_name = 'level' AND value = 42"),
	'the tracer sends its rows, the custom profiler\'s 42 among them, to the collector');

# ---- status.json ----

DolonTest::poll_until(sub { (status_value(status(), 'level') // -1) == 42 })
  or die 'status.json does not show the value of the custom profiler';
my $before = $node->safe_psql('postgres',
	'SELECT t.samples, c.stored_rows FROM dolon.tracer t, dolon.collector c');
my $response = DolonMetrics::get($port, '/status.json');
my $after = $node->safe_psql('postgres',
	'SELECT t.samples, c.stored_rows FROM dolon.tracer t, dolon.collector c');
is($response->{headers}{'content-type'}, 'application/json', 'status.json is JSON');
is($response->{headers}{'cache-control'}, 'no-store', '... never cached');
my $status = decode_json($response->{content});
my ($samples_before, $stored_before) = split /\|/, $before;
my ($samples_after, $stored_after) = split /\|/, $after;
my ($tracer) = @{ $status->{tracers} };
is($tracer->{name}, 'page', 'status.json lists the tracer');
ok($tracer->{running} && $tracer->{configured}, '... running, the configured one');
is($tracer->{run}, $run, '... with its run, as dolon.tracer has it');
ok($tracer->{samples} >= $samples_before && $tracer->{samples} <= $samples_after,
	"... its samples between dolon.tracer's before and after ($samples_before <= $tracer->{samples} <= $samples_after)");
is_deeply($tracer->{values}, [ [ 'max_connections', $max_connections ], [ 'level', 42 ] ],
	'... the values of its last sample: max_connections as SHOW gives it, the custom profiler\'s as the test set it');
is($status->{server}{version}, $node->safe_psql('postgres', 'SHOW server_version'),
	'the server\'s version');
is($status->{collector}{port}, $collector_port, 'the collector, on its port');
ok($status->{collector}{stored_rows} >= $stored_before
	  && $status->{collector}{stored_rows} <= $stored_after,
	"... its stored rows between dolon.collector's before and after");
is($status->{collector}{runs}[0]{uuid}, $run, '... its latest run first');
is($status->{collector}{runs}[0]{app_name}, 'page', '... named after the tracer');

# ---- The chart of a run ----

my $chart = DolonMetrics::get($port, "/runs/$run.svg");
is($chart->{status}, 200, 'the chart of a run');
is($chart->{headers}{'content-type'}, 'image/svg+xml', '... an SVG document');
like($chart->{content}, qr{<title>page &#8212; $run</title>}, '... of the run');
like($chart->{content}, qr{>level</text>.*class="max">42<}s,
	'... with a chart of the custom profiler\'s column, 42 at its highest');
is(DolonMetrics::get($port, '/runs/' . uc($run) . '.svg')->{status}, 200,
	'the uuid in capitals names the same run');
is(DolonMetrics::get($port, '/runs/00000000-0000-0000-0000-000000000000.svg')->{status}, 404,
	'a run the collector does not hold: 404');
for my $path ("/runs/$run", "/runs/$run.svg/", "/runs/${run}x.svg", '/runs/../metrics',
	'/runs/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz.svg', '/runs/' . ($run =~ s/-//gr) . '.svg',
	"/runs/'%3B%20DROP%20TABLE%20dolon.tracing_run%3B%20--.svg")
{
	is(DolonMetrics::get($port, $path)->{status}, 404, "not a chart: $path");
}
is($node->safe_psql('postgres', 'SELECT count(*) > 0 FROM dolon.tracing_run'), 't',
	'... and the store is whole');

# ---- The metrics have the same last values ----

my $metrics = DolonMetrics::parse(DolonMetrics::get($port, '/metrics')->{content});
is($metrics->{types}{dolon_tracer_value}, 'gauge', 'dolon_tracer_value is a gauge');
is($metrics->{samples}{'dolon_tracer_value{column="max_connections",tracer="page"}'},
	$max_connections, '... of max_connections, as SHOW gives it');
is($metrics->{samples}{'dolon_tracer_value{column="level",tracer="page"}'}, 42,
	'... of the custom profiler, as the test set it');

# ---- The page, in a browser on a phone's screen ----

my $page = DolonMetrics::get($port, '/');
is($page->{headers}{'content-type'}, 'text/html; charset=utf-8', 'GET /: the page');
like($page->{headers}{'content-security-policy'}, qr/default-src 'none'; script-src 'self'/,
	'... whose security policy allows nothing but its own files');

my $browser = DolonBrowser->new(390, 844);
$browser->visit("$base/");
ok( DolonTest::poll_until(sub { $browser->run('return document.body.dataset.state') eq 'live' }),
	'the page loads in Chromium and reads the server');

my $look = q{
	const tracer = document.querySelector('[data-tracer="page"]');
	const level = tracer && tracer.querySelector('[data-column="level"] .value');
	const chart = [...document.querySelectorAll('[data-run="' + arguments[0] + '"] svg g.chart')]
		.find((g) => g.querySelector('text').textContent === 'level');
	const line = chart && chart.querySelector('polyline');
	return {
		tracer: tracer ? tracer.querySelector('h3').textContent : null,
		level: level ? level.dataset.value : null,
		points: line ? line.getAttribute('points') : null,
		min: chart && chart.querySelector('.min') ? chart.querySelector('.min').textContent : null,
	};
};
ok(DolonTest::poll_until(sub { defined $browser->run($look, $run)->{points} }),
	'the run\'s chart is drawn');
my $first = $browser->run($look, $run);
is($first->{tracer}, 'page (configured)', 'the tracer is listed');
is($first->{level}, '42', '... with the value of its last sample');
is($first->{min}, '42', 'the chart of its column shows the value');

$node->safe_psql('postgres', 'UPDATE app.knob SET v = 7');
my $second;
ok( DolonTest::poll_until(sub {
		$second = $browser->run($look, $run);
		return $second->{level} eq '7' && ($second->{min} // '') eq '7';
	}),
	'the page follows the tracer: the new value in its list and in the chart');
isnt($second->{points}, $first->{points}, 'the chart\'s data changed between the two looks');

is($browser->run('return window.innerWidth'), 390, 'the browser shows it as a phone 390 pixels wide does');
is( $browser->run('return document.documentElement.scrollWidth <= window.innerWidth'),
	JSON::PP::true, '... and it fits: nothing scrolls sideways');
my $resources = $browser->run(
	'return performance.getEntriesByType("resource").map((r) => r.name)');
is(join(',', grep { index($_, "$base/") != 0 } @$resources), '',
	'everything it loaded came from the server itself: it works offline');

my $screenshot = "$PostgreSQL::Test::Utils::log_path/live_page.png";
$browser->screenshot($screenshot);
ok(-s $screenshot > 10_000, "a screenshot: $screenshot");

# ---- A run flooded with rows, one with a row at infinity ----

# Anyone may send the collector rows.  A run of 100,000 rows over the last
# 100 seconds: its chart reads the last 30,000 of them, not the window's all
$node->safe_psql('postgres', q{
	INSERT INTO dolon.tracing_run VALUES
		('0f100d00-0000-4000-8000-000000000001', 'flood', '{n}'),
		('0f100d00-0000-4000-8000-000000000002', 'infinite', '{n}');
	INSERT INTO dolon.tracing_row
		SELECT '0f100d00-0000-4000-8000-000000000001', ARRAY[g]::real[],
			now() - (100000 - g) * interval '1 ms'
		FROM generate_series(1, 100000) g;
	INSERT INTO dolon.tracing_row VALUES
		('0f100d00-0000-4000-8000-000000000002', '{1}', '2026-01-01 00:00:00+00'),
		('0f100d00-0000-4000-8000-000000000002', '{2}', 'infinity');
});
my $flood = DolonMetrics::get($port, '/runs/0f100d00-0000-4000-8000-000000000001.svg')->{content};
like($flood, qr/>30000 rows from /, 'a flooded run\'s chart reads its last 30,000 rows');
like($flood, qr{>n</text>.*class="min">70001<.*class="max">100000<}s,
	'... the latest: 70,001 to 100,000');
my ($infinite) = grep { $_->{app_name} eq 'infinite' } @{ status()->{collector}{runs} };
is($infinite->{last_row}, 1767225600000,
	'the last row of a run with a row at infinity: its last at a finite time');

# When the server goes, the page says so
$node->stop;
ok( DolonTest::poll_until(sub { $browser->run('return document.body.dataset.state') eq 'offline' }),
	'with the server stopped, the page says it cannot reach it');
$browser->quit;

# The tracer starts before the test creates its profiler role
DolonTest::check_log_clean($node,
	allow => [qr/dolon tracer "page" does not run its custom profilers/]);

done_testing();
