/* Where the stale-answer store lives: a file this user's processes map together, so that a
 * program run once per request (curl in a loop, a cron job) gets the answer the previous run kept,
 * and one knowing the resolver is failing answers at once. */
#ifndef DNSAWARE_STALE_FILE_H
#define DNSAWARE_STALE_FILE_H

#include <stdint.h>

#include "stale_store.h"

/* The store, mapped on first use (NULL when it cannot be; one warning says why). Program threads
 * only, inside a lookup hook: the file's fd exists for the duration of the call, as glibc's own
 * files do during a lookup. */
struct stale_store *stale_file_store(void);

/* The store if it is mapped already, else NULL (the background thread never maps it). */
struct stale_store *stale_file_mapped(void);

/* The store's clock: milliseconds since boot, counting suspend, the same in every process (the
 * file's name carries the boot's id, so a file from an earlier boot is never read). */
uint64_t stale_file_now_ms(void);

/* The hash of the resolver's environment that each key carries (lookup_key.h). */
uint64_t stale_file_context(void);

#endif
