# What the benchmarks read of the server's processes, from /proc; sourced by
# bench/lib/run-*.

# Nanoseconds on a CPU so far of the processes given, all their threads
# (the first field of /proc/PID/task/TID/schedstat)
cpu_ns() {
	local pid task total=0 ns
	for pid in "$@"; do
		for task in /proc/"$pid"/task/*; do
			read -r ns _ <"$task/schedstat" 2>/dev/null || continue
			total=$((total + ns))
		done
	done
	echo $total
}

# The pid of the child process of the server in data directory $1/data
# whose title has $2 (a worker: "dolon tracer"), if any
server_child() {
	pgrep -P "$(head -n 1 "$1/data/postmaster.pid")" -f "$2" | head -n 1
}
