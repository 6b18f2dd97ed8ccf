/* The receive family: what the program reads on its own DNS sockets is kept for learning
 * (dns_fd.h). Every other fd costs the table lookup: the hook is a load, a test and a tail jump
 * into libc. The program's bytes, lengths and errno are never touched. Async-signal-safe. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns_fd.h"
#include "real.h"

/* The fast path's test: libc not looked up yet, or one of the program's DNS sockets. */
static inline bool slow_path_needed(int fd, const void *real_call)
{
	if (__builtin_expect(real_call == NULL, 0))
		return true;
	fdtable_slot *slot = fdtable_slot_of(fd);
	return __builtin_expect(slot != NULL, 0) &&
	       __builtin_expect(fdtable_is_dns(atomic_load_explicit(slot, memory_order_acquire)), 0);
}

/* After a call that read into one buffer. */
static void received_into(int fd, void *buf, size_t len, ssize_t got, int flags)
{
	int index = dns_fd_index(fd);
	if (index < 0)
		return;
	struct iovec iov = {buf, len};
	dns_fd_received(index, &iov, 1, got, flags, 0);
}

__attribute__((noinline)) static ssize_t recv_slow(int fd, void *buf, size_t len, int flags)
{
	ssize_t got = REAL(recv)(fd, buf, len, flags);
	received_into(fd, buf, len, got, flags);
	return got;
}

__attribute__((visibility("default"))) ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	__auto_type call = REAL_LOAD(recv);
	if (slow_path_needed(fd, call))
		return recv_slow(fd, buf, len, flags);
	return call(fd, buf, len, flags);
}

__attribute__((noinline)) static ssize_t recvfrom_slow(int fd, void *buf, size_t len, int flags,
						       struct sockaddr *addr, socklen_t *addrlen)
{
	ssize_t got = REAL(recvfrom)(fd, buf, len, flags, addr, addrlen);
	received_into(fd, buf, len, got, flags);
	return got;
}

__attribute__((visibility("default"))) ssize_t recvfrom(int fd, void *buf, size_t len, int flags,
							struct sockaddr *addr, socklen_t *addrlen)
{
	__auto_type call = REAL_LOAD(recvfrom);
	if (slow_path_needed(fd, call))
		return recvfrom_slow(fd, buf, len, flags, addr, addrlen);
	return call(fd, buf, len, flags, addr, addrlen);
}

/* After recvmsg or one message of recvmmsg: got bytes scattered over msg's iov. */
static void received_msg(int fd, const struct msghdr *msg, ssize_t got, int flags)
{
	int index = dns_fd_index(fd);
	if (index < 0 || msg == NULL)
		return;
	dns_fd_received(index, msg->msg_iov, dns_fd_msg_iovcnt(msg), got, flags, msg->msg_flags);
}

__attribute__((noinline)) static ssize_t recvmsg_slow(int fd, struct msghdr *msg, int flags)
{
	ssize_t got = REAL(recvmsg)(fd, msg, flags);
	received_msg(fd, msg, got, flags);
	return got;
}

__attribute__((visibility("default"))) ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	__auto_type call = REAL_LOAD(recvmsg);
	if (slow_path_needed(fd, call))
		return recvmsg_slow(fd, msg, flags);
	return call(fd, msg, flags);
}

__attribute__((noinline)) static int recvmmsg_slow(int fd, struct mmsghdr *msgs, unsigned int n, int flags,
						   struct timespec *timeout)
{
	int got = REAL(recvmmsg)(fd, msgs, n, flags, timeout);
	int saved_errno = errno;
	for (int i = 0; i < got; i++)
		received_msg(fd, &msgs[i].msg_hdr, (ssize_t)msgs[i].msg_len, flags);
	errno = saved_errno;
	return got;
}

__attribute__((visibility("default"))) int recvmmsg(int fd, struct mmsghdr *msgs, unsigned int n, int flags,
						    struct timespec *timeout)
{
	__auto_type call = REAL_LOAD(recvmmsg);
	if (slow_path_needed(fd, call))
		return recvmmsg_slow(fd, msgs, n, flags, timeout);
	return call(fd, msgs, n, flags, timeout);
}

__attribute__((noinline)) static ssize_t read_slow(int fd, void *buf, size_t count)
{
	ssize_t got = REAL(read)(fd, buf, count);
	received_into(fd, buf, count, got, 0);
	return got;
}

__attribute__((visibility("default"))) ssize_t read(int fd, void *buf, size_t count)
{
	__auto_type call = REAL_LOAD(read);
	if (slow_path_needed(fd, call))
		return read_slow(fd, buf, count);
	return call(fd, buf, count);
}

/* The fortified forms: the same, with the buffer's size checked by libc first. */

__attribute__((noinline)) static ssize_t recv_chk_slow(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	ssize_t got = REAL(__recv_chk)(fd, buf, len, buflen, flags);
	received_into(fd, buf, len, got, flags);
	return got;
}

__attribute__((visibility("default"))) ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	__auto_type call = REAL_LOAD(__recv_chk);
	if (slow_path_needed(fd, call))
		return recv_chk_slow(fd, buf, len, buflen, flags);
	return call(fd, buf, len, buflen, flags);
}

__attribute__((noinline)) static ssize_t recvfrom_chk_slow(int fd, void *buf, size_t len, size_t buflen, int flags,
							   struct sockaddr *addr, socklen_t *addrlen)
{
	ssize_t got = REAL(__recvfrom_chk)(fd, buf, len, buflen, flags, addr, addrlen);
	received_into(fd, buf, len, got, flags);
	return got;
}

__attribute__((visibility("default"))) ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen,
							      int flags, struct sockaddr *addr, socklen_t *addrlen)
{
	__auto_type call = REAL_LOAD(__recvfrom_chk);
	if (slow_path_needed(fd, call))
		return recvfrom_chk_slow(fd, buf, len, buflen, flags, addr, addrlen);
	return call(fd, buf, len, buflen, flags, addr, addrlen);
}

__attribute__((noinline)) static ssize_t read_chk_slow(int fd, void *buf, size_t count, size_t buflen)
{
	ssize_t got = REAL(__read_chk)(fd, buf, count, buflen);
	received_into(fd, buf, count, got, 0);
	return got;
}

__attribute__((visibility("default"))) ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	__auto_type call = REAL_LOAD(__read_chk);
	if (slow_path_needed(fd, call))
		return read_chk_slow(fd, buf, count, buflen);
	return call(fd, buf, count, buflen);
}
