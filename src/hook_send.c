/* The send family: the send path of the idle boundary, and the queries the program sends on its
 * own DNS sockets (dns_fd.h). A healthy or untracked fd costs the table lookup and one atomic
 * load; only a draining socket, a DNS socket or a datagram to port 53 takes the slow path.
 * Async-signal-safe. */
#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns_fd.h"
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
		/* While the thread learns the socket's rhythm, a new exchange goes through (recorded). */
		if (idle_new_exchange(&view, &record) &&
		    runtime_now_ms() >= atomic_load_explicit(&s->send_claim_after_ms, memory_order_relaxed)) {
			if (atomic_compare_exchange_strong(&s->state, &state, state | STATE_CLOSING | STATE_SHUT_BY_SEND)) {
				shutdown(fd, SHUT_RDWR);
				allowed = false;
				goto done;
			}
			continue;
		}
		/* The record before the sequence: a look that sees this send sees what it recorded. */
		atomic_store(&s->bytes_received_at_send, view.bytes_received);
		atomic_store(&s->send_recorded, true);
		if (atomic_compare_exchange_strong(&s->state, &state, state + STATE_SEQ_ONE))
			goto done;
	}
done:
	errno = allowed ? saved_errno : EPIPE;
	return allowed;
}

/* The tracked socket behind fd if it is draining or closing (its sends are gated), else NULL. */
static inline struct tracked_socket *gated_socket(uintptr_t slot)
{
	struct tracked_socket *s = fdtable_socket(slot);
	if (s == NULL)
		return NULL;
	uint64_t state = atomic_load_explicit(&s->state, memory_order_acquire);
	return (state & (STATE_DRAINING | STATE_CLOSING)) != 0 ? s : NULL;
}

/* The fast path: loads only, so each hook below compiles to a tail jump into libc with no
 * register saved. Anything else (libc not looked up yet, a draining socket, a DNS socket, whose
 * gate's word has STATE_DNS_SOCKET) takes the slow path. */
static inline bool slow_path_needed(int fd, const void *real_call)
{
	if (__builtin_expect(real_call == NULL, 0))
		return true;
	uintptr_t slot = fdtable_load(fd);
	if (__builtin_expect(slot <= FDTABLE_SHIM, 1))
		return false;
	return (fdtable_slot_state(slot) & (STATE_DRAINING | STATE_CLOSING | STATE_DNS_SOCKET)) != 0;
}

/* Slow path: true when the send may go ahead; false with errno = EPIPE when it must fail unsent.
 * (The caller's REAL() looks libc up if that is what sent it here: never a dlsym per send.) */
static bool send_allowed(int fd)
{
	struct tracked_socket *s = gated_socket(fdtable_load(fd));
	return s == NULL || draining_send_allowed(fd, s);
}

/* Before a send of iov on fd (to `to`, NULL: its peer): the DNS socket's pool index, its query
 * recorded if a datagram; -1 when fd is no DNS socket. */
static int dns_send_begin(int fd, const struct sockaddr *to, socklen_t tolen, const struct iovec *iov, int iovcnt)
{
	int index = dns_fd_for_send(fd, to, tolen);
	if (index >= 0)
		dns_fd_before_send(index, iov, iovcnt);
	return index;
}

static void dns_send_end(int index, const struct iovec *iov, int iovcnt, ssize_t sent)
{
	if (index >= 0)
		dns_fd_after_send(index, iov, iovcnt, sent);
}

/* A send of one buffer: the DNS socket it goes on (-1: none), or false when it must fail unsent. */
static bool buffer_send_begin(int fd, const struct sockaddr *to, socklen_t tolen, const struct iovec *iov, int *dns)
{
	*dns = dns_send_begin(fd, to, tolen, iov, 1);
	return *dns >= 0 || send_allowed(fd);
}

__attribute__((noinline)) static ssize_t send_slow(int fd, const void *buf, size_t len, int flags)
{
	struct iovec iov = {(void *)buf, len};
	int dns;
	if (!buffer_send_begin(fd, NULL, 0, &iov, &dns))
		return -1;
	ssize_t sent = REAL(send)(fd, buf, len, flags);
	dns_send_end(dns, &iov, 1, sent);
	return sent;
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
	struct iovec iov = {(void *)buf, len};
	int dns;
	if (!buffer_send_begin(fd, addr, addrlen, &iov, &dns))
		return -1;
	ssize_t sent = REAL(sendto)(fd, buf, len, flags, addr, addrlen);
	dns_send_end(dns, &iov, 1, sent);
	return sent;
}

__attribute__((visibility("default"))) ssize_t sendto(int fd, const void *buf, size_t len, int flags,
						      const struct sockaddr *addr, socklen_t addrlen)
{
	__auto_type call = REAL_LOAD(sendto);
	if (slow_path_needed(fd, call) || dns_fd_is_server(addr, addrlen))
		return sendto_slow(fd, buf, len, flags, addr, addrlen);
	return call(fd, buf, len, flags, addr, addrlen);
}

/* A message's destination, as the inline test reads it (msg may be anything the program passes). */
static inline bool msg_to_dns_server(const struct msghdr *msg)
{
	return msg != NULL && dns_fd_is_server(msg->msg_name, msg->msg_namelen);
}

/* dns_send_begin for one message (NULL, or without an iov: no DNS socket's to record). */
static int msg_send_begin(int fd, const struct msghdr *msg)
{
	if (msg == NULL || msg->msg_iov == NULL)
		return -1;
	return dns_send_begin(fd, msg->msg_name, msg->msg_namelen, msg->msg_iov, dns_fd_msg_iovcnt(msg));
}

__attribute__((noinline)) static ssize_t sendmsg_slow(int fd, const struct msghdr *msg, int flags)
{
	int dns = msg_send_begin(fd, msg);
	if (dns < 0 && !send_allowed(fd))
		return -1;
	ssize_t sent = REAL(sendmsg)(fd, msg, flags);
	if (dns >= 0)
		dns_send_end(dns, msg->msg_iov, dns_fd_msg_iovcnt(msg), sent);
	return sent;
}

__attribute__((visibility("default"))) ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	__auto_type call = REAL_LOAD(sendmsg);
	if (slow_path_needed(fd, call) || msg_to_dns_server(msg))
		return sendmsg_slow(fd, msg, flags);
	return call(fd, msg, flags);
}

__attribute__((noinline)) static int sendmmsg_slow(int fd, struct mmsghdr *msgs, unsigned int n, int flags)
{
	int dns = -1;
	for (unsigned int i = 0; msgs != NULL && i < n; i++) {
		int index = msg_send_begin(fd, &msgs[i].msg_hdr);
		if (index >= 0)
			dns = index;
	}
	if (dns < 0 && !send_allowed(fd))
		return -1;
	int sent = REAL(sendmmsg)(fd, msgs, n, flags);
	int saved_errno = errno;
	for (int i = 0; dns >= 0 && i < sent; i++)
		if (msgs[i].msg_hdr.msg_iov != NULL)
			dns_send_end(dns, msgs[i].msg_hdr.msg_iov, dns_fd_msg_iovcnt(&msgs[i].msg_hdr), (ssize_t)msgs[i].msg_len);
	errno = saved_errno;
	return sent;
}

__attribute__((visibility("default"))) int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int n, int flags)
{
	__auto_type call = REAL_LOAD(sendmmsg);
	if (slow_path_needed(fd, call) || (n > 0 && msgs != NULL && msg_to_dns_server(&msgs[0].msg_hdr)))
		return sendmmsg_slow(fd, msgs, n, flags);
	return call(fd, msgs, n, flags);
}

__attribute__((noinline)) static ssize_t write_slow(int fd, const void *buf, size_t count)
{
	struct iovec iov = {(void *)buf, count};
	int dns;
	if (!buffer_send_begin(fd, NULL, 0, &iov, &dns))
		return -1;
	ssize_t sent = REAL(write)(fd, buf, count);
	dns_send_end(dns, &iov, 1, sent);
	return sent;
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
	int dns = -1;
	if (iov != NULL && iovcnt > 0)
		dns = dns_send_begin(fd, NULL, 0, iov, iovcnt);
	if (dns < 0 && !send_allowed(fd))
		return -1;
	ssize_t sent = REAL(writev)(fd, iov, iovcnt);
	dns_send_end(dns, iov, iovcnt, sent);
	return sent;
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
