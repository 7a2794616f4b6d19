
=pod

=head1 NAME

DolonTest - what the TAP tests of dolon share

=head1 SYNOPSIS

  use DolonTest;

  my $receiver = DolonTest::Receiver->new;
  my $node = DolonTest::new_node('main', $receiver->port,
      "dolon.profilers = 'idle'");
  $node->start;
  my $run = $receiver->wait_for_run;
  my $row = $receiver->wait_for_row($run->{uuid});
  DolonTest::check_log_clean($node);

=head1 DESCRIPTION

A cluster with dolon preloaded and tracing to a real UDP receiver on
127.0.0.1, which decodes every datagram as JSON.

=cut

package DolonTest;

use strict;
use warnings;

use IO::Socket::INET;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Socket qw(inet_aton pack_sockaddr_in);
use Test::More;
use Time::HiRes qw(time usleep);

=pod

=item new_node($name, $port[, \%init_options], @settings)

A new, initialized but not started node with dolon preloaded, tracing every
100 ms to 127.0.0.1:$port, autovacuum off so that only the test moves the
numbers.  %init_options go to PostgreSQL::Test::Cluster's init (such as
allows_streaming => 1); @settings are further postgresql.conf lines.

=cut

sub new_node
{
	my ($name, $port, @settings) = @_;
	my %init_options = ref $settings[0] eq 'HASH' ? %{ shift @settings } : ();
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init_options);
	$node->append_conf('postgresql.conf', join("\n",
		"shared_preload_libraries = 'dolon'",
		"autovacuum = off",
		"dolon.host = '127.0.0.1'",
		"dolon.port = $port",
		"dolon.frequency = '100ms'",
		@settings) . "\n");
	return $node;
}

=pod

=item sanitized()

True when the servers run with AddressSanitizer preloaded (test/run
--sanitize).  It keeps freed memory in quarantine rather than using it
again, so a process's memory grows with what it frees: measures of memory
growth mean nothing then.

=cut

sub sanitized
{
	return ($ENV{LD_PRELOAD} // '') =~ /libasan/;
}

=pod

=item tracer_pid($node)

The pid of the tracer worker as pg_stat_activity shows it, or '' if none.

=cut

sub tracer_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'dolon tracer'");
}

=pod

=item poll_until($condition)

Call $condition every 50 ms until it returns true, and return 1; return 0
if it is still false after $PostgreSQL::Test::Utils::timeout_default
seconds.  For what poll_query_until cannot ask in one query.

=cut

sub poll_until
{
	my ($condition) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		return 1 if $condition->();
		usleep(50_000);
	}
	return 0;
}

=pod

=item check_log_clean($node[, killed => \@pids][, allow => \@patterns])

Two checks of the whole server log of $node.  The first passes if it shows
no crash: no process terminated by a signal, no PANIC, no abnormal exit, no
sanitizer report;
the processes in @pids were killed by the test on purpose (SIGKILL).  The
second passes if every message of severity ERROR, WARNING or FATAL matches
one of @patterns (regular expressions, matched against the message after
its severity): what the test provoked on purpose.  Anything else a test did
not expect fails it, with the lines shown.  Allowed always: the message
each of dolon's workers logs when it is told to end, by a shutdown, a
restart or pg_terminate_backend(), as every background worker does; once
the server was told to shut down, the same message of a session whose
client had just left, its backend still ending; and, when the test
killed a process (which makes the server restart), the refusals of
connections tried while the server recovers from that crash.

=cut

# What AddressSanitizer and UndefinedBehaviorSanitizer write to a process's
# standard error, the server log, when they find a fault (test/run
# --sanitize): UndefinedBehaviorSanitizer's report ends its process with
# exit code 1, which a background worker also uses to be restarted
our $sanitizer_report = qr/: runtime error: |==[0-9]+==ERROR: [A-Za-z]+Sanitizer/;

sub check_log_clean
{
	my ($node, %options) = @_;
	my @killed = @{ $options{killed} // [] };
	my @allowed = (
		qr/^terminating background worker "dolon (?:tracer|profiler runner|collector|metrics)" due to administrator command$/,
		@{ $options{allow} // [] });
	push @allowed,
	  qr/^the database system is (?:in recovery mode|starting up|not yet accepting connections)$/
	  if @killed;
	my @lines = split /\n/,
	  PostgreSQL::Test::Utils::slurp_file($node->logfile);

	my @crashes = grep {
		/terminated by signal|PANIC|exited with exit code [2-9]|was terminated by exception|$DolonTest::sanitizer_report/
	} @lines;
	foreach my $pid (@killed)
	{
		@crashes = grep { !/\(PID $pid\) was terminated by signal 9/ } @crashes;
	}
	is(join("\n", @crashes), '', 'server log of ' . $node->name . ' shows no crash');

	my @unexpected;
	my $shutting_down = 0;
	foreach my $line (@lines)
	{
		$shutting_down = 1 if $line =~ /LOG:\s+received (?:smart|fast|immediate) shutdown request$/;
		$shutting_down = 0 if $line =~ /LOG:\s+database system is ready to accept connections$/;
		next unless $line =~ /\b(?:ERROR|WARNING|FATAL):\s+(.*)$/;
		my $message = $1;
		next if $shutting_down && $message eq 'terminating connection due to administrator command';
		push @unexpected, $line unless grep { $message =~ $_ } @allowed;
	}
	is(join("\n", @unexpected), '',
		'server log of ' . $node->name . ' has no error, warning or fatal message the test did not expect');
}

=pod

=item udp_sender($port)

A UDP socket sending to $port of 127.0.0.1, for send_all.  It is not
connected: a datagram sent while nobody listens (a collector restarting)
makes no later send fail.

=cut

sub udp_sender
{
	my ($port) = @_;
	my $socket = IO::Socket::INET->new(Proto => 'udp')
	  or die "cannot create a UDP socket: $!";
	return { socket => $socket, to => pack_sockaddr_in($port, inet_aton('127.0.0.1')) };
}

=pod

=item send_all($sender, @datagrams)

Send each of @datagrams with $sender, a hash of a socket and the address to
send to (none for a connected socket); dies if a send fails.

=cut

sub send_all
{
	my ($sender, @datagrams) = @_;
	foreach my $datagram (@datagrams)
	{
		my $sent = defined $sender->{to}
		  ? send($sender->{socket}, $datagram, 0, $sender->{to})
		  : send($sender->{socket}, $datagram, 0);
		defined $sent or die "cannot send: $!";
	}
	return;
}

=pod

=item send_apart($port, @datagrams)

Send @datagrams to $port of 127.0.0.1 from another process, as fast as it
can, and return once it has sent them all; dies if it could not.  The
sender is not the test's process, which may meanwhile be stopped or busy
as a peer of the collector would not be.

=cut

sub send_apart
{
	my ($port, @datagrams) = @_;
	my $pid = fork // die "cannot fork: $!";
	if ($pid == 0)
	{
		# The child sends and leaves at once, without the END blocks that
		# would stop the test's nodes
		my $ok = eval { send_all(udp_sender($port), @datagrams); 1 };
		POSIX::_exit($ok ? 0 : 1);
	}
	waitpid($pid, 0);
	die 'the sending process failed' if $? != 0;
	return;
}

=pod

=item run_message($uuid, $app_name, @columns), row_message($uuid, @values)

A create_trace_run and a row as the original mnemic client writes them;
@values are JSON tokens, undef for null.

=cut

sub run_message
{
	my ($uuid, $app_name, @columns) = @_;
	return qq({"msg_type": "create_trace_run", "app_name": "$app_name", "column_names": [)
	  . join(', ', map { qq("$_") } @columns) . qq(], "uuid": "$uuid"});
}

sub row_message
{
	my ($uuid, @values) = @_;
	return qq({"msg_type": "row", "row_data": [)
	  . join(', ', map { $_ // 'null' } @values) . qq(], "uuid": "$uuid"});
}

=pod

=item collector_counters($node[, $database])

The counters of dolon.collector in $database (postgres by default), and
its pid, as a hash; @DolonTest::collector_counters names the counters.

=cut

our @collector_counters = qw(received stored_runs stored_rows duplicate_runs
  orphan_rows malformed refused dropped expired_rows);

sub collector_counters
{
	my ($node, $database) = @_;
	my %counters;
	@counters{ 'pid', @collector_counters } = split /\|/,
	  $node->safe_psql($database // 'postgres',
		'SELECT ' . join(', ', 'pid', @collector_counters) . ' FROM dolon.collector');
	return \%counters;
}

package DolonTest::Receiver;

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time);

=pod

=item DolonTest::Receiver->new([$port])

A UDP socket bound to 127.0.0.1, on $port or on a free port.

=cut

sub new
{
	my ($class, $port) = @_;
	my $self = bless { port => $port // 0, messages => [] }, $class;
	$self->open;
	return $self;
}

sub open
{
	my ($self) = @_;
	$self->{socket} = IO::Socket::INET->new(
		Proto => 'udp',
		LocalAddr => '127.0.0.1',
		LocalPort => $self->{port},
		ReuseAddr => 1) or die "cannot bind UDP port: $!";
	$self->{port} = $self->{socket}->sockport;
	return;
}

=pod

=item $receiver->close

Close the socket, as a backend that goes down; open() binds the same port
again.

=cut

sub close
{
	my ($self) = @_;
	$self->{socket}->close;
	delete $self->{socket};
	return;
}

sub port { return $_[0]->{port}; }

=pod

=item $receiver->next_message($timeout)

The next datagram, decoded, as a hash with the raw text under 'raw'; undef
after $timeout seconds without one.  Dies on a datagram that is not JSON.

=cut

sub next_message
{
	my ($self, $timeout) = @_;
	my $select = IO::Select->new($self->{socket});
	return undef unless $select->can_read($timeout);
	my $datagram;
	$self->{socket}->recv($datagram, 65535);
	my $message = JSON::PP->new->decode($datagram);
	$message->{raw} = $datagram;
	return $message;
}

=pod

=item $receiver->wait_for($predicate, $what[, $timeout])

Read datagrams until one satisfies $predicate, and return it; dies naming
$what after $timeout (default 30) seconds.

=cut

sub wait_for
{
	my ($self, $predicate, $what, $timeout) = @_;
	my $deadline = time + ($timeout // $PostgreSQL::Test::Utils::timeout_default);
	while ((my $left = $deadline - time) > 0)
	{
		my $message = $self->next_message($left);
		next unless defined $message;
		return $message if $predicate->($message);
	}
	die "timed out waiting for $what";
}

=pod

=item $receiver->wait_for_run([$app_name])

The next create_trace_run, of $app_name if given.

=cut

sub wait_for_run
{
	my ($self, $app_name) = @_;
	return $self->wait_for(
		sub {
			my ($m) = @_;
			return $m->{msg_type} eq 'create_trace_run'
			  && (!defined $app_name || $m->{app_name} eq $app_name);
		},
		'a create_trace_run' . (defined $app_name ? " of $app_name" : ''));
}

=pod

=item $receiver->wait_for_row($uuid)

The next row of run $uuid.

=cut

sub wait_for_row
{
	my ($self, $uuid) = @_;
	return $self->wait_for(
		sub { $_[0]->{msg_type} eq 'row' && $_[0]->{uuid} eq $uuid },
		"a row of run $uuid");
}

=pod

=item $receiver->rows_arrived($uuid)

The rows of run $uuid that have arrived so far, read without waiting; the
other datagrams that have arrived are discarded.

=cut

sub rows_arrived
{
	my ($self, $uuid) = @_;
	my @rows;
	while (defined(my $message = $self->next_message(0)))
	{
		push @rows, $message
		  if $message->{msg_type} eq 'row' && $message->{uuid} eq $uuid;
	}
	return @rows;
}

=pod

=item $receiver->drain

Discard what has arrived so far.

=cut

sub drain
{
	my ($self) = @_;
	while (defined $self->next_message(0)) { }
	return;
}

=pod

=item $receiver->steady_value($uuid, $column, $columns)

Wait until $count consecutive rows of run $uuid (default 3) carry the same
value in column $column (an index), and return that value.  Rows sampled
while a test client connects or disconnects can see it in passing; a value
that holds over several samples is the steady state.

=cut

sub steady_value
{
	my ($self, $uuid, $column, $count) = @_;
	$count //= 3;
	my ($value, $seen) = (undef, 0);
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $row = $self->wait_for_row($uuid);
		my $v = $row->{row_data}[$column];
		if (defined $value && defined $v && $v == $value)
		{
			return $value if ++$seen >= $count;
		}
		else
		{
			($value, $seen) = ($v, 1);
		}
	}
	die "column $column of run $uuid did not settle";
}

1;
