/* Where every answer the program got becomes the name -> addresses record: from getaddrinfo,
 * gethostbyname* (hook_resolve.c) and the DNS answers it read itself (dns_learn.c). */
#ifndef DNSAWARE_LEARN_H
#define DNSAWARE_LEARN_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "stats.h"

/* A name the library should learn: not an address literal, selected by DNSAWARE_HOSTS and
 * DNSAWARE_EXCLUDE, and the library active and not inside its own work. */
bool learn_wanted(const char *host);
/* The same, wherever it is called from (the background thread collecting DNS answers). */
bool learn_selected(const char *host);

#define LEARN_TTL_UNKNOWN UINT32_MAX

/* Records n addresses of host (normalized first), counted under source. ttl_seconds: the answer's
 * TTL when the library saw it (LEARN_TTL_UNKNOWN from the libc calls). */
void learn_record(const char *host, const struct ip_addr *addrs, unsigned n, enum stats_learn_source source,
		  uint32_t ttl_seconds);

/* The same for an answer served from the stale-answer store (a cache hit, a kept answer): the
 * same answer for the same name recorded less than LEARN_REPEAT_MS ago is only counted, without
 * the names lock (two system calls, most of a cache hit's cost). */
#define LEARN_REPEAT_MS 1000
void learn_record_repeated(const char *host, const struct ip_addr *addrs, unsigned n, enum stats_learn_source source);

#endif
