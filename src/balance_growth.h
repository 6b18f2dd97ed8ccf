/* Balance after a name's set grew (DNSAWARE_BALANCE=1; design.md, "Balance"): the connections
 * above their address's fair share are recycled at idle boundaries, spread over one TTL, so that
 * they reconnect to the new addresses. The thread's; names lock held. */
#ifndef DNSAWARE_BALANCE_GROWTH_H
#define DNSAWARE_BALANCE_GROWTH_H

#include <stdint.h>

struct name_entry;

/* After entry's answer added addresses: starts draining (reason balance) the sockets above each
 * address's fair share, per family. Nothing for a rotating name (its set is what it has shown
 * lately: recycling on its subsets would churn). Returns how many it started. */
unsigned balance_growth_recycle(const struct name_entry *entry, uint64_t now);

#endif
