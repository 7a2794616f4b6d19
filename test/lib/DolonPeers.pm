
=pod

=head1 NAME

DolonPeers - the real programs dolon's tests talk to, started and stopped by
the test

=head1 SYNOPSIS

  use DolonPeers;

  my $prometheus = DolonPeers->start('prometheus',
      [ 'prometheus', "--config.file=$config", ... ],
      "http://127.0.0.1:$port/-/ready");
  my $value = DolonPeers::instant_query("http://127.0.0.1:$port", 'up');
  $prometheus->stop;

  my $carbon = DolonPeers->start('carbon-cache', [ ... ],
      sub { DolonPeers::tcp_port_open($port) });

=head1 DESCRIPTION

Each peer is a program from Debian's packages (test/lib/common.sh installs
them), run on loopback with its data in the test's own directory, and
killed when the test ends, however it ends.

=cut

package DolonPeers;

use strict;
use warnings;

use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use DolonTest;

my @running;

=pod

=item DolonPeers->start($name, \@command, $ready)

Start @command, its output in the test's log directory as $name.log, and
wait until it is ready (DolonTest::poll_until): until the URL $ready
answers 200, or until the sub $ready returns true.  Dies if it is not
within the tests' default timeout, or if the program exits.

=cut

sub start
{
	my ($class, $name, $command, $ready) = @_;
	my $log = "$PostgreSQL::Test::Utils::log_path/$name.log";
	# a sanitized run preloads the sanitizers' runtimes into what the suites
	# start; the peers are no part of dolon and run without them
	delete local @ENV{qw(LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS)};
	my $handle = IPC::Run::start($command, '<', \undef, '>', $log, '2>&1');
	my $self = bless { name => $name, handle => $handle, log => $log }, $class;
	push @running, $self;
	my $http = HTTP::Tiny->new(timeout => 5);
	DolonTest::poll_until(
		sub {
			die "$name exited: " . slurp_file($log) unless $handle->pumpable;
			return ref $ready eq 'CODE' ? $ready->() : $http->get($ready)->{status} == 200;
		})
	  or die "$name is not ready: " . slurp_file($log);
	return $self;
}

=pod

=item $peer->stop

Stop the peer (SIGTERM, then SIGKILL after a while).

=cut

sub stop
{
	my ($self) = @_;
	return unless $self->{handle};
	$self->{handle}->kill_kill(grace => 10);
	delete $self->{handle};
	@running = grep { $_ != $self } @running;
	return;
}

END
{
	# the test's exit status is its own, not that of the peers stopped here
	local $?;
	# stop() takes each out of @running: go over a copy
	my @peers = @running;
	$_->stop foreach @peers;
}

=pod

=item instant_query($base_url, $promql)

The result of an instant query of Prometheus' HTTP API (which
VictoriaMetrics serves too): a list of [labels, value] pairs.

=cut

sub instant_query
{
	my ($base, $promql) = @_;
	my $http = HTTP::Tiny->new(timeout => 10);
	my $response = $http->get("$base/api/v1/query?"
		  . $http->www_form_urlencode({ query => $promql }));
	die "query $promql: $response->{status} $response->{content}"
	  unless $response->{status} == 200;
	my $answer = decode_json($response->{content});
	return map { [ $_->{metric}, $_->{value}[1] ] } @{ $answer->{data}{result} };
}

=pod

=item run(@command)

Run a tool of a peer's package (such as whisper-fetch) without the
sanitizers' runtimes, and return its standard output; dies if it fails.

=cut

sub run
{
	my (@command) = @_;
	delete local @ENV{qw(LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS)};
	my ($stdout, $stderr);
	IPC::Run::run(\@command, '<', \undef, '>', \$stdout, '2>', \$stderr)
	  or die "@command: $stderr";
	return $stdout;
}

=pod

=item tcp_port_open($port)

Does something accept TCP connections on 127.0.0.1:$port?

=cut

sub tcp_port_open
{
	my ($port) = @_;
	my $socket = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $port,
		Proto => 'tcp',
		Timeout => 2);
	return 0 unless $socket;
	close $socket;
	return 1;
}

1;
