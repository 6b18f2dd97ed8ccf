/* The send family: the send path of the idle boundary. A healthy or untracked fd costs the table
 * lookup and one atomic load; only a draining socket takes the slow path. Async-signal-safe. */
#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "idle.h"
#include "real.h"
#include "runtime.h"
#include "sockview.h"
#include "tracked.h"

/* Returns true when the send may go ahead; false with errno = EPIPE when it must fail unsent. */
static bool draining_send_allowed(int fd, struct tracked_socket *s)
{
	int saved_errno = errno;
	bool allowed = true;
	if (sockview_identity(fd, s) == IDENTITY_DIFFERENT)
		goto done; /* the table is stale: this fd is another socket now */
	for (;;) {
		uint64_t state = atomic_load_explicit(&s->state, memory_order_acquire);
		if (state & STATE_CLOSING) {
			allowed = false;
			goto done;
		}
		if (!(state & STATE_DRAINING))
			goto done;
		struct socket_view view;
		if (!sockview_read(fd, &view))
			goto done;
		struct send_record record = {
			.valid = atomic_load(&s->send_recorded),
			.bytes_received_at_send = atomic_load(&s->bytes_received_at_send),
		};
		if (idle_new_exchange(&view, &record)) {
			if (atomic_compare_exchange_strong(&s->state, &state, state | STATE_CLOSING | STATE_SHUT_BY_SEND)) {
				shutdown(fd, SHUT_RDWR);
				allowed = false;
				goto done;
			}
			continue;
		}
		if (atomic_compare_exchange_strong(&s->state, &state, state + STATE_SEQ_ONE)) {
			atomic_store(&s->bytes_received_at_send, view.bytes_received);
			atomic_store(&s->send_recorded, true);
			goto done;
		}
	}
done:
	errno = allowed ? saved_errno : EPIPE;
	return allowed;
}

static inline bool send_allowed(int fd)
{
	struct tracked_socket *s = fdtable_socket(fdtable_load(fd));
	if (__builtin_expect(s == NULL, 1))
		return true;
	uint64_t state = atomic_load_explicit(&s->state, memory_order_acquire);
	if (__builtin_expect((state & (STATE_DRAINING | STATE_CLOSING)) == 0, 1))
		return true;
	return draining_send_allowed(fd, s);
}

__attribute__((visibility("default"))) ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	if (!send_allowed(fd))
		return -1;
	return REAL(send)(fd, buf, len, flags);
}

__attribute__((visibility("default"))) ssize_t sendto(int fd, const void *buf, size_t len, int flags,
						      const struct sockaddr *addr, socklen_t addrlen)
{
	if (!send_allowed(fd))
		return -1;
	return REAL(sendto)(fd, buf, len, flags, addr, addrlen);
}

__attribute__((visibility("default"))) ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (!send_allowed(fd))
		return -1;
	return REAL(sendmsg)(fd, msg, flags);
}

__attribute__((visibility("default"))) ssize_t write(int fd, const void *buf, size_t count)
{
	if (!send_allowed(fd))
		return -1;
	return REAL(write)(fd, buf, count);
}

__attribute__((visibility("default"))) ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (!send_allowed(fd))
		return -1;
	return REAL(writev)(fd, iov, iovcnt);
}

__attribute__((visibility("default"))) ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	if (!send_allowed(out_fd))
		return -1;
	return REAL(sendfile)(out_fd, in_fd, offset, count);
}

__attribute__((visibility("default"))) ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	if (!send_allowed(out_fd))
		return -1;
	return REAL(sendfile64)(out_fd, in_fd, offset, count);
}
