/* Issue #13, "fork and vfork get slower": the kernel sizes a process's fd table to hold its highest
 * fd, and copies it at every fork. The shim's own fds must sit within the table the program's own
 * fds need, whatever RLIMIT_NOFILE allows: FDSize (/proc/self/status) must be what the program
 * gets without the shim.
 *
 * The program raises RLIMIT_NOFILE's soft limit to the hard limit (the library placed its fds just
 * under the soft limit), makes tracked connections to a name from a private /etc/hosts and to one
 * answered by the DNS helper (fd_probe.h), lets the shim refresh them for the given time (its
 * c-ares sockets made, its stats file and log written), then reads FDSize. Expected: the table
 * size the kernel gives the program's own fds (what it had at exec and what it opened; fs/file.c:
 * the 64 slots a process starts with, beyond that 128 and powers of two), or FDSize at start if
 * larger (a table inherited across exec never shrinks: the program works in a child it forks
 * first, whose table the kernel sizes for the few fds the program has, 64 slots). Also, no fd of the process, the shim's
 * included, may lie beyond that size. Run without LD_PRELOAD (fd-table-noshim) it is the
 * control: the same expectation must hold, which checks the test's model of the kernel.
 *
 *     fd_table [SECONDS] [HOSTS_NAMES DNS_NAMES]     (default 2 s, 1 and 1 names)
 *
 * Env: DNSAWARE_NAMESERVERS=127.0.0.1:5353, a short DNSAWARE_TTL_FLOOR. Root (namespaces). */
#include "fd_probe.h"

#include "../bench/proc_self.h" /* fd_table_size */

/* The table the kernel makes to hold fd: 64 slots (one word of bits) as a process starts with,
 * beyond that alloc_fdtable's 1 KiB of pointers (128 slots) times the next power of two. */
static long table_for(int fd)
{
	if (fd < 64)
		return 64;
	long chunks = 1;
	while (chunks < fd / 128 + 1)
		chunks *= 2;
	return chunks * 128;
}

static int highest(const struct fdset *set)
{
	int max = -1;
	for (int i = 0; i < set->n; i++)
		if (set->fds[i] > max)
			max = set->fds[i];
	return max;
}

int main(int argc, char **argv)
{
	int seconds = 2, hosts_names = 1, dns_names = 1;
	probe_args(argc, argv, &seconds, &hosts_names, &dns_names);
	bool shim = getenv("LD_PRELOAD") != NULL;
	t_name = shim ? "fd-table" : "fd-table-noshim";
	/* The test runner's table came along through exec (256 slots under meson); a fork child's
	 * is sized for the fds there are. Before the first tracked connect: the shim has none yet. */
	pid_t child = fork();
	CHECK(child >= 0);
	if (child > 0) {
		int status;
		CHECK(waitpid(child, &status, 0) == child);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	watchdog((unsigned)seconds + 30); /* alarms do not pass to a fork child */

	struct rlimit limit;
	CHECK(getrlimit(RLIMIT_NOFILE, &limit) == 0);
	rlim_t soft = limit.rlim_cur;
	limit.rlim_cur = limit.rlim_max;
	CHECK(setrlimit(RLIMIT_NOFILE, &limit) == 0);
	long size_at_start = fd_table_size();
	CHECKF(size_at_start > 0, "no FDSize in /proc/self/status");
	struct fdset fds;
	fd_snapshot(&fds);
	int own_highest = highest(&fds); /* what it had at exec; the shim makes nothing before a tracked connect */

	probe_setup(hosts_names, dns_names);
	probe_connect_all();
	own_highest = helper_fd > own_highest ? helper_fd : own_highest;
	for (int i = 0; i < probe_count; i++)
		own_highest = probe_conns[i].fd > own_highest ? probe_conns[i].fd : own_highest;
	probe_wait_refresh();
	unsigned queries = probe_shim_queries();
	sleep_ms((unsigned)seconds * 1000);
	queries = probe_shim_queries() - queries;

	long size = fd_table_size();
	fd_snapshot(&fds);
	int top = highest(&fds);
	char what[256];
	fd_link(top, what, sizeof what);
	long expected = table_for(own_highest) > size_at_start ? table_for(own_highest) : size_at_start;
	printf("RLIMIT_NOFILE %llu (soft, raised from %llu to the hard limit); %d names (%d in /etc/hosts, %d from DNS), "
	       "%u queries of the shim in %d s\n",
	       (unsigned long long)limit.rlim_cur, (unsigned long long)soft, probe_count, hosts_names, dns_names, queries,
	       seconds);
	printf("the program's highest fd %d: a table of %ld; FDSize %ld at start, %ld now (expected %ld); the "
	       "process's highest fd %d (%s)\n",
	       own_highest, table_for(own_highest), size_at_start, size, expected, top, what);
	if (shim)
		CHECKF(dns_names == 0 || queries >= 2, "the shim refreshed nothing meanwhile: the probe did not exercise it");
	CHECKF(size == expected, "FDSize is %ld, the program's fds need %ld", size, expected);
	CHECKF(top < expected, "fd %d (%s) lies beyond the %ld slots the program's fds need", top, what, expected);
	drop_private_files();
	printf("PASS %s\n", t_name);
	return 0;
}
