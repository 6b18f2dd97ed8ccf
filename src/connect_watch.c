#include "connect_watch.h"

#include <netinet/tcp.h>

#include "connect_failures.h"
#include "idle.h"
#include "names.h"
#include "sockview.h"

/* A connect still going on after this long is no longer watched. */
#define CONNECT_WATCH_MS 30000

void connect_watch_remember_failed(const struct tracked_socket *s)
{
	connect_failure_remember(&s->peer, s->port, s->name_count > 0 ? s->names[0]->host : "its name", true);
}

/* A non-blocking connect ends without the shim seeing it: a failure goes to the program through
 * SO_ERROR, which the shim must not read (reading clears it). TCP_INFO shows the outcome without
 * touching it: a socket back in CLOSE that never established did not connect, and its address
 * is avoided for DNSAWARE_COOLDOWN by later connects, blocking or not. */
void connect_watch_check(struct tracked_socket *s, uint64_t now)
{
	int fd = tracked_any_fd(s);
	struct socket_view view;
	if (fd < 0)
		return; /* closed: close recorded the outcome for thread_lists_collect_released */
	if (sockview_identity(fd, s) == IDENTITY_DIFFERENT || !sockview_read(fd, &view) ||
	    now - s->connected_at_ms >= CONNECT_WATCH_MS) {
		atomic_store(&s->connecting, false);
		return;
	}
	if (view.tcp_state == TCP_SYN_SENT)
		return;
	/* Whoever clears the flag first (this look, or thread_lists_collect_released after close) remembers it. */
	if (atomic_exchange(&s->connecting, false) && idle_connect_failed(&view))
		connect_watch_remember_failed(s);
}
