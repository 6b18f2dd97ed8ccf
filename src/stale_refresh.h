/* The background thread's side of the resolver's bad days: the library's own queries of names the
 * program looks up that no lookup waits for (a failing name's retry, the cache's confirmation and
 * refresh-ahead, a slow resolver's late answer), and what their answers, and the re-resolutions of
 * watched names, tell the stale-answer store. */
#ifndef DNSAWARE_STALE_REFRESH_H
#define DNSAWARE_STALE_REFRESH_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

struct ares_addrinfo;

/* From a lookup hook: a query of node's addresses of family (AF_UNSPEC: both) for the thread,
 * which no lookup waits for (a new answer's confirmation, the cache's refresh-ahead, a failing
 * name's retry, a slow resolver's late answer); its answer goes to the store. It does not start
 * the thread: while none runs, it waits for the process's first tracked connect, and a process
 * that never makes one gets no thread (and keeps at most STALE_QUERIES_WAITING queued). */
#define STALE_QUERIES_WAITING 16
void stale_query_post(const char *node, int family);

/* c-ares' statuses that say the name does not exist (or has no address): not the resolver failing. */
bool stale_status_negative(int status);

/* The thread, each wake-up: sends the queries queued since the last. */
void stale_refresh_send_queued(void);

/* The thread: a c-ares answer of family (AF_UNSPEC: both) for the normalized name (a queued query's, or a watched name's
 * re-resolution): kept answers that agree are confirmed for its TTL, a failing name recovers. */
void stale_refresh_apply(const char *name, int family, int status, const struct ares_addrinfo *result);

/* An answer of the library's own (addrs, ttl_seconds) for the normalized name: kept answers that
 * agree are confirmed for the TTL, clamped to [DNSAWARE_TTL_FLOOR, DNSAWARE_TTL_CEILING]; with
 * recover (the answer came from the program's servers), a failing name recovers, said in one
 * line. The thread's answers and the response timer's alike. */
struct stale_store;
void stale_refresh_confirm(struct stale_store *store, const char *name, int family, const struct ip_addr *addrs,
			   unsigned n, uint32_t ttl_seconds, bool in_hosts, bool recover, uint64_t now_ms);

/* The line that says a failing name answers again. */
void stale_refresh_log_recovered(const char *name, uint64_t served);

/* Fork child: queries of the parent's are forgotten (kept, unused). */
void stale_refresh_after_fork_child(void);

#endif
