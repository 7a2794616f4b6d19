# The Debian package: built from this tree with pg_buildext and
# dpkg-buildpackage, installed with apt into a clean Debian 12 root file
# system next to postgresql-15, and working there: a cluster made with
# pg_createcluster, dolon preloaded, CREATE EXTENSION dolon, and an update
# from 1.0.
#
# It needs root (debootstrap, chroot, mounts) and installs what it needs on
# this machine with apt-get: debhelper, dpkg-dev, fakeroot,
# postgresql-server-dev-all and debootstrap.  The clean root file system
# comes from debootstrap once, is kept in /var/cache/dolon/bookworm-rootfs,
# and each run works on a copy of it; the packages apt downloads into it are
# kept in /var/cache/dolon/bookworm-apt-archives.
use strict;
use warnings;

use Cwd qw(getcwd);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use POSIX ();
use Test::More;
use Time::HiRes qw(time);

plan skip_all => 'the package test needs root, for debootstrap, chroot and mounts'
  if $> != 0;
plan skip_all => 'the package test is for Debian 12 (bookworm) and its postgresql-15'
  unless `cat /etc/os-release 2>/dev/null` =~ /^VERSION_CODENAME=bookworm$/m;

my $pg_major = 15;
my $codename = 'bookworm';
my $cache = '/var/cache/dolon';
my $rootfs = "$cache/$codename-rootfs";
my $archives = "$cache/$codename-apt-archives";
my $top = getcwd;
my $work = tempdir('dolon-package.XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $log = "$work/log";
my $started = time;

# Run a command, its output appended to the log, in a process group of its
# own that an interruption of the test ends; true if it succeeded
my $child;
sub run
{
	my (@command) = @_;
	open(my $fh, '>>', $log) or die "cannot write $log: $!";
	print $fh '$ ' . join(' ', @command) . "\n";
	close $fh;
	$child = fork // die "cannot fork: $!";
	if ($child == 0)
	{
		setpgrp(0, 0);
		open(STDOUT, '>>', $log) && open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
		exec(@command) or POSIX::_exit(127);
	}
	waitpid($child, 0);
	undef $child;
	return $? == 0;
}

# The end of the log, to show what failed
sub log_tail
{
	open(my $fh, '<', $log) or return '';
	my @lines = <$fh>;
	return join('', @lines[ ($#lines > 40 ? $#lines - 40 : 0) .. $#lines ]);
}

# Run a command or end the test, showing the log
sub run_or_die
{
	my ($what, @command) = @_;
	run(@command) or die "$what failed:\n" . log_tail();
	return;
}

# The Debian archives of this machine's apt sources for $codename, its
# updates and its security updates: [uri, suite, components]
sub debian_sources
{
	my @sources;
	foreach my $file (glob('/etc/apt/sources.list /etc/apt/sources.list.d/*'))
	{
		open(my $fh, '<', $file) or next;
		local $/;
		my $text = <$fh>;
		if ($file =~ /\.sources$/)
		{
			foreach my $stanza (split /\n\s*\n/, $text)
			{
				my %field = $stanza =~ /^([A-Za-z-]+):\s*(.*?)\s*$/mg;
				next unless ($field{Types} // '') =~ /\bdeb\b/;
				foreach my $uri (split ' ', $field{URIs} // '')
				{
					push @sources, [ $uri, $_, $field{Components} // 'main' ]
					  foreach split ' ', $field{Suites} // '';
				}
			}
		}
		else
		{
			push @sources, [ $1, $2, $3 ]
			  while $text =~ /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*?)\s*$/mg;
		}
	}
	return grep { $_->[1] =~ /^\Q$codename\E(-updates|-security)?$/ } @sources;
}

# What this machine needs to build the package and the root file system
my @missing = grep {
	`dpkg-query -W -f='\${Status}' $_ 2>/dev/null` !~ /install ok installed/
} qw(debhelper dpkg-dev fakeroot postgresql-server-dev-all libmicrohttpd-dev debootstrap);
if (@missing)
{
	local $ENV{DEBIAN_FRONTEND} = 'noninteractive';
	run_or_die('apt-get update', 'apt-get', 'update', '-q');
	run_or_die("installing @missing", 'apt-get', 'install', '-y', '-q',
		'--no-install-recommends', @missing);
}

# The package, built in a copy of the tree
my $source = "$work/dolon";
mkdir $source or die "cannot create $source: $!";
run_or_die('copying the tree', 'sh', '-c',
	'tar -C "$0" --exclude=.git --exclude=tmp_check --exclude=results -cf - . | tar -C "$1" -xf -',
	$top, $source);
my $build_started = time;
ok(run('sh', '-c', 'cd "$0" && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b',
		$source),
	'dpkg-buildpackage builds the package')
  or diag(log_tail());
my $build_seconds = time - $build_started;
chomp(my $version = `cd '$source' && dpkg-parsechangelog -S Version`);
chomp(my $architecture = `dpkg --print-architecture`);
my $deb = "postgresql-$pg_major-dolon_${version}_$architecture.deb";
ok(-f "$work/$deb", "it gives $deb") or die "no package to test\n";

my %contents = map { (split ' ', $_, 6)[5] =~ s{^\./}{/}r => 1 }
  split /\n/, `dpkg-deb -c '$work/$deb'`;
my @scripts = map { s{.*/}{}r } glob("$top/dolon--*.sql");
my @page = map { s{.*/}{}r } glob("$top/src/page/*");
ok(exists $contents{"/usr/lib/postgresql/$pg_major/lib/dolon.so"}, 'it holds the library');
is_deeply(
	[ grep { exists $contents{"/usr/share/postgresql/$pg_major/extension/$_"} }
		  'dolon.control', @scripts, @page ],
	[ 'dolon.control', @scripts, @page ],
	'it holds the control file, every SQL script and the live page\'s files: '
	  . join(', ', @scripts, @page));
like(`dpkg-deb -f '$work/$deb' Depends`, qr/\bpostgresql-$pg_major\b/,
	"it depends on postgresql-$pg_major");

# The clean root file system, made once
my @sources = debian_sources();
my ($mirror) = map { $_->[0] } grep { $_->[1] eq $codename } @sources;
$mirror //= 'http://deb.debian.org/debian';
my $rootfs_seconds = 0;
if (!-x "$rootfs/usr/bin/apt-get")
{
	my $rootfs_started = time;
	my $new = "$rootfs.new";
	remove_tree($new);
	run_or_die("debootstrap of $codename from $mirror",
		'debootstrap', '--variant=minbase', $codename, $new, $mirror);
	rename($new, $rootfs) or die "cannot rename $new: $!";
	$rootfs_seconds = time - $rootfs_started;
}
ok(-x "$rootfs/usr/bin/apt-get", "a clean $codename root file system in $rootfs");

# A copy of it for this run, with /proc, /dev/shm and the kept downloads
# mounted; unmounted and removed whatever happens, and only once unmounted
my $root = tempdir('dolon-rootfs.XXXXXX', DIR => $cache);
my @mounted;
sub cleanup
{
	return unless defined $root;
	if (-f "$root/tmp/dolon-test.pid")
	{
		# the cluster, if the test stopped while it ran: a fast shutdown,
		# waited for
		chomp(my $pid = `head -1 '$root/tmp/dolon-test.pid'`);
		if ($pid =~ /^\d+$/ && kill('INT', $pid))
		{
			my $deadline = time + 60;
			Time::HiRes::sleep(0.1) while kill(0, $pid) && time < $deadline;
		}
	}
	while (my $mount = pop @mounted)
	{
		system('umount', $mount) == 0 || system('umount', '-l', $mount);
	}
	remove_tree($root) if -d $root && !grep { m{ \Q$root\E/} } `cat /proc/mounts`;
	return;
}
END { cleanup(); }
$SIG{$_} = sub {
	if ($child)
	{
		kill 'TERM', -$child;
		waitpid($child, 0);
	}
	die "interrupted\n";
} foreach qw(INT TERM HUP);

my $setup_started = time;
run_or_die('copying the root file system', 'cp', '-a', "$rootfs/.", $root);
chmod 0755, $root;
mkdir $archives;
mkdir "$archives/partial";
foreach my $mount ([ 'proc', '-t', 'proc', 'proc' ], [ 'dev/shm', '-t', 'tmpfs', 'tmpfs' ],
	[ 'var/cache/apt/archives', '--bind', $archives ])
{
	my ($where, @what) = @$mount;
	run_or_die("mounting /$where", 'mkdir', '-p', "$root/$where");
	run_or_die("mounting /$where", 'mount', @what, "$root/$where");
	push @mounted, "$root/$where";
}

sub write_file
{
	my ($path, $text) = @_;
	open(my $fh, '>', "$root$path") or die "cannot write $root$path: $!";
	print $fh $text;
	close $fh;
	return;
}
write_file('/etc/apt/sources.list',
	join('', map { "deb $_->[0] $_->[1] $_->[2]\n" } @sources)
	  || "deb $mirror $codename main\n");
# no service started by a package's installation, no main cluster, and
# the downloaded packages kept
write_file('/usr/sbin/policy-rc.d', "#!/bin/sh\nexit 101\n");
chmod 0755, "$root/usr/sbin/policy-rc.d";
run_or_die('configuring postgresql-common', 'mkdir', '-p', "$root/etc/postgresql-common/createcluster.d");
write_file('/etc/postgresql-common/createcluster.d/dolon-test.conf', "create_main_cluster = false\n");
write_file('/etc/apt/apt.conf.d/99keep-downloads', "Binary::apt::APT::Keep-Downloaded-Packages \"true\";\n");
run_or_die('copying the package', 'cp', "$work/$deb", "$root/tmp/$deb");

# A command in the root file system, in an environment of its own: none of
# the test's (such as the PGPORT of make prove_installcheck)
my @in_root = ('chroot', $root, '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
	'LC_ALL=C.UTF-8', 'DEBIAN_FRONTEND=noninteractive');

sub in_root
{
	my (@command) = @_;
	return run(@in_root, @command);
}

ok(in_root('apt-get', 'update', '-q'), 'apt-get update in the root file system') or diag(log_tail());
ok(in_root('apt-get', 'install', '-y', '-q', '--no-install-recommends', "/tmp/$deb"),
	"apt installs $deb there, with postgresql-$pg_major for its dependencies")
  or die "apt could not install $deb:\n" . log_tail();
ok(!-d "$root/etc/postgresql/$pg_major/main", 'and makes no main cluster');
my $setup_seconds = time - $setup_started;

# A cluster with dolon preloaded, run as postgres
my $cluster = 'dolontest';
my $conf = "/etc/postgresql/$pg_major/$cluster";
ok(in_root('pg_createcluster', $pg_major, $cluster), 'pg_createcluster makes a cluster')
  or die "no cluster:\n" . log_tail();
write_file("$conf/conf.d/dolon.conf", join("\n",
	"shared_preload_libraries = 'dolon'",
	"dolon.host = ''",
	"listen_addresses = ''",
	"external_pid_file = '/tmp/dolon-test.pid'", ''));
ok(in_root('pg_ctlcluster', $pg_major, $cluster, 'start'), 'the cluster starts with dolon preloaded')
  or die "the cluster did not start:\n" . log_tail()
  . `cat '$root/var/log/postgresql/postgresql-$pg_major-$cluster.log'`;

# The output of a query as postgres, or undef
sub query
{
	my ($database, $sql) = @_;
	open(my $psql, '-|', @in_root, 'runuser', '-u', 'postgres', '--', 'psql', '-XAtq',
		'-v', 'ON_ERROR_STOP=1', '--cluster', "$pg_major/$cluster", '-d', $database, '-c', $sql)
	  or die "cannot run psql: $!";
	my $out = do { local $/; <$psql> } // '';
	close $psql;
	chomp $out;
	diag($out) if $?;
	return $? ? undef : $out;
}

chomp(my $default = `sed -n "s/^default_version = '\\(.*\\)'/\\1/p" '$top/dolon.control'`);
is(query('postgres', 'SHOW shared_preload_libraries'), 'dolon', 'dolon is preloaded');
ok(defined query('postgres', 'CREATE EXTENSION dolon'), 'CREATE EXTENSION dolon');
is(query('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'dolon'"),
	$default, "the extension is version $default");
is(query('postgres', 'SELECT count(*) FROM dolon.tracer'), '0',
	'dolon.tracer answers: no configured tracer with an empty dolon.host');
is(query('postgres', 'SELECT count(*) FROM dolon.tracers'), '0', 'dolon.tracers answers');
is(query('postgres', 'SELECT pid IS NULL, port IS NULL FROM dolon.collector'), 't|t',
	'dolon.collector answers: no collector without dolon.collector_port');
ok((query('postgres', 'SELECT count(*) FROM dolon.diagnostics()') // 0) > 0,
	'the diagnostics of the configured profilers answer');
ok(defined query('postgres', 'CREATE DATABASE updated'), 'a second database');
ok(defined query('updated', "CREATE EXTENSION dolon VERSION '1.0'"),
	'version 1.0 can be created there');
ok(defined query('updated', 'ALTER EXTENSION dolon UPDATE'), "and updated");
is(query('updated', "SELECT extversion FROM pg_extension WHERE extname = 'dolon'"),
	$default, "to $default");
ok(in_root('pg_ctlcluster', $pg_major, $cluster, 'stop'), 'the cluster stops')
  or diag(log_tail());
ok(!-f "$root/tmp/dolon-test.pid", 'and is gone');

note(sprintf('package built in %.0f s; root file system %s; copied and installed in %.0f s; %.0f s in all',
	$build_seconds,
	$rootfs_seconds ? sprintf('made in %.0f s', $rootfs_seconds) : 'cached',
	$setup_seconds, time - $started));
done_testing();
