/* Tracking, shutdown and fd bookkeeping, observed from outside.
 *
 * Run with LD_PRELOAD and DNSAWARE_MAX_AGE=300ms, DNSAWARE_IDLE=50ms (DNSAWARE_TTL_FLOOR=1s keeps
 * any spreading of shutdowns short): the shim then wants to shut down every tracked idle socket
 * soon after 300 ms. A tracked socket is one connected to 127.0.0.1 after getaddrinfo("localhost")
 * (or gethostbyname*). Untracked connections go to a listener on 127.0.0.2, a literal no name
 * resolves to. Each subtest (argv[1]) is its own process and meson test.
 *
 * Every negative check ("this is never shut down") runs next to a positive control: a tracked
 * connection made after the sockets under test, which must be shut down first; only then, plus a
 * margin, are the others checked. So each test proves the shim was active while it looked. */
#include "common.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/sendfile.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define SHUT_TIMEOUT_MS 5000 /* a tracked idle socket must be shut down within this */
#define MARGIN_MS 700        /* after the control was shut down, wait this long before negatives */

static uint16_t port;  /* 127.0.0.1: tracked through "localhost" */
static uint16_t uport; /* 127.0.0.2: untracked */
static int lfd, ulfd;
static unsigned max_age_ms = 300;

struct conn {
	int c; /* client end */
	int s; /* server end */
};

static struct conn tracked(void)
{
	struct conn k;
	k.c = connect_named("localhost", port);
	k.s = accept_one(lfd);
	return k;
}

static struct conn untracked(void)
{
	struct conn k;
	k.c = connect_literal("127.0.0.2", uport);
	k.s = accept_one(ulfd);
	return k;
}

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

/* An exchange whose response comes measurably later than the request (a real server takes time;
 * on loopback both would otherwise carry the same kernel timestamp, which the shim must treat as
 * "maybe not answered yet"). */
static void exchange_slow(int c, int s, const char *req, const char *resp)
{
	char buf[256];
	size_t lq = strlen(req), lr = strlen(resp);
	send_all(c, req, lq);
	recv_exact(s, buf, lq);
	CHECK(memcmp(buf, req, lq) == 0);
	sleep_ms(30);
	send_all(s, resp, lr);
	recv_exact(c, buf, lr);
	CHECK(memcmp(buf, resp, lr) == 0);
}

static void expect_alive_fd(int c, int s, const char *what)
{
	enum sock_state st = sock_state(c);
	CHECKF(st == SOCK_ALIVE, "%s: client end is %s, expected alive", what, sock_state_name(st));
	st = sock_state(s);
	CHECKF(st == SOCK_ALIVE, "%s: server end is %s, expected alive", what, sock_state_name(st));
	exchange(c, s, "are-you-there", "yes");
}
#define expect_alive(k, what) expect_alive_fd((k).c, (k).s, what)

/* c (some fd of the tracked socket whose server end is s) is shut down: the client reads 0, the
 * peer sees EOF, and the fd is still open (the shim never closes). Returns the time it took. */
static uint64_t expect_shut_fd(int c, int s, const char *what)
{
	uint64_t t0 = now_ms();
	CHECKF(wait_eof(c, SHUT_TIMEOUT_MS), "%s: fd %d was not shut down within %d ms (state: %s)", what, c,
	       SHUT_TIMEOUT_MS, sock_state_name(sock_state(c)));
	uint64_t took = now_ms() - t0;
	char b;
	CHECKF(recv(c, &b, 1, MSG_DONTWAIT) == 0, "%s: client does not read 0", what);
	CHECKF(wait_eof(s, 1000), "%s: the peer did not see EOF", what);
	CHECKF(fd_open(c), "%s: fd %d was closed (the shim must only shut down)", what, c);
	int type = 0;
	socklen_t tl = sizeof type;
	CHECKF(getsockopt(c, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM,
	       "%s: fd %d is no longer the socket", what, c);
	return took;
}
#define expect_shut(k, what) expect_shut_fd((k).c, (k).s, what)

static void close_conn(struct conn k)
{
	CHECK(close(k.c) == 0);
	CHECK(close(k.s) == 0);
}

/* A tracked control connection is shut down, then the margin passes. */
static void control_then_margin(void)
{
	struct conn ctl = tracked();
	exchange(ctl.c, ctl.s, "ctl", "ok");
	expect_shut(ctl, "control connection");
	close_conn(ctl);
	sleep_ms(MARGIN_MS);
}

/* Allocations: make want the lowest free fd (holding /dev/null on every lower free number). The
 * holds are released with release_holds() after the allocation of interest. */
static int holds[256], nholds;
static void release_holds(void);

static void make_lowest_free(int want)
{
	/* The shim's thread may hold a transient fd (c-ares reading /etc/hosts, a DNS socket): if
	 * want is taken, let go and try again a little later. */
	for (int attempt = 0;; attempt++) {
		nholds = 0;
		for (;;) {
			int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			CHECK(fd >= 0);
			if (fd == want) {
				CHECK(close(fd) == 0);
				return;
			}
			CHECK(nholds < 256);
			holds[nholds++] = fd;
			if (fd > want)
				break;
		}
		CHECKF(attempt < 100, "fd %d stays in use by someone else", want);
		release_holds();
		sleep_ms(10);
	}
}

static void release_holds(void)
{
	while (nholds > 0)
		CHECK(close(holds[--nholds]) == 0);
}

/* A socket on exactly fd number want (type: SOCK_STREAM socket, or a socketpair whose first end
 * lands there, second end in *other). */
static int socket_on_(int want, int *other)
{
	for (int attempt = 0;; attempt++) {
		make_lowest_free(want);
		int fd, sv[2];
		if (other != NULL) {
			CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
			fd = sv[0];
		} else {
			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		}
		release_holds();
		if (fd == want) {
			if (other != NULL)
				*other = sv[1];
			return fd;
		}
		CHECKF(attempt < 20, "could not get fd %d (got %d)", want, fd);
		CHECK(close(fd) == 0);
		if (other != NULL)
			CHECK(close(sv[1]) == 0);
	}
}
static int socket_on(int want) { return socket_on_(want, NULL); }

static void connect_fd(int fd, const char *ip, uint16_t p)
{
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(ip, p, &ss, &len);
	CHECKF(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect to %s:%u", ip, p);
}

static void check_log(void)
{
	pid_t me = getpid();
	int n = check_log_format(&me, 1);
	CHECKF(n > 0, "no log line of this process in %s with DNSAWARE_LOG=debug", getenv("DNSAWARE_LOG_FILE"));
}

/* ------------------------------------------------------------------ subtests */

/* Positive control: tracked sockets (blocking connect, non-blocking connect, after an exchange)
 * are shut down at an idle boundary after max age; untracked ones are not; one thread, created at
 * the first tracked connect. */
static void t_control(void)
{
	CHECKF(thread_count() == 1, "threads at start: %d", thread_count());
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	CHECK(getaddrinfo("localhost", NULL, &hints, &res) == 0);
	freeaddrinfo(res);
	int n = thread_count_stays(1, 100);
	CHECKF(n == 1, "a thread appeared after getaddrinfo alone: %d threads", n);
	struct conn u = untracked();
	n = thread_count_stays(1, 100);
	CHECKF(n == 1, "a thread appeared after an untracked connect: %d threads", n);

	uint64_t t0 = now_ms();
	struct conn a = tracked();
	n = wait_thread_count(2, 1000);
	CHECKF(n == 2, "after the first tracked connect: %d threads, expected 2", n);

	/* non-blocking tracked connect */
	struct conn b;
	{
		char svc[16];
		snprintf(svc, sizeof svc, "%u", port);
		CHECK(getaddrinfo("localhost", svc, &hints, &res) == 0);
		b.c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		errno = 0;
		int r = connect(b.c, res->ai_addr, res->ai_addrlen);
		CHECK(r == 0 || errno == EINPROGRESS);
		freeaddrinfo(res);
		struct pollfd p = { .fd = b.c, .events = POLLOUT };
		CHECK(poll(&p, 1, 2000) == 1);
		CHECK(fcntl(b.c, F_SETFL, 0) == 0);
		b.s = accept_one(lfd);
	}
	struct conn c = tracked();
	exchange(c.c, c.s, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n");
	n = thread_count_stays(2, 100);
	CHECKF(n == 2, "more tracked connects: %d threads, expected still 2", n);

	expect_shut(a, "blocking tracked connect");
	uint64_t first = now_ms() - t0;
	CHECKF(first + 20 >= max_age_ms * 9 / 10,
	       "shut down after %llu ms, before DNSAWARE_MAX_AGE=%u ms (-10%% jitter)", (unsigned long long)first,
	       max_age_ms);
	expect_shut(b, "non-blocking tracked connect");
	expect_shut(c, "tracked connection after a complete exchange");
	sleep_ms(MARGIN_MS);
	expect_alive(u, "untracked connection to 127.0.0.2");
	n = thread_count();
	CHECKF(n == 2, "%d threads at the end, expected 2", n);
	/* the program closes its fds itself, normally */
	close_conn(a);
	close_conn(b);
	close_conn(c);
	close_conn(u);
	check_log();
}

/* dup2/dup3 of another file over a tracked fd: the fd number now means something else. */
static void t_dup2_over(void)
{
	struct conn t1 = tracked(), t2 = tracked(), t3 = tracked();
	struct conn u1 = untracked(), u2 = untracked();
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);

	CHECK(dup2(u1.c, t1.c) == t1.c);
	CHECK(close(u1.c) == 0);
	u1.c = t1.c;
	CHECK(dup3(u2.c, t2.c, O_CLOEXEC) == t2.c);
	CHECK(close(u2.c) == 0);
	u2.c = t2.c;
	CHECK(dup2(p[1], t3.c) == t3.c);
	CHECK(close(p[1]) == 0);
	p[1] = t3.c;
	/* the replaced sockets had no other fd: they are closed, their peers see EOF */
	CHECK(wait_eof(t1.s, 1000) && wait_eof(t2.s, 1000) && wait_eof(t3.s, 1000));
	CHECK(close(t1.s) == 0 && close(t2.s) == 0 && close(t3.s) == 0);

	control_then_margin();
	expect_alive(u1, "untracked socket dup2'd over a tracked fd");
	expect_alive(u2, "untracked socket dup3'd over a tracked fd");
	CHECKF(write(p[1], "x", 1) == 1, "pipe dup2'd over a tracked fd is not writable");
	char ch;
	CHECK(read(p[0], &ch, 1) == 1 && ch == 'x');
	close_conn(u1);
	close_conn(u2);
	CHECK(close(p[0]) == 0 && close(p[1]) == 0);
}

/* An fd closed behind the shim's back (raw close) and reused must never be shut down. */
static void t_rawclose(void)
{
	/* 1: reused by a connection to the same peer (127.0.0.1, same port), connected raw */
	struct conn t1 = tracked();
	int n1 = t1.c;
	CHECK(syscall(SYS_close, n1) == 0);
	CHECK(close(t1.s) == 0);
	struct conn r1;
	r1.c = socket_on(n1);
	raw_connect(r1.c, "127.0.0.1", port);
	r1.s = accept_one(lfd);

	/* 2: reused by a connection to an untracked literal through the hooked connect */
	struct conn t2 = tracked();
	int n2 = t2.c;
	CHECK(syscall(SYS_close, n2) == 0);
	CHECK(close(t2.s) == 0);
	struct conn r2;
	r2.c = socket_on(n2);
	connect_fd(r2.c, "127.0.0.2", uport);
	r2.s = accept_one(ulfd);

	/* 3: reused by a socket connected raw to the same peer after an exchange on the old one
	 * (the old socket was idle-ready with its last data inbound) */
	struct conn t3 = tracked();
	exchange(t3.c, t3.s, "req", "resp");
	int n3 = t3.c;
	CHECK(syscall(SYS_close, n3) == 0);
	CHECK(close(t3.s) == 0);
	struct conn r3;
	r3.c = socket_on(n3);
	raw_connect(r3.c, "127.0.0.1", port);
	r3.s = accept_one(lfd);

	/* 4: reused by one end of a unix socketpair */
	struct conn t4 = tracked();
	int n4 = t4.c;
	CHECK(syscall(SYS_close, n4) == 0);
	CHECK(close(t4.s) == 0);
	int sv[2];
	sv[0] = socket_on_(n4, &sv[1]);

	control_then_margin();
	expect_alive(r1, "raw-closed tracked fd reused by a raw connect to the same peer");
	expect_alive(r2, "raw-closed tracked fd reused by a connect to an untracked literal");
	expect_alive(r3, "raw-closed tracked fd (after an exchange) reused by a raw connect");
	expect_alive_fd(sv[0], sv[1], "raw-closed tracked fd reused by a socketpair");
	close_conn(r1);
	close_conn(r2);
	close_conn(r3);
	CHECK(close(sv[0]) == 0 && close(sv[1]) == 0);
}

/* A duplicate keeps the socket tracked after the original fd is closed. */
static void t_dup_keeps(void)
{
	enum { N = 8 };
	struct conn k[N];
	const char *how[N] = { "dup", "dup2", "dup3(O_CLOEXEC)", "fcntl(F_DUPFD)", "fcntl(F_DUPFD_CLOEXEC)",
			       "fcntl64(F_DUPFD)", "dup2 over another tracked fd", "close_range(CLOSE_RANGE_CLOEXEC)" };
	struct conn other = tracked();
	for (int i = 0; i < N; i++)
		k[i] = tracked();
	int d[N];
	d[0] = dup(k[0].c);
	d[1] = dup2(k[1].c, 150);
	d[2] = dup3(k[2].c, 151, O_CLOEXEC);
	d[3] = fcntl(k[3].c, F_DUPFD, 160);
	d[4] = fcntl(k[4].c, F_DUPFD_CLOEXEC, 170);
	d[5] = fcntl64(k[5].c, F_DUPFD, 180);
	d[6] = dup2(k[6].c, other.c); /* other's socket loses its only fd */
	for (int i = 0; i < 7; i++) {
		CHECKF(d[i] >= 0, "%s failed", how[i]);
		CHECK(close(k[i].c) == 0);
		k[i].c = d[i];
	}
	CHECK(wait_eof(other.s, 1000));
	CHECK(close(other.s) == 0);
	/* close_range with CLOSE_RANGE_CLOEXEC closes nothing */
	CHECK(close_range((unsigned)k[7].c, (unsigned)k[7].c, CLOSE_RANGE_CLOEXEC) == 0);
	CHECK(fcntl(k[7].c, F_GETFD) == FD_CLOEXEC);

	/* many duplicates, all but the last closed (more fds than any small per-socket array) */
	struct conn m = tracked();
	int md[8];
	for (int i = 0; i < 8; i++)
		CHECK((md[i] = dup(m.c)) >= 0);
	CHECK(close(m.c) == 0);
	for (int i = 0; i < 7; i++)
		CHECK(close(md[i]) == 0);
	m.c = md[7];

	for (int i = 0; i < N; i++) {
		char what[96];
		snprintf(what, sizeof what, "tracked socket kept through %s", how[i]);
		expect_shut(k[i], what);
	}
	expect_shut(m, "tracked socket kept through the last of 8 dups");
	for (int i = 0; i < N; i++)
		close_conn(k[i]);
	close_conn(m);
}

/* Closing the last fd of a tracked socket stops tracking: the number, reused, is not touched. */
static void t_close_last(void)
{
	struct conn t1 = tracked();
	int n1 = t1.c;
	int d1 = dup(t1.c);
	CHECK(close(t1.c) == 0);
	CHECK(close(d1) == 0);
	CHECK(close(t1.s) == 0);
	struct conn r1;
	r1.c = socket_on(n1);
	connect_fd(r1.c, "127.0.0.2", uport);
	r1.s = accept_one(ulfd);

	struct conn t2 = tracked();
	int n2 = t2.c;
	CHECK(close_range((unsigned)n2, (unsigned)n2, 0) == 0);
	CHECK(close(t2.s) == 0);
	struct conn r2;
	r2.c = socket_on(n2);
	raw_connect(r2.c, "127.0.0.1", port);
	r2.s = accept_one(lfd);

	/* closed through close_range over a range with several tracked fds (moved to 400, 401
	 * with dup2; then reused behind the shim's back with the raw dup3 system call) */
	CHECK(!fd_open(400) && !fd_open(401));
	struct conn t3 = tracked(), t4 = tracked();
	CHECK(dup2(t3.c, 400) == 400 && dup2(t4.c, 401) == 401);
	CHECK(close(t3.c) == 0 && close(t4.c) == 0);
	CHECK(close_range(400, 401, 0) == 0);
	CHECK(!fd_open(400) && !fd_open(401));
	CHECK(wait_eof(t3.s, 1000) && wait_eof(t4.s, 1000));
	CHECK(close(t3.s) == 0 && close(t4.s) == 0);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(syscall(SYS_dup3, sv[0], 400, 0) == 400);
	CHECK(syscall(SYS_close, sv[0]) == 0);
	sv[0] = 400;
	struct conn r4 = untracked();
	CHECK(syscall(SYS_dup3, r4.c, 401, 0) == 401);
	CHECK(syscall(SYS_close, r4.c) == 0);
	r4.c = 401;

	control_then_margin();
	expect_alive(r1, "fd of a closed tracked socket reused by an untracked connect");
	expect_alive(r2, "fd closed with close_range reused by a raw connect to the same peer");
	expect_alive_fd(sv[0], sv[1], "fd closed with close_range reused (raw dup3) by a socketpair");
	expect_alive(r4, "fd closed with close_range reused (raw dup3) by an untracked connection");
	close_conn(r1);
	close_conn(r2);
	close_conn(r4);
	CHECK(close(sv[0]) == 0 && close(sv[1]) == 0);
}

/* The same socket reconnected to another peer (connect AF_UNSPEC, then connect again). */
static void t_reconnect(void)
{
	struct sockaddr unspec;
	memset(&unspec, 0, sizeof unspec);
	unspec.sa_family = AF_UNSPEC;

	/* through the hooks */
	struct conn t1 = tracked();
	CHECK(connect(t1.c, &unspec, sizeof unspec) == 0);
	CHECK(close(t1.s) == 0);
	struct conn r1 = { .c = t1.c };
	connect_fd(r1.c, "127.0.0.2", uport);
	r1.s = accept_one(ulfd);

	/* behind the shim's back: same fd, same socket (same inode), another peer */
	struct conn t2 = tracked();
	CHECK(syscall(SYS_connect, t2.c, &unspec, sizeof unspec) == 0);
	CHECK(close(t2.s) == 0);
	struct conn r2 = { .c = t2.c };
	raw_connect(r2.c, "127.0.0.2", uport);
	r2.s = accept_one(ulfd);

	control_then_margin();
	expect_alive(r1, "tracked socket reconnected to an untracked literal (hooked connect)");
	expect_alive(r2, "tracked socket reconnected raw to another peer (same inode)");
	close_conn(r1);
	close_conn(r2);
}

/* The program closes every fd; the shim must keep working and never touch the program's new fds
 * (which reuse the numbers of whatever the shim had open). how: loop, range, closefrom. */
static void t_closeall(const char *how)
{
	struct conn t = tracked();
	exchange(t.c, t.s, "q", "a");
	CHECK(wait_thread_count(2, 1000) == 2);
	sleep_ms(50);
	if (strcmp(how, "loop") == 0) {
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
	} else if (strcmp(how, "range") == 0) {
		CHECK(close_range(3, ~0U, 0) == 0);
	} else {
		closefrom(3); /* glibc: the close_range system call, not through the close_range symbol */
	}
	/* the program's new fds: pipes and a socketpair holding data nobody else may read or add to */
	enum { NP = 6 };
	int p[NP][2];
	for (int i = 0; i < NP; i++) {
		CHECK(pipe2(p[i], O_CLOEXEC | O_NONBLOCK) == 0);
		char msg[16];
		snprintf(msg, sizeof msg, "keep-%d", i);
		CHECK(write(p[i][1], msg, strlen(msg)) == (ssize_t)strlen(msg));
	}
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(write(sv[0], "keep-sp", 7) == 7);
	lfd = make_listener("127.0.0.1", &port, 64);
	ulfd = make_listener("127.0.0.2", &uport, 64);
	struct conn u = untracked();

	struct conn c = tracked();
	exchange(c.c, c.s, "after", "close-all");
	expect_shut(c, "tracked connection made after the program closed every fd");
	sleep_ms(MARGIN_MS);
	int n = thread_count();
	CHECKF(n == 2, "%d threads, expected 2", n);

	for (int i = 0; i < NP; i++) {
		char want[16], got[64];
		snprintf(want, sizeof want, "keep-%d", i);
		ssize_t r = read(p[i][0], got, sizeof got);
		CHECKF(r == (ssize_t)strlen(want) && memcmp(got, want, (size_t)r) == 0,
		       "the program's pipe %d (fds %d,%d) was touched by someone else: read gives %zd bytes \"%.*s\", "
		       "expected exactly \"%s\"",
		       i, p[i][0], p[i][1], r, r > 0 ? (int)r : 0, got, want);
		CHECK(read(p[i][0], got, sizeof got) == -1 && errno == EAGAIN);
		CHECK(write(p[i][1], "y", 1) == 1);
	}
	char got[64];
	ssize_t r = recv(sv[1], got, sizeof got, MSG_DONTWAIT);
	CHECKF(r == 7 && memcmp(got, "keep-sp", 7) == 0, "socketpair holds %zd bytes \"%.*s\"", r, r > 0 ? (int)r : 0,
	       got);
	expect_alive_fd(sv[0], sv[1], "socketpair made after closing every fd");
	expect_alive(u, "untracked connection made after closing every fd");
}

/* Names learned through the gethostbyname family (no getaddrinfo at all) are tracked too. */
static void t_resolver(const char *which)
{
	struct in_addr a;
	memset(&a, 0, sizeof a);
	struct hostent he, *res = NULL, *h = NULL;
	static char buf[8192];
	int herr = 0;
	if (strcmp(which, "gethostbyname") == 0) {
		h = gethostbyname("localhost");
	} else if (strcmp(which, "gethostbyname2") == 0) {
		h = gethostbyname2("localhost", AF_INET);
	} else if (strcmp(which, "gethostbyname_r") == 0) {
		CHECK(gethostbyname_r("localhost", &he, buf, sizeof buf, &res, &herr) == 0);
		h = res;
	} else {
		CHECK(gethostbyname2_r("localhost", AF_INET, &he, buf, sizeof buf, &res, &herr) == 0);
		h = res;
	}
	CHECKF(h != NULL && h->h_addrtype == AF_INET && h->h_addr_list[0] != NULL, "%s(localhost) failed", which);
	memcpy(&a, h->h_addr_list[0], sizeof a);
	CHECK(a.s_addr == htonl(INADDR_LOOPBACK));
	CHECK(thread_count() == 1);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = a };
	struct conn k;
	k.c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(connect(k.c, (struct sockaddr *)&sin, sizeof sin) == 0);
	k.s = accept_one(lfd);
	int n = wait_thread_count(2, 1000);
	CHECKF(n == 2, "connect after %s: %d threads, expected 2", which, n);
	char what[96];
	snprintf(what, sizeof what, "connection to an address learned with %s", which);
	expect_shut(k, what);
	close_conn(k);
}

/* Not tracked: connects made before any name was learned, UDP, unix, literals. No thread. */
static void t_untracked(void)
{
	struct conn before = { .c = connect_literal("127.0.0.1", port) };
	before.s = accept_one(lfd);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	CHECK(getaddrinfo("localhost", NULL, &hints, &res) == 0);
	freeaddrinfo(res);
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr("127.0.0.1", port, &ss, &len);
	CHECK(connect(udp, (struct sockaddr *)&ss, len) == 0);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct conn lit = untracked();
	int n = thread_count_stays(1, (unsigned)max_age_ms * 2);
	CHECKF(n == 1, "%d threads without any tracked connect, expected 1", n);

	/* now one tracked connect: the positive control */
	control_then_margin();
	expect_alive(before, "connection made before the name was learned");
	expect_alive(lit, "connection to an untracked literal");
	CHECK(send(udp, "u", 1, 0) == 1);
	close_conn(before);
	close_conn(lit);
}

/* The send path: with a long DNSAWARE_IDLE the background never finds the socket idle, so the
 * program's next send decides. Env: DNSAWARE_MAX_AGE=300ms DNSAWARE_IDLE=10s. */
static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int s) { (void)s; sigpipes++; }

static void t_sendpath(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigpipe;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGPIPE, &sa, NULL) == 0);

	enum { NK = 7 };
	const char *how[NK] = { "send", "sendto", "sendmsg", "write", "writev", "sendfile", "sendfile64" };
	struct conn k[NK];
	for (int i = 0; i < NK; i++) {
		k[i] = tracked();
		exchange_slow(k[i].c, k[i].s, "request", "response"); /* complete: answered and all read */
	}
	/* a request in progress: sent, not answered yet */
	struct conn pending = tracked();
	send_all(pending.c, "part1", 5);
	char buf[64];
	recv_exact(pending.s, buf, 5);
	/* a response not read yet */
	struct conn unread = tracked();
	exchange(unread.c, unread.s, "r1", "a1");
	send_all(unread.c, "r2", 2);
	recv_exact(unread.s, buf, 2);
	sleep_ms(30);
	send_all(unread.s, "a2", 2);

	/* Past max age: draining, but not idle (DNSAWARE_IDLE=10s); and past the time the send path
	 * lets new exchanges through while the thread learns a socket's rhythm (src/drain.h,
	 * DRAIN_LEARN_MS, 500 ms). */
	sleep_ms(max_age_ms * 2 + 500);
	for (int i = 0; i < NK; i++)
		CHECKF(sock_state(k[i].c) == SOCK_ALIVE, "%s case: shut down by the background path with DNSAWARE_IDLE=10s",
		       how[i]);

	/* the continuation of a request in progress is never failed */
	errno = SENTINEL_ERRNO;
	CHECKF(send(pending.c, "part2", 5, 0) == 5 && errno == SENTINEL_ERRNO,
	       "the second write of a request (nothing received since the first) was failed");
	recv_exact(pending.s, buf, 5);
	CHECK(memcmp(buf, "part2", 5) == 0);
	sleep_ms(30);
	send_all(pending.s, "done", 4);
	recv_exact(pending.c, buf, 4);
	/* with a response unread, the exchange is not complete: the send goes through */
	errno = SENTINEL_ERRNO;
	CHECKF(send(unread.c, "r3", 2, 0) == 2 && errno == SENTINEL_ERRNO,
	       "a send with a response still unread was failed");
	recv_exact(unread.s, buf, 2);

	/* new exchanges on draining sockets: EPIPE, nothing sent, no SIGPIPE, fd still open */
	int file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	CHECK(file >= 0);
	struct iovec iov = { .iov_base = "next", .iov_len = 4 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	for (int i = 0; i < NK; i++) {
		int fd = k[i].c;
		off_t off = 0;
		off64_t off64 = 0;
		long long r;
		errno = SENTINEL_ERRNO;
		switch (i) {
		case 0: r = send(fd, "next", 4, 0); break;
		case 1: r = sendto(fd, "next", 4, 0, NULL, 0); break;
		case 2: r = sendmsg(fd, &mh, 0); break;
		case 3: r = write(fd, "next", 4); break;
		case 4: r = writev(fd, &iov, 1); break;
		case 5: r = sendfile(fd, file, &off, 4); break;
		default: r = sendfile64(fd, file, &off64, 4); break;
		}
		int e = errno;
		CHECKF(r == -1 && e == EPIPE, "%s starting a new exchange on a draining socket: got %lld errno %d (%s)",
		       how[i], r, e, strerror(e));
		CHECKF(sigpipes == 0, "%s: SIGPIPE was raised", how[i]);
		CHECKF(wait_eof(k[i].s, 1000), "%s: the peer did not see EOF", how[i]);
		CHECKF(recv(k[i].s, buf, sizeof buf, MSG_DONTWAIT) == 0, "%s: the peer received bytes", how[i]);
		CHECKF(fd_open(fd), "%s: the fd was closed", how[i]);
		CHECKF(sock_state(fd) == SOCK_EOF, "%s: the client end is not shut down", how[i]);
		if (i == 5)
			CHECK(off == 0);
		/* As a client does after EPIPE: the shutdown must still be logged after the close. */
		CHECK(close(k[i].c) == 0);
	}
	/* the next exchange on the other two fails the same way */
	errno = SENTINEL_ERRNO;
	long long r = send(pending.c, "new", 3, 0);
	CHECKF(r == -1 && errno == EPIPE, "new exchange after the continuation: got %lld errno %d", r, errno);
	CHECK(sigpipes == 0);
	CHECK(wait_eof(pending.s, 1000) && recv(pending.s, buf, sizeof buf, MSG_DONTWAIT) == 0);
	CHECK(close(file) == 0);
	for (int i = 0; i < NK; i++)
		CHECK(close(k[i].s) == 0);
	close_conn(pending);
	close_conn(unread);
	/* Every shutdown is one log line, also for sockets the program closed at once. */
	int logged = 0;
	for (int waited = 0; waited < 3000 && logged < NK + 1; waited += 50) {
		sleep_ms(50);
		logged = count_log_lines("path send)");
	}
	CHECKF(logged == NK + 1, "%d shutdowns by the send path logged, expected %d", logged, NK + 1);
}

/* DNSAWARE_DISABLE=1: nothing is tracked, no thread, nothing shut down. */
static void t_disabled(void)
{
	struct conn k = tracked();
	struct conn e = tracked();
	exchange(e.c, e.s, "q", "a");
	int n = thread_count_stays(1, max_age_ms * 5);
	CHECKF(n == 1, "%d threads with DNSAWARE_DISABLE=1, expected 1", n);
	expect_alive(k, "tracked-looking connection with DNSAWARE_DISABLE=1");
	expect_alive(e, "tracked-looking connection after an exchange with DNSAWARE_DISABLE=1");
	close_conn(k);
	close_conn(e);
}

int main(int argc, char **argv)
{
	CHECKF(argc == 2, "usage: %s SUBTEST", argv[0]);
	t_name = argv[1];
	watchdog(25);
	const char *ma = getenv("DNSAWARE_MAX_AGE");
	if (ma != NULL) {
		char *end;
		unsigned long v = strtoul(ma, &end, 10);
		if (strcmp(end, "ms") == 0)
			max_age_ms = (unsigned)v;
		else if (strcmp(end, "s") == 0 || *end == '\0')
			max_age_ms = (unsigned)v * 1000;
	}
	lfd = make_listener("127.0.0.1", &port, 64);
	ulfd = make_listener("127.0.0.2", &uport, 64);

	const char *t = argv[1];
	if (strcmp(t, "control") == 0)
		t_control();
	else if (strcmp(t, "dup2_over") == 0)
		t_dup2_over();
	else if (strcmp(t, "rawclose") == 0)
		t_rawclose();
	else if (strcmp(t, "dup_keeps") == 0)
		t_dup_keeps();
	else if (strcmp(t, "close_last") == 0)
		t_close_last();
	else if (strcmp(t, "reconnect") == 0)
		t_reconnect();
	else if (strncmp(t, "closeall_", 9) == 0)
		t_closeall(t + 9);
	else if (strncmp(t, "resolver_", 9) == 0)
		t_resolver(t + 9);
	else if (strcmp(t, "untracked") == 0)
		t_untracked();
	else if (strcmp(t, "sendpath") == 0)
		t_sendpath();
	else if (strcmp(t, "disabled") == 0)
		t_disabled();
	else
		CHECKF(0, "unknown subtest %s", t);
	printf("%s: all checks passed\n", t);
	return 0;
}
