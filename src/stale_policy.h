/* What a lookup of a name the store knows does (design.md, "The resolver's bad days"): the state
 * machine of a failing name, as a pure function of the kept state and the time. Unit-tested. */
#ifndef DNSAWARE_STALE_POLICY_H
#define DNSAWARE_STALE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "stale_store.h"

/* A failing name's resolver is asked again at most this often (one lookup does it). */
#define STALE_RETRY_EVERY_MS 30000
/* The cache asks for a name again once this much of its time is left (refresh-ahead): a name
 * looked up all the time never expires. Sixteenths of the time. */
#define STALE_REFRESH_AHEAD_16THS 4

enum stale_plan {
	STALE_PLAN_ASK,        /* ask the resolver and wait for it; its temporary failure gets the stale answer */
	STALE_PLAN_ASK_TIMED,  /* ask the library's own query, at most resolve_timeout; the answer is
				* the kept one when it agrees, else the resolver's */
	STALE_PLAN_STALE,      /* the name is failing: the stale answer at once */
	STALE_PLAN_STALE_RETRY,/* the same, and this lookup is the one that retries (if it can claim it) */
	STALE_PLAN_CACHED,     /* the cache: the kept answer, still fresh */
};

struct stale_settings {
	uint64_t stale_max_ms;       /* 0: never stale */
	uint64_t resolve_timeout_ms; /* 0: no timer */
	bool cache;
};

/* record: the key's slot (NULL: none). */
enum stale_plan stale_plan_lookup(const struct stale_record *record, const struct stale_settings *settings,
				  uint64_t now_ms);

/* Whether the kept answer may still be served stale. */
bool stale_usable(const struct stale_record *record, const struct stale_settings *settings, uint64_t now_ms);

/* A cached answer asked for in the last part of its time: the library should query it now. */
bool stale_refresh_due(const struct stale_record *record, uint64_t now_ms);

#endif
