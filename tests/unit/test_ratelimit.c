/* The log's token bucket: bursts, the sustained rate, and the count of what was suppressed. */
#include <criterion/criterion.h>

#include "ratelimit.h"

Test(ratelimit, burst_then_rate_then_the_suppressed_count)
{
	struct rate_limit rl = {0};
	uint64_t suppressed;
	unsigned passed = 0;

	for (int i = 0; i < 1000; i++)
		passed += rate_limit_take(&rl, 1000, 100, 500, &suppressed);
	cr_assert_eq(passed, 500, "a burst of 500, then nothing in the same millisecond");
	/* 100 ms later: 10 more lines' worth; the first one reports the 500 refused. */
	cr_assert(rate_limit_take(&rl, 1100, 100, 500, &suppressed));
	cr_assert_eq(suppressed, 500);
	passed = 1;
	for (int i = 0; i < 100; i++)
		passed += rate_limit_take(&rl, 1100, 100, 500, &suppressed);
	cr_assert_eq(passed, 10);
	/* A storm for 10 s at 1000 lines/s lets 100 a second through. */
	passed = 0;
	for (uint64_t t = 2000; t < 12000; t++)
		passed += rate_limit_take(&rl, t, 100, 500, &suppressed);
	cr_assert(passed >= 1000 && passed <= 1100, "%u lines passed in 10 s", passed);
}

Test(ratelimit, a_long_quiet_refills_only_to_the_burst)
{
	struct rate_limit rl = {0};
	uint64_t suppressed;
	cr_assert(rate_limit_take(&rl, 0, 100, 5, &suppressed));
	unsigned passed = 0;
	for (int i = 0; i < 20; i++)
		passed += rate_limit_take(&rl, UINT64_C(1) << 40, 100, 5, &suppressed);
	cr_assert_eq(passed, 5);
}
