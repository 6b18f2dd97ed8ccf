/* The fd bookkeeping seen from outside: fds duplicated, replaced, closed (raw too) and reused,
 * sockets reconnected, every fd closed. A number that stops meaning the tracked socket must never
 * be shut down, and one that still does must. */
#include "tracking.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

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

/* ------------------------------------------------------------------ subtests */

/* dup2/dup3 of another file over a tracked fd: the fd number now means something else. */
void t_dup2_over(void)
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
void t_rawclose(void)
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
void t_dup_keeps(void)
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
void t_close_last(void)
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
void t_reconnect(void)
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
void t_closeall(const char *how)
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
