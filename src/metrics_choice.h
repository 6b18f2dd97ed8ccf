/* Which names have series of their own in the stats file (DNSAWARE_METRICS_NAMES; issue 18): the
 * busiest, chosen so that no name goes between its own series and name="_other" from one write to
 * the next. Pure, unit-tested (tests/unit/test_metrics_choice.c); names.c applies it at each write. */
#ifndef DNSAWARE_METRICS_CHOICE_H
#define DNSAWARE_METRICS_CHOICE_H

#include <stdbool.h>
#include <stdint.h>

/* A name changes side at most once in this many writes. */
#define METRICS_CHOICE_STABLE_ROUNDS 3
/* A name takes the place of one with series of its own when it is this many times busier (and
 * busier by more than METRICS_CHOICE_MARGIN). */
#define METRICS_CHOICE_FACTOR 2
#define METRICS_CHOICE_MARGIN 2
/* At most this many names change side at one write. */
#define METRICS_CHOICE_SWAPS 4

struct metrics_choice {
	uint64_t activity;    /* since the last write: its connects, plus its tracked sockets */
	bool own;             /* it has series of its own */
	uint32_t changed_at;  /* the write at which own last changed (0: never) */
};

/* c has not changed side in the last METRICS_CHOICE_STABLE_ROUNDS writes (before round). */
bool metrics_choice_settled(const struct metrics_choice *c, uint32_t round);

/* At write number round (from 1): gives free places to the busiest names without one, then lets a
 * name take the place of one with series of its own when it is METRICS_CHOICE_FACTOR times busier,
 * neither having changed side in the last METRICS_CHOICE_STABLE_ROUNDS writes. Sets own and
 * changed_at; returns how many names changed side. */
unsigned metrics_choose(struct metrics_choice *const *names, unsigned n, unsigned max_own, uint32_t round);

#endif
