# Dropping a profiled function ends its profiling when the drop commits:
# DROP FUNCTION, DROP SCHEMA ... CASCADE, DROP EXTENSION of the extension
# that owns it, DROP DATABASE; a drop rolled back, to a savepoint or whole,
# keeps it profiled; a prepared transaction cannot carry such a drop;
# dolon.profile() waits for a drop under way; a function of the same name
# created afterwards is a new function; the set stays right across a restart
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('dropped', $receiver->port,
	"dolon.tracer_name = 'dropped'",
	"dolon.profilers = 'idle'",
	"max_prepared_transactions = 2");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION dolon;
	CREATE EXTENSION pg_trgm;
	CREATE SCHEMA app;
	CREATE FUNCTION app.work(i int) RETURNS int LANGUAGE sql AS 'SELECT i';
	CREATE FUNCTION app.step(i int) RETURNS int LANGUAGE plpgsql
	AS $$ BEGIN RETURN i; END $$;
	CREATE FUNCTION keep() RETURNS int LANGUAGE sql AS 'SELECT 1';
	CREATE FUNCTION work(i int) RETURNS int LANGUAGE sql AS 'SELECT i';
	CREATE DATABASE other;
});
$node->safe_psql('other', q{
	CREATE EXTENSION dolon;
	CREATE FUNCTION elsewhere() RETURNS int LANGUAGE sql AS 'SELECT 1';
	SELECT dolon.profile('elsewhere()');
});

# function|column_name|hits of the profiled functions, of every database
sub listing
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(concat_ws('|', database, function, column_name, hits), ', ' "
		  . "ORDER BY database, function) FROM dolon.function_stats");
}

sub oid_of
{
	my ($signature) = @_;
	return $node->safe_psql('postgres', "SELECT '$signature'::regprocedure::oid");
}

sub profiled_oid
{
	my ($oid) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM dolon.function_stats WHERE funcid = $oid");
}

# A session's query that fails: its error message
sub error_of
{
	my ($sql) = @_;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', $sql);
	return $stderr;
}

for my $f ('app.work(int)', 'app.step(int)', 'keep()', 'work(int)', 'similarity(text, text)')
{
	$node->safe_psql('postgres', "SELECT dolon.profile('$f')");
}
$node->safe_psql('postgres', 'SELECT app.work(1), app.step(1), keep(), work(1)');
is(listing(),
	'other|elsewhere()|elsewhere|0, postgres|app.step(integer)|step|1, '
	  . 'postgres|app.work(integer)|work|1, postgres|keep()|keep|1, '
	  . 'postgres|similarity(text,text)|similarity|0, postgres|work(integer)|work_2|1',
	'six functions profiled, in two databases');
$node->poll_query_until('postgres', 'SELECT columns FROM dolon.tracer', 1 + 3 * 6)
  or die 'the tracer does not have the columns of the six functions';

# A drop rolled back keeps the function profiled, its counters going on
my $work = oid_of('work(int)');
$node->safe_psql('postgres', 'BEGIN; DROP FUNCTION work(int); ROLLBACK');
is(profiled_oid($work), '1', 'a DROP FUNCTION rolled back keeps the function profiled');
$node->safe_psql('postgres', q{
	BEGIN;
	SAVEPOINT s;
	DROP FUNCTION work(int);
	ROLLBACK TO SAVEPOINT s;
	COMMIT;
});
is(profiled_oid($work), '1', '... and so does one rolled back to a savepoint');
$node->safe_psql('postgres', q{
	BEGIN;
	SAVEPOINT s;
	SAVEPOINT t;
	DROP FUNCTION work(int);
	RELEASE SAVEPOINT t;
	ROLLBACK TO SAVEPOINT s;
	COMMIT;
});
is(profiled_oid($work), '1', '... or to a savepoint above a released one');
$node->safe_psql('postgres', 'SELECT work(2)');
is($node->safe_psql('postgres', "SELECT hits FROM dolon.function_stats WHERE funcid = $work"),
	'2', '... whose calls are still counted');

# Two-phase commit cannot carry the drop of a profiled function
like(error_of('BEGIN; DROP FUNCTION work(int); PREPARE TRANSACTION \'drop_work\''),
	qr/cannot PREPARE a transaction that dropped a profiled function/,
	'PREPARE TRANSACTION of a drop of a profiled function is refused');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'... nothing is prepared')
  or $node->safe_psql('postgres', "ROLLBACK PREPARED 'drop_work'");
is(profiled_oid($work), '1', '... and the function is still profiled');

# A drop ends profiling when it commits, not before; also a drop in a
# savepoint released, whatever later savepoints roll back
my $dropper = $node->background_psql('postgres');
$dropper->query_safe('BEGIN');
$dropper->query_safe('SAVEPOINT s');
$dropper->query_safe('DROP FUNCTION work(int)');
$dropper->query_safe('RELEASE SAVEPOINT s');
$dropper->query_safe('SAVEPOINT t');
$dropper->query_safe('ROLLBACK TO SAVEPOINT t');
is(profiled_oid($work), '1', 'while the dropping transaction is open, the function is profiled');
$dropper->query_safe('COMMIT');
is(profiled_oid($work), '0', 'once it commits, dolon.function_stats no longer lists it');

# A function of the same name is a new function, not profiled until asked,
# and takes a free column name again
$node->safe_psql('postgres', "CREATE FUNCTION work(i int) RETURNS int LANGUAGE sql AS 'SELECT i'");
my $new_work = oid_of('work(int)');
isnt($new_work, $work, 'a function of the same name created again has a new OID');
$node->safe_psql('postgres', 'SELECT work(1)');
is(profiled_oid($new_work), '0', '... and is not profiled');
is($node->safe_psql('postgres', "SELECT dolon.profile('work(int)')"), 't',
	'dolon.profile() takes it');
$node->safe_psql('postgres', 'SELECT work(1)');
is($node->safe_psql('postgres',
	"SELECT column_name || '|' || hits FROM dolon.function_stats WHERE funcid = $new_work"),
	'work_2|1', '... its calls are counted, under the column name left free');
is($node->safe_psql('postgres', "SELECT dolon.unprofile('work(int)')"), 't',
	'dolon.unprofile() reaches it by its name');
is(profiled_oid($new_work), '0', '... and it is no longer profiled');

# dolon.profile() of a function whose drop is under way waits for it, and
# fails once the drop commits
my $step = oid_of('app.step(int)');
$node->safe_psql('postgres', "SELECT dolon.unprofile('app.step(int)')");
$dropper->query_safe('BEGIN');
$dropper->query_safe('DROP FUNCTION app.step(int)');
my $profiler = $node->background_psql('postgres', on_error_stop => 0);
$profiler->query_until(qr/started/, "\\echo started\nSELECT dolon.profile($step);\n");
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_locks WHERE objid = $step AND NOT granted"),
	'dolon.profile() of a function being dropped waits for the drop');
$dropper->query_safe('COMMIT');
$profiler->query('SELECT 1');    # collects the outcome of the call that waited
like($profiler->{stderr}, qr/function with OID $step does not exist/,
	'... and fails once the drop commits');
$profiler->quit;
is(profiled_oid($step), '0', '... leaving it not profiled');
$dropper->quit;

# DROP SCHEMA ... CASCADE and DROP EXTENSION drop profiled functions too
my $app_work = oid_of('app.work(int)');
$node->safe_psql('postgres', 'BEGIN; DROP SCHEMA app CASCADE; ROLLBACK');
is(profiled_oid($app_work), '1', 'a DROP SCHEMA ... CASCADE rolled back keeps app.work profiled');
$node->safe_psql('postgres', 'DROP SCHEMA app CASCADE');
is(profiled_oid($app_work), '0', 'a committed DROP SCHEMA ... CASCADE ends its profiling');
my $similarity = oid_of('similarity(text, text)');
$node->safe_psql('postgres', 'DROP EXTENSION pg_trgm');
is(profiled_oid($similarity), '0', 'DROP EXTENSION pg_trgm ends the profiling of its similarity()');

# DROP DATABASE ends the profiling of the functions of that database
$node->safe_psql('postgres', 'DROP DATABASE other');
is(listing(), 'postgres|keep()|keep|1',
	'DROP DATABASE ends the profiling of its functions; only keep() is left');
$node->poll_query_until('postgres', 'SELECT columns FROM dolon.tracer', 1 + 3)
  or die 'the tracer still has the columns of dropped functions';
pass('the tracer starts a run with the columns of keep() alone');

# The set kept across a restart is the one left
$node->restart;
is(listing(), 'postgres|keep()|keep|0',
	'after a restart, keep() alone is profiled, with its counters at 0');

$node->stop;
DolonTest::check_log_clean($node,
	allow => [
		qr/^cannot PREPARE a transaction that dropped a profiled function$/,
		# the function dropped under a session that was about to call it
		qr/^function with OID \d+ does not exist$/,
	]);

done_testing();
