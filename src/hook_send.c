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
	if (runtime_in_vfork_child())
		goto done; /* the parent's socket, the parent's to drain */
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

/* The tracked socket behind fd if it is draining or closing (its sends are gated), else NULL. */
static inline struct tracked_socket *gated_socket(int fd)
{
	struct tracked_socket *s = fdtable_socket(fdtable_load(fd));
	if (__builtin_expect(s == NULL, 1))
		return NULL;
	uint64_t state = atomic_load_explicit(&s->state, memory_order_acquire);
	return (state & (STATE_DRAINING | STATE_CLOSING)) != 0 ? s : NULL;
}

/* The fast path: loads only, so each hook below compiles to a tail jump into libc with no
 * register saved. Anything else (libc not looked up yet, a draining socket) takes the slow path. */
static inline bool slow_path_needed(int fd, const void *real_call)
{
	return __builtin_expect(real_call == NULL, 0) || gated_socket(fd) != NULL;
}

/* Slow path: true when the send may go ahead; false with errno = EPIPE when it must fail unsent.
 * (The caller's REAL() looks libc up if that is what sent it here: never a dlsym per send.) */
static bool send_allowed(int fd)
{
	struct tracked_socket *s = gated_socket(fd);
	return s == NULL || draining_send_allowed(fd, s);
}

__attribute__((noinline)) static ssize_t send_slow(int fd, const void *buf, size_t len, int flags)
{
	return send_allowed(fd) ? REAL(send)(fd, buf, len, flags) : -1;
}

__attribute__((visibility("default"))) ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	__auto_type call = REAL_LOAD(send);
	if (slow_path_needed(fd, call))
		return send_slow(fd, buf, len, flags);
	return call(fd, buf, len, flags);
}

__attribute__((noinline)) static ssize_t sendto_slow(int fd, const void *buf, size_t len, int flags,
						     const struct sockaddr *addr, socklen_t addrlen)
{
	return send_allowed(fd) ? REAL(sendto)(fd, buf, len, flags, addr, addrlen) : -1;
}

__attribute__((visibility("default"))) ssize_t sendto(int fd, const void *buf, size_t len, int flags,
						      const struct sockaddr *addr, socklen_t addrlen)
{
	__auto_type call = REAL_LOAD(sendto);
	if (slow_path_needed(fd, call))
		return sendto_slow(fd, buf, len, flags, addr, addrlen);
	return call(fd, buf, len, flags, addr, addrlen);
}

__attribute__((noinline)) static ssize_t sendmsg_slow(int fd, const struct msghdr *msg, int flags)
{
	return send_allowed(fd) ? REAL(sendmsg)(fd, msg, flags) : -1;
}

__attribute__((visibility("default"))) ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	__auto_type call = REAL_LOAD(sendmsg);
	if (slow_path_needed(fd, call))
		return sendmsg_slow(fd, msg, flags);
	return call(fd, msg, flags);
}

__attribute__((noinline)) static ssize_t write_slow(int fd, const void *buf, size_t count)
{
	return send_allowed(fd) ? REAL(write)(fd, buf, count) : -1;
}

__attribute__((visibility("default"))) ssize_t write(int fd, const void *buf, size_t count)
{
	__auto_type call = REAL_LOAD(write);
	if (slow_path_needed(fd, call))
		return write_slow(fd, buf, count);
	return call(fd, buf, count);
}

__attribute__((noinline)) static ssize_t writev_slow(int fd, const struct iovec *iov, int iovcnt)
{
	return send_allowed(fd) ? REAL(writev)(fd, iov, iovcnt) : -1;
}

__attribute__((visibility("default"))) ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	__auto_type call = REAL_LOAD(writev);
	if (slow_path_needed(fd, call))
		return writev_slow(fd, iov, iovcnt);
	return call(fd, iov, iovcnt);
}

__attribute__((noinline)) static ssize_t sendfile_slow(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return send_allowed(out_fd) ? REAL(sendfile)(out_fd, in_fd, offset, count) : -1;
}

__attribute__((visibility("default"))) ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	__auto_type call = REAL_LOAD(sendfile);
	if (slow_path_needed(out_fd, call))
		return sendfile_slow(out_fd, in_fd, offset, count);
	return call(out_fd, in_fd, offset, count);
}

__attribute__((noinline)) static ssize_t sendfile64_slow(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return send_allowed(out_fd) ? REAL(sendfile64)(out_fd, in_fd, offset, count) : -1;
}

__attribute__((visibility("default"))) ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	__auto_type call = REAL_LOAD(sendfile64);
	if (slow_path_needed(out_fd, call))
		return sendfile64_slow(out_fd, in_fd, offset, count);
	return call(out_fd, in_fd, offset, count);
}
