
=pod

=head1 NAME

DolonBrowser - a real browser for dolon's tests: Debian's Chromium, headless,
driven over WebDriver by chromedriver

=head1 SYNOPSIS

  use DolonBrowser;

  my $browser = DolonBrowser->new(390, 844);    # a phone's screen
  $browser->visit("http://127.0.0.1:$port/");
  my $names = $browser->run('return [...document.querySelectorAll("h3")].map(e => e.textContent)');
  $browser->screenshot("$PostgreSQL::Test::Utils::log_path/page.png");
  $browser->quit;

=head1 DESCRIPTION

chromedriver (package chromium-driver, installed by test/lib/common.sh) is
started as a peer (DolonPeers) on a free port of loopback; the browser has
a profile of its own in the test's directory and is closed when the test
ends, however it ends.

=cut

package DolonBrowser;

use strict;
use warnings;

use File::Path qw(make_path);
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use PostgreSQL::Test::Utils;
use DolonMetrics;
use DolonPeers;

=pod

=item DolonBrowser->new($width, $height)

Start chromedriver and a headless Chromium that shows pages as a phone of
$width by $height CSS pixels does (Chromium's mobile emulation: a window
of its own is never narrower than 500 pixels).

=cut

sub new
{
	my ($class, $width, $height) = @_;
	my $port = DolonMetrics::free_tcp_port();
	my $profile = "$PostgreSQL::Test::Utils::tmp_check/chromium-profile-$port";
	make_path($profile);
	# Chromium writes its caches under HOME, which need not be writable
	local $ENV{HOME} = $profile;
	my $driver = DolonPeers->start('chromedriver',
		[ 'chromedriver', "--port=$port" ],
		"http://127.0.0.1:$port/status");
	my $self = bless {
		driver => $driver,
		base => "http://127.0.0.1:$port",
		http => HTTP::Tiny->new(timeout => 60),
	}, $class;
	my $session = $self->_call('POST', '/session', {
		capabilities => {
			alwaysMatch => {
				browserName => 'chrome',
				'goog:chromeOptions' => {
					binary => '/usr/bin/chromium',
					args => [
						'--headless=new', '--no-sandbox', '--disable-gpu',
						'--disable-dev-shm-usage', '--no-first-run',
						"--user-data-dir=$profile",
					],
					mobileEmulation => {
						deviceMetrics => {
							width => $width + 0,
							height => $height + 0,
							pixelRatio => 2,
							mobile => JSON::PP::true,
							touch => JSON::PP::true,
						},
					},
				},
			},
		},
	});
	$self->{session} = "/session/$session->{sessionId}";
	return $self;
}

# A WebDriver command: its value, or death with the driver's message
sub _call
{
	my ($self, $method, $path, $body) = @_;
	my $response = $self->{http}->request($method, $self->{base} . $path, {
		headers => { 'Content-Type' => 'application/json' },
		defined $body ? (content => encode_json($body)) : (),
	});
	my $answer = eval { decode_json($response->{content}) };
	die "WebDriver $method $path: $response->{status} $response->{content}"
	  unless $response->{status} == 200 && $answer;
	return $answer->{value};
}

=pod

=item $browser->visit($url)

Load $url, and wait until its document has loaded.

=cut

sub visit
{
	my ($self, $url) = @_;
	$self->_call('POST', "$self->{session}/url", { url => $url });
	return;
}

=pod

=item $browser->run($script, @arguments)

Run $script (the body of a function, given @arguments) in the page, and
return what it returns.

=cut

sub run
{
	my ($self, $script, @arguments) = @_;
	return $self->_call('POST', "$self->{session}/execute/sync",
		{ script => $script, args => \@arguments });
}

=pod

=item $browser->screenshot($file)

Save what the window shows as a PNG file.

=cut

sub screenshot
{
	my ($self, $file) = @_;
	my $png = decode_base64($self->_call('GET', "$self->{session}/screenshot"));
	open(my $fh, '>:raw', $file) or die "could not write $file: $!";
	print $fh $png;
	close $fh;
	return;
}

=pod

=item $browser->quit

Close the browser and stop chromedriver.

=cut

sub quit
{
	my ($self) = @_;
	return unless $self->{driver};
	eval { $self->_call('DELETE', $self->{session}) } if $self->{session};
	$self->{driver}->stop;
	delete $self->{driver};
	return;
}

sub DESTROY
{
	my ($self) = @_;
	$self->quit;
	return;
}

1;
