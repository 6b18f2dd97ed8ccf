/* The answers the program read on its own DNS sockets (dns_watch.h), turned into the name ->
 * addresses record: read by the connect hook before it plans a connect (the program connects to
 * what it just looked up) and by the background thread. Takes locks and allocates: never called
 * from the read or send hooks. */
#ifndef DNSAWARE_DNS_LEARN_H
#define DNSAWARE_DNS_LEARN_H

#include <stdatomic.h>

#include "dns_watch.h"

void dns_learn_collect(void);
/* A fork child settling (runtime.h). */
void dns_learn_after_fork_child(void);

/* One atomic load when nothing waits: the connect hook's test. */
static inline void dns_learn_pending(void)
{
	if (__builtin_expect(atomic_load_explicit(&dns_watch_pending, memory_order_relaxed) != 0, 0))
		dns_learn_collect();
}

#endif
