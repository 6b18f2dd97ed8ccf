#include "stale_policy.h"

bool stale_usable(const struct stale_record *record, const struct stale_settings *settings, uint64_t now_ms)
{
	return record != NULL && settings->stale_max_ms > 0 && now_ms >= record->state.stored_ms &&
	       now_ms - record->state.stored_ms <= settings->stale_max_ms;
}

enum stale_plan stale_plan_lookup(const struct stale_record *record, const struct stale_settings *settings,
				  uint64_t now_ms)
{
	if (record == NULL)
		return STALE_PLAN_ASK;
	const struct stale_slot_state *state = &record->state;
	bool failing = state->failing_since_ms != 0;
	if (settings->cache && !failing && !state->from_hosts && state->dns_confirmed &&
	    now_ms < state->confirmed_until_ms)
		return STALE_PLAN_CACHED;
	if (!stale_usable(record, settings, now_ms))
		return STALE_PLAN_ASK;
	if (failing)
		return now_ms >= state->retry_at_ms ? STALE_PLAN_STALE_RETRY : STALE_PLAN_STALE;
	/* Not a name from /etc/hosts: the library's query says nothing about the program's lookup
	 * of it. (A name from another source the query cannot find, or finds elsewhere, goes to the
	 * real call.) */
	if (settings->resolve_timeout_ms > 0 && !state->from_hosts)
		return STALE_PLAN_ASK_TIMED;
	return STALE_PLAN_ASK;
}

bool stale_refresh_due(const struct stale_record *record, uint64_t now_ms)
{
	uint64_t from = record->state.confirmed_ms, until = record->state.confirmed_until_ms;
	return until > now_ms && from <= now_ms && until - now_ms <= (until - from) * STALE_REFRESH_AHEAD_16THS / 16;
}
