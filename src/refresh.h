/* Re-resolving: which watched names are due, their queries on the background thread's c-ares
 * channel, and what an answer changes (the record set, the next refresh, drains). */
#ifndef DNSAWARE_REFRESH_H
#define DNSAWARE_REFRESH_H

#include <stdbool.h>
#include <stdint.h>

struct name_entry;

/* Names lock held. A name just given its first tracked socket: the program's own answer carries
 * no TTL, so it is asked once the floor has passed. */
void refresh_schedule_first(struct name_entry *entry, uint64_t now);

/* Sends the queries of the names due now; lowers *wake_at to the next one due. */
void refresh_start_due(uint64_t now, uint64_t *wake_at);

/* An answer came in since the last call (c-ares answers /etc/hosts names from within
 * ares_getaddrinfo itself): the wake-up time computed before it is out of date. */
bool refresh_take_schedule_changed(void);

#endif
