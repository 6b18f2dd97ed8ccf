/* The calls that carry the program's bytes out (send, sendto, sendmsg, sendfile, write, writev),
 * the ones the shim's send path judges: the same results on sockets, pipes and files. */
#include "passthrough.h"

#include <sys/sendfile.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- send family */

void test_send_family(void)
{
	int pfd[2];
	CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	int file = make_file("sendfile-src", "0123456789abcdefghij");
	struct sockaddr_storage ss, ss6;
	socklen_t len, len6;
	make_addr("127.0.0.1", port, &ss, &len);
	make_addr("::1", port, &ss6, &len6);
	struct iovec iov[2] = { { .iov_base = "ab", .iov_len = 2 }, { .iov_base = "cde", .iov_len = 3 } };
	struct msghdr mh;

	/* bad fds */
	int cfd = closed_fd();
	EXPECT_ERR(send(-1, "x", 1, 0), EBADF);
	EXPECT_ERR(send(cfd, "x", 1, 0), EBADF);
	EXPECT_ERR(send(pfd[1], "x", 1, 0), ENOTSOCK);
	EXPECT_ERR(send(file, "x", 1, 0), ENOTSOCK);
	EXPECT_ERR(sendto(-1, "x", 1, 0, NULL, 0), EBADF);
	EXPECT_ERR(sendto(cfd, "x", 1, 0, (struct sockaddr *)&ss, len), EBADF);
	EXPECT_ERR(sendto(pfd[1], "x", 1, 0, NULL, 0), ENOTSOCK);
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	EXPECT_ERR(sendmsg(-1, &mh, 0), EBADF);
	EXPECT_ERR(sendmsg(cfd, &mh, 0), EBADF);
	EXPECT_ERR(sendmsg(pfd[1], &mh, 0), ENOTSOCK);
	EXPECT_ERR(sendfile(-1, file, NULL, 1), EBADF);
	EXPECT_ERR(sendfile(cfd, file, NULL, 1), EBADF);

	/* a never-connected TCP socket: EPIPE with SIGPIPE unless MSG_NOSIGNAL */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int before = sigpipe_count;
	EXPECT_ERR(send(fd, "x", 1, MSG_NOSIGNAL), EPIPE);
	CHECK(sigpipe_count == before);
	EXPECT_ERR(send(fd, "x", 1, 0), EPIPE);
	CHECK(sigpipe_count == before + 1);
	CHECK(close(fd) == 0);

	/* connected (tracked): success leaves errno alone, the peer gets exactly the bytes */
	struct conn k = new_conn();
	EXPECT_VAL(send(k.c, "hello", 5, 0), 5);
	expect_bytes(k.s, "hello");
	EXPECT_VAL(send(k.c, "", 0, 0), 0);
	EXPECT_VAL(send(k.c, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT), 1);
	expect_bytes(k.s, "x");
	EXPECT_VAL(sendto(k.c, "to", 2, 0, NULL, 0), 2);
	expect_bytes(k.s, "to");
	EXPECT_VAL(sendto(k.c, "to6", 3, 0, (struct sockaddr *)&ss6, len6), 3); /* TCP ignores the address */
	expect_bytes(k.s, "to6");
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	EXPECT_VAL(sendmsg(k.c, &mh, 0), 5);
	expect_bytes(k.s, "abcde");
	mh.msg_iovlen = 0;
	EXPECT_VAL(sendmsg(k.c, &mh, 0), 0);
	mh.msg_iov = many_iov;
	mh.msg_iovlen = IOV_MAX + 1;
	EXPECT_ERR(sendmsg(k.c, &mh, 0), EMSGSIZE);
	EXPECT_ERR(sendmsg(k.c, vnull, 0), EFAULT);
	EXPECT_ERR(send(k.c, vnull, 10, 0), EFAULT);
	/* sendfile: count, offset advanced, file position untouched when an offset is given */
	off_t off = 3;
	EXPECT_VAL(sendfile(k.c, file, &off, 4), 4);
	CHECK(off == 7);
	CHECK(lseek(file, 0, SEEK_CUR) == 0);
	expect_bytes(k.s, "3456");
	EXPECT_VAL(sendfile(k.c, file, NULL, 2), 2); /* from (and advancing) the file position */
	CHECK(lseek(file, 0, SEEK_CUR) == 2);
	expect_bytes(k.s, "01");
	off64_t off64 = 10;
	EXPECT_VAL(sendfile64(k.c, file, &off64, 3), 3);
	CHECK(off64 == 13);
	expect_bytes(k.s, "abc");
	EXPECT_VAL(sendfile(k.c, file, &off, 0), 0);
	EXPECT_ERR(sendfile(k.c, -1, NULL, 1), EBADF);
	EXPECT_ERR(sendfile64(k.c, -1, NULL, 1), EBADF);
	EXPECT_ERR(sendfile(k.c, pfd[1], NULL, 1), EBADF); /* write end is not readable */
	/* after our own shutdown(SHUT_WR): EPIPE, SIGPIPE exactly as the kernel does */
	CHECK(shutdown(k.c, SHUT_WR) == 0);
	before = sigpipe_count;
	EXPECT_ERR(send(k.c, "x", 1, MSG_NOSIGNAL), EPIPE);
	CHECK(sigpipe_count == before);
	EXPECT_ERR(send(k.c, "x", 1, 0), EPIPE);
	CHECK(sigpipe_count == before + 1);
	EXPECT_ERR(write(k.c, "x", 1), EPIPE);
	CHECK(sigpipe_count == before + 2);
	EXPECT_ERR(sendto(k.c, "x", 1, MSG_NOSIGNAL, NULL, 0), EPIPE);
	EXPECT_ERR(sendmsg(k.c, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = 1 }, MSG_NOSIGNAL), EPIPE);
	EXPECT_ERR(writev(k.c, iov, 2), EPIPE);
	CHECK(sigpipe_count == before + 3);
	off = 0;
	EXPECT_ERR(sendfile(k.c, file, &off, 1), EPIPE);
	CHECK(sigpipe_count == before + 4);
	close_conn(k);

	/* full socket: MSG_DONTWAIT gives EAGAIN */
	k = full_conn();
	EXPECT_ERR(send(k.c, "x", 1, MSG_DONTWAIT), EAGAIN);
	EXPECT_ERR(sendto(k.c, "x", 1, MSG_DONTWAIT, NULL, 0), EAGAIN);
	EXPECT_ERR(sendmsg(k.c, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = 1 }, MSG_DONTWAIT), EAGAIN);
	close_conn(k);

	/* UDP */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage us;
	socklen_t ul;
	make_addr("127.0.0.1", 0, &us, &ul);
	CHECK(bind(u, (struct sockaddr *)&us, ul) == 0);
	ul = sizeof us;
	CHECK(getsockname(u, (struct sockaddr *)&us, &ul) == 0);
	EXPECT_VAL(sendto(fd, "dgram", 5, 0, (struct sockaddr *)&us, ul), 5);
	EXPECT_ERR(send(fd, "dgram", 5, 0), EDESTADDRREQ);
	EXPECT_ERR(sendto(fd, "x", 1, 0, (struct sockaddr *)&ss6, len6), EAFNOSUPPORT);
	EXPECT_ERR(sendto(fd, "x", 1, 0, (struct sockaddr *)&us, 4), EINVAL);
	memset(&mh, 0, sizeof mh);
	mh.msg_name = &us;
	mh.msg_namelen = ul;
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	EXPECT_VAL(sendmsg(fd, &mh, 0), 5);
	EXPECT_VAL(connect(fd, (struct sockaddr *)&us, ul), 0);
	EXPECT_VAL(send(fd, "c", 1, 0), 1);
	EXPECT_ERR(send(fd, "x", 1, MSG_OOB), EOPNOTSUPP);
	{
		char buf[16];
		CHECK(recv(u, buf, sizeof buf, 0) == 5 && memcmp(buf, "dgram", 5) == 0);
		CHECK(recv(u, buf, sizeof buf, 0) == 5 && memcmp(buf, "abcde", 5) == 0);
		CHECK(recv(u, buf, sizeof buf, 0) == 1 && buf[0] == 'c');
	}
	CHECK(close(fd) == 0 && close(u) == 0);

	/* sendmsg ancillary data passes through intact: SCM_RIGHTS over a socketpair */
	{
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cb;
		memset(&cb, 0, sizeof cb);
		memset(&mh, 0, sizeof mh);
		mh.msg_iov = iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof cb.b;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &file, sizeof(int));
		EXPECT_VAL(sendmsg(sv[0], &mh, 0), 2);
		char data[4];
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} rb;
		struct iovec riov = { .iov_base = data, .iov_len = sizeof data };
		struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rb.b, .msg_controllen = sizeof rb.b };
		CHECK(recvmsg(sv[1], &rm, MSG_CMSG_CLOEXEC) == 2);
		struct cmsghdr *rc = CMSG_FIRSTHDR(&rm);
		CHECK(rc != NULL && rc->cmsg_type == SCM_RIGHTS);
		int got;
		memcpy(&got, CMSG_DATA(rc), sizeof got);
		struct stat st1, st2;
		CHECK(fstat(got, &st1) == 0 && fstat(file, &st2) == 0 && st1.st_ino == st2.st_ino);
		CHECK(close(got) == 0 && close(sv[0]) == 0 && close(sv[1]) == 0);
	}

	/* sendfile from a socket (not mmap-able) is EINVAL; to an O_APPEND file EINVAL */
	{
		int ap = open(tmp_path("append"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		CHECK(ap >= 0);
		off = 0;
		EXPECT_ERR(sendfile(ap, file, &off, 1), EINVAL);
		CHECK(close(ap) == 0);
	}
	CHECK(close(file) == 0);
	CHECK(close(pfd[0]) == 0 && close(pfd[1]) == 0);
}

/* ---------------------------------------------------------------- write, writev */

void test_write_family(void)
{
	int pfd[2];
	CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	struct iovec iov[2] = { { .iov_base = "ab", .iov_len = 2 }, { .iov_base = "cde", .iov_len = 3 } };
	int cfd = closed_fd();
	char buf[64];

	EXPECT_ERR(write(-1, "x", 1), EBADF);
	EXPECT_ERR(write(cfd, "x", 1), EBADF);
	EXPECT_ERR(writev(-1, iov, 2), EBADF);
	EXPECT_ERR(writev(cfd, iov, 2), EBADF);
	int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
	EXPECT_ERR(write(ro, "x", 1), EBADF);
	EXPECT_ERR(writev(ro, iov, 1), EBADF);
	CHECK(close(ro) == 0);

	/* pipe */
	EXPECT_VAL(write(pfd[1], "pipe", 4), 4);
	CHECK(read(pfd[0], buf, sizeof buf) == 4 && memcmp(buf, "pipe", 4) == 0);
	EXPECT_VAL(write(pfd[1], "", 0), 0);
	EXPECT_VAL(writev(pfd[1], iov, 2), 5);
	CHECK(read(pfd[0], buf, sizeof buf) == 5 && memcmp(buf, "abcde", 5) == 0);
	EXPECT_VAL(writev(pfd[1], iov, 0), 0);
	EXPECT_ERR(writev(pfd[1], iov, vneg), EINVAL);
	EXPECT_ERR(writev(pfd[1], many_iov, IOV_MAX + 1), EINVAL);
	EXPECT_ERR(write(pfd[1], vnull, 4), EFAULT);
	EXPECT_ERR(writev(pfd[1], vnull, 1), EFAULT);
	/* a full non-blocking pipe */
	{
		int q[2];
		CHECK(pipe2(q, O_CLOEXEC | O_NONBLOCK) == 0);
		static char big[65536];
		while (write(q[1], big, sizeof big) > 0) {
		}
		while (write(q[1], big, 1) > 0) {
		}
		EXPECT_ERR(write(q[1], "x", 1), EAGAIN);
		EXPECT_ERR(writev(q[1], iov, 2), EAGAIN);
		/* reader gone: EPIPE and SIGPIPE */
		CHECK(close(q[0]) == 0);
		int before = sigpipe_count;
		EXPECT_ERR(write(q[1], "x", 1), EPIPE);
		CHECK(sigpipe_count == before + 1);
		EXPECT_ERR(writev(q[1], iov, 2), EPIPE);
		CHECK(sigpipe_count == before + 2);
		CHECK(close(q[1]) == 0);
	}

	/* regular file and /dev/null */
	int f = make_file("write-dst", "");
	EXPECT_VAL(write(f, "file", 4), 4);
	EXPECT_VAL(writev(f, iov, 2), 5);
	CHECK(pread(f, buf, sizeof buf, 0) == 9 && memcmp(buf, "fileabcde", 9) == 0);
	CHECK(close(f) == 0);
	int dn = open("/dev/null", O_WRONLY | O_CLOEXEC);
	EXPECT_VAL(write(dn, "null", 4), 4);
	CHECK(close(dn) == 0);

	/* tracked socket */
	struct conn k = new_conn();
	EXPECT_VAL(write(k.c, "sock", 4), 4);
	expect_bytes(k.s, "sock");
	EXPECT_VAL(writev(k.c, iov, 2), 5);
	expect_bytes(k.s, "abcde");
	EXPECT_VAL(write(k.c, "", 0), 0);
	EXPECT_ERR(write(k.c, vnull, 4), EFAULT);
	EXPECT_ERR(writev(k.c, iov, vneg), EINVAL);
	EXPECT_ERR(writev(k.c, many_iov, IOV_MAX + 1), EINVAL);
	close_conn(k);
	k = full_conn();
	CHECK(fcntl(k.c, F_SETFL, fcntl(k.c, F_GETFL) | O_NONBLOCK) == 0);
	EXPECT_ERR(write(k.c, "x", 1), EAGAIN);
	EXPECT_ERR(writev(k.c, iov, 2), EAGAIN);
	close_conn(k);
	CHECK(close(pfd[0]) == 0 && close(pfd[1]) == 0);
}
