/*-------------------------------------------------------------------------
 *
 * host.c
 *		The profilers read from Linux's /proc: CPU and memory utilisation of
 *		the host, and memory used by the server's processes.
 *
 * cpu_percent comes from the first line of /proc/stat, the CPU time of the
 * host since boot in USER_HZ ticks, split by kind.  The utilisation over an
 * interval is the share of the ticks elapsed in it that were neither idle
 * nor waiting for I/O, so it takes two readings: the caller keeps the
 * previous one.
 *
 * virtual_memory_percent is the share of MemTotal that is not MemAvailable
 * in /proc/meminfo.  MemAvailable is the kernel's estimate of the memory that
 * new work could get without swapping, counting the page cache it can
 * reclaim.
 *
 * memory_use and mem_allocation cover the postmaster and its children, that
 * is every server process; they do not count grandchildren, such as the
 * shells running archive_command or COPY ... PROGRAM.  The kernel's list of
 * a process's children, /proc/<pid>/task/<tid>/children, exists only in
 * kernels built with CONFIG_PROC_CHILDREN and is documented as unreliable
 * while children come and go, so we read /proc/<pid>/stat of every process
 * of the host to find those whose parent is the postmaster.  Then
 * /proc/<pid>/smaps_rollup gives the memory of each:
 *
 * - memory_use sums the proportional set size (Pss), where a page mapped by
 *	 n processes counts 1/n in each.  The shared memory segment is mapped by
 *	 server processes only, so the sum counts each of its pages once, not
 *	 once per process that touched it; a page that no live process has
 *	 mapped, such as a buffer read only by a backend that has since exited,
 *	 is not counted at all.  Pages of shared libraries that processes
 *	 outside the server also map are counted in proportion to the server's
 *	 share of them.
 *
 * - mem_allocation sums Private_Clean and Private_Dirty: the resident pages
 *	 that no other process maps, mostly each process's own heap.  A page of
 *	 shared memory that only one process has mapped so far counts as private
 *	 to it, too.
 *
 * smaps_rollup is the costly read: the kernel walks the page tables of every
 * mapping of the process, so its time grows with the number of mappings and
 * with the resident memory.  Measured on a virtual machine with 2 CPUs and
 * Linux 6.18, for a server with the default 128MB of shared_buffers and no
 * huge pages: about 110 microseconds for an auxiliary process with 7MB
 * resident, 440 for a backend with 85MB resident, 220 on average over a
 * server of 27 processes.  /proc/<pid>/stat took about 8 microseconds per
 * process of the host, as did /proc/stat and /proc/meminfo.  In all,
 * dolon_read_server_memory() took 7ms for those 27 server processes among
 * 159 on the host.  Both of its values come from this one pass.
 *
 * These readers run at every sample for the lifetime of the server: they
 * allocate nothing, read into stack buffers with plain open()/read(), and
 * hold at most two descriptors at once, /proc itself and one file.  A file
 * that is missing (as on systems other than Linux) or unreadable makes the
 * value unknown, sent as null; it never raises an error, which would lose
 * the whole sample.  Each kind of failure is logged as one WARNING per
 * process: a file unreadable at one sample is most likely unreadable at the
 * next, and the nulls say the rest.  A process that exits while we read it
 * is no failure, and is left out.
 *
 * Copyright (c) 2026, the dolon authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"

#include "host.h"

/* Room for "/proc/<pid>/smaps_rollup" and the like */
#define PROC_PATH_BYTES 64

/*
 * Buffer sizes.  We read only as much of a file as holds what we parse: the
 * first line of /proc/stat, the first lines of /proc/meminfo, the fields up
 * to the parent pid in /proc/<pid>/stat.  The kernel builds the whole file
 * whatever we read, but copies out only this much.
 */
#define PROC_STAT_BYTES 512
#define MEMINFO_BYTES 512
#define PROCESS_STAT_BYTES 256
#define SMAPS_ROLLUP_BYTES 2048

/* The fields of the "cpu" line of /proc/stat that make up its total */
typedef enum CpuTimeField
{
	CPU_USER,
	CPU_NICE,
	CPU_SYSTEM,
	CPU_IDLE,
	CPU_IOWAIT,
	CPU_IRQ,
	CPU_SOFTIRQ,
	CPU_STEAL,
	NUM_CPU_TIME_FIELDS
	/* then guest and guest_nice, which user and nice already include */
} CpuTimeField;

/* Memory of the server's processes, in kB */
typedef struct ServerMemory
{
	uint64		pss_kb;
	uint64		private_kb;
} ServerMemory;

/*
 * Which kinds of failure have been reported by this process, so as to report
 * each only once.
 */
typedef struct FailureReports
{
	bool		read;			/* the file could not be read */
	bool		format;			/* the file did not read as expected */
} FailureReports;

static FailureReports proc_stat_reports;
static FailureReports meminfo_reports;
static FailureReports process_stat_reports;
static FailureReports smaps_rollup_reports;
static bool process_list_failure_reported = false;

/* The profilers that the files of each kind feed, for the reports */
#define CPU_PROFILERS "cpu_percent"
#define VIRTUAL_MEMORY_PROFILERS "virtual_memory_percent"
#define SERVER_MEMORY_PROFILERS "memory_use and mem_allocation"

/*
 * Report that a file could not be read, with the errno of the failure,
 * unless this kind of failure has been reported already.
 */
static void
report_read_failure(bool *reported, const char *path, int read_errno,
					const char *profilers)
{
	if (*reported)
		return;
	*reported = true;

	errno = read_errno;
	ereport(WARNING,
			(errcode_for_file_access(),
			 errmsg("could not read file \"%s\": %m", path),
			 errdetail("dolon reports %s as null until the file can be read. This warning is not repeated.",
					   profilers)));
}

/*
 * Report that the list of processes could not be read, unless this has been
 * reported already.
 */
static void
report_process_list_failure(const char *path, int read_errno)
{
	if (process_list_failure_reported)
		return;
	process_list_failure_reported = true;

	errno = read_errno;
	ereport(WARNING,
			(errcode_for_file_access(),
			 errmsg("could not read directory \"%s\": %m", path),
			 errdetail("dolon reports %s as null until the directory can be read. This warning is not repeated.",
					   SERVER_MEMORY_PROFILERS)));
}

/*
 * Report that a file did not have the expected format, unless this has been
 * reported already.
 */
static void
report_format_failure(bool *reported, const char *path, const char *profilers)
{
	if (*reported)
		return;
	*reported = true;

	ereport(WARNING,
			(errmsg("unexpected format of file \"%s\"", path),
			 errdetail("dolon reports %s as null while the file has this format. This warning is not repeated.",
					   profilers)));
}

/*
 * Read the start of a file into buf, at most size - 1 bytes, and terminate
 * it with a NUL.  Returns false with errno set if the file could not be read.
 */
static bool
read_file_start(const char *path, char *buf, size_t size)
{
	int			fd;
	size_t		length = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;

	while (length < size - 1)
	{
		ssize_t		nread = read(fd, buf + length, size - 1 - length);

		if (nread < 0)
		{
			int			save_errno = errno;

			if (save_errno == EINTR)
				continue;
			close(fd);
			errno = save_errno;
			return false;
		}
		if (nread == 0)
			break;
		length += nread;
	}
	close(fd);
	buf[length] = '\0';
	return true;
}

/*
 * Find the line of text that starts with name (which includes its colon) and
 * parse the number after it.  Returns false if there is no such line.
 */
static bool
find_field(const char *text, const char *name, uint64 *value)
{
	size_t		name_length = strlen(name);
	const char *line = text;

	while (line != NULL)
	{
		if (strncmp(line, name, name_length) == 0)
		{
			const char *number = line + name_length;
			char	   *end;

			errno = 0;
			*value = strtou64(number, &end, 10);
			return end != number && errno == 0;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return false;
}

/*
 * Compute the host's CPU utilisation, in percent, since the previous reading
 * in *previous, and replace that with the current one.  Returns false when
 * the value is unknown: at the first reading, when no tick has elapsed since
 * the previous one, or when /proc/stat could not be read.  Zero *previous
 * before the first call.
 */
bool
dolon_read_cpu_percent(DolonCpuReading *previous, double *percent)
{
	static const char path[] = "/proc/stat";
	char		buf[PROC_STAT_BYTES];
	uint64		ticks[NUM_CPU_TIME_FIELDS];
	const char *field;
	DolonCpuReading current;
	bool		known = false;
	int			i;

	if (!read_file_start(path, buf, sizeof(buf)))
	{
		report_read_failure(&proc_stat_reports.read, path, errno,
							CPU_PROFILERS);
		return false;
	}

	/* "cpu  user nice system idle iowait irq softirq steal guest guest_nice" */
	if (strncmp(buf, "cpu ", 4) != 0)
	{
		report_format_failure(&proc_stat_reports.format, path, CPU_PROFILERS);
		return false;
	}
	field = buf + 4;
	for (i = 0; i < NUM_CPU_TIME_FIELDS; i++)
	{
		char	   *end;

		errno = 0;
		ticks[i] = strtou64(field, &end, 10);
		if (end == field || errno != 0)
		{
			report_format_failure(&proc_stat_reports.format, path,
								  CPU_PROFILERS);
			return false;
		}
		field = end;
	}

	current.total = 0;
	for (i = 0; i < NUM_CPU_TIME_FIELDS; i++)
		current.total += ticks[i];
	current.busy = current.total - ticks[CPU_IDLE] - ticks[CPU_IOWAIT];
	current.valid = true;

	if (previous->valid && current.total > previous->total)
	{
		/*
		 * The kernel documents that iowait may decrease, and idle may too
		 * when a CPU goes offline: keep the result within bounds whatever the
		 * counters do.
		 */
		int64		busy_ticks = (int64) (current.busy - previous->busy);
		uint64		total_ticks = current.total - previous->total;

		*percent = 100.0 * (double) busy_ticks / (double) total_ticks;
		*percent = Max(*percent, 0.0);
		*percent = Min(*percent, 100.0);
		known = true;
	}

	*previous = current;
	return known;
}

/*
 * Compute the share of the host's memory in use, in percent: what is not
 * available for new work.  Returns false when it is unknown.
 */
bool
dolon_read_virtual_memory_percent(double *percent)
{
	static const char path[] = "/proc/meminfo";
	char		buf[MEMINFO_BYTES];
	uint64		total_kb;
	uint64		available_kb;

	if (!read_file_start(path, buf, sizeof(buf)))
	{
		report_read_failure(&meminfo_reports.read, path, errno,
							VIRTUAL_MEMORY_PROFILERS);
		return false;
	}

	if (!find_field(buf, "MemTotal:", &total_kb) ||
		!find_field(buf, "MemAvailable:", &available_kb) ||
		total_kb == 0)
	{
		report_format_failure(&meminfo_reports.format, path,
							  VIRTUAL_MEMORY_PROFILERS);
		return false;
	}

	/* MemAvailable is an estimate, which could exceed MemTotal */
	if (available_kb > total_kb)
		available_kb = total_kb;

	*percent = 100.0 * (double) (total_kb - available_kb) / (double) total_kb;
	return true;
}

/*
 * Is this failure to read a file of /proc/<pid> the sign that the process
 * has exited?  Its directory is gone (ENOENT), or the process is exiting or
 * a zombie, with no memory left to show (ESRCH).
 */
static bool
process_has_exited(int read_errno)
{
	return read_errno == ENOENT || read_errno == ESRCH;
}

/*
 * Find the parent of a process, or 0 if it has exited.  Returns false if
 * /proc/<pid>/stat could not be read, having reported why.
 */
static bool
read_parent_pid(pid_t pid, pid_t *parent)
{
	char		path[PROC_PATH_BYTES];
	char		buf[PROCESS_STAT_BYTES];
	const char *comm_end;
	int			parent_pid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if (!read_file_start(path, buf, sizeof(buf)))
	{
		if (process_has_exited(errno))
		{
			*parent = 0;
			return true;
		}
		report_read_failure(&process_stat_reports.read, path, errno,
							SERVER_MEMORY_PROFILERS);
		return false;
	}

	/*
	 * "pid (comm) state ppid ...": comm may contain spaces and parentheses,
	 * but it is the last field that can contain a ')'.
	 */
	comm_end = strrchr(buf, ')');
	if (comm_end == NULL ||
		sscanf(comm_end, ") %*c %d", &parent_pid) != 1)
	{
		report_format_failure(&process_stat_reports.format, path,
							  SERVER_MEMORY_PROFILERS);
		return false;
	}

	*parent = (pid_t) parent_pid;
	return true;
}

/*
 * Add the memory of a process to *memory.  Returns false if its
 * /proc/<pid>/smaps_rollup could not be read, having reported why, except
 * when the process has exited and may_exit says that is normal: then it adds
 * nothing and returns true.
 */
static bool
add_process_memory(pid_t pid, bool may_exit, ServerMemory *memory)
{
	char		path[PROC_PATH_BYTES];
	char		buf[SMAPS_ROLLUP_BYTES];
	uint64		pss_kb;
	uint64		private_clean_kb;
	uint64		private_dirty_kb;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);
	if (!read_file_start(path, buf, sizeof(buf)))
	{
		if (may_exit && process_has_exited(errno))
			return true;
		report_read_failure(&smaps_rollup_reports.read, path, errno,
							SERVER_MEMORY_PROFILERS);
		return false;
	}

	if (!find_field(buf, "Pss:", &pss_kb) ||
		!find_field(buf, "Private_Clean:", &private_clean_kb) ||
		!find_field(buf, "Private_Dirty:", &private_dirty_kb))
	{
		report_format_failure(&smaps_rollup_reports.format, path,
							  SERVER_MEMORY_PROFILERS);
		return false;
	}

	memory->pss_kb += pss_kb;
	memory->private_kb += private_clean_kb + private_dirty_kb;
	return true;
}

/*
 * Measure the memory of the server, the postmaster and its children: their
 * proportional set size in GB for memory_use, their private memory in MB for
 * mem_allocation.  Returns false when they are unknown.
 */
bool
dolon_read_server_memory(double *pss_gb, double *private_mb)
{
	static const char proc_path[] = "/proc";
	ServerMemory memory = {0};
	DIR		   *proc_dir;
	struct dirent *entry;
	bool		known = true;

	/*
	 * The postmaster outlives us, so failing to read its file is a failure
	 * whatever the errno, as on a kernel without smaps_rollup.  Then there is
	 * no point in looking for its children.
	 */
	if (!add_process_memory(PostmasterPid, false, &memory))
		return false;

	proc_dir = opendir(proc_path);
	if (proc_dir == NULL)
	{
		report_process_list_failure(proc_path, errno);
		return false;
	}

	for (;;)
	{
		pid_t		pid;
		pid_t		parent;

		errno = 0;
		entry = readdir(proc_dir);
		if (entry == NULL)
		{
			if (errno != 0)
			{
				report_process_list_failure(proc_path, errno);
				known = false;
			}
			break;
		}

		/* The processes are the entries named by a number */
		if (entry->d_name[0] < '1' || entry->d_name[0] > '9')
			continue;
		pid = (pid_t) atoi(entry->d_name);

		if (!read_parent_pid(pid, &parent) ||
			(parent == PostmasterPid &&
			 !add_process_memory(pid, true, &memory)))
		{
			known = false;
			break;
		}
	}
	closedir(proc_dir);

	if (!known)
		return false;

	*pss_gb = (double) memory.pss_kb / (1024.0 * 1024.0);
	*private_mb = (double) memory.private_kb / 1024.0;
	return true;
}
