/* connect: a TCP client socket whose destination came from a name becomes tracked. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "log.h"
#include "names.h"
#include "real.h"
#include "resolver_thread.h"
#include "runtime.h"
#include "sockview.h"
#include "tracked.h"

static struct tracked_socket *new_tracked(int fd, const struct ip_addr *peer, uint16_t port)
{
	struct tracked_socket *s = calloc(1, sizeof *s);
	if (s == NULL)
		return NULL;
	tracked_init(s);
	if (!sockview_record_identity(fd, s)) {
		free(s);
		return NULL;
	}
	s->peer = *peer;
	s->port = port;
	s->connected_at_ms = runtime_now_ms();
	return s;
}

static void track(int fd, const struct ip_addr *peer, uint16_t port)
{
	/* Whatever this fd number meant before (a socket closed behind our back) is over. */
	tracked_detach(fd);
	if (resolver_thread_failed() || !sockview_is_tcp(fd))
		return;
	struct tracked_socket *s = new_tracked(fd, peer, port);
	if (s == NULL)
		return;
	sigset_t saved;
	names_lock(&saved);
	s->name_count = names_claim_for_address(peer, s->names, TRACKED_MAX_NAMES);
	if (s->name_count > 0 && !tracked_attach(fd, s)) {
		for (unsigned i = 0; i < s->name_count; i++)
			names_release(s->names[i]);
		s->name_count = 0;
	}
	names_unlock(&saved);
	if (s->name_count == 0) {
		free(s);
		return;
	}
	resolver_thread_adopt(s);
}

__attribute__((visibility("default"))) int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct ip_addr peer;
	uint16_t port;
	runtime_init();
	if (runtime_inside || !atomic_load_explicit(&runtime_active, memory_order_relaxed) ||
	    atomic_load_explicit(&names_count, memory_order_relaxed) == 0 ||
	    !ip_addr_from_sockaddr(addr, len, &peer, &port))
		return REAL(connect)(fd, addr, len);

	int saved_errno = errno;
	int rc = REAL(connect)(fd, addr, len);
	int connect_errno = rc == 0 ? saved_errno : errno;
	/* EINPROGRESS and EINTR: the connection goes on in the kernel, so it is the program's socket
	 * to that peer from now on. */
	if (rc == 0 || connect_errno == EINPROGRESS || connect_errno == EINTR) {
		runtime_inside = true;
		track(fd, &peer, port);
		runtime_inside = false;
	}
	errno = connect_errno;
	return rc;
}
