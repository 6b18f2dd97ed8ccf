/* A signal interrupting a blocked hooked call (the send family, write, connect): -1 EINTR, exactly
 * as without the shim. */
#include "passthrough.h"

#include <sys/sendfile.h>

static volatile sig_atomic_t usr1_count;
static timer_t intr_timer;

static void on_usr1(int s) { (void)s; usr1_count++; }

/* ThreadSanitizer runs a signal's handler at its next interceptor, not when the signal comes: after
 * a call it does not intercept (sendfile) returns EINTR, the handler has not run yet. usleep is
 * one of its interceptors. Nothing to do in other builds. */
static void signals_settle(void)
{
#if defined(__SANITIZE_THREAD__)
	usleep(1);
#endif
}

/* SIGUSR1 installed WITHOUT SA_RESTART, delivered to this thread by a one-shot timer. */
static void setup_interrupts(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR1;
	sev._sigev_un._tid = gettid();
	CHECK(timer_create(CLOCK_MONOTONIC, &sev, &intr_timer) == 0);
}

static void interrupt_in(unsigned ms)
{
	struct itimerspec its;
	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	CHECK(timer_settime(intr_timer, 0, &its, NULL) == 0);
}

static void no_interrupt(void)
{
	struct itimerspec its;
	memset(&its, 0, sizeof its);
	CHECK(timer_settime(intr_timer, 0, &its, NULL) == 0);
}

/* call (on the full socket fd, sending one byte) is interrupted by the signal: -1 EINTR. */
#define EXPECT_EINTR(fd, call) \
	do { \
		bool got_ = false; \
		for (int a_ = 0; a_ < 20 && !got_; a_++) { \
			refill(fd); \
			int n_ = usr1_count; \
			interrupt_in(50); \
			(void)DO_CALL(call); \
			if (xr_ == -1 && xe_ == EINTR) { \
				signals_settle(); \
				CHECK(usr1_count == n_ + 1); \
				got_ = true; \
			} else { \
				no_interrupt(); \
				CHECKF(xr_ == 1 && xe_ == SENTINEL_ERRNO, "%s: got %lld errno %d (%s)", #call, xr_, xe_, \
				       strerror(xe_)); \
			} \
		} \
		CHECKF(got_, "%s never returned EINTR", #call); \
	} while (0)

void test_eintr(void)
{
	setup_interrupts();
	struct iovec iov[1] = { { .iov_base = "x", .iov_len = 1 } };

	/* pipe */
	{
		int q[2];
		CHECK(pipe2(q, O_CLOEXEC | O_NONBLOCK) == 0);
		static char big[65536];
		while (write(q[1], big, sizeof big) > 0) {
		}
		while (write(q[1], big, 1) > 0) {
		}
		CHECK(fcntl(q[1], F_SETFL, 0) == 0);
		interrupt_in(50);
		EXPECT_ERR(write(q[1], "x", 1), EINTR);
		interrupt_in(50);
		EXPECT_ERR(writev(q[1], iov, 1), EINTR);
		CHECK(close(q[0]) == 0 && close(q[1]) == 0);
	}

	/* tracked socket whose peer does not read. Even when a non-blocking send says EAGAIN, the
	 * kernel sometimes lets one more byte into the queue (memory reclaimed meanwhile): then the
	 * call returns 1, which is also what the kernel said; refill and try again. */
	struct conn k = full_conn();
	int file = make_file("eintr-src", "abc");
	off_t off = 0;
	EXPECT_EINTR(k.c, send(k.c, "x", 1, 0));
	EXPECT_EINTR(k.c, sendto(k.c, "x", 1, 0, NULL, 0));
	EXPECT_EINTR(k.c, sendmsg(k.c, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = 1 }, 0));
	EXPECT_EINTR(k.c, write(k.c, "x", 1));
	EXPECT_EINTR(k.c, writev(k.c, iov, 1));
	EXPECT_EINTR(k.c, (off = 0, sendfile(k.c, file, &off, 1)));
	CHECK(off == 0);
	EXPECT_EINTR(k.c, (off = 0, sendfile64(k.c, file, &off, 1)));
	CHECK(close(file) == 0);
	close_conn(k);

	/* blocking connect to a tracked address whose listener's accept queue is full: SYNs are
	 * dropped, the connect waits, and the signal interrupts it */
	{
		uint16_t pq;
		int lq = make_listener("127.0.0.1", &pq, 0);
		struct addrinfo hints, *res = NULL;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_INET;
		hints.ai_socktype = SOCK_STREAM;
		char svc[16];
		snprintf(svc, sizeof svc, "%u", pq);
		CHECK(getaddrinfo("localhost", svc, &hints, &res) == 0);
		int fill[4], nfill = 0, fd = -1;
		for (int i = 0; i < 4; i++) {
			fill[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			errno = 0;
			int r = connect(fill[nfill], res->ai_addr, res->ai_addrlen);
			CHECK(r == 0 || errno == EINPROGRESS);
			struct pollfd p = { .fd = fill[nfill], .events = POLLOUT };
			int done = poll(&p, 1, 200);
			nfill++;
			if (done == 0)
				break; /* this one is stuck: the queue is full */
		}
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		interrupt_in(100);
		uint64_t t0 = now_ms();
		EXPECT_ERR(connect(fd, res->ai_addr, res->ai_addrlen), EINTR);
		CHECKF(now_ms() - t0 < 900, "connect returned only after %llu ms", (unsigned long long)(now_ms() - t0));
		/* the attempt goes on in the kernel: a second (non-blocking) connect says so */
		CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
		EXPECT_ERR(connect(fd, res->ai_addr, res->ai_addrlen), EALREADY);
		CHECK(close(fd) == 0);
		for (int i = 0; i < nfill; i++)
			CHECK(close(fill[i]) == 0);
		CHECK(close(lq) == 0);
		freeaddrinfo(res);
	}
	no_interrupt();
}
