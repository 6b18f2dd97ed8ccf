/* The log's token bucket. */
#include "ratelimit.h"

bool rate_limit_take(struct rate_limit *rl, uint64_t now_ms, unsigned per_second, unsigned burst,
		     uint64_t *suppressed)
{
	uint64_t capacity = (uint64_t)burst * 1000;
	*suppressed = 0;
	if (!rl->started) {
		rl->started = true;
		rl->tokens_milli = capacity;
		rl->last_ms = now_ms;
	}
	if (now_ms > rl->last_ms) {
		/* per_second lines a second = per_second thousandths of a line a millisecond. */
		uint64_t elapsed = now_ms - rl->last_ms;
		uint64_t gained = elapsed > capacity ? capacity : elapsed * per_second;
		rl->tokens_milli = rl->tokens_milli + gained > capacity ? capacity : rl->tokens_milli + gained;
		rl->last_ms = now_ms;
	}
	if (rl->tokens_milli < 1000) {
		rl->suppressed++;
		return false;
	}
	rl->tokens_milli -= 1000;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}
