# Upgrades: for every older version of the extension that can still be
# created, CREATE EXTENSION dolon VERSION 'old' followed by ALTER EXTENSION
# dolon UPDATE leaves exactly the objects of a fresh CREATE EXTENSION dolon,
# as the catalogs describe them, and keeps the collector's store.  Also:
# META.json is valid PGXN metadata for the version dolon.control installs.
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DolonTest;

# Every member object of the extension in the current database, as one JSON
# object: by identity (pg_describe_object, as \dx+ lists them), what the
# catalogs say of it.  Functions by pg_get_functiondef (language, symbol or
# body, volatility, strictness, parallel safety, rows, settings, defaults);
# relations by kind, view definition, columns, constraints, indexes and
# triggers; for all, the owner, the privileges, the initial privileges that
# pg_dump relies on, and the comment.  Then the extension's own entry: its
# schema's privileges and its configuration tables.
my $describe = <<'SQL';
SELECT pg_catalog.json_object_agg(identity, description) FROM (
WITH ext AS (
  SELECT e.oid, e.extnamespace, e.extconfig, e.extcondition
  FROM pg_catalog.pg_extension e WHERE e.extname = 'dolon'
), member AS (
  SELECT d.classid, d.objid, d.objsubid,
         pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS identity
  FROM pg_catalog.pg_depend d, ext
  WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
    AND d.refobjid = ext.oid AND d.deptype = 'e'
)
SELECT m.identity, concat_ws(E'\n',
  CASE m.classid
    WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
      (SELECT concat_ws(E'\n', pg_catalog.pg_get_functiondef(p.oid),
                        'owner ' || p.proowner::pg_catalog.regrole,
                        'acl ' || coalesce(p.proacl::text, '(default)'))
       FROM pg_catalog.pg_proc p WHERE p.oid = m.objid)
    WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN
      (SELECT concat_ws(E'\n',
         'kind ' || c.relkind::text || ' persistence ' || c.relpersistence::text,
         'owner ' || c.relowner::pg_catalog.regrole,
         'acl ' || coalesce(c.relacl::text, '(default)'),
         'options ' || c.reloptions::text,
         CASE WHEN c.relkind = 'v'
              THEN 'view ' || pg_catalog.pg_get_viewdef(c.oid) END,
         (SELECT string_agg(concat_ws(' ', 'column', a.attname,
                   pg_catalog.format_type(a.atttypid, a.atttypmod),
                   CASE WHEN a.attnotnull THEN 'not null' END,
                   'default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid),
                   'acl ' || a.attacl::text,
                   'comment ' || pg_catalog.col_description(a.attrelid, a.attnum)),
                 E'\n' ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a
          LEFT JOIN pg_catalog.pg_attrdef ad
            ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
         (SELECT string_agg('constraint ' || k.conname || ' '
                            || pg_catalog.pg_get_constraintdef(k.oid),
                            E'\n' ORDER BY k.conname)
          FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid),
         (SELECT string_agg(pg_catalog.pg_get_indexdef(i.indexrelid),
                            E'\n' ORDER BY pg_catalog.pg_get_indexdef(i.indexrelid))
          FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid),
         (SELECT string_agg('trigger ' || pg_catalog.pg_get_triggerdef(t.oid),
                            E'\n' ORDER BY t.tgname)
          FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid))
       FROM pg_catalog.pg_class c WHERE c.oid = m.objid)
    WHEN 'pg_catalog.pg_namespace'::pg_catalog.regclass THEN
      (SELECT concat_ws(E'\n', 'owner ' || n.nspowner::pg_catalog.regrole,
                        'acl ' || coalesce(n.nspacl::text, '(default)'))
       FROM pg_catalog.pg_namespace n WHERE n.oid = m.objid)
    ELSE 'a member of a kind this test does not describe'
  END,
  (SELECT string_agg(concat_ws(' ', 'initial privileges', i.objsubid, i.privtype::text,
                               i.initprivs::text),
                     E'\n' ORDER BY i.objsubid)
   FROM pg_catalog.pg_init_privs i
   WHERE i.classoid = m.classid AND i.objoid = m.objid),
  'comment ' || pg_catalog.obj_description(m.objid, m.classid::pg_catalog.regclass::text))
FROM member m
UNION ALL
SELECT 'the extension', concat_ws(E'\n',
  'schema ' || n.nspname || ' acl ' || n.nspacl::text,
  'configuration tables ' || ext.extconfig::pg_catalog.regclass[]::text,
  'conditions ' || ext.extcondition::text)
FROM ext JOIN pg_catalog.pg_namespace n ON n.oid = ext.extnamespace
) AS object (identity, description)
SQL

# The description of each object, by its identity
sub describe
{
	my ($node, $database) = @_;
	return JSON::PP->new->decode($node->safe_psql($database, $describe));
}

# The rows the collector stored, as read back by the reading functions
sub store
{
	my ($node, $database) = @_;
	return $node->safe_psql($database, q{
		SELECT r.app_name, r.column_names, t.value
		FROM dolon.runs r, dolon.trace(r.uuid) t
		ORDER BY r.app_name, t.time, t.column_name});
}

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'dolon'\ndolon.host = ''\n");
$node->start;

my $default = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'dolon'});
my @older = split /\n/, $node->safe_psql('postgres', q{
	SELECT version FROM pg_available_extension_versions
	WHERE name = 'dolon' AND version <> (SELECT default_version
	                                     FROM pg_available_extensions
	                                     WHERE name = 'dolon')
	ORDER BY string_to_array(version, '.')::int[]});
ok(grep({ $_ eq '1.0' } @older), "1.0, the first release, can still be created (default $default)");

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION dolon');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'dolon'}),
	$default, "a fresh CREATE EXTENSION dolon installs $default");
my $fresh = describe($node, 'fresh');
my $fresh_dx = $node->safe_psql('fresh', '\dx+ dolon');

# Something for the collector's store to keep across updates
my $fill = q{
	INSERT INTO dolon.tracing_run (uuid, app_name, column_names, creation_time)
	VALUES ('6f1f5a4e-1d1c-4a6e-9d7e-0c1e2f3a4b5c', 'kept', '{idle,live_msgs}',
	        '2026-12-01 10:00:00+00');
	INSERT INTO dolon.tracing_row (uuid, row_data, date_time)
	SELECT '6f1f5a4e-1d1c-4a6e-9d7e-0c1e2f3a4b5c', ARRAY[i, i * 10]::real[],
	       '2026-12-01 10:00:00+00'::timestamptz + i * interval '1 s'
	FROM generate_series(1, 5) i;
};
$node->safe_psql('fresh', $fill);
my $stored = store($node, 'fresh');

foreach my $old (@older)
{
	my $database = "from_$old" =~ s/\./_/gr;
	$node->safe_psql('postgres', "CREATE DATABASE $database");
	$node->safe_psql($database, "CREATE EXTENSION dolon VERSION '$old'");
	$node->safe_psql($database, $fill);

	# Between the new library's install and the update, the old objects
	# answer, or say that they need the update
	my @views = split /\n/, $node->safe_psql($database, q{
		SELECT c.oid::regclass FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
		WHERE d.classid = 'pg_class'::regclass AND c.relkind = 'v' AND d.deptype = 'e'
		  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dolon')
		ORDER BY 1});
	foreach my $view (@views)
	{
		my ($rc, $out, $err) = $node->psql($database, "SELECT count(*) FROM $view");
		ok($rc == 0 || $err =~ /HINT:  Update the extension: ALTER EXTENSION dolon UPDATE\./,
			"$old with the new library: $view answers or asks for the update")
		  or diag($err);
	}

	$node->safe_psql($database, 'ALTER EXTENSION dolon UPDATE');
	is($node->safe_psql($database,
			q{SELECT extversion FROM pg_extension WHERE extname = 'dolon'}),
		$default, "ALTER EXTENSION dolon UPDATE brings $old to $default");

	my $updated = describe($node, $database);
	is_deeply([ sort keys %$updated ], [ sort keys %$fresh ],
		"$old updated has the member objects of a fresh $default");
	foreach my $identity (sort keys %$fresh)
	{
		next unless exists $updated->{$identity};
		is($updated->{$identity}, $fresh->{$identity},
			"$old updated: $identity as in a fresh $default");
	}
	my $dx = $node->safe_psql($database, '\dx+ dolon');
	is($dx, $fresh_dx, "$old updated: \\dx+ dolon as in a fresh $default");
	is(store($node, $database), $stored,
		"$old updated: the collector's store is kept and reads back");
}

# META.json: PGXN metadata (meta-spec 1.0.0) of the version that
# dolon.control installs
my $meta = eval { JSON::PP->new->decode(slurp_file('META.json')) };
is($@, '', 'META.json is JSON');
my $control = slurp_file('dolon.control');
my ($control_version) = $control =~ /^default_version = '([^']+)'/m;
is($control_version, $default, 'dolon.control is the control file installed');
foreach my $key (qw(name abstract version maintainer license provides meta-spec))
{
	ok(defined $meta->{$key}, "META.json has the required key $key");
}
is($meta->{name}, 'dolon', 'META.json names the distribution dolon');
is($meta->{'meta-spec'}{version}, '1.0.0', 'META.json follows meta-spec 1.0.0');
is($meta->{license}, 'postgresql', 'META.json gives the PostgreSQL licence');
like($meta->{version}, qr/^\d+\.\d+\.\d+$/, 'its version is a semantic version');
is($meta->{version}, "$default.0", 'its version is the extension version, as a semantic version');
my $provided = $meta->{provides}{dolon} // {};
is($provided->{version}, "$default.0", 'it provides the extension dolon at that version');
is($provided->{file}, "dolon--$default.sql", 'from the script of that version');
ok(-f $provided->{file}, 'which exists');
ok(-f $provided->{docfile}, 'its documentation exists') if defined $provided->{docfile};
ok(grep({ $meta->{release_status} eq $_ } qw(stable testing unstable)), 'its release status is one of the spec')
  if defined $meta->{release_status};
like($meta->{prereqs}{runtime}{requires}{PostgreSQL} // '', qr/^\d+\.\d+\.\d+$/,
	'it requires a version of PostgreSQL');

DolonTest::check_log_clean($node,
	allow => [ qr/^the SQL objects of dolon do not match its library$/ ]);
$node->stop;
done_testing();
