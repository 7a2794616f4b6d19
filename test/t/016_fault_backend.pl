# Faults of the backend under a tracer: a backend that goes down, comes back
# and restarts; a port where nothing ever listened, which answers with ICMP
# "port unreachable"; a host name that stops resolving and resolves again.
# Through each, sampling keeps its schedule, every datagram that did not
# reach a listener is counted in send_errors and none in rows_sent, the
# failures are logged once (rate-limited), and the run is announced again
# once the backend can be reached.
#
# The host name: the test enters a user and mount namespace of its own
# (unshare(2) with CLONE_NEWUSER | CLONE_NEWNS, which needs no privilege
# where the kernel allows unprivileged user namespaces) and there
# bind-mounts a file of its own over /etc/hosts, before it starts the
# server, which inherits the namespace.  The name's resolution is then what
# the test writes into that file; the machine's /etc/hosts is never
# touched, and the mount goes away with the test's processes, however they
# end.  Where user namespaces are not allowed, that part is skipped.
use strict;
use warnings;

use File::Temp;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DolonTest;

my $backend_name = 'dolon-backend.test';
my $original_hosts = slurp_file('/etc/hosts');
my $hosts = File::Temp->new(TEMPLATE => '/tmp/dolon-hosts.XXXXXX');

# Make /etc/hosts, for this process and its children, a file the test
# writes; returns the reason if it cannot
sub own_etc_hosts
{
	eval { require 'syscall.ph'; 1 } or return 'no syscall.ph for unshare(2) and mount(2)';
	my ($uid, $gid) = ($>, $) + 0);
	my $clone_newuser = 0x10000000;
	my $clone_newns = 0x00020000;
	my $ms_bind = 4096;
	syscall(&SYS_unshare, $clone_newuser | $clone_newns) == 0
	  or return "unshare(CLONE_NEWUSER | CLONE_NEWNS) failed: $!";
	foreach my $map (['setgroups', 'deny'], ['uid_map', "$uid $uid 1"], ['gid_map', "$gid $gid 1"])
	{
		open my $fh, '>', "/proc/self/$map->[0]" or return "cannot open /proc/self/$map->[0]: $!";
		print $fh $map->[1] or return "cannot write /proc/self/$map->[0]: $!";
		close $fh or return "cannot write /proc/self/$map->[0]: $!";
	}
	set_backend_name(1);
	# syscall() passes strings as pointers to writable buffers
	my ($source, $target) = ("$hosts", '/etc/hosts');
	syscall(&SYS_mount, $source, $target, 0, $ms_bind, 0) == 0
	  or return "cannot bind-mount a file over /etc/hosts: $!";
	return '';
}

# Does $backend_name resolve (to 127.0.0.1)?  The file is rewritten in
# place: the bind mount shows the same inode
sub set_backend_name
{
	my ($resolves) = @_;
	open my $fh, '>', "$hosts" or die "cannot write $hosts: $!";
	print $fh $original_hosts, ($resolves ? "127.0.0.1\t$backend_name\n" : '');
	close $fh or die "cannot write $hosts: $!";
	return;
}

my $no_name_reason = own_etc_hosts();
note("the host name part is skipped: $no_name_reason") if $no_name_reason;

my $receiver = DolonTest::Receiver->new;
my $node = DolonTest::new_node('fault_backend', $receiver->port,
	"dolon.tracer_name = 'faulty'",
	"dolon.profilers = 'idle'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dolon');

# The counters of tracer $name, as a hash
sub counters
{
	my ($name) = @_;
	my @values = split /\|/, $node->safe_psql('postgres', qq{
		SELECT samples, rows_sent, send_errors, coalesce(last_error, ''), pid
		FROM dolon.tracers WHERE tracer_name = '$name'});
	my %c;
	@c{qw(samples rows_sent send_errors last_error pid)} = @values;
	return \%c;
}

# Wait until tracer $name has taken $count more samples, and return how
# long each took on average, in ms, and its counters before and after
sub sample_interval
{
	my ($name, $count) = @_;
	my $before = counters($name);
	my $start = time;
	$node->poll_query_until('postgres',
		"SELECT samples >= $before->{samples} + $count FROM dolon.tracers WHERE tracer_name = '$name'")
	  or die "tracer $name did not take $count samples";
	my $elapsed = time - $start;
	my $after = counters($name);
	return (1000 * $elapsed / ($after->{samples} - $before->{samples}), $before, $after);
}

# Is $interval, in ms, that of a 100 ms schedule?
sub on_schedule
{
	my ($interval, $what) = @_;
	ok($interval > 70 && $interval < 200,
		sprintf('%s: sampling keeps its schedule, %.0f ms a sample at 100ms', $what, $interval));
	return;
}

# Messages of tracer $name saying it could not send, since $offset
sub send_failures_logged
{
	my ($name, $offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	return scalar(() = $log =~ /dolon tracer "$name" could not send to/g);
}

# The backend going down and coming back, $what: while it is down, sampling
# keeps its 100 ms schedule, every datagram is counted as failed and no row
# as sent; when it is back, the run is announced again, and the errors stop
# growing.  The failures and the recovery are logged at most once a minute:
# $logged says whether this time they are
sub backend_down_and_up
{
	my ($name, $receiver, $uuid, $what, $logged) = @_;
	my $offset = -s $node->logfile;
	$receiver->close;
	$node->poll_query_until('postgres',
		"SELECT send_errors > 0 FROM dolon.tracers WHERE tracer_name = '$name'")
	  or die "no send error counted for $name";
	my ($interval, $before, $after) = sample_interval($name, 20);
	on_schedule($interval, $what);
	# While sends fail, the sender looks the backend up again every 10 s
	# and sends on a new socket, whose first datagram cannot be known lost
	# before the refusal comes back: in these 20 samples, at most one
	cmp_ok($after->{rows_sent} - $before->{rows_sent}, '<=', 1,
		"$what: no row is counted as sent while nothing listens, but the first on a new socket");
	cmp_ok($after->{send_errors} - $before->{send_errors}, '>=',
		$after->{samples} - $before->{samples} - ($after->{rows_sent} - $before->{rows_sent}),
		"$what: each sample's datagrams are counted as failed");
	like($after->{last_error}, qr/could not send to "[^"]+" port \d+: Connection refused/,
		"$what: dolon.tracers says why");
	is(send_failures_logged($name, $offset), $logged ? 1 : 0,
		$logged ? "$what: the failures are logged once" : "$what: within a minute, the failures are not logged again");

	$receiver->open;
	my $again = $receiver->wait_for_run($name);
	is($again->{uuid}, $uuid, "$what: back, the run is announced again");
	$receiver->wait_for_row($uuid);
	my $recovery = qr/dolon tracer "$name" is sending to "[^"]+" port \d+ again/;
	if ($logged)
	{
		ok($node->wait_for_log($recovery, $offset), "$what: the recovery is logged");
	}
	else
	{
		unlike(slurp_file($node->logfile, $offset), $recovery,
			"$what: within a minute, the recovery is not logged again");
	}
	# Every row counted as sent before $before is in the receiver's queue
	# (on loopback a datagram is queued before send() returns): drained, the
	# rows that arrive next are those counted after $before, but for one:
	# the row the tracer was sending while the counters were read, queued
	# before it was counted, and drained with those before it
	$before = counters($name);
	$receiver->drain;
	$node->poll_query_until('postgres',
		"SELECT samples >= $before->{samples} + 10 FROM dolon.tracers WHERE tracer_name = '$name'")
	  or die "tracer $name did not take 10 samples";
	$after = counters($name);
	my $arrived = () = $receiver->rows_arrived($uuid);
	my $last = counters($name);
	is($after->{send_errors}, $before->{send_errors}, "$what: back, the errors stop growing");
	my $sent = $after->{rows_sent} - $before->{rows_sent};
	ok($sent >= 10 && $arrived >= $sent - 1 && $arrived <= $last->{rows_sent} - $before->{rows_sent},
		"$what: back, $sent rows counted as sent, all arrived ($arrived, with those sent since)");
	return;
}

# The configured tracer's backend: down, up, and down and up again as a
# backend that restarts
my $run = $receiver->wait_for_run('faulty');
$receiver->wait_for_row($run->{uuid});
my $first_failure = time;
backend_down_and_up('faulty', $receiver, $run->{uuid}, 'a backend that goes down', 1);
backend_down_and_up('faulty', $receiver, $run->{uuid}, 'a backend that restarts',
	time - $first_failure > 50);

# A tracer started from SQL towards a port where nothing ever listened
my $unheard = DolonTest::Receiver->new;
$unheard->close;
my $offset = -s $node->logfile;
my $unheard_uuid = $node->safe_psql('postgres',
	"SELECT dolon.start_tracer('unheard', '100ms', '127.0.0.1', " . $unheard->port . ", 'idle')");
$node->poll_query_until('postgres',
	"SELECT send_errors > 0 FROM dolon.tracers WHERE tracer_name = 'unheard'")
  or die 'no send error counted for a port where nothing listens';
my ($interval, $before, $after) = sample_interval('unheard', 20);
on_schedule($interval, 'nothing listening');
is($after->{rows_sent}, 0, 'nothing listening: no row is counted as sent');
cmp_ok($after->{send_errors} - $before->{send_errors}, '>=', 20,
	'nothing listening: each refusal is counted');
is(send_failures_logged('unheard', $offset), 1, 'nothing listening: the refusals are logged once');
$unheard->open;
is($unheard->wait_for_run('unheard')->{uuid}, $unheard_uuid,
	'a listener appears: the first run is announced to it');
$unheard->wait_for_row($unheard_uuid);
($interval, $before, $after) = sample_interval('unheard', 10);
is($after->{send_errors}, $before->{send_errors}, 'a listener appears: the errors stop growing');
$node->safe_psql('postgres', "SELECT dolon.stop_tracer('unheard')");

# A host name that does not resolve, resolves, stops resolving and resolves
# again
SKIP:
{
	skip "the test cannot control the resolution of a host name: $no_name_reason", 9
	  if $no_name_reason;

	my $named = DolonTest::Receiver->new;
	set_backend_name(0);
	$offset = -s $node->logfile;
	my $named_uuid = $node->safe_psql('postgres',
		"SELECT dolon.start_tracer('named', '100ms', '$backend_name', " . $named->port . ", 'idle')");
	ok($node->poll_query_until('postgres', qq{
		SELECT last_error LIKE 'could not resolve host "$backend_name"%'
		FROM dolon.tracers WHERE tracer_name = 'named'}),
		'a name that does not resolve: dolon.tracers says so');
	($interval, $before, $after) = sample_interval('named', 20);
	on_schedule($interval, 'a name that does not resolve');
	is($after->{rows_sent}, 0, '... and no row is counted as sent');

	set_backend_name(1);
	is($named->wait_for_run('named')->{uuid}, $named_uuid,
		'the name resolves: the run is announced to the backend');
	$named->wait_for_row($named_uuid);

	# The name goes, and the backend with it: the worker keeps its socket
	# and looks the name up again every 10 s, in vain
	set_backend_name(0);
	$named->close;
	my $errors = counters('named')->{send_errors};
	ok($node->poll_query_until('postgres', qq{
		SELECT send_errors > $errors FROM dolon.tracers WHERE tracer_name = 'named'}),
		'the name stops resolving and the backend goes: the failures are counted');
	($interval, $before, $after) = sample_interval('named', 20);
	on_schedule($interval, 'the name stops resolving');
	is($after->{rows_sent}, $before->{rows_sent}, '... and no row is counted as sent');

	set_backend_name(1);
	$named->open;
	is($named->wait_for_run('named')->{uuid}, $named_uuid,
		'the name resolves again: the run is announced again');
	$named->wait_for_row($named_uuid);
	($interval, $before, $after) = sample_interval('named', 10);
	is($after->{send_errors}, $before->{send_errors}, '... and the errors stop growing');
}

$node->stop;
DolonTest::check_log_clean($node);

done_testing();
