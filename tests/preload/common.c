/* The bodies of the preload tests' shared helpers that are more than a few lines (declared, with
 * what each does, in common.h): the failure report (fail_at and the shim's log lines it prints),
 * the watchdog, thread counts, sockets, network and hosts-file namespaces, the stats file and the
 * shim's log. Built into every program of tests/preload and tests/torture (preload_deps). */
#define PRELOAD_SHARED_T_NAME /* t_name is the program's (defined beside its main) */
#include "common.h"

/* ---- failure ---- */

/* Prints this process's (and its parent's) lines of DNSAWARE_LOG_FILE, to help diagnose failures. */
static void dump_log(void)
{
	const char *path = getenv("DNSAWARE_LOG_FILE");
	if (path == NULL || getenv("LD_PRELOAD") == NULL)
		return;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char me[32], parent[32], line[1024];
	snprintf(me, sizeof me, "dnsaware[%d]:", (int)getpid());
	snprintf(parent, sizeof parent, "dnsaware[%d]:", (int)getppid());
	fprintf(stderr, "---- shim log lines of pids %d, %d (%s) ----\n", (int)getpid(), (int)getppid(), path);
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, me, strlen(me)) == 0 || strncmp(line, parent, strlen(parent)) == 0)
			fputs(line, stderr);
	fprintf(stderr, "---- end of shim log ----\n");
	fclose(f);
}

__attribute__((noreturn, format(printf, 3, 4)))
void fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s:%d: [%s pid %d] FAILED: %s\n", file, line, t_name, (int)getpid(), msg);
	fflush(stderr);
	dump_log();
	exit(1);
}

/* ---- watchdog: every program bounds its own run time ---- */

void watchdog_fired(int sig)
{
	(void)sig;
	static const char msg[] = "watchdog expired: the test took too long (deadlock or hang)\n";
	/* raw syscall: if the shim deadlocked, its write hook must not be needed to report it */
	syscall(SYS_write, 2, msg, sizeof msg - 1);
	_exit(3);
}

void watchdog(unsigned seconds)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = watchdog_fired;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	alarm(seconds);
}

/* ---- threads ---- */

bool thread_named(pid_t tid, const char *name)
{
	char path[64], comm[32] = "";
	snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	bool named = fgets(comm, sizeof comm, f) != NULL && strncmp(comm, name, strlen(name)) == 0 &&
		     (comm[strlen(name)] == '\n' || comm[strlen(name)] == '\0');
	fclose(f);
	return named;
}

int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' &&
		    (SANITIZER_THREADS == 0 || atoi(e->d_name) == getpid() || thread_named(atoi(e->d_name), "dnsaware")))
			n++;
	closedir(d);
	return n;
}

int wait_thread_count(int want, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	int n;
	while ((n = thread_count()) != want && now_ms() < end)
		sleep_ms(10);
	return n;
}

int thread_count_stays(int want, unsigned period_ms)
{
	uint64_t end = now_ms() + period_ms;
	do {
		int n = thread_count();
		if (n != want)
			return n;
		sleep_ms(20);
	} while (now_ms() < end);
	return want;
}

/* ---- sockets ---- */

void make_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof *a4;
	} else {
		CHECKF(inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1, "bad literal %s", ip);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof *a6;
	}
}

int listen_on(const char *ip, uint16_t port, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(ip, port, &ss, &len);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	int one = 1;
	CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
	CHECKF(bind(fd, (struct sockaddr *)&ss, len) == 0, "bind %s:%u", ip, port);
	CHECK(listen(fd, backlog) == 0);
	return fd;
}

int make_listener(const char *ip, uint16_t *port, int backlog)
{
	int fd = listen_on(ip, 0, backlog);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	CHECK(getsockname(fd, (struct sockaddr *)&ss, &len) == 0);
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

int accept_one(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	CHECKF(poll(&p, 1, 2000) == 1, "no connection to accept");
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(fd >= 0);
	return fd;
}

int run_plain(const char *command)
{
	char *saved = getenv("LD_PRELOAD");
	if (saved == NULL)
		return system(command);
	saved = strdup(saved);
	CHECK(saved != NULL && unsetenv("LD_PRELOAD") == 0);
	int status = system(command);
	CHECK(setenv("LD_PRELOAD", saved, 1) == 0);
	free(saved);
	return status;
}

void own_network(const char *then)
{
	CHECKF(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET) needs root");
	char command[512];
	snprintf(command, sizeof command, "ip link set lo up%s%s", then != NULL ? " && " : "", then != NULL ? then : "");
	CHECK(run_plain(command) == 0);
}

bool read_stats_file(pid_t pid, char *buf, size_t size)
{
	const char *pattern = getenv("DNSAWARE_STATS_FILE");
	const char *at = pattern != NULL ? strstr(pattern, "%p") : NULL;
	CHECKF(at != NULL, "DNSAWARE_STATS_FILE (%s) has no %%p", pattern != NULL ? pattern : "unset");
	char path[512];
	snprintf(path, sizeof path, "%.*s%d%s", (int)(at - pattern), pattern, (int)pid, at + 2);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0;
}

int connect_name(const char *name, uint16_t port)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	char svc[16];
	snprintf(svc, sizeof svc, "%u", port);
	int rc = getaddrinfo(name, svc, &hints, &res);
	CHECKF(rc == 0 && res != NULL, "getaddrinfo(%s): %s", name, gai_strerror(rc));
	int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	CHECK(fd >= 0);
	int r = connect(fd, res->ai_addr, res->ai_addrlen);
	int e = errno;
	freeaddrinfo(res);
	if (r != 0) {
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

bool wait_pid(pid_t pid, unsigned timeout_ms, const char *what)
{
	uint64_t end = now_ms() + timeout_ms;
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		CHECK(r == 0 || (r < 0 && errno == EINTR));
		if (now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fprintf(stderr, "%s (pid %d) did not finish in %u ms: killed\n", what, (int)pid, timeout_ms);
			return false;
		}
		sleep_ms(5);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return true;
	fprintf(stderr, "%s (pid %d) failed: %s %d\n", what, (int)pid, WIFEXITED(st) ? "exit status" : "signal",
		WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return false;
}

int connect_literal(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(ip, port, &ss, &len);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECKF(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect to %s:%u", ip, port);
	return fd;
}

void raw_connect(int fd, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(ip, port, &ss, &len);
	CHECKF(syscall(SYS_connect, fd, (struct sockaddr *)&ss, len) == 0, "raw connect to %s:%u", ip, port);
}

enum sock_state sock_state(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return SOCK_EOF;
	if (n > 0)
		return SOCK_HAS_DATA;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return SOCK_ALIVE;
	return SOCK_ERROR;
}

const char *sock_state_name(enum sock_state s)
{
	switch (s) {
	case SOCK_ALIVE: return "alive";
	case SOCK_EOF: return "EOF (shut down)";
	case SOCK_HAS_DATA: return "unexpected data";
	default: return "error";
	}
}

bool wait_eof(int fd, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	for (;;) {
		enum sock_state s = sock_state(fd);
		if (s == SOCK_EOF)
			return true;
		if (s != SOCK_ALIVE || now_ms() >= end)
			return false;
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
		poll(&p, 1, 20);
	}
}

void send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		CHECK(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

void recv_exact(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		CHECKF(poll(&pf, 1, 2000) == 1, "timed out waiting for data");
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		CHECKF(n > 0, "recv returned %zd", n);
		p += n;
		len -= (size_t)n;
	}
}

void exchange(int c, int s, const char *req, const char *resp)
{
	char buf[256];
	size_t lq = strlen(req), lr = strlen(resp);
	CHECK(lq < sizeof buf && lr < sizeof buf);
	send_all(c, req, lq);
	recv_exact(s, buf, lq);
	CHECKF(memcmp(buf, req, lq) == 0, "the server end (fd %d) received \"%.*s\" instead of \"%s\"", s, (int)lq, buf,
	       req);
	sleep_ms(12);
	send_all(s, resp, lr);
	recv_exact(c, buf, lr);
	CHECKF(memcmp(buf, resp, lr) == 0, "the client end (fd %d) received \"%.*s\" instead of \"%s\"", c, (int)lr,
	       buf, resp);
}

/* ---- a private /etc/hosts (root: a mount namespace of the test's own) ---- */

char hosts_path[] = "/tmp/dnsaware-test-hosts-XXXXXX";

void write_hosts_lines(const char *lines)
{
	char text[1024];
	int n = snprintf(text, sizeof text, "127.0.0.1 localhost\n%s", lines);
	CHECK(n < (int)sizeof text);
	/* Same inode: the bind mount over /etc/hosts follows it. */
	int fd = open(hosts_path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK(write(fd, text, (size_t)n) == n);
	CHECK(close(fd) == 0);
}

void write_hosts(const char *name, const char *addresses)
{
	char lines[1024], list[256];
	int n = 0;
	snprintf(list, sizeof list, "%s", addresses);
	for (char *save = NULL, *a = strtok_r(list, " ", &save); a != NULL; a = strtok_r(NULL, " ", &save))
		n += snprintf(lines + n, sizeof lines - (size_t)n, "%s %s\n", a, name);
	CHECK(n < (int)sizeof lines);
	write_hosts_lines(lines);
}

void private_hosts(const char *name, const char *address)
{
	int fd = mkstemp(hosts_path);
	CHECK(fd >= 0);
	CHECK(close(fd) == 0);
	CHECKF(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS) needs root");
	CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	write_hosts(name, address);
	CHECK(mount(hosts_path, "/etc/hosts", NULL, MS_BIND, NULL) == 0);
}

void drop_private_hosts(void)
{
	umount("/etc/hosts");
	unlink(hosts_path);
}

/* ---- the shim's log ---- */

int count_log_lines_with(const char *const *needles)
{
	const char *path = getenv("DNSAWARE_LOG_FILE");
	CHECK(path != NULL);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	char me[32], line[1024];
	snprintf(me, sizeof me, "dnsaware[%d]:", (int)getpid());
	int count = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		bool all = strncmp(line, me, strlen(me)) == 0;
		for (int i = 0; all && needles[i] != NULL; i++)
			all = strstr(line, needles[i]) != NULL;
		count += all;
	}
	fclose(f);
	return count;
}

int check_log_format(const pid_t *pids, int npids)
{
	const char *path = getenv("DNSAWARE_LOG_FILE");
	CHECK(path != NULL);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	char line[4096];
	int ours = 0, lineno = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		int pid = -1, off = 0;
		char level[16];
		int ok = sscanf(line, "dnsaware[%d]: %15s %n", &pid, level, &off) == 2 && off > 0;
		ok = ok && (strcmp(level, "error") == 0 || strcmp(level, "warn") == 0 || strcmp(level, "info") == 0 ||
			    strcmp(level, "debug") == 0);
		ok = ok && line[strlen(line) - 1] == '\n';
		CHECKF(ok, "%s line %d is not \"dnsaware[PID]: LEVEL message\": %.300s", path, lineno, line);
		for (int i = 0; i < npids; i++)
			if (pid == (int)pids[i])
				ours++;
	}
	fclose(f);
	return ours;
}
