/* A token bucket for log lines: a storm of events cannot flood a disk. Pure, unit-testable;
 * the caller serialises calls. */
#ifndef DNSAWARE_RATELIMIT_H
#define DNSAWARE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rate_limit {
	uint64_t tokens_milli;   /* thousandths of a line */
	uint64_t last_ms;
	bool started;
	uint64_t suppressed;     /* lines refused since the last one let through */
};

/* May one more line go out at now_ms, with `per_second` lines a second sustained and bursts of
 * `burst`? When it may and lines were refused before it, *suppressed gets their number (and the
 * count restarts); otherwise *suppressed is 0. */
bool rate_limit_take(struct rate_limit *rl, uint64_t now_ms, unsigned per_second, unsigned burst,
		     uint64_t *suppressed);

#endif
