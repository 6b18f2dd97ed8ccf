/* Re-resolving: which watched names are due, their queries on the background thread's c-ares
 * channel, and what an answer changes (the record set, the next refresh, drains). */
#ifndef DNSAWARE_REFRESH_H
#define DNSAWARE_REFRESH_H

#include <stdbool.h>
#include <stdint.h>

struct ares_addrinfo;
struct name_entry;

/* Names lock held. A name just given its first tracked socket: the program's own answer carries
 * no TTL, so it is asked once the floor has passed. */
void refresh_schedule_first(struct name_entry *entry, uint64_t now);

/* Sends the queries of the names due now; lowers *wake_at to the next one due. */
void refresh_start_due(uint64_t now, uint64_t *wake_at);

/* A good answer (both families) of the library's query for a lookup of the program's
 * (stale_refresh.h): for a watched name, it is the name's re-resolution too, and the next is a TTL
 * from now (one query per TTL serves both). */
void refresh_take_lookup_answer(const char *name, const struct ares_addrinfo *result);

/* An answer came in since the last call (c-ares answers /etc/hosts names from within
 * ares_getaddrinfo itself): the wake-up time computed before it is out of date. */
bool refresh_take_schedule_changed(void);

#endif
