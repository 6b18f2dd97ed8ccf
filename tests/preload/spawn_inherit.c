/* Issue #13, "a child can keep a shim fd after exec": every fd of the shim's must be close-on-exec
 * at every moment, so that no child the program spawns, whenever it spawns it, holds one past
 * exec.
 *
 * The program makes tracked connections to names from a private /etc/hosts and to names answered
 * by the DNS helper (fd_probe.h), re-resolved at DNSAWARE_TTL_FLOOR, with DNSAWARE_STATS_FILE and
 * DNSAWARE_LOG_FILE set; then, for the given time, it spawns children one after the other, in
 * turn with vfork + execve, posix_spawn and fork + execve. Each child execs this program as the
 * checker ("spawn_inherit check FD"), WITHOUT LD_PRELOAD in its environment (the checker's own
 * shim cannot open anything): it lists /proc/self/fd and reports every fd but 0, 1, 2 and FD (the
 * report pipe, the one fd the parent passes on purpose) with what it is (readlink), on FD, and
 * exits 1 when it found any. The parent marked every fd it had at start close-on-exec, and makes
 * its own close-on-exec, so any other fd in a child is the shim's. Prints the children spawned
 * and the fds they inherited; fails on any.
 *
 *     spawn_inherit [SECONDS] [HOSTS_NAMES DNS_NAMES]     (default 10 s, 6 and 2 names)
 *
 * Env: DNSAWARE_NAMESERVERS=127.0.0.1:5353, a short DNSAWARE_TTL_FLOOR. Root (namespaces). */
#include <spawn.h>

#include "fd_probe.h"

extern char **environ;

/* ---- the checker (exec'd without the shim) ---- */

static int checker(int report_fd)
{
	struct fdset set;
	fd_snapshot(&set);
	int found = 0;
	for (int i = 0; i < set.n; i++) {
		int fd = set.fds[i];
		if (fd <= 2 || fd == report_fd)
			continue;
		char link[256], line[320];
		fd_link(fd, link, sizeof link);
		int n = snprintf(line, sizeof line, "fd %d -> %s\n", fd, link);
		/* One write per line (< PIPE_BUF): whole lines, whatever else is in the pipe. */
		if (write(report_fd, line, (size_t)n) != n)
			return 2;
		found++;
	}
	return found > 0 ? 1 : 0;
}

/* ---- the parent ---- */

enum kind { VFORK, POSIX_SPAWN, FORK, KINDS_OF_SPAWN };
static const char *const kind_names[] = { "vfork + execve", "posix_spawn", "fork + execve" };

static pid_t spawn_checker(enum kind kind, const char *self, char *const argv[], char *const envp[])
{
	pid_t pid = -1;
	if (kind == POSIX_SPAWN) {
		errno = posix_spawn(&pid, self, NULL, NULL, argv, envp);
		if (errno != 0)
			pid = -1;
	} else {
		/* vfork is called here, not through a helper: its child must not return from a frame. */
		pid = kind == VFORK ? vfork() : fork();
		if (pid == 0) {
			execve(self, argv, envp);
			_exit(127);
		}
	}
	CHECKF(pid > 0, "%s failed", kind_names[kind]);
	return pid;
}

/* What the children inherited. */
static struct probe_kind seen[PROBE_KINDS];

/* Reads the checker's lines from the report pipe; returns how many (fds inherited). */
static int read_report(int fd, const char *kind, long child)
{
	static char buf[8192];
	static size_t have;
	int lines = 0;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		char *start = buf, *nl;
		while ((nl = strchr(start, '\n')) != NULL) {
			*nl = '\0';
			if (lines++ < 4)
				printf("  child %ld (%s) inherited %s\n", child, kind, start);
			const char *arrow = strstr(start, "-> ");
			probe_count_kind(seen, arrow != NULL ? arrow + 3 : start);
			start = nl + 1;
		}
		have = strlen(start);
		memmove(buf, start, have);
	}
	return lines;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "check") == 0)
		return checker(atoi(argv[2]));
	t_name = "spawn-inherit";
	int seconds = 10, hosts_names = 6, dns_names = 2;
	probe_args(argc, argv, &seconds, &hosts_names, &dns_names);
	CHECKF(getenv("LD_PRELOAD") != NULL, "run with LD_PRELOAD=libdnsaware.so");

	/* What the program had at exec is not for its children (nor is anything it opens). */
	struct fdset inherited;
	fd_snapshot(&inherited);
	for (int i = 0; i < inherited.n; i++)
		if (inherited.fds[i] > 2)
			CHECK(fcntl(inherited.fds[i], F_SETFD, FD_CLOEXEC) == 0);
	char self[512];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(len > 0);
	self[len] = '\0';

	probe_setup(hosts_names, dns_names);
	CHECK(fcntl(helper_fd, F_SETFD, FD_CLOEXEC) == 0); /* torture.h keeps it open across exec */
	probe_connect_all();
	probe_wait_refresh();

	int report[2];
	CHECK(pipe2(report, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK(fcntl(report[1], F_SETFD, 0) == 0); /* the one fd passed on purpose */
	char report_arg[16];
	snprintf(report_arg, sizeof report_arg, "%d", report[1]);
	char *child_argv[] = { self, "check", report_arg, NULL };
	static char *child_env[256];
	int nenv = 0;
	for (char **e = environ; *e != NULL && nenv < 255; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
			child_env[nenv++] = *e;
	child_env[nenv] = NULL;
	printf("%d names (%d in /etc/hosts, %d from DNS) re-resolved beside the spawns; checker %s\n", probe_count,
	       hosts_names, dns_names, self);

	long spawned[KINDS_OF_SPAWN] = { 0 }, leaking[KINDS_OF_SPAWN] = { 0 }, fds[KINDS_OF_SPAWN] = { 0 };
	long total = 0;
	unsigned queries_before = probe_shim_queries();
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;
	while (now_ms() < end) {
		enum kind kind = (enum kind)(total % KINDS_OF_SPAWN);
		pid_t pid = spawn_checker(kind, self, child_argv, child_env);
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECKF(WIFEXITED(status) && WEXITSTATUS(status) <= 1, "checker %ld (%s) failed: status 0x%x", total,
		       kind_names[kind], status);
		spawned[kind]++;
		if (WEXITSTATUS(status) == 1) {
			leaking[kind]++;
			fds[kind] += read_report(report[0], kind_names[kind], total);
		}
		total++;
	}
	unsigned queries = probe_shim_queries() - queries_before;
	long leaked = 0, leaked_fds = 0;
	for (int k = 0; k < KINDS_OF_SPAWN; k++) {
		printf("%s: %ld children, %ld with an inherited fd (%ld fds)\n", kind_names[k], spawned[k], leaking[k],
		       fds[k]);
		leaked += leaking[k];
		leaked_fds += fds[k];
	}
	probe_print_kinds(seen, "inherited fds were");
	printf("%ld children in %d s, %ld inherited %ld fds; %u queries of the shim to the DNS helper meanwhile\n",
	       total, seconds, leaked, leaked_fds, queries);
	CHECKF(dns_names == 0 || queries > 0, "the shim asked nothing meanwhile: the probe did not exercise it");
	CHECKF(leaked == 0, "%ld of %ld children inherited %ld fds past exec", leaked, total, leaked_fds);
	drop_private_files();
	printf("PASS %s\n", t_name);
	return 0;
}
