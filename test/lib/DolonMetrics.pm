
=pod

=head1 NAME

DolonMetrics - scraping dolon's metrics endpoint, and reading what it says

=head1 SYNOPSIS

  use DolonMetrics;

  my $port = DolonMetrics::free_tcp_port();
  # ... a node with dolon.metrics_port = $port ...
  my $response = DolonMetrics::get($port, '/metrics');
  my $metrics = DolonMetrics::parse($response->{content});
  my $value = $metrics->{samples}{'pg_up'};

=head1 DESCRIPTION

An HTTP client (HTTP::Tiny) for the endpoint, and a reader of the
Prometheus text format and OpenMetrics that checks what it reads: every
line a comment of a known kind or a sample of a family declared before it,
no series twice.

=cut

package DolonMetrics;

use strict;
use warnings;

use HTTP::Tiny;
use IO::Socket::INET;
use Test::More;

=pod

=item free_tcp_port()

A TCP port of 127.0.0.1 that was free a moment ago.

=cut

sub free_tcp_port
{
	my $socket = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => 0,
		Proto => 'tcp',
		Listen => 1) or die "no free TCP port: $!";
	my $port = $socket->sockport;
	close $socket;
	return $port;
}

=pod

=item get($port, $path[, \%headers[, $host[, $method]]])

The response of HTTP::Tiny to a request to the endpoint on $host
(127.0.0.1 unless given) and $port: a hash of status, headers, content.

=cut

sub get
{
	my ($port, $path, $headers, $host, $method) = @_;
	$host //= '127.0.0.1';
	$host = "[$host]" if $host =~ /:/;
	my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
	return $http->request($method // 'GET', "http://$host:$port$path",
		{ headers => $headers // {} });
}

=pod

=item series_key($name, \%labels)

The key of a series in parse's samples: the name and the labels sorted by
name, as name{a="x",b="y"}.

=cut

sub series_key
{
	my ($name, $labels) = @_;
	my @pairs = map { "$_=\"$labels->{$_}\"" } sort keys %$labels;
	return @pairs ? $name . '{' . join(',', @pairs) . '}' : $name;
}

=pod

=item parse($text)

Read an exposition.  Returns a hash: samples (series key to value), types
(family to type), labels (series key to its labels), errors (what is not
well formed, one line each).  Label values are unescaped.

=cut

sub parse
{
	my ($text) = @_;
	my (%samples, %types, %labels, @errors);
	my $current;
	foreach my $line (split /\n/, $text)
	{
		if ($line =~ /^# TYPE (\S+) (\w+)$/)
		{
			push @errors, "family $1 declared twice" if exists $types{$1};
			$types{$1} = $2;
			$current = $1;
			next;
		}
		next if $line =~ /^# HELP \S+ .*$/ || $line eq '# EOF';
		if ($line !~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/)
		{
			push @errors, "not a sample: $line";
			next;
		}
		my ($name, $label_text, $value) = ($1, $2 // '', $3);
		my %set;
		while ($label_text =~ /\G([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(?:,(?=.)|$)/gc)
		{
			my ($label, $escaped) = ($1, $2);
			$escaped =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
			push @errors, "label $label twice: $line" if exists $set{$label};
			$set{$label} = $escaped;
		}
		push @errors, "bad labels: $line"
		  if (pos($label_text) // 0) != length $label_text;
		push @errors, "bad value: $line"
		  unless $value =~ /^(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|NaN|[-+]Inf)$/;
		push @errors, "sample of an undeclared family: $line"
		  unless defined $current
		  && ($name eq $current || $name =~ /^\Q$current\E_(?:total|sum|count|bucket|created)$/);
		my $key = series_key($name, \%set);
		push @errors, "series twice: $key" if exists $samples{$key};
		$samples{$key} = $value =~ /^[-+]?[\d.]/ ? $value + 0 : $value;
		$labels{$key} = \%set;
	}
	return { samples => \%samples, types => \%types, labels => \%labels,
		errors => \@errors };
}

=pod

=item scrape($port[, \%headers])

GET /metrics, checked (status 200, well formed), and parsed.

=cut

sub scrape
{
	my ($port, $headers) = @_;
	my $response = get($port, '/metrics', $headers);
	die "scrape failed: $response->{status} $response->{content}"
	  unless $response->{status} == 200;
	my $metrics = parse($response->{content});
	die "badly formed exposition: @{$metrics->{errors}}" if @{ $metrics->{errors} };
	return $metrics;
}

1;
