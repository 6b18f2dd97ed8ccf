/* Re-resolve intervals, jitter, backoff and drain spreading: bounds and overflow guards. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdint.h>

#include "schedule.h"

#define FLOOR 5000ULL
#define CEILING 300000ULL
#define THIRTY_DAYS_MS (30ULL * 24 * 3600 * 1000)

Test(ttl, zero_and_negative_use_the_floor)
{
	cr_assert_eq(schedule_ttl_ms(0, FLOOR, CEILING), FLOOR);
	cr_assert_eq(schedule_ttl_ms(-1, FLOOR, CEILING), FLOOR);
	cr_assert_eq(schedule_ttl_ms(INT64_MIN, FLOOR, CEILING), FLOOR);
}

Test(ttl, clamps_to_floor_and_ceiling)
{
	cr_assert_eq(schedule_ttl_ms(1, FLOOR, CEILING), FLOOR);
	cr_assert_eq(schedule_ttl_ms(4, FLOOR, CEILING), FLOOR);
	cr_assert_eq(schedule_ttl_ms(5, FLOOR, CEILING), 5000);
	cr_assert_eq(schedule_ttl_ms(6, FLOOR, CEILING), 6000);
	cr_assert_eq(schedule_ttl_ms(60, FLOOR, CEILING), 60000);
	cr_assert_eq(schedule_ttl_ms(299, FLOOR, CEILING), 299000);
	cr_assert_eq(schedule_ttl_ms(300, FLOOR, CEILING), CEILING);
	cr_assert_eq(schedule_ttl_ms(301, FLOOR, CEILING), CEILING);
	cr_assert_eq(schedule_ttl_ms(86400, FLOOR, CEILING), CEILING);
}

Test(ttl, huge_values_saturate_instead_of_wrapping)
{
	cr_assert_eq(schedule_ttl_ms(INT64_MAX, FLOOR, CEILING), CEILING);
	cr_assert_eq(schedule_ttl_ms(INT64_MAX / 1000 + 1, FLOOR, CEILING), CEILING);
	cr_assert_eq(schedule_ttl_ms((int64_t)UINT32_MAX + 1, FLOOR, CEILING), CEILING);
	cr_assert_eq(schedule_ttl_ms(INT64_MAX, FLOOR, UINT64_MAX), UINT64_MAX);
	cr_assert_eq(schedule_ttl_ms(INT64_MAX / 1000, 0, UINT64_MAX), (uint64_t)(INT64_MAX / 1000) * 1000);
}

Test(ttl, ceiling_wins_over_a_floor_above_it)
{
	cr_assert_eq(schedule_ttl_ms(0, 10000, 2000), 2000);
	cr_assert_eq(schedule_ttl_ms(5, 10000, 2000), 2000);
}

/* Deterministic so a failure reproduces. */
static uint32_t next_random(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

static void assert_jitter_in_bounds(uint64_t interval, uint32_t random)
{
	uint64_t jittered = schedule_jitter(interval, random);

	cr_assert_geq(jittered, 1, "interval %llu random %u gave 0", (unsigned long long)interval, random);
	cr_assert_geq(jittered, interval * 9 / 10, "interval %llu random %u gave %llu",
		      (unsigned long long)interval, random, (unsigned long long)jittered);
	cr_assert_leq(jittered, interval < 10 ? interval + 1 : interval * 11 / 10,
		      "interval %llu random %u gave %llu",
		      (unsigned long long)interval, random, (unsigned long long)jittered);
}

Test(jitter, ends_of_the_range)
{
	cr_assert_eq(schedule_jitter(10000, 0), 9000);
	cr_assert_eq(schedule_jitter(10000, UINT32_MAX), 11000);
	uint64_t middle = schedule_jitter(10000, UINT32_MAX / 2);
	cr_assert(middle >= 9999 && middle <= 10001, "middle gave %llu", (unsigned long long)middle);
	cr_assert_eq(schedule_jitter(THIRTY_DAYS_MS, 0), THIRTY_DAYS_MS / 10 * 9);
	cr_assert_eq(schedule_jitter(THIRTY_DAYS_MS, UINT32_MAX), THIRTY_DAYS_MS / 10 * 11);
}

Test(jitter, stays_in_bounds_over_many_randoms)
{
	const uint64_t intervals[] = {1, 2, 7, 9, 10, 11, 100, 1000, FLOOR, 60000, CEILING,
				      THIRTY_DAYS_MS - 1, THIRTY_DAYS_MS};
	uint32_t state = 2463534242u;

	for (unsigned i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
		assert_jitter_in_bounds(intervals[i], 0);
		assert_jitter_in_bounds(intervals[i], 1);
		assert_jitter_in_bounds(intervals[i], UINT32_MAX / 2);
		assert_jitter_in_bounds(intervals[i], UINT32_MAX - 1);
		assert_jitter_in_bounds(intervals[i], UINT32_MAX);
		for (unsigned round = 0; round < 20000; round++)
			assert_jitter_in_bounds(intervals[i], next_random(&state));
	}
}

Test(jitter, grows_with_the_random)
{
	uint64_t previous = 0;

	for (uint64_t random = 0; random <= UINT32_MAX; random += 65537) {
		uint64_t jittered = schedule_jitter(THIRTY_DAYS_MS, (uint32_t)random);
		cr_assert_geq(jittered, previous);
		previous = jittered;
	}
}

Test(jitter, spreads_over_the_whole_range)
{
	unsigned buckets[10] = {0};
	uint32_t state = 88172645u;
	const unsigned rounds = 100000;

	for (unsigned round = 0; round < rounds; round++) {
		uint64_t jittered = schedule_jitter(100000, next_random(&state));
		unsigned bucket = (unsigned)((jittered - 90000) / 2000);
		buckets[bucket < 10 ? bucket : 9]++;
	}
	for (unsigned i = 0; i < 10; i++)
		cr_assert(buckets[i] > rounds / 10 * 9 / 10 && buckets[i] < rounds / 10 * 11 / 10,
			  "bucket %u has %u of %u", i, buckets[i], rounds);
}

Test(jitter, zero_stays_zero_and_huge_does_not_wrap)
{
	cr_assert_eq(schedule_jitter(0, 0), 0);
	cr_assert_eq(schedule_jitter(0, UINT32_MAX), 0);
	cr_assert_eq(schedule_jitter(1, 0), 1);
	cr_assert_geq(schedule_jitter(UINT64_MAX, 0), UINT64_MAX / 10 * 9);
	cr_assert_eq(schedule_jitter(UINT64_MAX, UINT32_MAX), UINT64_MAX);
}

Test(backoff, doubles_from_the_floor)
{
	const uint64_t expected[] = {FLOOR, FLOOR, 10000, 20000, 40000, 80000, 160000, CEILING, CEILING};

	for (unsigned failures = 0; failures < sizeof(expected) / sizeof(expected[0]); failures++)
		cr_assert_eq(schedule_backoff_ms(failures, FLOOR, CEILING), expected[failures],
			     "failures %u", failures);
}

Test(backoff, capped_without_overflow)
{
	const unsigned failures[] = {63, 64, 65, 66, 100, 1000, UINT_MAX - 1, UINT_MAX};

	for (unsigned i = 0; i < sizeof(failures) / sizeof(failures[0]); i++)
		cr_assert_eq(schedule_backoff_ms(failures[i], FLOOR, CEILING), CEILING,
			     "failures %u", failures[i]);
	cr_assert_eq(schedule_backoff_ms(64, 1, UINT64_MAX), 1ULL << 63);
	cr_assert_eq(schedule_backoff_ms(65, 1, UINT64_MAX), UINT64_MAX);
	cr_assert_eq(schedule_backoff_ms(UINT_MAX, 1, UINT64_MAX), UINT64_MAX);
	cr_assert_eq(schedule_backoff_ms(2, UINT64_MAX / 2 + 1, UINT64_MAX), UINT64_MAX);
}

Test(backoff, never_decreases)
{
	uint64_t previous = 0;

	for (unsigned failures = 0; failures < 200; failures++) {
		uint64_t delay = schedule_backoff_ms(failures, 3, THIRTY_DAYS_MS);
		cr_assert_geq(delay, previous);
		cr_assert_leq(delay, THIRTY_DAYS_MS);
		previous = delay;
	}
	cr_assert_eq(previous, THIRTY_DAYS_MS);
}

Test(backoff, ceiling_wins_over_a_floor_above_it)
{
	cr_assert_eq(schedule_backoff_ms(1, 10000, 2000), 2000);
}

Test(spread, first_socket_goes_at_once)
{
	cr_assert_eq(schedule_spread_ms(0, 1, 60000, 100), 0);
	cr_assert_eq(schedule_spread_ms(0, 1000, 60000, 100), 0);
	cr_assert_eq(schedule_spread_ms(0, 0, 60000, 100), 0);
	cr_assert_eq(schedule_spread_ms(5, 0, 60000, 100), 0);
}

Test(spread, steps_apart_when_the_window_is_large)
{
	for (unsigned index = 0; index < 10; index++)
		cr_assert_eq(schedule_spread_ms(index, 10, 60000, 50), index * 50ULL);
}

Test(spread, fits_the_window_when_steps_would_exceed_it)
{
	for (unsigned index = 0; index < 100; index++) {
		uint64_t offset = schedule_spread_ms(index, 100, 10000, 1000);
		cr_assert_eq(offset, index * 100ULL);
		cr_assert_lt(offset, 10000);
	}
}

Test(spread, evenly_distributed)
{
	const unsigned count = 1000;
	unsigned buckets[10] = {0};
	uint64_t previous = 0;

	for (unsigned index = 0; index < count; index++) {
		uint64_t offset = schedule_spread_ms(index, count, 60000, 100);
		cr_assert_lt(offset, 60000);
		cr_assert_geq(offset, previous);
		if (index > 0)
			cr_assert_gt(offset, previous, "index %u lands with the one before", index);
		previous = offset;
		buckets[offset / 6000]++;
	}
	for (unsigned i = 0; i < 10; i++)
		cr_assert_eq(buckets[i], count / 10, "bucket %u has %u", i, buckets[i]);
}

Test(spread, index_past_count_stays_inside_the_window)
{
	uint64_t last = schedule_spread_ms(9, 10, 1000, 1000);

	cr_assert_lt(last, 1000);
	cr_assert_eq(schedule_spread_ms(10, 10, 1000, 1000), last);
	cr_assert_eq(schedule_spread_ms(UINT_MAX, 10, 1000, 1000), last);
}

Test(spread, zero_step_or_window_means_no_spread)
{
	cr_assert_eq(schedule_spread_ms(5, 10, 60000, 0), 0);
	cr_assert_eq(schedule_spread_ms(5, 10, 0, 100), 0);
}

Test(spread, huge_values_do_not_overflow)
{
	uint64_t last = schedule_spread_ms(UINT_MAX - 1, UINT_MAX, UINT64_MAX, UINT64_MAX);

	cr_assert_lt(last, UINT64_MAX);
	cr_assert_gt(last, UINT64_MAX / 2);
	cr_assert_eq(schedule_spread_ms(1, 2, UINT64_MAX, UINT64_MAX), UINT64_MAX / 2);
	/* The last of 2^32 - 1 sockets lands just inside the window, not at or past it. */
	cr_assert_eq(schedule_spread_ms(UINT_MAX - 1, UINT_MAX, THIRTY_DAYS_MS, 1000), THIRTY_DAYS_MS - 1);
}

Test(first_refresh, one_interval_after_the_answer_not_after_the_socket)
{
	/* Answered at 1000, interval 10 s, a socket at 4000: due at 1000 + 9-11 s. */
	uint64_t due = schedule_first_refresh_ms(1000, 10000, 4000, 0);
	cr_assert_eq(due, 1000 + 9000);
	due = schedule_first_refresh_ms(1000, 10000, 4000, UINT32_MAX);
	cr_assert_eq(due, 1000 + 11000);
}

Test(first_refresh, a_set_older_than_its_interval_is_asked_for_at_once)
{
	/* Kept while the name had no socket, or inherited by a fork child: a minute old, 10 s TTL. */
	cr_assert_eq(schedule_first_refresh_ms(1000, 10000, 61000, 12345), 61000);
	/* Just answered: a whole interval, as before. */
	uint64_t due = schedule_first_refresh_ms(61000, 10000, 61000, 0);
	cr_assert_eq(due, 61000 + 9000);
}

Test(first_refresh, huge_values_saturate)
{
	cr_assert_eq(schedule_first_refresh_ms(UINT64_MAX - 5, 10000, 0, 0), UINT64_MAX);
}
