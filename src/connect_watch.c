#include "connect_watch.h"

#include <netinet/tcp.h>

#include "connect_failures.h"
#include "idle.h"
#include "names.h"
#include "runtime.h"
#include "sockview.h"

/* A connect still going on after this long is no longer watched. */
#define CONNECT_WATCH_MS 30000

bool connect_watch_outcome(const struct socket_view *v, enum connect_result *result)
{
	if (v->tcp_state == TCP_SYN_SENT)
		return false;
	if (idle_connect_failed(v))
		*result = v->total_retrans > 0 ? CONNECT_TIMEOUT : CONNECT_REFUSED;
	else
		*result = CONNECT_OK;
	return true;
}

void connect_watch_remember_failed(const struct tracked_socket *s)
{
	connect_failure_remember(&s->peer, s->port, s->name_count > 0 ? s->names[0]->host : "its name", true);
}

/* Its name's metrics (the first name it was tracked under, as a blocking connect's). */
static void record(const struct tracked_socket *s, enum connect_result r, uint64_t duration_ns)
{
	if (s->name_count == 0)
		return;
	sigset_t saved;
	names_lock(&saved);
	names_record_connect(s->names[0], r, duration_ns, runtime_config.metrics_names);
	names_unlock(&saved);
}

uint64_t connect_watch_duration_ns(const struct tracked_socket *s, const struct socket_view *v)
{
	return name_metrics_connect_ns(runtime_now_ns() - s->connect_started_ns, v->rtt_us, v->total_retrans);
}

/* A connect ended (result, and for an ok one its duration): the cooldown for a failed one, the
 * metrics for both. */
static void settle(const struct tracked_socket *s, enum connect_result result, uint64_t duration_ns)
{
	if (result != CONNECT_OK)
		connect_watch_remember_failed(s);
	record(s, result, result == CONNECT_OK ? duration_ns : 0);
}

void connect_watch_closed(const struct tracked_socket *s)
{
	if (atomic_load(&s->connect_failed)) {
		settle(s, s->connect_failed_result, 0);
	} else if (atomic_load(&s->connect_seen_ok)) {
		settle(s, CONNECT_OK, atomic_load(&s->connect_duration_ns));
	} else if (atomic_load(&s->connect_abandoned)) {
		record(s, CONNECT_TIMEOUT, 0); /* the program stopped waiting for it */
	}
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
	if (sockview_identity(fd, s) == IDENTITY_DIFFERENT || !sockview_read(fd, &view)) {
		/* Closed under this look (close counts its outcome), or behind the library's back: then
		 * it is no longer watched once the watch's time is up. */
		if (now - s->connected_at_ms >= CONNECT_WATCH_MS)
			atomic_store(&s->connecting, false);
		return;
	}
	if (now - s->connected_at_ms >= CONNECT_WATCH_MS) {
		if (atomic_exchange(&s->connecting, false))
			record(s, CONNECT_TIMEOUT, 0); /* still no answer: no longer watched */
		return;
	}
	enum connect_result result;
	if (!connect_watch_outcome(&view, &result))
		return;
	/* Whoever clears the flag first (this look, or thread_lists_collect_released after close) remembers it. */
	if (atomic_exchange(&s->connecting, false))
		settle(s, result, connect_watch_duration_ns(s, &view));
}
