# The layout of src/: each type is defined in one header, each header
# compiles on its own, and the files form no circle (a file uses another
# when it includes that file's header).
use strict;
use warnings;

use File::Basename;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

# The tree of this test, wherever the harness runs it from
my $src = "$FindBin::RealBin/../../src";
my @c_files = sort glob("$src/*.c");
my @headers = sort glob("$src/*.h");
ok(@c_files > 10 && @headers > 10, 'the sources are found');

# Each type is defined once, in a header or privately in one .c file
my %defined;
foreach my $file (@headers, @c_files)
{
	my $text = slurp_file($file);
	while ($text =~ /^typedef\s+(?:struct|enum|union)\s+\w*\s*\{.*?^\}\s*(\w+);/msg)
	{
		push @{ $defined{$1} }, basename($file);
	}
}
my @twice = map { "$_: @{ $defined{$_} }" } grep { @{ $defined{$_} } > 1 } sort keys %defined;
is(join('; ', @twice), '', 'every type is defined in one place');

# Each header compiles on its own, after postgres.h
my $pg_config = $ENV{PG_CONFIG} // 'pg_config';
my $includes = `$pg_config --includedir-server`;
chomp $includes;
my @broken;
foreach my $header (@headers)
{
	my $name = basename($header);
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[ 'gcc', '-fsyntax-only', '-x', 'c', '-I', $src, '-I', $includes, '-' ],
		'<', \qq{#include "postgres.h"\n#include "$name"\n},
		'>', \$stdout, '2>', \$stderr);
	push @broken, "$name: $stderr" unless $ok;
}
is(join("\n", @broken), '', 'every header compiles on its own');

# No circle of files
my %uses;
foreach my $file (@c_files)
{
	my $name = basename($file, '.c');
	my @included = slurp_file($file) =~ /^#include "(\w+)\.h"/mg;
	$uses{$name} = [ grep { $_ ne $name && -f "$src/$_.c" } @included ];
}
my @circles;
foreach my $start (sort keys %uses)
{
	my %seen;
	my @todo = @{ $uses{$start} };
	while (defined(my $next = shift @todo))
	{
		next if $seen{$next}++;
		push @todo, @{ $uses{$next} // [] };
	}
	push @circles, $start if $seen{$start};
}
is(join(', ', @circles), '', 'no file uses itself through others');

done_testing();
