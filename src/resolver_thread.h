/* The background thread: re-resolves watched names with c-ares at their TTL and drains sockets
 * whose peer left the record set (or passed the max age) at their next idle boundary. */
#ifndef DNSAWARE_RESOLVER_THREAD_H
#define DNSAWARE_RESOLVER_THREAD_H

#include <stdbool.h>

#include "tracked.h"

/* From connect: hands a newly tracked socket to the thread, starting the thread on first use.
 * Lock-free; the socket already holds its names (live_sockets counted). */
void resolver_thread_adopt(struct tracked_socket *s);

/* Whether the thread runs (lookups hand it their queries then). */
bool resolver_thread_running(void);

/* From close: a socket whose connect failed was closed; the thread should remember its address
 * now rather than at its next wake-up. Async-signal-safe (a write to the wake-up pipe). */
void resolver_thread_nudge(void);

/* The thread could not start or could not set up its resolver: nothing would watch new sockets. */
bool resolver_thread_failed(void);

/* Fork child: no thread, no sockets, fresh state; the next tracked connect starts a new thread. */
void resolver_thread_after_fork_child(void);

#endif
