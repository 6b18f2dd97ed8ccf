#include "dns_fd.h"

#include <errno.h>

#include "dns_watch.h"
#include "runtime.h"

static bool learning(void)
{
	/* A vfork child, or a fork child not settled yet: the pool is its parent's. */
	return atomic_load_explicit(&runtime_active, memory_order_relaxed) && runtime_config.learn_dns &&
	       !runtime_inside && !runtime_in_vfork_child();
}

/* Marks fd as a DNS socket; its pool index, or -1 (not a datagram or stream socket, pool full). */
static int mark(int fd)
{
	int saved_errno = errno;
	int index = -1;
	int type = 0;
	socklen_t len = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || (type != SOCK_DGRAM && type != SOCK_STREAM))
		goto done;
	index = dns_watch_claim(type == SOCK_STREAM);
	if (index >= 0 && !tracked_attach_dns(fd, index))
		index = -1;
done:
	errno = saved_errno;
	return index;
}

void dns_fd_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int index = dns_fd_index(fd);
	if (dns_fd_is_server(addr, len)) {
		if (index < 0 && learning())
			mark(fd);
	} else if (index >= 0 && !runtime_in_vfork_child()) {
		/* A datagram socket connected elsewhere now, or an fd reused behind the library's back. */
		int saved_errno = errno;
		tracked_detach(fd);
		errno = saved_errno;
	}
}

int dns_fd_for_send(int fd, const struct sockaddr *to, socklen_t tolen)
{
	int index = dns_fd_index(fd);
	if (index >= 0)
		return learning() ? index : -1;
	if (!dns_fd_is_server(to, tolen))
		return -1;
	runtime_init();
	return learning() ? mark(fd) : -1;
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	return total;
}

void dns_fd_before_send(int index, const struct iovec *iov, int iovcnt)
{
	if (!dns_watch_socket(index)->stream)
		dns_watch_sent(index, iov, iovcnt, iov_total(iov, iovcnt));
}

void dns_fd_after_send(int index, const struct iovec *iov, int iovcnt, ssize_t sent)
{
	if (dns_watch_socket(index)->stream && sent > 0)
		dns_watch_sent(index, iov, iovcnt, (size_t)sent);
}

void dns_fd_received(int index, const struct iovec *iov, int iovcnt, ssize_t got, int flags, int msg_flags)
{
	if (got <= 0 || (flags & MSG_PEEK) || !learning())
		return; /* peeked bytes are read again */
	size_t capacity = iov_total(iov, iovcnt);
	if (dns_watch_socket(index)->stream) {
		/* MSG_TRUNC on a stream: the bytes were discarded, not read. */
		bool discarded = (flags & MSG_TRUNC) != 0;
		dns_watch_received(index, discarded ? NULL : iov, iovcnt, (size_t)got, false);
		return;
	}
	/* With MSG_TRUNC a datagram's call returns its full length, whatever fit. */
	bool truncated = (size_t)got > capacity || (msg_flags & MSG_TRUNC);
	dns_watch_received(index, iov, iovcnt, (size_t)got, truncated);
}
