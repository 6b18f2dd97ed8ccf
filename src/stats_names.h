/* The per-name part of the stats file (stats.h, struct stats_names): taken from the names, under
 * their lock, when the file is written. */
#ifndef DNSAWARE_STATS_NAMES_H
#define DNSAWARE_STATS_NAMES_H

#include "stats.h"

/* Names lock held. The names with tracked sockets, the STATS_NAMES_MAX with the most first (the
 * earlier in the names' list first among equals), each with its current addresses. */
void stats_names_collect(struct stats_names *out);

#endif
