/* Balance's choices (design.md, "Balance"; DNSAWARE_BALANCE=1): which of a name's current addresses
 * a connect goes to, and how many connections each address holds above its fair share when the set
 * grows. Pure, unit-tested (tests/unit/test_balance.c); hook_connect.c and balance_growth.c use
 * them under the names lock. */
#ifndef DNSAWARE_BALANCE_H
#define DNSAWARE_BALANCE_H

#include <stdbool.h>
#include <stdint.h>

/* One current address of the connect's family, as the choice sees it. */
struct balance_candidate {
	uint32_t conns; /* this process's tracked sockets to it */
	bool cooling;   /* a connect to it failed lately (DNSAWARE_COOLDOWN) */
};

/* The index of the candidate a connect goes to: the one with the fewest connections among the
 * healthy ones (among all of them when every one is cooling), ties taken in turn (the turn-th of
 * the tied, in their order). -1 when n is 0. */
int balance_choose(const struct balance_candidate *c, unsigned n, unsigned turn);

/* ceil(conns / addrs): the most connections an address holds when conns are spread over addrs
 * addresses (0 when addrs is 0). */
uint32_t balance_fair_share(uint32_t conns, uint32_t addrs);

/* How many of an address's conns connections are above share. */
uint32_t balance_excess(uint32_t conns, uint32_t share);

#endif
