#!/usr/bin/perl
#
# udp-sink.pl
#
# Bind a UDP socket to a free port of 127.0.0.1, print the port, and read
# and discard every datagram until SIGTERM or SIGINT.  The benchmarks point
# the tracer there, so that its every send succeeds and it runs as it would
# towards a mnemic backend.
#
use strict;
use warnings;

use IO::Socket::INET;

$| = 1;
my $sock = IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.1', LocalPort => 0)
  or die "udp-sink: cannot bind: $!\n";
$SIG{TERM} = $SIG{INT} = sub { exit 0 };
print $sock->sockport, "\n";

my $buf;
1 while defined $sock->recv($buf, 65536);
exit 0;
