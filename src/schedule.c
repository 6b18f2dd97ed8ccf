/* When to re-resolve, recycle and drain. All arithmetic saturates: a wrapped interval would turn
 * "in five minutes" into "now, forever" or "never". */
#include "schedule.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t saturating_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* floor(value * numerator / denominator), exact, for numerator <= denominator: splitting value by
 * the denominator keeps every product within 64 bits, where value * numerator would not fit. */
static uint64_t scale(uint64_t value, uint32_t numerator, uint32_t denominator)
{
	uint64_t quotient = value / denominator;
	uint64_t remainder = value % denominator;

	return quotient * numerator + remainder * numerator / denominator;
}

uint64_t schedule_ttl_ms(int64_t ttl_seconds, uint64_t floor_ms, uint64_t ceiling_ms)
{
	uint64_t ttl_ms = 0;

	if (ttl_seconds > 0) {
		uint64_t seconds = (uint64_t)ttl_seconds;
		ttl_ms = seconds > UINT64_MAX / 1000 ? UINT64_MAX : seconds * 1000;
	}
	/* The ceiling is applied last so it wins over a floor set above it, as the backoff does. */
	return min_u64(max_u64(ttl_ms, floor_ms), ceiling_ms);
}

uint64_t schedule_first_refresh_ms(uint64_t fresh_ms, uint64_t interval_ms, uint64_t now_ms, uint32_t random)
{
	uint64_t due = saturating_add(fresh_ms, schedule_jitter(interval_ms, random));
	return due > now_ms ? due : now_ms;
}

uint64_t schedule_jitter(uint64_t interval_ms, uint32_t random)
{
	if (interval_ms == 0)
		return 0;
	uint64_t lowest = scale(interval_ms, 9, 10);
	uint64_t span = interval_ms / 5;
	/* random == UINT32_MAX must reach the top of the range, hence UINT32_MAX, not 2^32. */
	uint64_t jittered = saturating_add(lowest, scale(span, random, UINT32_MAX));

	/* A zero interval would mean "due now" and spin. */
	return jittered == 0 ? 1 : jittered;
}

uint64_t schedule_backoff_ms(unsigned failures, uint64_t floor_ms, uint64_t ceiling_ms)
{
	unsigned doublings = failures == 0 ? 0 : failures - 1;

	if (floor_ms == 0)
		return 0;
	if (doublings >= 64 || floor_ms > (ceiling_ms >> doublings))
		return ceiling_ms;
	return floor_ms << doublings;
}

uint64_t schedule_spread_ms(unsigned index, unsigned count, uint64_t window_ms, uint64_t step_ms)
{
	if (count == 0 || index == 0)
		return 0;
	if (index >= count)
		index = count - 1;
	uint64_t span = step_ms > window_ms / count ? window_ms : step_ms * count;

	return scale(span, index, count);
}
