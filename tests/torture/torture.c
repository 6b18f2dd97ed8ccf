/* The torture tests' helpers (declared, with what each does, in torture.h): built once for every
 * program that uses them rather than copied into each, and the one home of the test's name
 * (t_name), so that a CHECK failing in here names the test like one in the program's own files. */
#include "torture.h"

const char *t_name = "?"; /* the test (or subtest) name, for messages (common.h) */

/* ---- skipping and the watchdog ---- */

__attribute__((noreturn)) void skip(const char *why)
{
	printf("SKIP %s: %s\n", t_name, why);
	exit(77);
}

static unsigned watchdog_seconds;
static const char *watchdog_what = "the test";

static void *watchdog_main(void *unused)
{
	(void)unused;
	sleep_ms(watchdog_seconds * 1000);
	char msg[256];
	int n = snprintf(msg, sizeof msg, "[%s pid %d] FAILED: watchdog expired after %u s: %s did not finish "
			 "(deadlock or hang)\n", t_name, (int)getpid(), watchdog_seconds, watchdog_what);
	/* Raw system calls: a deadlocked shim must not be needed to say so. */
	syscall(SYS_write, 2, msg, (size_t)n);
	syscall(SYS_exit_group, 3);
	return NULL;
}

void watchdog_thread(unsigned seconds, const char *what)
{
	watchdog_seconds = seconds;
	watchdog_what = what;
	pthread_t t;
	CHECK(pthread_create(&t, NULL, watchdog_main, NULL) == 0);
	CHECK(pthread_detach(t) == 0);
}

/* ---- a network and file system of the test's own (root) ---- */

void private_network(void)
{
	if (geteuid() != 0)
		skip("needs root for a private network namespace (unshare(CLONE_NEWNET))");
	if (unshare(CLONE_NEWNET) != 0)
		skip("unshare(CLONE_NEWNET) failed: no network namespaces here");
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
	CHECK(close(s) == 0);
}

static char resolv_path[] = "/tmp/dnsaware-torture-resolv-XXXXXX";

void private_files(const char *hosts_lines)
{
	if (geteuid() != 0)
		skip("needs root for a private mount namespace (unshare(CLONE_NEWNS))");
	if (unshare(CLONE_NEWNS) != 0)
		skip("unshare(CLONE_NEWNS) failed: no mount namespaces here");
	CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	int fd = mkstemp(hosts_path);
	CHECK(fd >= 0);
	CHECK(close(fd) == 0);
	fd = mkstemp(resolv_path);
	CHECK(fd >= 0);
	static const char resolv[] = "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n";
	CHECK(write(fd, resolv, sizeof resolv - 1) == (ssize_t)(sizeof resolv - 1));
	CHECK(close(fd) == 0);
	write_hosts_lines(hosts_lines);
	CHECK(mount(hosts_path, "/etc/hosts", NULL, MS_BIND, NULL) == 0);
	CHECK(mount(resolv_path, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0);
	/* The bind mounts hold the files; the names can go now (nothing is left behind on failure).
	 * The hosts file is rewritten through /etc/hosts (set_hosts). */
	unlink(resolv_path);
	unlink(hosts_path);
}

void set_hosts(const char *lines)
{
	char text[8192];
	int n = snprintf(text, sizeof text, "127.0.0.1 localhost\n%s", lines);
	CHECK(n < (int)sizeof text);
	int fd = open("/etc/hosts", O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(write(fd, text, (size_t)n) == n);
	CHECK(close(fd) == 0);
}

void drop_private_files(void)
{
	umount("/etc/hosts");
	umount("/etc/resolv.conf");
}

/* ---- /proc/self/fd ---- */

void fd_link(int fd, char *out, size_t size)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, out, size - 1);
	out[n < 0 ? 0 : n] = '\0';
}

void fd_snapshot(struct fdset *set)
{
	int dfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	DIR *d = fdopendir(dfd);
	CHECK(d != NULL);
	set->n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd != dfd && set->n < FDSET_MAX)
			set->fds[set->n++] = fd;
	}
	closedir(d);
}

bool fdset_has(const struct fdset *set, int fd)
{
	for (int i = 0; i < set->n; i++)
		if (set->fds[i] == fd)
			return true;
	return false;
}

int fdset_extra(const struct fdset *before, const struct fdset *now, const char *heading)
{
	int extra = 0;
	for (int i = 0; i < now->n; i++) {
		if (fdset_has(before, now->fds[i]))
			continue;
		char link[256];
		fd_link(now->fds[i], link, sizeof link);
		if (extra++ == 0 && heading != NULL)
			fprintf(stderr, "%s\n", heading);
		if (heading != NULL)
			fprintf(stderr, "  fd %d -> %s\n", now->fds[i], link);
	}
	return extra;
}

bool shim_loaded(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	CHECK(f != NULL);
	char line[512];
	bool found = false;
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, "libdnsaware") != NULL;
	fclose(f);
	return found;
}

int resolver_fds(int *wake_fds)
{
	struct fdset set;
	fd_snapshot(&set);
	int udp = 0;
	*wake_fds = 0;
	for (int i = 0; i < set.n; i++) {
		char link[256];
		fd_link(set.fds[i], link, sizeof link);
		if (set.fds[i] > 2 && (strstr(link, "eventfd") != NULL || strncmp(link, "pipe:", 5) == 0))
			(*wake_fds)++;
		if (strncmp(link, "socket:", 7) != 0)
			continue;
		int type = 0;
		socklen_t len = sizeof type;
		struct sockaddr_in peer;
		socklen_t plen = sizeof peer;
		if (getsockopt(set.fds[i], SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM &&
		    getpeername(set.fds[i], (struct sockaddr *)&peer, &plen) == 0 && peer.sin_family == AF_INET &&
		    ntohs(peer.sin_port) == 5353)
			udp++;
	}
	return udp;
}

/* ---- the shim's log and stats file ---- */

const char *log_path(void)
{
	static const char *path;
	static bool read;
	if (!read) {
		path = getenv("DNSAWARE_LOG_FILE");
		read = true;
	}
	return path;
}

void short_failure_reports(void)
{
	log_path();
	unsetenv("DNSAWARE_LOG_FILE");
}

int for_log_lines(pid_t pid, void (*fn)(const char *message, void *arg), void *arg)
{
	const char *path = log_path();
	CHECK(path != NULL);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	char prefix[32], line[1024];
	snprintf(prefix, sizeof prefix, "dnsaware[%d]: ", (int)pid);
	size_t plen = strlen(prefix);
	int count = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, prefix, plen) != 0)
			continue;
		count++;
		if (fn != NULL)
			fn(line + plen, arg);
	}
	fclose(f);
	return count;
}

int count_log_lines_of(pid_t pid, const char *needle)
{
	const char *path = log_path();
	CHECK(path != NULL);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	char prefix[32], line[1024];
	snprintf(prefix, sizeof prefix, "dnsaware[%d]: ", (int)pid);
	int count = 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, needle) != NULL)
			count++;
	fclose(f);
	return count;
}

bool wait_log_line(pid_t pid, const char *needle, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	while (count_log_lines_of(pid, needle) == 0) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}

void print_log_tail(pid_t pid, const char *needle, int max)
{
	const char *path = log_path();
	if (path == NULL)
		return;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	enum { KEEP = 64 };
	static char ring[KEEP][512];
	if (max > KEEP)
		max = KEEP;
	char prefix[32], line[1024];
	snprintf(prefix, sizeof prefix, "dnsaware[%d]: ", (int)pid);
	long n = 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, needle) != NULL)
			snprintf(ring[n++ % KEEP], sizeof ring[0], "%.500s", line);
	fclose(f);
	fprintf(stderr, "---- the last %d of %ld shim log lines of pid %d with \"%s\" ----\n", n < max ? (int)n : max, n,
		(int)pid, needle);
	for (long i = n < max ? 0 : n - max; i < n; i++)
		fputs(ring[i % KEEP], stderr);
	fprintf(stderr, "---- end ----\n");
}

long long stats_value(const char *metric, const char *label)
{
	const char *path = getenv("DNSAWARE_STATS_FILE");
	if (path == NULL)
		return -1;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	char line[512];
	long long sum = -1;
	size_t mlen = strlen(metric);
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, metric, mlen) != 0 || (line[mlen] != '{' && line[mlen] != ' '))
			continue;
		if (strstr(line, label) == NULL)
			continue;
		const char *value = strrchr(line, ' ');
		if (value == NULL)
			continue;
		sum = (sum < 0 ? 0 : sum) + atoll(value + 1);
	}
	fclose(f);
	return sum;
}

/* ---- a request/response with a server in another process (the helper echoes after 12 ms) ---- */

bool echo_exchange(int fd, const char *req)
{
	size_t len = strlen(req);
	char buf[256];
	CHECK(len < sizeof buf);
	ssize_t n = send(fd, req, len, MSG_NOSIGNAL);
	if (n != (ssize_t)len)
		return false;
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		CHECKF(poll(&p, 1, 3000) == 1, "no answer from the echo server in 3 s");
		n = recv(fd, buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return false;
		}
		got += (size_t)n;
	}
	CHECKF(memcmp(buf, req, len) == 0, "the echo of \"%s\" came back as \"%.*s\"", req, (int)len, buf);
	return true;
}

const char *peer_text(int fd, char buf[INET_ADDRSTRLEN])
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	if (getpeername(fd, (struct sockaddr *)&a, &len) != 0)
		return "(none)";
	return inet_ntop(AF_INET, &a.sin_addr, buf, INET_ADDRSTRLEN);
}
