/* The per-name part of the stats file (stats.h, struct stats_names): taken from the names, under
 * their lock, when the file is written. */
#ifndef DNSAWARE_STATS_NAMES_H
#define DNSAWARE_STATS_NAMES_H

#include "stats.h"

/* Names lock held. The names with series of their own (up to out->capacity), each with its current
 * addresses and its connects, sorted by name; the sockets and connects of the rest as _other. */
void stats_names_collect(struct stats_names *out);

#endif
