/* A signal handler that writes while the main thread is inside send must not deadlock.
 *
 * The main thread sends a large buffer on tracked socket A whose peer does not read, so the send
 * blocks inside the shim's send hook. A 1 ms interval timer (setitimer, SIGALRM, SA_RESTART)
 * interrupts it again and again; the handler writes on another tracked socket B (write, send,
 * writev in turn) and on a pipe, all through the hooks. After enough ticks the handler starts
 * draining A's peer, so the big send completes. The test must finish: a watchdog timer
 * (timer_create, SIGUSR2, since SIGALRM is taken) fails it after 15 s.
 *
 * Also run with DNSAWARE_MAX_AGE=200ms DNSAWARE_IDLE=20ms: both sockets are then draining while
 * the writes go on, and none of them may fail (a request being written is never cut: nothing
 * came back since the program started writing). */
#include "common.h"

#include <sys/time.h>
#include <sys/uio.h>

#define TOTAL (24u << 20) /* bytes sent on A */
#define DRAIN_AFTER 300   /* ticks before the handler starts draining A's peer */

static int sock_b, peer_a, pipe_w, pipe_r;
static pid_t main_tid;
static volatile sig_atomic_t ticks, ticks_main_in_send, in_send, b_written, pipe_written, failures;
static volatile sig_atomic_t last_fail_errno, last_fail_what;
static volatile long long drained;

static void on_tick(int sig)
{
	(void)sig;
	int saved = errno;
	int t = ++ticks;
	if (in_send && gettid() == main_tid)
		ticks_main_in_send++;
	ssize_t r;
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	switch (t % 3) {
	case 0: r = write(sock_b, "x", 1); break;
	case 1: r = send(sock_b, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT); break;
	default: r = writev(sock_b, &iov, 1); break;
	}
	if (r == 1) {
		b_written++;
	} else {
		failures++;
		last_fail_errno = errno;
		last_fail_what = t % 3 + 1;
	}
	if (write(pipe_w, "y", 1) == 1) {
		pipe_written++;
	} else {
		failures++;
		last_fail_errno = errno;
		last_fail_what = 10;
	}
	char tmp[64];
	while (read(pipe_r, tmp, sizeof tmp) > 0) {
	}
	if (t >= DRAIN_AFTER) {
		static char sink[1 << 16];
		ssize_t n;
		while ((n = recv(peer_a, sink, sizeof sink, MSG_DONTWAIT)) > 0)
			drained += n;
	}
	errno = saved;
}

int main(int argc, char **argv)
{
	t_name = argc > 1 ? argv[1] : "sigsafe";
	setvbuf(stdout, NULL, _IONBF, 0);
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer runs a signal handler only at its next interceptor: the ticks that should
	 * interrupt the blocked send are held until the send returns, which it never does (the handler
	 * is what drains the peer). docs/testing.md#sanitizers */
	printf("SKIP %s: ThreadSanitizer defers signal handlers while send blocks; run under ASan\n", t_name);
	return 77;
#endif
	main_tid = gettid();

	/* Filled before any connection: with DNSAWARE_MAX_AGE=200ms a slow fill (a sanitizer build)
	 * would let A become draining, and be shut down as idle, before its first byte. */
	static char buf[TOTAL];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)(i * 7);

	/* watchdog on SIGUSR2 */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = watchdog_fired;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR2;
	timer_t wd;
	CHECK(timer_create(CLOCK_MONOTONIC, &sev, &wd) == 0);
	struct itimerspec wits = { .it_value = { .tv_sec = 15 } };
	CHECK(timer_settime(wd, 0, &wits, NULL) == 0);

	uint16_t port;
	int lfd = make_listener("127.0.0.1", &port, 16);
	int a = connect_named("localhost", port);
	peer_a = accept_one(lfd);
	sock_b = connect_named("localhost", port);
	int peer_b = accept_one(lfd);
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pipe_w = p[1];
	pipe_r = p[0];
	CHECK(fcntl(pipe_r, F_SETFL, O_NONBLOCK) == 0);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_tick;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	struct itimerval it = { .it_interval = { .tv_usec = 1000 }, .it_value = { .tv_usec = 1000 } };
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);

	in_send = 1;
	size_t sent = 0;
	int calls = 0;
	while (sent < sizeof buf) {
		calls++;
		ssize_t n = send(a, buf + sent, sizeof buf - sent, 0);
		if (n < 0) {
			CHECKF(errno == EINTR, "send on A failed after %zu bytes", sent);
			continue;
		}
		CHECK(n > 0);
		sent += (size_t)n;
	}
	in_send = 0;

	struct itimerval off;
	memset(&off, 0, sizeof off);
	CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	CHECK(sigprocmask(SIG_BLOCK, &block, NULL) == 0);

	/* the rest of A's data */
	static char sink[1 << 16];
	while (drained < (long long)TOTAL) {
		ssize_t n = recv(peer_a, sink, sizeof sink, 0);
		CHECKF(n > 0, "A's peer got %lld of %u bytes", drained, TOTAL);
		drained += n;
	}
	CHECK(drained == (long long)TOTAL);
	CHECK(recv(peer_a, sink, sizeof sink, MSG_DONTWAIT) == -1 && errno == EAGAIN);

	printf("%d ticks, %d of them on the main thread inside send (%d send calls); %d writes on B\n", (int)ticks,
	       (int)ticks_main_in_send, calls, (int)b_written);
	CHECKF(failures == 0, "%d writes in the handler failed (last: what %d, errno %d %s)", (int)failures,
	       (int)last_fail_what, (int)last_fail_errno, strerror(last_fail_errno));
	CHECKF(ticks_main_in_send >= 100, "only %d ticks interrupted the main thread inside send",
	       (int)ticks_main_in_send);
	CHECK(pipe_written == ticks);
	/* B's peer got exactly one byte per successful write */
	long long got = 0;
	ssize_t n;
	while ((n = recv(peer_b, sink, sizeof sink, MSG_DONTWAIT)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			CHECK(sink[i] == 'x');
		got += n;
	}
	CHECKF(got == b_written, "B's peer got %lld bytes, %d were written", got, (int)b_written);
	/* and both connections still work */
	exchange(a, peer_a, "end", "ok");
	printf("%s: all checks passed\n", t_name);
	return 0;
}
