/* What the background thread takes from a c-ares answer: the addresses to hold the name's record
 * set against and the TTL that schedules the next look. Pure, unit-testable: it reads the
 * ares_addrinfo and allocates nothing, so the answers tests and the fuzzer build are fed to it
 * exactly as c-ares would hand them over. */
#ifndef DNSAWARE_ANSWER_H
#define DNSAWARE_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "recordset.h"

struct ares_addrinfo;

/* A record set holds no more than this; more addresses from one answer could not be used. */
#define ANSWER_MAX RECORDSET_MAX

struct answer {
	struct ip_addr addrs[ANSWER_MAX]; /* distinct, IPv4 or IPv6, v4-mapped IPv6 folded to IPv4 */
	unsigned count;
	bool truncated;       /* some usable address was left out for want of room */
	uint32_t ttl_seconds; /* the minimum over the answer, CNAME chain included; never negative */
};

/* Reads result (NULL: nothing) into *out. Nodes of other families, or too short for their family,
 * are skipped; duplicates are kept once. When the answer holds more addresses than fit, those
 * already in current (NULL: none) are taken first: an address left out would count as absent from
 * the answer, and a name with many addresses would lose the very ones its sockets use. The TTL
 * counts every node and every CNAME. */
void answer_collect(const struct ares_addrinfo *result, const struct recordset *current, struct answer *out);

/* How long until the next look: the answer's TTL clamped to [floor_ms, ceiling_ms]. */
uint64_t answer_interval_ms(const struct answer *answer, uint64_t floor_ms, uint64_t ceiling_ms);

#endif
