/* The idle-boundary decision over the kernel's view of a socket; pure, unit-testable. */
#ifndef DNSAWARE_IDLE_H
#define DNSAWARE_IDLE_H

#include <stdbool.h>
#include <stdint.h>

/* A snapshot of a socket, taken with TCP_INFO, SIOCINQ and SIOCOUTQ. */
struct socket_view {
	uint8_t tcp_state;          /* TCP_ESTABLISHED, TCP_CLOSE_WAIT, ... (netinet/tcp.h values) */
	uint32_t unread_bytes;      /* SIOCINQ */
	uint32_t unsent_bytes;      /* SIOCOUTQ: not yet sent or not yet acknowledged */
	uint32_t ms_since_send;     /* tcpi_last_data_sent */
	uint32_t ms_since_recv;     /* tcpi_last_data_recv */
	uint64_t bytes_sent;        /* tcpi_bytes_sent */
	uint64_t bytes_received;    /* tcpi_bytes_received */
	uint32_t rtt_us;            /* tcpi_rtt: after a handshake, its round trip */
	uint32_t total_retrans;     /* tcpi_total_retrans: a connect's SYNs sent again */
};

/* What the shim itself saw: counters at the last send it let through on this socket while draining. */
struct send_record {
	bool valid;                 /* a send went through the hooks since draining began */
	uint64_t bytes_received_at_send;
};

enum idle_verdict {
	IDLE_BUSY = 0,      /* an exchange is in progress or the socket is not quiet yet */
	IDLE_READY = 1,     /* at an idle boundary: safe to shut down */
	IDLE_GONE = 2,      /* the connection is already closing or closed on the peer side */
};

/* A connect in progress ended without connecting: back in CLOSE, and not a byte ever sent or
 * received. (The error itself is in SO_ERROR, which only the program may read.) */
bool idle_connect_failed(const struct socket_view *v);

/* Background path: quiet for idle_ms, nothing unread, nothing unsent/unacknowledged,
 * and the last data movement was inbound (or nothing was ever sent). */
enum idle_verdict idle_background(const struct socket_view *v, const struct send_record *r, uint64_t idle_ms);

/* Send path: true when this send starts a new exchange (the previous one is complete:
 * data came in since the program last sent and all of it has been read). A continuation of
 * the same request (nothing received since the previous send) is never a new exchange. */
bool idle_new_exchange(const struct socket_view *v, const struct send_record *r);

#endif
