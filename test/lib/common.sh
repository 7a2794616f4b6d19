# Shell functions shared by test/run, test/demo and the benchmarks: which
# PostgreSQL version to use and which Debian release packages it, install
# what dolon needs, build and install it, and run what PostgreSQL refuses to
# run as root as the postgres user instead.
#
# Source it from bash after setting "top" to the root of the source tree.

# The Debian release that packages PostgreSQL $1: 15 is in Debian 12
# (bookworm), 17 in Debian 13 (trixie), 18 in Debian unstable (sid).  No
# Debian release has 16.
debian_suite_of() {
	case $1 in
	15) echo bookworm ;;
	17) echo trixie ;;
	18) echo sid ;;
	*) return 1 ;;
	esac
}

# The PostgreSQL major version that this machine's Debian release packages
local_pg_major() {
	case $(cat /etc/debian_version 2>/dev/null) in
	13*) echo 17 ;;
	*/sid) echo 18 ;;
	*) echo 15 ;;
	esac
}

# The PostgreSQL major version to build for and test against: this
# machine's (15 on Debian 12), unless PG_MAJOR in the environment says
# another.
PG_MAJOR=${PG_MAJOR:-$(local_pg_major)}
# The versions "test/run --pg=all" tests, the README's supported versions
DOLON_PG_VERSIONS="15 17 18"
# The server to build for and test against: pg_config says where it is.
# PG_CONFIG in the environment chooses another installation.
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
export PG_CONFIG

# Where the server's programs are, from pg_config (once installed)
set_server_paths() {
	[ -x "$PG_CONFIG" ] || return 0
	PG_BIN=$("$PG_CONFIG" --bindir)
}
set_server_paths

# Debian packages needed to build dolon and to run its tests (nss_wrapper:
# name resolution from a test's own hosts file; libfaketime: a server whose
# clock steps back)
DOLON_PACKAGES="make gcc postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libmicrohttpd-dev libipc-run-perl libnss-wrapper libfaketime"

# The real programs the tests of the metrics endpoint and of the line
# protocols talk to, each started and stopped by its test
DOLON_PEER_PACKAGES="prometheus prometheus-postgres-exporter victoria-metrics influxdb graphite-carbon chromium chromium-driver"

say() { printf '== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install the packages of dolon's build and tests for PG_MAJOR.
ensure_dependencies() {
	ensure_packages $DOLON_PACKAGES
	# Debian creates and starts a main cluster on install; it would hold port
	# 5432 for nothing, so stop it.
	if [ -n "$installed_packages" ] && command -v pg_ctlcluster >/dev/null; then
		pg_ctlcluster "$PG_MAJOR" main stop 2>/dev/null || true
	fi
	ensure_fuzz_packages
	ensure_peer_packages
	set_server_paths
}

# Install the peers.  Debian starts a package's service on install where an
# init system runs; theirs would hold their ports for nothing, so that
# start is refused (policy-rc.d), unless a policy is in place already.
ensure_peer_packages() {
	policy=/usr/sbin/policy-rc.d
	if [ "$(id -u)" = 0 ] && [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
		(ensure_packages $DOLON_PEER_PACKAGES)
		status=$?
		rm -f "$policy"
		[ "$status" = 0 ] || exit "$status"
	else
		ensure_packages $DOLON_PEER_PACKAGES
	fi
}

# The fuzzing harnesses (make fuzz) need clang, lld, and clang's sanitizer
# and fuzzer runtime, which Debian packages per version of clang as
# libclang-rt-MAJOR-dev: the version of the clang installed says which.
ensure_fuzz_packages() {
	local major
	ensure_packages clang lld
	major=$(clang -dumpversion) || die "clang does not run"
	ensure_packages "libclang-rt-${major%%.*}-dev"
}

# Install the packages named as arguments that are missing, when we are root;
# otherwise say what is missing.  Sets installed_packages to those installed.
ensure_packages() {
	local missing="" pkg
	installed_packages=""
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $pkg"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		die "missing packages:$missing (install them as root, or run this as root)"
	fi
	say "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		die "could not install$missing"
	installed_packages=$missing
}

# Build dolon and install it into the server's directories; the arguments
# are further make variables.
build_and_install() {
	say "building and installing dolon${*:+ with $*}"
	# with_llvm=no: no JIT bitcode, which would need clang at build time
	make -C "$top" -s PG_CONFIG="$PG_CONFIG" with_llvm=no "$@" >/dev/null ||
		die "build failed"
	local sudo="" script
	[ -w "$($PG_CONFIG --pkglibdir)" ] || sudo=sudo
	# The scripts of versions this tree does not have, installed from
	# another tree, would be offered as versions of dolon: removed, so that
	# the tests see the versions this tree installs and no others
	for script in "$($PG_CONFIG --sharedir)"/extension/dolon--*.sql; do
		[ -e "$script" ] && [ ! -e "$top/${script##*/}" ] && $sudo rm -f "$script"
	done
	$sudo make -C "$top" -s PG_CONFIG="$PG_CONFIG" with_llvm=no "$@" install >/dev/null ||
		die "install failed"
}

# The flags of a build with AddressSanitizer and UndefinedBehaviorSanitizer:
# any finding aborts the process, with the frames of dolon in its report
SANITIZE_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

# Build dolon with the sanitizers, on a copy of the tree (so that this
# tree's objects stay those of the normal build), and install it.  Sets
# sanitizer_runtimes to the runtimes it is linked with, AddressSanitizer's
# first: a server must be started with them in LD_PRELOAD to load it.
build_and_install_sanitized() {
	local copy
	copy=$(mktemp -d /tmp/dolon-sanitized.XXXXXX)
	tar -C "$top" --exclude=.git --exclude=tmp_check --exclude=results \
		--exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude='src/*.d' \
		-cf - . | tar -C "$copy" -xf -
	# COPT goes to the compiler and to the linker, which links the runtimes
	top=$copy build_and_install COPT="$SANITIZE_FLAGS"
	sanitizer_runtimes=$(ldd "$copy/dolon.so" | awk '$1 ~ /^libasan/ { print $3 }
		$1 ~ /^libubsan/ { ubsan = $3 } END { print ubsan }' | xargs)
	rm -rf "$copy"
	[ "$(wc -w <<<"$sanitizer_runtimes")" -eq 2 ] ||
		die "the sanitized build is not linked with libasan and libubsan (ldd found: ${sanitizer_runtimes:-nothing})"
}

# Export the environment that makes every process started from here on,
# the servers of the tests among them, run with the sanitizer runtimes $1
# (a space-separated list, AddressSanitizer's first) preloaded and write
# each report to a file $2/asan.PID or $2/ubsan.PID; a report aborts its
# process.  test/lib/sanitizer-init.c, built into $2, is preloaded after
# them: it initializes AddressSanitizer before the server's libraries.
# No leak detection: palloc's memory contexts hide dolon's leaks from it,
# and PostgreSQL and the test programs leave their allocations to the end of
# each process on purpose, which it would report.
sanitizer_environment() {
	local runtimes=$1 dir=$2
	gcc -shared -fPIC -Wl,-z,initfirst -o "$dir/sanitizer-init.so" "$top/test/lib/sanitizer-init.c" ||
		die "could not build test/lib/sanitizer-init.c"
	export LD_PRELOAD="${runtimes// /:}:$dir/sanitizer-init.so"
	export ASAN_OPTIONS="log_path=$dir/asan:detect_leaks=0:abort_on_error=1:disable_coredump=1"
	export UBSAN_OPTIONS="log_path=$dir/ubsan:print_stacktrace=1:halt_on_error=1:abort_on_error=1"
}

# Print the sanitizer reports written into directory $1; sets
# sanitizer_report_count to their number
sanitizer_reports() {
	local dir=$1 report
	sanitizer_report_count=0
	for report in "$dir"/asan.* "$dir"/ubsan.*; do
		[ -f "$report" ] || continue
		say "sanitizer report $report"
		cat "$report"
		sanitizer_report_count=$((sanitizer_report_count + 1))
	done
}

# PostgreSQL will not run as root.  When root, copy the tree where the
# postgres user can work in it and run the script $1 (a path inside the
# tree) there as that user, with the other arguments; otherwise run it in
# place.
run_unprivileged() {
	local script=$1 copy rc
	shift
	if [ "$(id -u)" -ne 0 ]; then
		"$top/$script" "$@"
		return
	fi
	copy=$(mktemp -d /tmp/dolon.XXXXXX)
	tar -C "$top" --exclude=.git --exclude=tmp_check --exclude=results \
		-cf - . | tar -C "$copy" -xf -
	chown -R postgres: "$copy"
	runuser -u postgres -- "$copy/$script" "$@"
	rc=$?
	rm -rf "$copy"
	return $rc
}

# Create and start a scratch cluster with dolon preloaded, in directory $1,
# listening on a socket of port $2 in that directory, and on no TCP port.
# Further arguments are postgresql.conf lines.
start_scratch_cluster() {
	local dir=$1 port=$2 line
	shift 2
	rm -rf "$dir"
	mkdir -p "$dir"
	"$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 ||
		die "initdb failed: see $dir/initdb.log"
	{
		echo "shared_preload_libraries = 'dolon'"
		echo "listen_addresses = ''"
		echo "port = $port"
		echo "unix_socket_directories = '$dir'"
		for line in "$@"; do echo "$line"; done
	} >>"$dir/data/postgresql.conf"
	"$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null ||
		die "the scratch cluster did not start: see $dir/server.log"
}

stop_scratch_cluster() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] &&
		"$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
	return 0
}

# Name what failed in the output files of the suites ($@): one line
# "failed: WHERE: WHAT" for each failed TAP assertion (under the script's
# name), each TAP script that died, each failed pg_regress test and each
# fuzzing harness that found something, so that a summary can repeat them
list_failures() {
	awk '
		/^test\/t\/[^ ]+\.pl \.\./ { script = $1 }
		/^not ok [0-9]+/ { print "failed: " (script != "" ? script : "regress") ": " $0 }
		/^test\/t\/.*\(Wstat: .* Failed: 0\)$/ { print "failed: " $1 ": died" }
		/\.\.\. FAILED/ { print "failed: regress: " $0 }
		/^fuzz [a-z_]+: FAILED/ { print "failed: " $0 }
	' "$@"
}

# Count the assertions of a verbose prove run whose output is in file $1 and
# whose exit status was $2: prints "PASSED FAILED".  A script that died
# without a failed assertion counts as one failure, and so does a run that
# failed otherwise.
count_tap_results() {
	local file=$1 rc=$2 passed failed
	passed=$(grep -cE '^ok [0-9]+' "$file")
	failed=$(grep -cE '^not ok [0-9]+' "$file")
	failed=$((failed + $(grep -cE '^test/t/.*\(Wstat: .* Failed: 0\)$' "$file")))
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
	echo "$passed $failed"
}
