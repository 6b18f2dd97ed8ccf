#include <netinet/tcp.h>

#include "idle.h"

/* Without a send seen by the hooks, the order comes from the kernel's stamps of the last send and
 * the last receipt. They count jiffies (4 ms at HZ=250): a request and its fast answer, or an answer
 * and the next request sent at once, can carry the same stamp. A tie cannot tell "answered" from
 * "waiting", so it is not idle: the next send through the hooks (recorded) or any new data movement
 * settles it, and the drain deadline bounds the wait. */
static bool last_movement_inbound(const struct socket_view *v, const struct send_record *r)
{
	if (r->valid)
		return v->bytes_received > r->bytes_received_at_send;
	if (v->bytes_sent == 0)
		return true;
	if (v->bytes_received == 0)
		return false;
	return v->ms_since_recv < v->ms_since_send;
}

static bool closing_state(uint8_t tcp_state)
{
	switch (tcp_state) {
	case TCP_SYN_SENT:
	case TCP_SYN_RECV:
	case TCP_ESTABLISHED:
		return false;
	default:
		return true;
	}
}

enum idle_verdict idle_background(const struct socket_view *v, const struct send_record *r, uint64_t idle_ms)
{
	if (closing_state(v->tcp_state))
		return IDLE_GONE;
	if (v->tcp_state != TCP_ESTABLISHED)
		return IDLE_BUSY;
	if (v->unread_bytes != 0 || v->unsent_bytes != 0)
		return IDLE_BUSY;
	if (!last_movement_inbound(v, r))
		return IDLE_BUSY;
	uint32_t quiet_ms = v->ms_since_recv < v->ms_since_send ? v->ms_since_recv : v->ms_since_send;
	if (v->bytes_sent == 0 && v->bytes_received == 0)
		quiet_ms = v->ms_since_recv > v->ms_since_send ? v->ms_since_recv : v->ms_since_send;
	return quiet_ms >= idle_ms ? IDLE_READY : IDLE_BUSY;
}

bool idle_new_exchange(const struct socket_view *v, const struct send_record *r)
{
	if (v->tcp_state != TCP_ESTABLISHED)
		return false;
	if (v->unread_bytes != 0 || v->unsent_bytes != 0)
		return false;
	if (r->valid)
		return v->bytes_received > r->bytes_received_at_send;
	/* The first request on a connection is never failed: the background path recycles it later. */
	if (v->bytes_sent == 0)
		return false;
	/* A tie may hide the first half of this very request: let it through, it is answered on this
	 * connection and the background path drains it afterwards. */
	return v->ms_since_recv < v->ms_since_send;
}

bool idle_connect_failed(const struct socket_view *v)
{
	return v->tcp_state == TCP_CLOSE && v->bytes_sent == 0 && v->bytes_received == 0;
}
