/* dup, dup2, dup3, fcntl, close and close_range: the calls the shim follows to keep its fd
 * bookkeeping, answered as the kernel answers them. */
#include "passthrough.h"

#include <sys/resource.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

void test_dup_family(void)
{
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	int big = rl.rlim_cur < 1000000 ? (int)rl.rlim_cur + 10 : 1 << 30;
	int cfd = closed_fd();
	struct conn k = new_conn();

	EXPECT_ERR(dup(-1), EBADF);
	EXPECT_ERR(dup(cfd), EBADF);
	int d = EXPECT_OK(dup(k.c));
	CHECK(d != k.c && !(fcntl(d, F_GETFD) & FD_CLOEXEC));
	EXPECT_VAL(send(d, "via-dup", 7, 0), 7);
	expect_bytes(k.s, "via-dup");
	EXPECT_VAL(close(d), 0);

	EXPECT_ERR(dup2(-1, 100), EBADF);
	EXPECT_ERR(dup2(cfd, 100), EBADF);
	EXPECT_ERR(dup2(k.c, -1), EBADF);
	EXPECT_ERR(dup2(k.c, big), EBADF);
	EXPECT_VAL(dup2(k.c, k.c), k.c); /* same fd: no-op, returns it */
	CHECK(fd_open(k.c));
	EXPECT_ERR(dup2(cfd, cfd), EBADF);
	EXPECT_VAL(dup2(k.c, 100), 100);
	EXPECT_VAL(write(100, "d2", 2), 2);
	expect_bytes(k.s, "d2");
	int pfd[2];
	CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	EXPECT_VAL(dup2(pfd[1], 100), 100); /* over an fd of the tracked socket */
	EXPECT_VAL(write(100, "p", 1), 1);
	char c;
	CHECK(read(pfd[0], &c, 1) == 1 && c == 'p');
	EXPECT_ERR(send(100, "x", 1, 0), ENOTSOCK);
	EXPECT_VAL(send(k.c, "still", 5, 0), 5); /* the original fd is unaffected */
	expect_bytes(k.s, "still");

	EXPECT_ERR(dup3(k.c, k.c, 0), EINVAL);
	EXPECT_ERR(dup3(k.c, 101, 0x1234), EINVAL);
	EXPECT_ERR(dup3(-1, 101, 0), EBADF);
	EXPECT_ERR(dup3(k.c, -1, 0), EBADF);
	EXPECT_ERR(dup3(k.c, big, 0), EBADF);
	CHECK(!fd_open(101));
	EXPECT_VAL(dup3(k.c, 101, O_CLOEXEC), 101);
	CHECK(fcntl(101, F_GETFD) == FD_CLOEXEC);
	EXPECT_VAL(dup3(k.c, 101, 0), 101); /* over itself-duplicate, clears cloexec */
	CHECK(fcntl(101, F_GETFD) == 0);
	EXPECT_VAL(send(101, "d3", 2, 0), 2);
	expect_bytes(k.s, "d3");

	/* fcntl F_DUPFD / F_DUPFD_CLOEXEC */
	EXPECT_ERR(fcntl(-1, F_DUPFD, 0), EBADF);
	EXPECT_ERR(fcntl(cfd, F_DUPFD, 0), EBADF);
	EXPECT_ERR(fcntl(k.c, F_DUPFD, -1), EINVAL);
	EXPECT_ERR(fcntl(k.c, F_DUPFD, big), EINVAL);
	EXPECT_VAL(fcntl(k.c, F_DUPFD, 200), 200);
	CHECK(fcntl(200, F_GETFD) == 0);
	EXPECT_VAL(fcntl(k.c, F_DUPFD, 200), 201); /* lowest free at or above */
	EXPECT_VAL(fcntl(k.c, F_DUPFD_CLOEXEC, 200), 202);
	CHECK(fcntl(202, F_GETFD) == FD_CLOEXEC);
	EXPECT_VAL(fcntl64(k.c, F_DUPFD, 300), 300);
	EXPECT_VAL(fcntl64(k.c, F_DUPFD_CLOEXEC, 300), 301);
	EXPECT_ERR(fcntl64(-1, F_DUPFD, 0), EBADF);
	EXPECT_VAL(send(202, "fd", 2, 0), 2);
	expect_bytes(k.s, "fd");

	/* close and close_range */
	EXPECT_ERR(close(-1), EBADF);
	EXPECT_ERR(close(cfd), EBADF);
	EXPECT_VAL(close(200), 0);
	EXPECT_ERR(close(200), EBADF);
	EXPECT_ERR(close_range(10, 5, 0), EINVAL);
	EXPECT_ERR(close_range(201, 202, 0x8000), EINVAL);
	EXPECT_VAL(close_range(201, 202, CLOSE_RANGE_CLOEXEC), 0);
	CHECK(fcntl(201, F_GETFD) == FD_CLOEXEC && fcntl(202, F_GETFD) == FD_CLOEXEC);
	EXPECT_VAL(send(201, "cr", 2, 0), 2);
	expect_bytes(k.s, "cr");
	EXPECT_VAL(close_range(201, 202, 0), 0);
	CHECK(!fd_open(201) && !fd_open(202));
	EXPECT_VAL(close_range(5000, 6000, 0), 0); /* nothing open there */
	EXPECT_VAL(close_range(300, 301, 0), 0);
	CHECK(!fd_open(300) && !fd_open(301));
	EXPECT_VAL(close(100), 0);
	EXPECT_VAL(close(101), 0);
	/* the connection still works through the original fd */
	exchange(k.c, k.s, "end", "bye");
	EXPECT_VAL(close(k.c), 0);
	EXPECT_ERR(close(k.c), EBADF);
	EXPECT_ERR(send(k.c, "x", 1, 0), EBADF);
	CHECK(close(k.s) == 0);
	CHECK(close(pfd[0]) == 0 && close(pfd[1]) == 0);
}

void test_fcntl(void)
{
	struct conn k = new_conn();
	/* flags pass through and are never changed by the shim */
	int fl = EXPECT_OK(fcntl(k.c, F_GETFL));
	CHECK((fl & O_ACCMODE) == O_RDWR && !(fl & O_NONBLOCK));
	EXPECT_VAL(fcntl(k.c, F_SETFL, fl | O_NONBLOCK), 0);
	EXPECT_VAL(fcntl(k.c, F_GETFL), fl | O_NONBLOCK);
	EXPECT_VAL(fcntl64(k.c, F_GETFL), fl | O_NONBLOCK);
	EXPECT_VAL(fcntl64(k.c, F_SETFL, fl), 0);
	EXPECT_VAL(fcntl(k.c, F_GETFL), fl);
	EXPECT_VAL(fcntl(k.c, F_GETFD), FD_CLOEXEC);
	EXPECT_VAL(fcntl(k.c, F_SETFD, 0), 0);
	EXPECT_VAL(fcntl(k.c, F_GETFD), 0);
	EXPECT_ERR(fcntl(-1, F_GETFL), EBADF);
	EXPECT_ERR(fcntl(k.c, 0x7fff), EINVAL); /* unknown command */
	EXPECT_ERR(fcntl64(k.c, 0x7fff), EINVAL);
	/* pointer arguments pass through: F_GETOWN_EX, record locks */
	struct f_owner_ex own = { .type = F_OWNER_PID, .pid = getpid() };
	EXPECT_VAL(fcntl(k.c, F_SETOWN_EX, &own), 0);
	memset(&own, 0, sizeof own);
	EXPECT_VAL(fcntl(k.c, F_GETOWN_EX, &own), 0);
	CHECK(own.type == F_OWNER_PID && own.pid == getpid());
	EXPECT_VAL(fcntl(k.c, F_GETOWN), getpid());
	EXPECT_ERR(fcntl(k.c, F_GETOWN_EX, vnull), EFAULT);
	int f = make_file("locks", "0123456789");
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2, .l_len = 3 };
	EXPECT_VAL(fcntl(f, F_SETLK, &lk), 0);
	struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	EXPECT_VAL(fcntl64(f, F_OFD_GETLK, &q), 0); /* an OFD lock conflicts with our own process lock */
	CHECKF(q.l_type == F_WRLCK && q.l_start == 2 && q.l_len == 3, "type %d start %ld len %ld pid %d", q.l_type, (long)q.l_start, (long)q.l_len, q.l_pid);
	EXPECT_VAL(fcntl(f, F_GETLK, &q), 0);
	EXPECT_ERR(fcntl(f, F_SETLK, vnull), EFAULT);
	CHECK(close(f) == 0);
	int pfd[2];
	CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	EXPECT_VAL(fcntl(pfd[1], F_SETPIPE_SZ, 8192), 8192);
	EXPECT_VAL(fcntl(pfd[1], F_GETPIPE_SZ), 8192);
	CHECK(close(pfd[0]) == 0 && close(pfd[1]) == 0);
	close_conn(k);
}
