/* The background thread's side of the resolver's bad days: the library's own queries of names the
 * program looks up (the response timer's, a failing name's retry, the cache's confirmation and
 * refresh-ahead), and what their answers, and the re-resolutions of watched names, tell the
 * stale-answer store. */
#ifndef DNSAWARE_STALE_REFRESH_H
#define DNSAWARE_STALE_REFRESH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "gai_copy.h"
#include "lookup_key.h"

struct ares_addrinfo;

/* One query of a name, handed from a lookup to the thread; a lookup may wait for its answer. */
struct stale_query {
	_Atomic uint32_t done; /* futex word: 1 once answered */
	_Atomic unsigned refs;
	struct stale_query *next;
	char node[LOOKUP_NODE_MAX + 1]; /* as the program asked (search domains apply alike) */
	int family;                     /* AF_INET, AF_INET6, or AF_UNSPEC for both */
	/* The answer (when done): */
	int status; /* c-ares' */
	struct ip_addr addrs[GAI_COPY_ADDRS_MAX];
	unsigned count;
};

/* From a lookup hook, while the background thread runs: a query of node, for the thread to send.
 * NULL when it cannot be asked (no thread, no memory). The caller holds a reference. */
struct stale_query *stale_query_send(const char *node, int family);

/* The same without waiting for it, and without starting the thread: a query for later (a new
 * answer's confirmation) waits for the thread to start at the process's first tracked connect. A
 * process that never makes one gets no thread (and keeps at most STALE_QUERIES_WAITING queued). */
#define STALE_QUERIES_WAITING 16
void stale_query_post(const char *node, int family);

/* Waits for the answer until deadline_ms (runtime_now_ms clock), through signals. True: done. */
bool stale_query_wait(struct stale_query *query, uint64_t deadline_ms);

/* Drops the caller's reference; the thread keeps the query until its answer has come. */
void stale_query_release(struct stale_query *query);

/* c-ares' statuses that say the name does not exist (or has no address): not the resolver failing. */
bool stale_status_negative(int status);

/* The thread, each wake-up: sends the queries queued since the last. */
void stale_refresh_send_queued(void);

/* The thread: a c-ares answer of family (AF_UNSPEC: both) for the normalized name (a queued query's, or a watched name's
 * re-resolution): kept answers that agree are confirmed for its TTL, a failing name recovers. */
void stale_refresh_apply(const char *name, int family, int status, const struct ares_addrinfo *result);

/* Fork child: queries of the parent's are forgotten (kept, unused). */
void stale_refresh_after_fork_child(void);

#endif
