/* What a fork child keeps of its parent's background thread: its channel and socket lists, never
 * used again. The parent's thread may have been in the middle of changing them when the program
 * forked, so the child cannot walk or free them; it keeps pointers to them, one small block per
 * generation, so that they stay what they are: memory kept on purpose, bounded by one parent's
 * worth per fork (LeakSanitizer reported it as lost in every fork child). */
#ifndef DNSAWARE_FORK_KEEP_H
#define DNSAWARE_FORK_KEEP_H

/* A fork child starts keeping its parent's leftovers (before the fork_keep calls). */
void fork_keep_begin(void);

/* Keeps the count pointers reachable (nothing when all are NULL). At most 8 per generation. */
void fork_keep(void *const *pointers, unsigned count);

#endif
