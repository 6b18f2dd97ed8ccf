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
#include "tracking.h"

/* One name for the CHECKs of every file (common.h, PRELOAD_SHARED_T_NAME). */
const char *t_name = "?";
uint16_t port;  /* 127.0.0.1: tracked through "localhost" */
uint16_t uport; /* 127.0.0.2: untracked */
int lfd, ulfd;
unsigned max_age_ms = 300;

struct conn tracked(void)
{
	struct conn k;
	k.c = connect_named("localhost", port);
	k.s = accept_one(lfd);
	return k;
}

struct conn untracked(void)
{
	struct conn k;
	k.c = connect_literal("127.0.0.2", uport);
	k.s = accept_one(ulfd);
	return k;
}

bool fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

void expect_alive_fd(int c, int s, const char *what)
{
	enum sock_state st = sock_state(c);
	CHECKF(st == SOCK_ALIVE, "%s: client end is %s, expected alive", what, sock_state_name(st));
	st = sock_state(s);
	CHECKF(st == SOCK_ALIVE, "%s: server end is %s, expected alive", what, sock_state_name(st));
	exchange(c, s, "are-you-there", "yes");
}

/* c (some fd of the tracked socket whose server end is s) is shut down: the client reads 0, the
 * peer sees EOF, and the fd is still open (the shim never closes). Returns the time it took. */
uint64_t expect_shut_fd(int c, int s, const char *what)
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

void close_conn(struct conn k)
{
	CHECK(close(k.c) == 0);
	CHECK(close(k.s) == 0);
}

/* A tracked control connection is shut down, then the margin passes. */
void control_then_margin(void)
{
	struct conn ctl = tracked();
	exchange(ctl.c, ctl.s, "ctl", "ok");
	expect_shut(ctl, "control connection");
	close_conn(ctl);
	sleep_ms(MARGIN_MS);
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
