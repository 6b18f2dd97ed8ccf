/* connect: refused, in progress, already connected, bad addresses, other families; the shim's
 * tracking of names must not show in any result. */
#include "passthrough.h"

#include <sys/un.h>

void test_connect(void)
{
	struct sockaddr_storage ss, ss6;
	socklen_t len, len6;
	make_addr("127.0.0.1", port, &ss, &len);
	make_addr("::1", port, &ss6, &len6);
	int pfd[2];
	CHECK(pipe2(pfd, O_CLOEXEC) == 0);

	EXPECT_ERR(connect(-1, (struct sockaddr *)&ss, len), EBADF);
	EXPECT_ERR(connect(closed_fd(), (struct sockaddr *)&ss, len), EBADF);
	EXPECT_ERR(connect(pfd[0], (struct sockaddr *)&ss, len), ENOTSOCK);

	/* success: errno untouched, flags untouched, peer reachable */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	int fl = fcntl(fd, F_GETFL);
	EXPECT_VAL(connect(fd, (struct sockaddr *)&ss, len), 0);
	CHECK(fcntl(fd, F_GETFL) == fl);
	CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
	int s = accept_one(lfd);
	exchange(fd, s, "ping", "pong");
	EXPECT_ERR(connect(fd, (struct sockaddr *)&ss, len), EISCONN); /* second connect */
	/* AF_UNSPEC dissolves the association (returns 0) */
	struct sockaddr unspec;
	memset(&unspec, 0, sizeof unspec);
	unspec.sa_family = AF_UNSPEC;
	EXPECT_VAL(connect(fd, &unspec, sizeof unspec), 0);
	CHECK(close(fd) == 0);
	CHECK(close(s) == 0);

	/* bad addresses */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT_ERR(connect(fd, (struct sockaddr *)&ss6, len6), EAFNOSUPPORT); /* v6 address, v4 socket */
	EXPECT_ERR(connect(fd, (struct sockaddr *)&ss, 4), EINVAL);           /* too short */
	EXPECT_ERR(connect(fd, (struct sockaddr *)&ss, 4096), EINVAL);        /* too long */
	EXPECT_ERR(connect(fd, vnull, len), EFAULT);
	EXPECT_ERR(connect(fd, (struct sockaddr *)&ss, 0), EINVAL);
	CHECK(close(fd) == 0);

	/* connection refused: a bound port nobody listens on, reached through the name */
	{
		int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_storage hs;
		socklen_t hl;
		make_addr("127.0.0.1", 0, &hs, &hl);
		CHECK(bind(holder, (struct sockaddr *)&hs, hl) == 0);
		hl = sizeof hs;
		CHECK(getsockname(holder, (struct sockaddr *)&hs, &hl) == 0);
		struct addrinfo hints, *res = NULL;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_INET;
		hints.ai_socktype = SOCK_STREAM;
		char svc[16];
		snprintf(svc, sizeof svc, "%u", ntohs(((struct sockaddr_in *)&hs)->sin_port));
		CHECK(getaddrinfo("localhost", svc, &hints, &res) == 0);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		EXPECT_ERR(connect(fd, res->ai_addr, res->ai_addrlen), ECONNREFUSED);
		CHECK(close(fd) == 0);
		/* non-blocking: in progress, then refused (or refused at once on a fast loopback) */
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		errno = SENTINEL_ERRNO;
		int r = connect(fd, res->ai_addr, res->ai_addrlen);
		CHECKF(r == -1 && (errno == EINPROGRESS || errno == ECONNREFUSED), "got %d", r);
		if (errno == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			CHECK(poll(&p, 1, 2000) == 1);
			int err = 0;
			socklen_t el = sizeof err;
			CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == ECONNREFUSED);
		}
		CHECK(close(fd) == 0);
		freeaddrinfo(res);
		CHECK(close(holder) == 0);
	}

	/* non-blocking connect to a listener: EINPROGRESS, then EISCONN once established */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	fl = fcntl(fd, F_GETFL);
	EXPECT_ERR(connect(fd, (struct sockaddr *)&ss, len), EINPROGRESS);
	CHECK(fcntl(fd, F_GETFL) == fl);
	{
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		CHECK(poll(&p, 1, 2000) == 1);
	}
	/* Linux: the first connect after completion reports success, the next one EISCONN */
	EXPECT_VAL(connect(fd, (struct sockaddr *)&ss, len), 0);
	EXPECT_ERR(connect(fd, (struct sockaddr *)&ss, len), EISCONN);
	s = accept_one(lfd);
	CHECK(close(fd) == 0);
	CHECK(close(s) == 0);

	/* IPv6 literal (not a name): plain connect */
	{
		uint16_t p6;
		int l6 = make_listener("::1", &p6, 8);
		fd = connect_literal("::1", p6);
		s = accept_one(l6);
		exchange(fd, s, "six", "ok");
		CHECK(close(fd) == 0 && close(s) == 0 && close(l6) == 0);
	}

	/* UDP connect to the learned address: success, not TCP */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	EXPECT_VAL(connect(fd, (struct sockaddr *)&ss, len), 0);
	CHECK(close(fd) == 0);

	/* connect on a listening socket */
	{
		uint16_t pl;
		int l2 = make_listener("127.0.0.1", &pl, 1);
		EXPECT_ERR(connect(l2, (struct sockaddr *)&ss, len), EISCONN);
		CHECK(close(l2) == 0);
	}

	/* AF_UNIX */
	{
		struct sockaddr_un un;
		memset(&un, 0, sizeof un);
		un.sun_family = AF_UNIX;
		snprintf(un.sun_path, sizeof un.sun_path, "%.100s", tmp_path("no-such-socket"));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		EXPECT_ERR(connect(fd, (struct sockaddr *)&un, sizeof un), ENOENT);
		CHECK(close(fd) == 0);
	}
	CHECK(close(pfd[0]) == 0 && close(pfd[1]) == 0);
}
