/* A name's record set and the staleness rules of design.md; pure, unit-testable. */
#ifndef DNSAWARE_RECORDSET_H
#define DNSAWARE_RECORDSET_H

#include <stdbool.h>
#include <stdint.h>
#include "addr.h"

#define RECORDSET_MAX 64
#define RECORDSET_DEPARTED_MAX 16
/* Addresses that left the set, kept (the newest) for connect steering until they come back. */
#define RECORDSET_FORMER_MAX 16
/* A removed address seen again within this many answers reveals a rotating name. */
#define RECORDSET_DEPARTED_ANSWERS 4

struct record {
	struct ip_addr addr;
	uint16_t absent_count;  /* consecutive successful background answers without it */
	bool was_absent;        /* absent from at least one background answer since it was added */
	uint32_t conns;         /* this process's tracked sockets to it (balance, the stats file) */
};

struct departed {
	struct ip_addr addr;
	uint16_t answers_left;  /* 0: free slot */
};

struct recordset {
	struct record records[RECORDSET_MAX];
	unsigned count;
	/* Addresses removed in the last few answers: a rotating name whose subsets happened to
	 * leave one out for stale_after answers in a row brings it back soon after. */
	struct departed departed[RECORDSET_DEPARTED_MAX];
	unsigned departed_next;
	/* Addresses removed from the set and not seen since, newest last: a program that kept one
	 * (a DNS cache of its own) and connects to it is steered to a current address. */
	struct ip_addr former[RECORDSET_FORMER_MAX];
	unsigned former_count;
	bool rotating;          /* an absent address came back: absence alone no longer removes */
	unsigned failures;      /* consecutive failed refreshes (for backoff) */
};

/* Adds addresses the program was given (getaddrinfo & co). Present ones get absent_count = 0.
 * Never removes, never counts absence, never sets rotating. Returns how many were new. A former
 * address among them is current again. */
unsigned recordset_learn(struct recordset *rs, const struct ip_addr *addrs, unsigned n);

struct recordset_change {
	struct ip_addr removed[RECORDSET_MAX];
	unsigned removed_count;
	unsigned added_count;
	bool became_rotating;   /* true only on the answer that first made it rotating */
};

/* A successful background answer. n == 0 is treated as a failure (empty answers never remove).
 * Addresses in the answer: present (absent_count = 0; one with was_absent set, or one removed
 * within the last RECORDSET_DEPARTED_ANSWERS answers, makes the set rotating).
 * Addresses not in it: absent_count++, was_absent = true; removed once absent_count >= stale_after,
 * unless the set is rotating. Resets failures. */
void recordset_apply_answer(struct recordset *rs, const struct ip_addr *addrs, unsigned n,
			    unsigned stale_after, struct recordset_change *change);

/* Timeout, SERVFAIL, REFUSED, NXDOMAIN, empty: keeps the set, failures++. */
void recordset_apply_failure(struct recordset *rs);

bool recordset_contains(const struct recordset *rs, const struct ip_addr *addr);

/* A tracked socket to addr came (delta +1) or went (-1): its record's conns, if addr is current.
 * An address that left the set takes its count along; one that comes back starts at 0. */
void recordset_count_conn(struct recordset *rs, const struct ip_addr *addr, int delta);

/* True when addr was in the set, was removed, and has not been seen since (answer or program). */
bool recordset_was_member(const struct recordset *rs, const struct ip_addr *addr);

#endif
