#!/usr/bin/perl
#
# hold-idle.pl SOCKET_DIR PORT COUNT [DBNAME]
#
# Open COUNT sessions on the PostgreSQL server listening on the unix socket
# of PORT in SOCKET_DIR, as user postgres (the scratch clusters trust local
# connections), and hold them idle: each session is started and then left
# alone, so that pg_stat_activity shows it with state 'idle'.  Prints
# "ready" once every session is idle, then waits; on SIGTERM or SIGINT it
# ends each session with a Terminate message and exits.
#
# It speaks the frontend/backend protocol (version 3.0) itself, so that one
# process holds many sessions with nothing but perl-base.
#
use strict;
use warnings;

use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);

my ($dir, $port, $count, $dbname) = @ARGV;
die "usage: hold-idle.pl SOCKET_DIR PORT COUNT [DBNAME]\n" unless defined $count;
$dbname //= 'postgres';
my $path = "$dir/.s.PGSQL.$port";

$| = 1;
my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };

sub read_exactly
{
	my ($sock, $n) = @_;
	my $buf = '';
	while (length($buf) < $n)
	{
		my $r = sysread($sock, $buf, $n - length($buf), length($buf));
		die "hold-idle: the server closed a session: " . ($! || 'end of file') . "\n"
		  unless $r;
	}
	return $buf;
}

my @sessions;
for my $i (1 .. $count)
{
	last if $stop;
	my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path)
	  or die "hold-idle: session $i: cannot connect to $path: $!\n";

	# StartupMessage: length, protocol 3.0, name/value pairs, terminator
	my $params = join('', map { "$_\0" }
		  user => 'postgres', database => $dbname,
		  application_name => 'dolon bench idle') . "\0";
	my $body = pack('N', 196608) . $params;
	syswrite($sock, pack('N', 4 + length($body)) . $body)
	  or die "hold-idle: session $i: cannot send: $!\n";

	# Read messages up to ReadyForQuery
	for (;;)
	{
		my ($type, $len) = unpack('a N', read_exactly($sock, 5));
		my $payload = read_exactly($sock, $len - 4);
		if ($type eq 'E')
		{
			my @fields = map { substr($_, 1) } grep { length } split /\0/, $payload;
			die "hold-idle: session $i refused: @fields\n";
		}
		if ($type eq 'R' && unpack('N', $payload) != 0)
		{
			die "hold-idle: session $i: the server asks for authentication\n";
		}
		last if $type eq 'Z';
	}
	push @sessions, $sock;
}

print "ready\n" unless $stop;
sleep 1 until $stop;

# Terminate: type X, length 4
syswrite($_, pack('a N', 'X', 4)) for @sessions;
close($_) for @sessions;
exit 0;
