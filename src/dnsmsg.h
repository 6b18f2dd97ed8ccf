/* DNS messages the program exchanged itself: does an answer match a query it sent (the id and the
 * question agree), and what does it say about the name it asked for. The records are read with
 * c-ares' own parsers (ares_parse_a_reply, ares_parse_aaaa_reply), which follow CNAME chains and
 * fold each CNAME's TTL into its addresses'. Pure, unit-testable, fuzzed (tests/fuzz/fuzz_dnsmsg.c):
 * the bytes come from the network and are trusted in nothing. */
#ifndef DNSAWARE_DNSMSG_H
#define DNSAWARE_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "recordset.h"

#define DNSMSG_NAME_MAX 255
#define DNSMSG_TYPE_A 1
#define DNSMSG_TYPE_AAAA 28

struct dnsmsg_question {
	uint16_t id;
	uint16_t qtype;
	uint16_t qclass;
	char name[DNSMSG_NAME_MAX + 1]; /* as c-ares expands it: dotted, no trailing dot */
};

/* The id and the only question of msg (a query or a response). False when it has not exactly one
 * question, or the question does not fit in len. */
bool dnsmsg_question(const uint8_t *msg, size_t len, struct dnsmsg_question *out);

/* The same question and id: names compared without case. */
bool dnsmsg_same_question(const struct dnsmsg_question *a, const struct dnsmsg_question *b);

struct dnsmsg_learned {
	struct dnsmsg_question question;
	struct ip_addr addrs[RECORDSET_MAX];
	unsigned count;
	uint32_t ttl_seconds; /* the least over the addresses and the CNAMEs before them */
};

/* What a response says: a NOERROR answer to one IN A or AAAA question, not truncated, with at
 * least one address for the name (CNAMEs followed). False for anything else: a query, an error,
 * NODATA, a malformed message. */
bool dnsmsg_read_answer(const uint8_t *msg, size_t len, struct dnsmsg_learned *out);

/* Takes the ready answers of the pool (dns_watch.h) until one reads as an answer (above) to a
 * query its socket sent, id and question alike: true with it in *out. False when none is left.
 * buf: DNS_ANSWER_MAX bytes of room. *unmatched counts the answers that matched no query. */
bool dnsmsg_next_learned(uint8_t *buf, struct dnsmsg_learned *out, unsigned *unmatched);

#endif
