/* When to re-resolve, recycle and drain: clamping, jitter and backoff; pure, unit-testable. */
#ifndef DNSAWARE_SCHEDULE_H
#define DNSAWARE_SCHEDULE_H

#include <stdint.h>

/* TTL seconds (negative means 0, as /etc/hosts answers have) clamped to [floor, ceiling] in ms.
 * Never wraps. */
uint64_t schedule_ttl_ms(int64_t ttl_seconds, uint64_t floor_ms, uint64_t ceiling_ms);

/* interval scaled by a factor in [0.9, 1.1] chosen by random (uniform over uint32_t). */
uint64_t schedule_jitter(uint64_t interval_ms, uint32_t random);

/* The first refresh of a name a socket now holds: one jittered interval after its set was last
 * answered or asked for (fresh_ms), not after this socket, and at once (now) if that is past. A
 * set kept while the name had no socket (the program holds the address, not the name), or a fork
 * child's inherited one, is as old as its answer: the socket may already be on an address DNS
 * has moved from. Asked for, whatever came of it: a failed refresh bounds the next one too. */
uint64_t schedule_first_refresh_ms(uint64_t fresh_ms, uint64_t interval_ms, uint64_t now_ms, uint32_t random);

/* Retry delay after `failures` consecutive failures (>= 1): floor * 2^(failures-1), capped at ceiling. */
uint64_t schedule_backoff_ms(unsigned failures, uint64_t floor_ms, uint64_t ceiling_ms);

/* Offset of the index-th of count sockets that went stale together: spread evenly over
 * min(window_ms, count * step_ms) so reconnects do not all land at once. index 0 -> 0. */
uint64_t schedule_spread_ms(unsigned index, unsigned count, uint64_t window_ms, uint64_t step_ms);

#endif
