/* Which connections are tracked and how they are shut down: the positive control, names from the
 * gethostbyname family, connections never tracked, the send path, and DNSAWARE_DISABLE=1. */
#include "tracking.h"

#include <sys/sendfile.h>
#include <sys/uio.h>

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
void t_control(void)
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

/* Names learned through the gethostbyname family (no getaddrinfo at all) are tracked too. */
void t_resolver(const char *which)
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
void t_untracked(void)
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

void t_sendpath(void)
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
void t_disabled(void)
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
