# Hostile custom profilers, called at every sample for a minute next to
# built-in ones: profilers that raise, hang, loop, swallow their cancel,
# change settings, or try to gain what dolon.profiler_role may not do (SET
# ROLE, SET SESSION AUTHORIZATION in a SECURITY DEFINER function, writing
# dolon's tables, ALTER SYSTEM, pg_reload_conf(), terminating the tracer,
# making themselves superuser, running a program).  The built-in columns
# keep their ground truth's values, the hostile profilers give null, none of
# their effects remains, the tracer stays on schedule, and the one runner
# replacement they force is logged.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DolonTest;

my $frequency = 0.1;
my $minute = 60;
my $receiver = DolonTest::Receiver->new;
my @hostile = qw(raises hangs loops swallows settings set_role definer
  superuser program writes deletes alter_system reload terminate);
my $node = DolonTest::new_node('hostile', $receiver->port,
	"dolon.tracer_name = 'hostile'",
	"dolon.frequency = '100ms'",
	"dolon.profiler_timeout = '50ms'",
	"dolon.profiler_role = 'runner'");
$node->start;

# A file a profiler that ran a program as a superuser would leave
my $pwned = $node->basedir . '/pwned';

$node->safe_psql('postgres', qq{
	CREATE EXTENSION dolon;
	CREATE ROLE runner;
	CREATE SCHEMA app;
	GRANT USAGE ON SCHEMA app TO runner;
	CREATE FUNCTION app.good() RETURNS integer LANGUAGE sql AS 'SELECT 7';
	-- The hostile ones are the profiler role's own, in a schema of its own:
	-- who may replace a profiler's function can make it do anything
	CREATE SCHEMA evil AUTHORIZATION runner;
	SET ROLE runner;
	CREATE FUNCTION evil.raises() RETURNS integer LANGUAGE plpgsql AS
	  \$\$BEGIN RAISE EXCEPTION 'evil raises'; END\$\$;
	CREATE FUNCTION evil.hangs() RETURNS integer LANGUAGE sql AS
	  'SELECT pg_sleep(3600); SELECT 1';
	CREATE FUNCTION evil.loops() RETURNS integer LANGUAGE plpgsql AS
	  \$\$BEGIN LOOP NULL; END LOOP; END\$\$;
	CREATE FUNCTION evil.swallows() RETURNS integer LANGUAGE plpgsql AS \$\$
	BEGIN
	  LOOP
	    BEGIN
	      PERFORM pg_sleep(3600);
	    EXCEPTION WHEN query_canceled THEN NULL;
	    END;
	  END LOOP;
	END\$\$;
	-- Changes settings for the session, its timeout among them, then hangs
	CREATE FUNCTION evil.settings() RETURNS integer LANGUAGE plpgsql AS \$\$
	BEGIN
	  SET work_mem = '1GB';
	  SET statement_timeout = 0;
	  PERFORM set_config('search_path', 'evil', false);
	  PERFORM set_config('app.mark', 'set', false);
	  PERFORM pg_sleep(3600);
	  RETURN 1;
	END\$\$;
	CREATE FUNCTION evil.set_role() RETURNS integer LANGUAGE plpgsql AS \$\$
	BEGIN
	  SET ROLE postgres;
	  COPY (SELECT 1) TO PROGRAM 'touch $pwned';
	  RETURN 1;
	END\$\$;
	CREATE FUNCTION evil.definer() RETURNS integer LANGUAGE plpgsql
	  SECURITY DEFINER AS \$\$
	BEGIN
	  EXECUTE 'SET SESSION AUTHORIZATION postgres';
	  COPY (SELECT 1) TO PROGRAM 'touch $pwned';
	  RETURN 1;
	END\$\$;
	CREATE FUNCTION evil.superuser() RETURNS integer LANGUAGE plpgsql
	  SECURITY DEFINER AS \$\$
	BEGIN
	  ALTER ROLE runner SUPERUSER;
	  RETURN 1;
	END\$\$;
	CREATE FUNCTION evil.program() RETURNS integer LANGUAGE plpgsql AS \$\$
	BEGIN
	  COPY (SELECT 1) TO PROGRAM 'touch $pwned';
	  RETURN 1;
	END\$\$;
	CREATE FUNCTION evil.writes() RETURNS integer LANGUAGE plpgsql AS \$\$
	BEGIN
	  INSERT INTO dolon.tracer_definitions DEFAULT VALUES;
	  RETURN 1;
	END\$\$;
	CREATE FUNCTION evil.deletes() RETURNS integer LANGUAGE plpgsql AS \$\$
	BEGIN
	  DELETE FROM dolon.tracing_run;
	  RETURN 1;
	END\$\$;
	CREATE FUNCTION evil.alter_system() RETURNS integer LANGUAGE plpgsql AS \$\$
	BEGIN
	  EXECUTE 'ALTER SYSTEM SET dolon.profilers = ''idle''';
	  RETURN 1;
	END\$\$;
	CREATE FUNCTION evil.reload() RETURNS integer LANGUAGE sql AS
	  'SELECT pg_reload_conf()::integer';
	CREATE FUNCTION evil.terminate() RETURNS integer LANGUAGE sql AS
	  \$\$SELECT count(*)::integer FROM pg_stat_activity
	    WHERE backend_type = 'dolon tracer' AND pg_terminate_backend(pid)\$\$;
	RESET ROLE;
	-- A run the collector's table holds, which evil.deletes() would delete
	INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
	  VALUES ('0e264d93-8ffa-4def-b363-8803f7204502', 'kept', '{a}', now());
});
# After each hostile profiler, app.after_NAME: 1 while the call sees nothing
# an earlier one changed
foreach my $name (@hostile)
{
	$node->safe_psql('postgres', qq{
		CREATE FUNCTION app.after_$name() RETURNS integer LANGUAGE sql AS \$\$
		  SELECT CASE WHEN current_user = 'runner' AND session_user <> 'runner'
		    AND current_setting('search_path') = '"\$user", public'
		    AND current_setting('work_mem') = '4MB'
		    AND current_setting('app.mark', true) IS DISTINCT FROM 'set'
		    THEN 1 ELSE 0 END\$\$});
}

my @builtin = qw(max_connections idle_in_transaction waiting_on_locks count_db_connections);
my $definitions = $node->safe_psql('postgres',
	'SELECT count(*) FROM dolon.tracer_definitions');
my $auto_conf = slurp_file($node->data_dir . '/postgresql.auto.conf');
my $tracer = DolonTest::tracer_pid($node);
my $log_offset = -s $node->logfile;

$node->append_conf('postgresql.conf', "dolon.profilers = '"
	  . join(', ', @builtin[0 .. 2], 'app.good', map({ "evil.$_, app.after_$_" } @hostile),
		$builtin[3]) . "'\n");
$node->reload;
my $run = $receiver->wait_for(
	sub {
		$_[0]->{msg_type} eq 'create_trace_run'
		  && grep { $_ eq 'terminate' } @{ $_[0]->{column_names} };
	},
	'the run with the hostile profilers');
my %column;
@column{ @{ $run->{column_names} } } = 0 .. $#{ $run->{column_names} };

# A minute of rows, each with the time it came, and the runners seen
my (@rows, @arrivals, %runners);
my $start = time;
my $next_look = $start;
while (time - $start < $minute)
{
	my $message = $receiver->next_message(0.2);
	if (defined $message && $message->{msg_type} eq 'row'
		&& $message->{uuid} eq $run->{uuid})
	{
		push @rows, $message;
		push @arrivals, time;
	}
	if (time >= $next_look)
	{
		$runners{$_} = 1 foreach split /\n/, $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'dolon profiler runner'");
		$next_look = time + 0.5;
	}
}
my $elapsed = $arrivals[-1] - $arrivals[0];

# On schedule: a row every 100 ms, none late by more than a few periods
my $expected = $elapsed / $frequency + 1;
cmp_ok(scalar(@rows), '>=', 0.9 * $expected,
	sprintf('the tracer stays on schedule: %d rows in %.1f s at 100 ms', scalar(@rows), $elapsed));
my $longest = 0;
foreach my $i (1 .. $#arrivals)
{
	my $gap = $arrivals[$i] - $arrivals[ $i - 1 ];
	$longest = $gap if $gap > $longest;
}
cmp_ok($longest, '<', 1, sprintf('no row is late by more than 1 s (longest gap %.2f s)', $longest));

# The built-ins keep their values in every row
sub values_of
{
	my ($name) = @_;
	return map { $_->{row_data}[ $column{$name} ] // 'null' } @rows;
}
is(join(',', grep { $_ ne '100' } values_of('max_connections')), '',
	'max_connections is 100 in every row');
is(join(',', grep { $_ ne '0' } values_of('idle_in_transaction')), '',
	'idle_in_transaction is 0 in every row');
is(join(',', grep { $_ ne '0' } values_of('waiting_on_locks')), '',
	'waiting_on_locks is 0 in every row');
is(join(',', grep { $_ eq 'null' } values_of('count_db_connections')), '',
	'count_db_connections has a value in every row');

# The custom values: the good one comes, the hostile ones never
my $good = grep { $_ eq '7' } values_of('good');
cmp_ok($good, '>=', 10, "the well-behaved profiler gives its value ($good rows)");
is(join(',', grep { $_ ne '7' && $_ ne 'null' } values_of('good')), '',
	'... and no other value');
foreach my $name (@hostile)
{
	is(join(',', grep { $_ ne 'null' } values_of($name)), '', "evil.$name gives null in every row");
}
my @checks = map { values_of("after_$_") } @hostile;
is(join(',', grep { $_ ne '1' && $_ ne 'null' } @checks), '',
	'every call after a hostile one sees the role, search_path and settings unchanged');
cmp_ok(scalar(grep { $_ eq '1' } @checks), '>=', 10, '... in the calls that came in time');

# None of their effects remains
is(-e $pwned ? 'ran' : 'not run', 'not run', 'no profiler ran a program');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'runner'}),
	'f', 'the profiler role is no superuser');
is($node->safe_psql('postgres', 'SELECT count(*) FROM dolon.tracer_definitions'),
	$definitions, 'dolon.tracer_definitions is unchanged');
is($node->safe_psql('postgres', q{SELECT app_name FROM dolon.tracing_run}),
	'kept', "the collector's runs are kept");
is(slurp_file($node->data_dir . '/postgresql.auto.conf'), $auto_conf,
	'postgresql.auto.conf is unchanged');
is(DolonTest::tracer_pid($node), $tracer, 'the tracer was not terminated');
my $log = slurp_file($node->logfile, $log_offset);
my $reloads = () = $log =~ /received SIGHUP/g;
is($reloads, 1, 'the configuration was reloaded only by the test');

# The runner replacements: the profiler that swallows its cancel is ended
# and left out for 60 s, which may end within the minute
my $ended = () = $log =~
  /custom profiler evil\.swallows did not end within \d+ ms of its cancel; its process was terminated, and the profiler is left out of this tracer for 60 s/g;
ok($ended >= 1 && $ended <= 2, "the profiler that swallows its cancel is ended, and that is logged ($ended times)");
my $replaced = () = $log =~ /the process of its custom profilers is replaced/g;
cmp_ok(scalar(keys %runners), '<=', 1 + $ended + $replaced,
	sprintf('no runner went unlogged (%d runners seen, %d ended, %d replaced)',
		scalar(keys %runners), $ended, $replaced));
my ($errors) = $node->safe_psql('postgres',
	q{SELECT profiler_errors FROM dolon.tracers WHERE tracer_name = 'hostile'});
cmp_ok($errors, '>=', 100, "dolon.tracers counts the failures ($errors)");
my $warnings = () = $log =~ /WARNING:  dolon tracer "hostile": profiler /g;
cmp_ok($warnings, '<=', 2, "they are logged at most once a minute ($warnings warnings)");

# At the end, count_db_connections equals its ground truth, the sessions
# connected but this one
my $steady = $receiver->steady_value($run->{uuid}, $column{count_db_connections}, 5);
is($steady, $node->safe_psql('postgres', 'SELECT sum(numbackends) - 1 FROM pg_stat_database'),
	'count_db_connections equals pg_stat_database at the end');

$node->stop;
DolonTest::check_log_clean($node,
	allow => [
		qr/^dolon tracer "hostile": profiler (?:evil|app)\.\w+: /,
		qr/^dolon tracer "hostile": custom profiler evil\.swallows did not end within \d+ ms of its cancel; its process was terminated, and the profiler is left out of this tracer for 60 s$/,
	]);

done_testing();
