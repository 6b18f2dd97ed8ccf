/* Connects in progress, watched by the background thread: a non-blocking connect that fails is the
 * program's to see (SO_ERROR), and the shim's only to remember for the cooldown. */
#ifndef DNSAWARE_CONNECT_WATCH_H
#define DNSAWARE_CONNECT_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "idle.h"
#include "name_metrics.h"
#include "tracked.h"

/* How often a connect in progress is looked at. */
#define CONNECT_CHECK_MS 10

/* How a connect ended, from TCP_INFO (never SO_ERROR, which is the program's: reading it clears
 * it): false while it is still going on (SYN_SENT). Back in CLOSE without a byte ever moved, it
 * failed: a timeout when SYNs were sent again, else refused. Otherwise it connected. Pure and
 * async-signal-safe: the close hook and the thread's looks both judge by it. */
bool connect_watch_outcome(const struct socket_view *v, enum connect_result *result);

/* An ok connect's time: from the connect call to now, estimated from the handshake's round trip
 * and SYNs sent again when the connection was seen late (name_metrics_connect_ns). Async-signal-
 * safe. */
uint64_t connect_watch_duration_ns(const struct tracked_socket *s, const struct socket_view *v);

/* Looks at s, still connecting: clears s->connecting once it ended (or was watched long enough),
 * remembering its address as failed if it did not connect. */
void connect_watch_check(struct tracked_socket *s, uint64_t now);

/* s's connect failed (seen by the close hook or a look): its address starts its cooldown. */
void connect_watch_remember_failed(const struct tracked_socket *s);

/* s's last fd was closed while its connect was watched (the thread took it from the released
 * list): the outcome close saw goes to the cooldown and the metrics. */
void connect_watch_closed(const struct tracked_socket *s);

#endif
