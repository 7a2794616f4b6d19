#!/usr/bin/perl
#
# tcp-sink.pl
#
# Listen on a free TCP port of 127.0.0.1, print the port, and read and
# discard what every connection sends until SIGTERM or SIGINT: a Graphite
# that takes everything, for the benchmarks of the line protocols.
#
use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;

$| = 1;
my $listener = IO::Socket::INET->new(Proto => 'tcp', LocalAddr => '127.0.0.1',
	LocalPort => 0, Listen => 16, ReuseAddr => 1)
  or die "tcp-sink: cannot listen: $!\n";
$SIG{TERM} = $SIG{INT} = sub { exit 0 };
print $listener->sockport, "\n";

my $select = IO::Select->new($listener);
my $buf;
while (1)
{
	foreach my $ready ($select->can_read)
	{
		if ($ready == $listener)
		{
			$select->add($listener->accept);
		}
		elsif (!sysread($ready, $buf, 65536))
		{
			$select->remove($ready);
			close $ready;
		}
	}
}
