# Privileges: the matrix of the README's section "Privileges", checked cell
# by cell by doing it.  As each of its five roles (a plain login role, a
# member of pg_monitor, a member of dolon_admin, the profiler role and a
# superuser) the test calls every function of the extension with harmless
# arguments, reads and writes every table and view, uses every schema, and
# shows, sets and alters every dolon.* setting; what the cell allows must
# succeed, anything else must fail with 42501, or where a superuser fails
# too and the role may use the object's schema, with the superuser's own
# error (55P02 for SET, 55000 or 0A000 for a view that cannot be written).  What a call changes is read back where it
# shows: the profiled functions, dolon.tracer_definitions,
# postgresql.auto.conf.  The matrix must name every member of the
# extension, its schema and every dolon.* setting of pg_settings, and
# nothing else.  Also: a tracer with custom profilers needs its starter to
# have the profiler role's privileges, when it starts, at each sample and
# after a restart; no SECURITY DEFINER function without a pinned
# search_path; CREATE EXTENSION and ALTER EXTENSION UPDATE refuse a schema
# dolon that a role other than a superuser owns.
use strict;
use warnings;

use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my @roles = qw(plain monitor admin profiler boss);
my @columns = ('object', 'PUBLIC', '`pg_monitor`', '`dolon_admin`',
	'profiler role', 'superuser', 'why');
my %vocabulary = (
	schema => ['usage'],
	function => ['call'],
	table => [qw(select insert update delete)],
	view => [qw(select insert update delete)],
	setting => ['show', 'set', 'alter system']);

# The matrix, from the README: identity => { role => { action => 1 } }
my $readme = slurp_file("$FindBin::RealBin/../../README.md");
my ($section) = $readme =~ /^## Privileges\n(.*?)^## /ms;
ok(defined $section, 'the README has a section "Privileges"');
my @table = grep { /^\|/ } split /\n/, $section // '';
sub cells { my ($line) = @_; $line =~ s/^\|\s*|\s*\|$//g; return split /\s*\|\s*/, $line; }
is_deeply([ cells(shift @table // '') ], \@columns, 'the matrix has its columns');
shift @table;
my (%matrix, @order);
foreach my $line (@table)
{
	my @cells = cells($line);
	my ($kind, $name) = $cells[0] =~ /^(\w+) `([^`]+)`$/;
	if (!defined $kind || !$vocabulary{$kind} || @cells != @columns)
	{
		fail("a row of the matrix that names no object of a known kind: $line");
		next;
	}
	my $identity = "$kind $name";
	fail("two rows for $identity") if $matrix{$identity};
	push @order, $identity;
	foreach my $i (0 .. $#roles)
	{
		my $cell = $cells[ $i + 1 ];
		my %allowed = map { $_ => 1 } $cell eq '—' ? () : split /,\s*/, $cell;
		foreach my $action (keys %allowed)
		{
			fail("$identity: \"$action\" is not done to a $kind")
			  unless grep { $_ eq $action } @{ $vocabulary{$kind} };
		}
		$matrix{$identity}{ $roles[$i] } = \%allowed;
	}
}

my $receiver = DolonTest::Receiver->new;
my $port = $receiver->port;
my $node = DolonTest::new_node('privileges', $port,
	"dolon.profiler_role = 'profiler'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION dolon;
	CREATE ROLE plain LOGIN;
	CREATE ROLE monitor LOGIN IN ROLE pg_monitor;
	CREATE ROLE admin LOGIN IN ROLE dolon_admin;
	CREATE ROLE profiler LOGIN;
	CREATE ROLE boss LOGIN SUPERUSER;
	CREATE ROLE admin_profiler LOGIN IN ROLE dolon_admin, profiler;
	CREATE FUNCTION public.work() RETURNS integer LANGUAGE sql AS 'SELECT 1';
	CREATE FUNCTION public.depth() RETURNS integer LANGUAGE sql AS 'SELECT 2';
	INSERT INTO dolon.tracing_run (uuid, app_name, column_names)
	  VALUES ('0e5d0000-0000-4000-8000-000000000022', 'privileges', '{idle}');
	INSERT INTO dolon.tracing_row (uuid, row_data)
	  VALUES ('0e5d0000-0000-4000-8000-000000000022', '{1}');
});
$node->safe_psql('postgres', "SELECT dolon.start_tracer('kept', '1s', '127.0.0.1', $port, 'idle')");

# What exists: every member of the extension, its schema, every dolon.*
# setting, as "kind name" the way the matrix names them.  From PostgreSQL
# 17 on, the row type of each table and view (and its array type) is a
# member too: it goes with its relation, whose row covers it.
my %exists = map { $_ => 1 } split /\n/, $node->safe_psql('postgres', q{
	SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
	FROM pg_catalog.pg_depend d, pg_catalog.pg_extension e
	WHERE e.extname = 'dolon' AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
	  AND d.refobjid = e.oid AND d.deptype = 'e'
	  AND NOT EXISTS (
		SELECT FROM pg_catalog.pg_type t
		  LEFT JOIN pg_catalog.pg_type element ON element.oid = t.typelem
		WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = d.objid
		  AND (t.typrelid <> 0 OR element.typrelid <> 0))
	UNION ALL
	SELECT 'schema ' || e.extnamespace::pg_catalog.regnamespace
	FROM pg_catalog.pg_extension e WHERE e.extname = 'dolon'
	UNION ALL
	SELECT 'setting ' || s.name FROM pg_catalog.pg_settings s
	WHERE s.name LIKE 'dolon.%'});
is(join("\n", sort grep { !$matrix{$_} } keys %exists), '',
	'every member of the extension, its schema and every dolon.* setting has a row');
is(join("\n", sort grep { !$exists{$_} } @order), '',
	'every row of the matrix names something that exists');

# Run $sql as $role; '' if it succeeded, or the SQLSTATE of its error
sub outcome
{
	my ($role, $sql) = @_;
	my ($rc, $stdout, $stderr) = $node->psql('postgres',
		"\\set VERBOSITY sqlstate\n$sql", extra_params => [ '-U', $role ]);
	return '' if $rc == 0;
	return $stderr =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5})/ ? $1 : "failed: $stderr";
}

my $run = q{'0e5d0000-0000-4000-8000-000000000022'};
my %calls = (
	'function dolon.idle()' => 'SELECT dolon.idle()',
	'function dolon.count_db_connections()' => 'SELECT dolon.count_db_connections()',
	'function dolon.active_tasks()' => 'SELECT dolon.active_tasks()',
	'function dolon.live_msgs()' => 'SELECT dolon.live_msgs()',
	'function dolon.dead_msgs()' => 'SELECT dolon.dead_msgs()',
	'function dolon.diagnostics()' => 'SELECT pg_catalog.count(*) FROM dolon.diagnostics()',
	'function dolon.diagnostics(text[])' =>
	  q{SELECT pg_catalog.count(*) FROM dolon.diagnostics('idle', 'cpu_percent')},
	'function dolon.tracer_states()' => 'SELECT pg_catalog.count(*) FROM dolon.tracer_states()',
	'function dolon.function_stats_all()' =>
	  'SELECT pg_catalog.count(*) FROM dolon.function_stats_all()',
	'function dolon.collector_state()' => 'SELECT received FROM dolon.collector_state()',
	'function dolon.start_tracer(text,interval,text,integer,text[])' =>
	  "SELECT dolon.start_tracer('started', '1s', '127.0.0.1', $port, 'idle')",
	'function dolon.stop_tracer(text)' => q{SELECT dolon.stop_tracer('kept')},
	'function dolon.profile(regprocedure)' => q{SELECT dolon.profile('public.work()')},
	'function dolon.unprofile(regprocedure)' => q{SELECT dolon.unprofile('public.work()')},
	'function dolon.clear()' => 'SELECT dolon.clear()',
	'function dolon.run_columns(uuid)' => "SELECT dolon.run_columns($run)",
	'function dolon.trace(uuid)' => "SELECT pg_catalog.count(*) FROM dolon.trace($run)",
	'function dolon.trace_csv(uuid)' => "SELECT pg_catalog.count(*) FROM dolon.trace_csv($run)",
	'function dolon.csv_field(text)' => q{SELECT dolon.csv_field('=a,b')},
	'function dolon.sparkline(uuid,text,integer)' => "SELECT dolon.sparkline($run, 'idle', 10)",
	'function dolon.plot(uuid)' => "SELECT pg_catalog.length(dolon.plot($run))");

# For the calls that change something: the state made before each attempt,
# and a query of its effect, with the answer when the call was allowed and
# when it was not
my $profiled = q{SELECT pg_catalog.count(*) FROM dolon.function_stats
	WHERE funcid = 'public.work()'::pg_catalog.regprocedure};
my $recorded = q{SELECT pg_catalog.count(*) FROM dolon.tracer_definitions WHERE tracer_name = };
my %effects = (
	'function dolon.profile(regprocedure)' =>
	  [ q{SELECT dolon.unprofile('public.work()')}, $profiled, 1, 0 ],
	'function dolon.unprofile(regprocedure)' =>
	  [ q{SELECT dolon.profile('public.work()')}, $profiled, 0, 1 ],
	'function dolon.clear()' =>
	  [ q{SELECT dolon.profile('public.work()')}, $profiled, 0, 1 ],
	'function dolon.start_tracer(text,interval,text,integer,text[])' =>
	  [ qq{SELECT dolon.stop_tracer(tracer_name) FROM dolon.tracer_definitions
	       WHERE tracer_name = 'started'}, "$recorded 'started'", 1, 0 ],
	'function dolon.stop_tracer(text)' =>
	  [ qq{SELECT dolon.start_tracer('kept', '1s', '127.0.0.1', $port, 'idle')
	       WHERE NOT EXISTS (SELECT FROM dolon.tracer_definitions WHERE tracer_name = 'kept')},
		"$recorded 'kept'", 0, 1 ]);

# A setting's value now, as SQL text
sub setting_literal
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT pg_catalog.quote_literal(pg_catalog.current_setting('$name'))");
}

sub auto_conf_has
{
	my ($name) = @_;
	my $conf = slurp_file($node->data_dir . '/postgresql.auto.conf');
	return $conf =~ /^\Q$name\E\s*=/m ? 1 : 0;
}

# The statement that does $action to $identity
sub statement
{
	my ($identity, $action) = @_;
	my ($kind, $name) = split / /, $identity, 2;
	if ($kind eq 'schema')
	{
		my $relation = $node->safe_psql('postgres', qq{
			SELECT pg_catalog.min(relname) FROM pg_catalog.pg_class
			WHERE relnamespace = '$name'::pg_catalog.regnamespace});
		return "SELECT '$name.$relation'::pg_catalog.regclass";
	}
	return $calls{$identity} if $kind eq 'function';
	if ($kind eq 'setting')
	{
		my $value = setting_literal($name);
		return "SHOW $name" if $action eq 'show';
		return "SET $name = $value" if $action eq 'set';
		return "ALTER SYSTEM SET $name = $value";
	}
	# A table or a view: writes of no row, in a transaction rolled back
	return "SELECT pg_catalog.count(*) FROM $name" if $action eq 'select';
	return "BEGIN; INSERT INTO $name SELECT (NULL::$name).* WHERE false; ROLLBACK"
	  if $action eq 'insert';
	return "BEGIN; DELETE FROM $name WHERE false; ROLLBACK" if $action eq 'delete';
	# an updatable column if there is one
	my ($schema, $relation) = split /\./, $name;
	my $column = $node->safe_psql('postgres', qq{
		SELECT column_name FROM information_schema.columns
		WHERE table_schema = '$schema' AND table_name = '$relation'
		ORDER BY is_updatable DESC, ordinal_position LIMIT 1});
	return "BEGIN; UPDATE $name SET $column = DEFAULT WHERE false; ROLLBACK";
}

# Whether $role may use the schema of $identity, whose name it must resolve
sub uses_schema_of
{
	my ($role, $identity) = @_;
	my ($kind, $schema) = $identity =~ /^(\w+) (\w+)\./;
	return $kind eq 'setting' || $matrix{"schema $schema"}{$role}{usage};
}

my %superuser_refusals = (set => qr/^55P02$/, map { $_ => qr/^(?:55000|0A000)$/ }
	  qw(insert update delete));
foreach my $identity (@order)
{
	next unless $exists{$identity};
	my ($kind, $name) = split / /, $identity, 2;
	if ($kind eq 'function' && !$calls{$identity})
	{
		fail("$identity: the test knows no harmless call of it");
		next;
	}
	foreach my $action (@{ $vocabulary{$kind} })
	{
		my $sql = statement($identity, $action);
		my $refusal;
		foreach my $role (reverse @roles)	# the superuser first
		{
			my $allowed = $matrix{$identity}{$role}{$action};
			my $effect = $effects{$identity};
			$node->safe_psql('postgres', $effect->[0]) if $effect;
			my $got = outcome($role, $sql);
			if ($role eq 'boss' && !$allowed)
			{
				$refusal = $got;
				like($got, $superuser_refusals{$action} // qr/^$/,
					"$identity: $action refused to a superuser too, as it is to everyone");
				next;
			}
			my $expected = $allowed ? ''
			  : $matrix{$identity}{boss}{$action} || !uses_schema_of($role, $identity) ? '42501'
			  : $refusal;
			is($got, $expected, "$identity: $action as $role "
				  . ($allowed ? 'succeeds' : "fails with $expected"));
			if ($effect)
			{
				is($node->safe_psql('postgres', $effect->[1]),
					$allowed ? $effect->[2] : $effect->[3],
					"$identity: what it changes, as $role");
			}
			if ($action eq 'alter system')
			{
				is(auto_conf_has($name), $allowed ? 1 : 0,
					"$identity: postgresql.auto.conf after ALTER SYSTEM as $role");
				$node->safe_psql('postgres', "ALTER SYSTEM RESET $name");
			}
		}
	}
}
$node->safe_psql('postgres', q{SELECT dolon.unprofile('public.work()')});

# Starting a tracer with custom profilers needs the privileges of the
# profiler role too: it sends what they read where the caller chooses
my $custom = "SELECT dolon.start_tracer('custom', '1s', '127.0.0.1', $port, 'idle', 'public.depth')";
is(outcome('admin', $custom), '42501',
	'a member of dolon_admin may not start a tracer with custom profilers');
is(outcome('admin_profiler', $custom), '',
	'a member of dolon_admin and of the profiler role may');
is($node->safe_psql('postgres', "$recorded 'custom'"), '1', 'its tracer is recorded');
$node->safe_psql('postgres', q{SELECT dolon.stop_tracer('custom')});

# ... and keeps needing them: a tracer never reads with rights its starter
# lacks, also once dolon.profiler_role names a role of more rights.  The
# profiler role may not read public.secret; reader may.
$node->safe_psql('postgres', q{
	CREATE ROLE reader;
	CREATE TABLE public.secret (v integer);
	INSERT INTO public.secret VALUES (1), (2), (3);
	REVOKE ALL ON public.secret FROM PUBLIC;
	GRANT SELECT ON public.secret TO reader;
	CREATE FUNCTION public.secret_count() RETURNS bigint
	  LANGUAGE sql AS 'SELECT count(*) FROM public.secret';
});
my $leak_receiver = DolonTest::Receiver->new;
my $leak_port = $leak_receiver->port;
is(outcome('admin_profiler', "SELECT dolon.start_tracer('leak', '100ms', '127.0.0.1', $leak_port, 'public.secret_count')"),
	'', 'a member of dolon_admin and of the profiler role starts a tracer reading public.secret');
my $leak_run = $leak_receiver->wait_for_run('leak');
is($leak_receiver->wait_for_row($leak_run->{uuid})->{row_data}[0], undef,
	'its profiler, run as the profiler role, cannot read public.secret');
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET dolon.profiler_role = 'reader';
	SELECT pg_reload_conf();
});
my $why = qr/DETAIL:  Role "admin_profiler", which started the tracer, does not have the privileges of role "reader" of dolon\.profiler_role\./;
my $leaked = 0;
DolonTest::poll_until(sub {
	$leaked ||= grep { defined $_->{row_data}[0] } $leak_receiver->rows_arrived($leak_run->{uuid});
	return $leaked || slurp_file($node->logfile, $log_offset) =~ $why;
});
$leak_receiver->wait_for_row($leak_run->{uuid}) foreach 1 .. 3;
$leaked ||= grep { defined $_->{row_data}[0] } $leak_receiver->rows_arrived($leak_run->{uuid});
ok(!$leaked, 'once dolon.profiler_role names a role its starter is no member of, it reads nothing');
like(slurp_file($node->logfile, $log_offset), $why, 'and the tracer says why');
# After a restart, its row fails the checks of start_tracer
$log_offset = -s $node->logfile;
$node->restart;
$node->wait_for_log(qr/dolon does not run some tracers of dolon.tracer_definitions/, $log_offset);
like(slurp_file($node->logfile, $log_offset),
	qr/tracer "leak": permission denied to start tracer "leak" with custom profilers Role "admin_profiler", which started the tracer, does not have the privileges of role "reader"/,
	'after a restart, the tracer is not started again, saying why');
is($node->safe_psql('postgres', q{SELECT count(*) FROM dolon.tracers WHERE tracer_name = 'leak'}),
	'0', 'and it does not run');
$node->safe_psql('postgres', q{
	SELECT dolon.stop_tracer('leak');
	ALTER SYSTEM RESET dolon.profiler_role;
	SELECT pg_reload_conf();
});

is($node->safe_psql('postgres', q{
	SELECT pg_catalog.string_agg(p.oid::pg_catalog.regprocedure::text, ', ')
	FROM pg_catalog.pg_proc p, pg_catalog.pg_depend d, pg_catalog.pg_extension e
	WHERE e.extname = 'dolon' AND d.refobjid = e.oid AND d.deptype = 'e'
	  AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
	  AND p.prosecdef
	  AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c
	                  WHERE c LIKE 'search\_path=%')}), '',
	'no SECURITY DEFINER function of the extension without a search_path of its own');

# A schema dolon of a role that is not a superuser: it could rename it and
# put tables with triggers of its own where dolon's workers write as a
# superuser.  CREATE EXTENSION refuses it, and so does an update of a 1.0
# created there.
$node->safe_psql('postgres', q{
	CREATE ROLE eve LOGIN;
	CREATE DATABASE evedb OWNER eve;
});
$node->safe_psql('evedb', 'CREATE SCHEMA dolon', extra_params => [ '-U', 'eve' ]);
my ($rc, $stdout, $stderr) = $node->psql('evedb', 'CREATE EXTENSION dolon');
like($stderr, qr/ERROR:  schema "dolon" must be owned by a superuser/,
	'CREATE EXTENSION dolon refuses a schema dolon that a role other than a superuser owns');
$node->safe_psql('evedb', q{CREATE EXTENSION dolon VERSION '1.0'});
($rc, $stdout, $stderr) = $node->psql('evedb', 'ALTER EXTENSION dolon UPDATE');
like($stderr, qr/ERROR:  schema "dolon" must be owned by a superuser/,
	'ALTER EXTENSION dolon UPDATE refuses it too');
$node->safe_psql('evedb', 'ALTER SCHEMA dolon OWNER TO boss; ALTER EXTENSION dolon UPDATE');
is($node->safe_psql('evedb', q{SELECT extversion FROM pg_extension WHERE extname = 'dolon'}),
	$node->safe_psql('evedb', q{SELECT default_version FROM pg_available_extensions WHERE name = 'dolon'}),
	'once a superuser owns the schema, the update goes through');

DolonTest::check_log_clean($node, allow => [
	qr/^permission denied for (?:schema|function|table|view) \w+(?: at character \d+)?$/,
	qr/^permission denied to set parameter "dolon\.\w+"$/,
	qr/^parameter "dolon\.\w+" cannot be changed (?:now|without restarting the server)$/,
	qr/^(?:must be superuser or have privileges of pg_read_all_settings|permission denied) to examine "dolon\.metrics_token"$/,
	qr/^cannot (?:insert into|update|delete from) view "\w+"$/,
	qr/^cannot insert into column "uuid" of view "tracing_r(?:un|ow)"$/,
	qr/^permission denied to start tracer "custom" with custom profilers$/,
	qr/^dolon tracer "leak": profiler public\.secret_count: permission denied for table secret$/,
	qr/^dolon tracer "leak" does not run its custom profilers$/,
	qr/^dolon does not run some tracers of dolon\.tracer_definitions$/,
	qr/^schema "dolon" must be owned by a superuser$/ ]);

done_testing();
