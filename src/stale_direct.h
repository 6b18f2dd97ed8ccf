/* The response timer's query: the lookup's own thread asks c-ares, on a channel of its own for the
 * length of the call, and waits at most until the deadline. Not the background thread's channel: a
 * process that never makes a tracked connection has no thread (and must never get one), and a
 * lookup queued behind the thread's work would wait for its next wake-up (up to 25 ms while other
 * queries are in flight). As fast as glibc's own lookup (about 130 µs against a DNS server on
 * loopback, glibc 170 µs). Its sockets and files exist only during the call, made close-on-exec
 * through the real calls, as glibc's own lookup makes and closes its own. It asks resolv.conf's
 * servers, as the program's resolver does, whatever DNSAWARE_NAMESERVERS says. */
#ifndef DNSAWARE_STALE_DIRECT_H
#define DNSAWARE_STALE_DIRECT_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

struct stale_direct_answer {
	bool done;  /* answered before the deadline */
	int status; /* c-ares' */
	struct ip_addr addrs[32];
	unsigned count;
	uint32_t ttl_seconds; /* the answer's, CNAMEs included */
	bool in_hosts;        /* /etc/hosts names node: the answer is not DNS's */
};

/* Asks for node's addresses of family (AF_UNSPEC: both) until deadline_ms (runtime_now_ms clock).
 * errno is left as it was. */
void stale_direct_query(const char *node, int family, uint64_t deadline_ms, struct stale_direct_answer *out);

#endif
