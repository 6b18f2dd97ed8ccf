/* A daemon that closes every fd, the shim's own among them, and then must still be served: its new
 * tracked connections are watched, re-resolved and shut down when their name moves. And the numbers
 * of the shim's old fds, reused by the program, are never written to or read from by the shim.
 *
 * Usage: torture_daemon HOW, HOW one of
 *   loop       close() of every fd from 0 to the limit (through the hook)
 *   range      close_range(3, ~0U, 0) (through the hook)
 *   closefrom  closefrom(3) (glibc makes the close_range system call itself)
 *   raw        syscall(SYS_close_range, 3, ~0U, 0): behind the shim's back
 *   cloexec    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC), then exec: the tracked connections keep
 *              working (and tracked) until the exec; the new image has none of the old fds
 *
 * The test process sets up a network and mount namespace, a DNS and echo helper process (torture.h),
 * and forks the daemon, whose output goes to a report file the test prints. The daemon (RLIMIT_NOFILE
 * 256, so the shim's fds sit near 192 where the program's own fds can reach them):
 *   phase 1, the shim's thread asleep (no name to refresh): a tracked connection comes and goes, the
 *     thread goes idle; every fd is closed; the program opens pipes over every number up to the
 *     shim's old fds, each holding a marker; a new tracked connection must be shut down within 5 s of
 *     its name's move.
 *   phase 2, a query in flight (the DNS helper answers the shim after 1 s): every fd is closed again,
 *     c-ares' socket among them; pipes again; a new tracked connection, a move, a shutdown.
 *   Then every pipe holds its marker, nothing more or less; the daemon has 2 threads.
 * Env: LD_PRELOAD, DNSAWARE_NAMESERVERS=127.0.0.1:5353, DNSAWARE_TTL_FLOOR=200ms,
 * DNSAWARE_STALE_AFTER=1, DNSAWARE_IDLE=50ms, DNSAWARE_LOG=debug, DNSAWARE_LOG_FILE. Root. */
#include <linux/close_range.h>

#include "torture.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

enum { PORT = 8000, NOFILE = 256, PIPES_MAX = 200 };

static const char *how;
static char report_path[] = "/tmp/dnsaware-torture-daemon-XXXXXX";
static struct helper_name *d;


struct pipe_pair {
	int r, w;
	char marker[24];
};
static struct pipe_pair pipes[PIPES_MAX];
static int npipes;

/* The shim's fds now: whatever is open that the daemon did not open itself (its stdio, the helper's
 * memfd, its own connection `mine`): the wake-up fds, the log file, c-ares' sockets. */
static struct fdset daemon_own;

static int shim_fds(int *out, int max, int mine, bool want_dns_socket)
{
	struct fdset set;
	fd_snapshot(&set);
	int n = 0;
	for (int i = 0; i < set.n; i++) {
		int fd = set.fds[i];
		bool program_pipe = false;
		for (int k = 0; k < npipes; k++)
			program_pipe = program_pipe || pipes[k].r == fd || pipes[k].w == fd;
		if (fdset_has(&daemon_own, fd) || fd == mine || program_pipe)
			continue;
		struct sockaddr_in peer;
		socklen_t len = sizeof peer;
		if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 && peer.sin_family == AF_INET &&
		    ntohs(peer.sin_port) == DNS_SHIM_PORT)
			want_dns_socket = false;
		if (n < max)
			out[n++] = fd;
	}
	CHECKF(!want_dns_socket, "no c-ares socket open while a query is in flight");
	return n;
}

/* Every fd goes, the way the daemon does it; stdout and stderr come back as the report file. */
static void close_everything(void)
{
	if (strcmp(how, "loop") == 0) {
		for (int fd = 0; fd < NOFILE; fd++)
			close(fd);
	} else if (strcmp(how, "range") == 0) {
		CHECK(close_range(3, ~0U, 0) == 0);
	} else if (strcmp(how, "closefrom") == 0) {
		closefrom(3);
	} else {
		CHECK(syscall(SYS_close_range, 3, ~0U, 0) == 0);
	}
	npipes = 0; /* the program's own pipes went too */
	int fd = open(report_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd >= 0 && fd != 1)
		dup2(fd, 1);
	if (fd >= 0 && fd != 2)
		dup2(fd, 2);
	if (fd > 2)
		close(fd);
	if (fcntl(0, F_GETFD) < 0)
		CHECK(open("/dev/null", O_RDONLY) == 0);
}

/* The program takes back every number up to the highest of the shim's old fds: pipes, each with a
 * marker in it that nothing may add to or take from. */
static void reuse_numbers(const int *old, int n)
{
	int highest = -1;
	for (int i = 0; i < n; i++)
		if (old[i] > highest)
			highest = old[i];
	for (int round = 0; round < PIPES_MAX; round++) {
		bool covered = true;
		for (int i = 0; i < n; i++)
			covered = covered && fcntl(old[i], F_GETFD) >= 0;
		if (covered)
			break;
		CHECKF(npipes < PIPES_MAX, "out of pipes below %d", highest);
		struct pipe_pair *p = &pipes[npipes];
		int fds[2];
		if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
			break; /* the limit: some numbers stay the shim's (it made new ones where it could) */
		p->r = fds[0];
		p->w = fds[1];
		snprintf(p->marker, sizeof p->marker, "pipe-%d-%d", p->r, p->w);
		CHECK(write(p->w, p->marker, strlen(p->marker)) == (ssize_t)strlen(p->marker));
		npipes++;
	}
}

static void check_pipes(void)
{
	for (int i = 0; i < npipes; i++) {
		char buf[256];
		ssize_t n = read(pipes[i].r, buf, sizeof buf - 1);
		buf[n < 0 ? 0 : n] = '\0';
		CHECKF(n == (ssize_t)strlen(pipes[i].marker) && strcmp(buf, pipes[i].marker) == 0,
		       "pipe %d/%d, which took one of the shim's old fd numbers, holds \"%s\" (%zd bytes), not its "
		       "marker \"%s\": the shim used a number that was no longer its own",
		       pipes[i].r, pipes[i].w, buf, n, pipes[i].marker);
		CHECK(write(pipes[i].w, pipes[i].marker, strlen(pipes[i].marker)) == (ssize_t)strlen(pipes[i].marker));
	}
}

static int tracked_to(const char *ip)
{
	int fd = connect_name("d.test", PORT);
	CHECKF(fd >= 0, "connect to d.test");
	char peer[INET_ADDRSTRLEN];
	CHECKF(strcmp(peer_text(fd, peer), ip) == 0, "d.test reached %s, expected %s", peer, ip);
	CHECKF(echo_exchange(fd, "daemon"), "an exchange with d.test failed");
	return fd;
}

static void expect_moved(int fd, const char *to, const char *phase)
{
	helper_move(d, to);
	uint64_t start = now_ms();
	CHECKF(wait_eof(fd, 5000), "%s: the daemon's connection to d.test was not shut down within 5 s of the move "
	       "(the shim no longer serves it)", phase);
	printf("%s: shut down %llu ms after the move\n", phase, (unsigned long long)(now_ms() - start));
}

static void daemon_life(void)
{
	watchdog(25);
	struct rlimit limit = { .rlim_cur = NOFILE, .rlim_max = NOFILE };
	CHECK(setrlimit(RLIMIT_NOFILE, &limit) == 0);
	fd_snapshot(&daemon_own); /* the shim has no fd yet: no tracked connect so far */
	int old[16], n;

	/* Phase 1: the thread asleep. */
	int c = tracked_to("127.0.30.1");
	CHECK(close(c) == 0);
	sleep_ms(2600); /* the closed socket's grace period: then nothing is left to refresh */
	n = shim_fds(old, 16, -1, false);
	CHECKF(n >= 2, "expected the shim's wake-up fd and log file, found %d fds", n);
	close_everything();
	reuse_numbers(old, n);
	printf("phase 1 (%s, thread asleep): closed every fd (the shim had %d), %d pipes over their numbers\n", how, n,
	       npipes);
	c = tracked_to("127.0.30.1");
	expect_moved(c, "127.0.30.2", "phase 1");
	check_pipes();

	/* Phase 2: a query in flight. */
	c = tracked_to("127.0.30.2");
	atomic_store(&d->shim_delay_ms, 1000);
	uint64_t end = now_ms() + 5000;
	while (atomic_load(&helper->shim_pending) == 0) {
		CHECKF(now_ms() < end, "no query in flight");
		sleep_ms(5);
	}
	n = shim_fds(old, 16, c, true);
	close_everything();
	reuse_numbers(old, n);
	printf("phase 2 (%s, query in flight): closed every fd (the shim had %d), %d pipes in all\n", how, n, npipes);
	atomic_store(&d->shim_delay_ms, 0);
	c = tracked_to("127.0.30.2");
	expect_moved(c, "127.0.30.3", "phase 2");
	check_pipes();
	int threads = thread_count();
	CHECKF(threads == 2, "%d threads, expected the daemon's and the shim's", threads);
	printf("daemon: all checks passed\n");
}

/* cloexec: close_range(CLOSE_RANGE_CLOEXEC) marks every fd; they work (and stay tracked) until exec. */
static void cloexec_life(void)
{
	watchdog(25);
	int keep = tracked_to("127.0.30.1");
	int moved = tracked_to("127.0.30.1");
	CHECK(close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0);
	CHECKF(echo_exchange(keep, "after cloexec"), "an exchange after close_range(CLOSE_RANGE_CLOEXEC) failed");
	CHECKF(fcntl(keep, F_GETFD) == FD_CLOEXEC, "close_range did not mark fd %d", keep);
	(void)moved;
	expect_moved(moved, "127.0.30.2", "before exec");
	char fdarg[16], keptarg[16];
	snprintf(fdarg, sizeof fdarg, "%d", helper_fd);
	snprintf(keptarg, sizeof keptarg, "%d", keep);
	CHECK(fcntl(helper_fd, F_SETFD, 0) == 0);
	char *args[] = { "torture_daemon", "cloexec-after", fdarg, keptarg, report_path, NULL };
	execv("/proc/self/exe", args);
	CHECKF(0, "execv");
}

static void cloexec_after(char **argv)
{
	helper_attach(atoi(argv[2]));
	d = helper_find("d.test");
	int kept = atoi(argv[3]);
	CHECKF(fcntl(kept, F_GETFD) < 0 && errno == EBADF, "fd %d survived exec", kept);
	struct fdset set;
	fd_snapshot(&set);
	for (int i = 0; i < set.n; i++) {
		char link[256];
		fd_link(set.fds[i], link, sizeof link);
		CHECKF(set.fds[i] <= 2 || set.fds[i] == helper_fd, "fd %d (%s) survived exec", set.fds[i], link);
	}
	CHECKF(thread_count() == 1, "%d threads after exec", thread_count());
	int c = tracked_to("127.0.30.2");
	expect_moved(c, "127.0.30.3", "after exec");
	printf("daemon (after exec): all checks passed\n");
	exit(0);
}

int main(int argc, char **argv)
{
	CHECK(argc >= 2);
	how = t_name = argv[1];
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(how, "cloexec-after") == 0) {
		CHECK(argc == 5);
		watchdog(15);
		cloexec_after(argv);
	}
	CHECKF(strcmp(how, "loop") == 0 || strcmp(how, "range") == 0 || strcmp(how, "closefrom") == 0 ||
		       strcmp(how, "raw") == 0 || strcmp(how, "cloexec") == 0,
	       "unknown way to close every fd: %s", how);
	private_network();
	private_files("");
	helper_init();
	d = helper_add_name("d.test", "127.0.30.1");
	helper_listen("127.0.30.1", PORT);
	helper_listen("127.0.30.2", PORT);
	helper_listen("127.0.30.3", PORT);
	helper_start();
	int fd = mkstemp(report_path);
	CHECK(fd >= 0 && close(fd) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The daemon's output goes to the report from the start (it closes stdout in a while). */
		fd = open(report_path, O_WRONLY | O_APPEND | O_CLOEXEC);
		CHECK(fd > 2 && dup2(fd, 1) == 1 && dup2(fd, 2) == 2 && close(fd) == 0);
		if (strcmp(how, "cloexec") == 0)
			cloexec_life();
		else
			daemon_life();
		exit(0);
	}
	bool ok = wait_pid(pid, 40000, "the daemon");
	FILE *f = fopen(report_path, "re");
	char line[1024];
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		fputs(line, ok ? stdout : stderr);
	if (f != NULL)
		fclose(f);
	unlink(report_path);
	if (!ok) {
		print_log_tail(pid, "", 40);
		fail_at(__FILE__, __LINE__, "the daemon failed");
	}
	drop_private_files();
	printf("PASS daemon-%s\n", how);
	return 0;
}
