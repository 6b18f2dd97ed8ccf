/* A signal handler that writes to and closes tracked fds while the thread it interrupted is inside
 * the shim's hooks (connect, send, recv, dup, close), again and again: no deadlock, nothing lost,
 * nothing extra.
 *
 * The main thread runs a tight loop for argv[2] seconds: connect a tracked socket (to "localhost"),
 * hand every other one over to the handler, exchange on the rest (send, recv), dup, close both. An
 * interval timer aimed at the main thread (timer_create, SIGEV_THREAD_ID, every 100 us) interrupts it
 * wherever it is; the handler writes a byte on a long-lived tracked socket W, and every 4th tick
 * takes the socket handed over, writes "h" on it and closes it. A server thread counts what arrives:
 * W's bytes, and for each handed-over socket exactly "h" then its end. A watchdog thread fails the
 * test if it does not finish (a deadlock).
 *
 * argv[1]: "plain", or "draining" (run with a tiny DNSAWARE_MAX_AGE: every socket drains while this
 * goes on; W never fails, since it never gets an answer; a handed-over socket, never sent on, may be
 * shut down first and its write fail with EPIPE; the loop's requests may fail with EPIPE, never be
 * cut). Needs no root. */
#include <sys/time.h>

#include "torture.h"

enum { CALL_NONE, CALL_CONNECT, CALL_SEND, CALL_RECV, CALL_DUP, CALL_CLOSE, CALLS };
static const char *const call_names[CALLS] = { "elsewhere", "connect", "send", "recv", "dup", "close" };

static bool draining;
static pid_t main_tid;
static int sock_w;
static volatile sig_atomic_t in_call;
static _Atomic int spare = -1;
static volatile long ticks, ticks_in[CALLS], w_written, spares_closed, spares_written, spares_refused;
static volatile long handler_failures, last_failure_errno, last_failure_what;

static void on_tick(int sig)
{
	(void)sig;
	int saved = errno;
	if (gettid() != main_tid)
		goto done; /* aimed at the main thread; anything else is not this test's */
	ticks++;
	ticks_in[in_call]++;
	if (write(sock_w, "w", 1) == 1) {
		w_written++;
	} else {
		handler_failures++;
		last_failure_errno = errno;
		last_failure_what = 1;
	}
	if (ticks % 4 == 0) {
		int fd = atomic_exchange(&spare, -1);
		if (fd >= 0) {
			ssize_t n = write(fd, "h", 1);
			if (n == 1) {
				spares_written++;
			} else if (draining && errno == EPIPE) {
				spares_refused++;
			} else {
				handler_failures++;
				last_failure_errno = errno;
				last_failure_what = 2;
			}
			if (close(fd) == 0) {
				spares_closed++;
			} else {
				handler_failures++;
				last_failure_errno = errno;
				last_failure_what = 3;
			}
		}
	}
done:
	errno = saved;
}

/* ---- the server: echoes "ping"s, counts W's bytes and what each handed-over socket got ---- */

enum { CONNS = 512 };
static int lfd;
static _Atomic bool server_stop;
static _Atomic long w_received, spares_h_eof, spares_bare_eof, spares_bad, pings_echoed;

struct conn {
	int fd;
	char kind; /* 0 unknown yet, 'p' the loop's, 'w' W, 'h' a handed-over one */
	long got;
};

static void *server_main(void *unused)
{
	(void)unused;
	static struct conn c[CONNS];
	int n = 0;
	while (!atomic_load(&server_stop) || n > 0) {
		struct pollfd p[CONNS + 1];
		p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < n; i++)
			p[i + 1] = (struct pollfd){ .fd = c[i].fd, .events = POLLIN };
		if (poll(p, (nfds_t)n + 1, 100) <= 0) {
			if (atomic_load(&server_stop))
				break;
			continue;
		}
		if ((p[0].revents & POLLIN) && n < CONNS) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				c[n++] = (struct conn){ .fd = fd };
		}
		for (int i = 0; i < n; i++) {
			if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[4096];
			ssize_t r = recv(c[i].fd, buf, sizeof buf, MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r > 0) {
				if (c[i].kind == 0)
					c[i].kind = buf[0] == 'p' ? 'p' : buf[0] == 'w' ? 'w' : buf[0] == 'h' ? 'h' : '?';
				if (c[i].kind == 'w') {
					for (ssize_t k = 0; k < r; k++)
						if (buf[k] != 'w')
							atomic_fetch_add(&spares_bad, 1);
					atomic_fetch_add(&w_received, r);
				} else if (c[i].kind == 'p') {
					if (send(c[i].fd, buf, (size_t)r, MSG_NOSIGNAL) == r)
						atomic_fetch_add(&pings_echoed, r / 4);
				}
				c[i].got += r;
				continue;
			}
			/* The end of a connection. */
			if (c[i].kind == 'h' && c[i].got == 1)
				atomic_fetch_add(&spares_h_eof, 1);
			else if (c[i].kind == 0)
				atomic_fetch_add(&spares_bare_eof, 1);
			else if (c[i].kind != 'p')
				atomic_fetch_add(&spares_bad, 1);
			close(c[i].fd);
			c[i--] = c[--n];
			p[i + 2] = p[n + 1]; /* keep revents in step with the moved connection */
		}
	}
	return NULL;
}

/* One "ping" and its echo: 1 when done, 0 when the send failed with EPIPE (the shim ended the
 * connection between exchanges). Anything else fails the test, a request cut above all. */
static int ping(int fd)
{
	ssize_t n;
	do {
		in_call = CALL_SEND;
		n = send(fd, "ping", 4, MSG_NOSIGNAL);
		in_call = CALL_NONE;
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EPIPE)
		return 0;
	CHECKF(n == 4, "send returned %zd", n);
	char buf[4];
	size_t got = 0;
	while (got < 4) {
		in_call = CALL_RECV;
		ssize_t r = recv(fd, buf + got, 4 - got, 0);
		in_call = CALL_NONE;
		if (r < 0 && errno == EINTR)
			continue;
		CHECKF(r > 0, "a request was cut: recv returned %zd", r);
		got += (size_t)r;
	}
	CHECK(memcmp(buf, "ping", 4) == 0);
	return 1;
}

int main(int argc, char **argv)
{
	t_name = argc > 1 ? argv[1] : "plain";
	draining = strcmp(t_name, "draining") == 0;
	unsigned seconds = argc > 2 ? (unsigned)atoi(argv[2]) : 3;
	setvbuf(stdout, NULL, _IONBF, 0);
	main_tid = gettid();
	watchdog_thread(seconds + 20, "the signal handler test (a deadlock inside a hook?)");

	uint16_t port;
	lfd = make_listener("127.0.0.1", &port, 512);
	pthread_t server;
	CHECK(pthread_create(&server, NULL, server_main, NULL) == 0);
	sock_w = connect_named("localhost", port);
	send_all(sock_w, "w", 1);
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	char svc[16];
	snprintf(svc, sizeof svc, "%u", port);
	CHECK(getaddrinfo("localhost", svc, &hints, &res) == 0);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_tick;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGALRM;
	sev._sigev_un._tid = main_tid;
	timer_t timer;
	CHECK(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0);
	struct itimerspec its = { .it_interval = { .tv_nsec = 100000 }, .it_value = { .tv_nsec = 100000 } };
	CHECK(timer_settime(timer, 0, &its, NULL) == 0);

	/* Long-lived loop connections too: with a tiny max age they drain, and their next request
	 * meets the send path's slow path (or fails with EPIPE) while the handler runs. */
	enum { KEPT = 8 };
	int kept[KEPT];
	for (int i = 0; i < KEPT; i++) {
		kept[i] = connect_named("localhost", port);
		CHECKF(ping(kept[i]) == 1, "the first exchange on a kept connection");
	}
	long iterations = 0, exchanges = 0, refused = 0, kept_renewed = 0;
	uint64_t end = now_ms() + seconds * 1000ull;
	while (now_ms() < end) {
		iterations++;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(fd >= 0);
		in_call = CALL_CONNECT;
		int rc = connect(fd, res->ai_addr, res->ai_addrlen);
		in_call = CALL_NONE;
		if (rc != 0 && errno == EINTR) {
			/* Interrupted: the connection goes on in the kernel (the shim tracks it all the same). */
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			CHECK(poll(&p, 1, 2000) == 1);
			int err = 0;
			socklen_t len = sizeof err;
			CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0);
			rc = err == 0 ? 0 : -1;
		}
		CHECKF(rc == 0, "connect %ld", iterations);
		int expected = -1;
		if (iterations % 2 == 0 && atomic_compare_exchange_strong(&spare, &expected, fd))
			continue; /* the handler's to write and close */
		for (int i = 0; i < 3; i++) {
			int r = ping(fd);
			if (r == 0) {
				CHECKF(draining, "a request failed with EPIPE (iteration %ld)", iterations);
				refused++;
				break;
			}
			exchanges++;
		}
		int k = (int)(iterations % KEPT);
		int r = ping(kept[k]);
		if (r == 1) {
			exchanges++;
		} else {
			CHECKF(r == 0 && draining, "a request on kept connection %d failed", k);
			refused++;
			kept_renewed++;
			in_call = CALL_CLOSE;
			CHECK(close(kept[k]) == 0);
			in_call = CALL_NONE;
			kept[k] = connect_named("localhost", port);
		}
		in_call = CALL_DUP;
		int d = dup(fd);
		in_call = CALL_NONE;
		CHECK(d >= 0);
		in_call = CALL_CLOSE;
		int c1 = close(fd), c2 = close(d);
		in_call = CALL_NONE;
		CHECK(c1 == 0 && c2 == 0);
	}
	its = (struct itimerspec){ 0 };
	CHECK(timer_settime(timer, 0, &its, NULL) == 0);
	CHECK(timer_delete(timer) == 0);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	CHECK(sigprocmask(SIG_BLOCK, &block, NULL) == 0);
	for (int i = 0; i < KEPT; i++)
		CHECK(close(kept[i]) == 0);
	int left = atomic_exchange(&spare, -1);
	if (left >= 0)
		CHECK(close(left) == 0);
	freeaddrinfo(res);

	/* Let the server see every end, then stop it. */
	uint64_t wait_end = now_ms() + 3000;
	while (atomic_load(&w_received) < w_written + 1 && now_ms() < wait_end)
		sleep_ms(10);
	sleep_ms(300);
	atomic_store(&server_stop, true);
	CHECK(pthread_join(server, NULL) == 0);

	printf("%ld iterations, %ld exchanges (%ld refused with EPIPE, %ld kept connections renewed), %ld ticks: ",
	       iterations, exchanges, refused, kept_renewed, ticks);
	for (int i = 0; i < CALLS; i++)
		printf("%s%ld inside %s", i ? ", " : "", ticks_in[i], call_names[i]);
	printf("\nhandler: %ld bytes on W, %ld handed-over sockets written and closed (%ld refused with EPIPE); "
	       "server: %ld bytes on W, %ld ended after \"h\", %ld ended bare\n",
	       w_written, spares_closed, spares_refused, atomic_load(&w_received) - 1, atomic_load(&spares_h_eof),
	       atomic_load(&spares_bare_eof));
	CHECKF(handler_failures == 0, "%ld calls in the handler failed (last: what %ld, errno %ld %s)",
	       handler_failures, last_failure_what, last_failure_errno, strerror((int)last_failure_errno));
	CHECKF(atomic_load(&w_received) - 1 == w_written, "W's peer got %ld bytes, the handler wrote %ld",
	       atomic_load(&w_received) - 1, w_written);
	CHECKF(atomic_load(&spares_bad) == 0, "%ld connections got something other than expected",
	       atomic_load(&spares_bad));
	CHECKF(atomic_load(&spares_h_eof) == spares_written, "%ld handed-over sockets ended after \"h\", the handler "
	       "wrote %ld", atomic_load(&spares_h_eof), spares_written);
	CHECKF(spares_written + spares_refused == spares_closed, "written %ld + refused %ld != closed %ld",
	       spares_written, spares_refused, spares_closed);
	if (draining)
		CHECKF(kept_renewed >= 10, "only %ld kept connections drained", kept_renewed);
	CHECKF(ticks >= 1000L * seconds, "only %ld ticks in %u s", ticks, seconds);
	CHECKF(ticks_in[CALL_CONNECT] >= 50 && ticks_in[CALL_SEND] >= 50 && ticks_in[CALL_CLOSE] >= 20 &&
		       spares_closed >= 100,
	       "too few interruptions inside the hooks");
	CHECKF(sock_state(sock_w) == SOCK_ALIVE, "W was shut down");
	printf("PASS signals-%s\n", t_name);
	return 0;
}
