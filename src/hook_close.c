/* close, dup*, fcntl(F_DUPFD*), close_range: keep the fd table true. Async-signal-safe, no lock. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <linux/close_range.h>

#include "connect_watch.h"
#include "real.h"
#include "resolver_thread.h"
#include "runtime.h"
#include "sockview.h"
#include "tracked.h"

/* A socket closed while its connect was in progress: did the connect fail? (TCP_INFO does not
 * consume the error that SO_ERROR would.) The thread remembers the address for the cooldown. */
static void note_connect_outcome(int fd, struct tracked_socket *s)
{
	if (!atomic_load_explicit(&s->connecting, memory_order_relaxed))
		return;
	struct socket_view view;
	if (sockview_identity(fd, s) == IDENTITY_DIFFERENT || !sockview_read(fd, &view))
		return;
	/* Its outcome is counted by the thread. */
	enum connect_result result;
	if (!connect_watch_outcome(&view, &result)) {
		atomic_store(&s->connect_abandoned, true);
	} else if (result != CONNECT_OK) {
		s->connect_failed_result = result;
		atomic_store(&s->connect_failed, true);
	} else {
		atomic_store(&s->connect_duration_ns, connect_watch_duration_ns(s, &view));
		atomic_store(&s->connect_seen_ok, true);
	}
	resolver_thread_nudge();
}

/* The fd is about to stop meaning what it meant: drop the program's socket or our own fd. */
static void forget_fd(int fd)
{
	uintptr_t slot = fdtable_load(fd);
	if (slot == 0)
		return;
	if (slot == FDTABLE_SHIM) {
		shimfd_lost(fd);
		return;
	}
	struct tracked_socket *s = fdtable_socket(slot);
	if (s != NULL)
		note_connect_outcome(fd, s);
	s = tracked_detach(fd);
	/* Balance chooses by the sockets each address holds: the thread takes this one off its
	 * address's count now, not at its next wake-up, before the program connects again. */
	if (s != NULL && runtime_config.balance && atomic_load(&s->refs) == 0)
		resolver_thread_nudge();
}

static void note_duplicate(int oldfd, int newfd)
{
	if (fdtable_load(oldfd) == 0 && fdtable_load(newfd) == 0)
		return;
	if (runtime_in_vfork_child())
		return;
	int saved_errno = errno;
	if (fdtable_load(newfd) == FDTABLE_SHIM)
		shimfd_lost(newfd);
	if (fdtable_load(oldfd) == FDTABLE_SHIM)
		tracked_detach(newfd); /* a copy of our own fd belongs to the program */
	else
		tracked_duplicate(oldfd, newfd);
	errno = saved_errno;
}

__attribute__((visibility("default"))) int close(int fd)
{
	if (fdtable_load(fd) != 0 && !runtime_in_vfork_child()) {
		int saved_errno = errno;
		forget_fd(fd);
		errno = saved_errno;
	}
	return REAL(close)(fd);
}

__attribute__((visibility("default"))) int close_range(unsigned int first, unsigned int last, int flags)
{
	/* Only a call that will close anything may change the table; invalid ones fail in the kernel. */
	if (first <= last && (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) == 0 &&
	    !(flags & CLOSE_RANGE_CLOEXEC) && !runtime_in_vfork_child()) {
		int saved_errno = errno;
		unsigned int end = last < (unsigned int)FDTABLE_MAX_FD ? last : (unsigned int)FDTABLE_MAX_FD - 1;
		unsigned int fd = first < (unsigned int)FDTABLE_MAX_FD ? first : (unsigned int)FDTABLE_MAX_FD;
		while (fd <= end) {
			fd = (unsigned int)fdtable_next_mapped((int)fd);
			if (fd > end)
				break;
			forget_fd((int)fd++);
		}
		errno = saved_errno;
	}
	return REAL(close_range)(first, last, flags);
}

__attribute__((visibility("default"))) int dup(int oldfd)
{
	int newfd = REAL(dup)(oldfd);
	if (newfd >= 0)
		note_duplicate(oldfd, newfd);
	return newfd;
}

__attribute__((visibility("default"))) int dup2(int oldfd, int newfd)
{
	int rc = REAL(dup2)(oldfd, newfd);
	if (rc >= 0 && oldfd != newfd)
		note_duplicate(oldfd, newfd);
	return rc;
}

__attribute__((visibility("default"))) int dup3(int oldfd, int newfd, int flags)
{
	int rc = REAL(dup3)(oldfd, newfd, flags);
	if (rc >= 0)
		note_duplicate(oldfd, newfd);
	return rc;
}

static int fcntl_through(int (*real_fcntl)(int, int, ...), int fd, int cmd, void *arg)
{
	int rc = real_fcntl(fd, cmd, arg);
	if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		note_duplicate(fd, rc);
	return rc;
}

/* Every fcntl argument is an int or a pointer; passing it on as a pointer is what glibc does. */
__attribute__((visibility("default"))) int fcntl(int fd, int cmd, ...)
{
	va_list args;
	va_start(args, cmd);
	void *arg = va_arg(args, void *);
	va_end(args);
	return fcntl_through(REAL(fcntl), fd, cmd, arg);
}

__attribute__((visibility("default"))) int fcntl64(int fd, int cmd, ...)
{
	va_list args;
	va_start(args, cmd);
	void *arg = va_arg(args, void *);
	va_end(args);
	return fcntl_through(REAL(fcntl64), fd, cmd, arg);
}
