/* metrics_choice.c: which names have series of their own, and that none flaps. */
#include <criterion/criterion.h>

#include "metrics_choice.h"

#define N 6

static struct metrics_choice names[N];
static struct metrics_choice *ptr[N];

static void setup(void)
{
	for (unsigned i = 0; i < N; i++) {
		names[i] = (struct metrics_choice){0};
		ptr[i] = &names[i];
	}
}

TestSuite(metrics_choice, .init = setup);

static void activity(const uint64_t a[N])
{
	for (unsigned i = 0; i < N; i++)
		names[i].activity = a[i];
}

Test(metrics_choice, free_places_go_to_the_busiest)
{
	activity((uint64_t[N]){5, 0, 9, 1, 7, 3});
	metrics_choose(ptr, N, 3, 1);
	bool want[N] = {true, false, true, false, true, false};
	for (unsigned i = 0; i < N; i++)
		cr_assert_eq(names[i].own, want[i], "name %u", i);
}

Test(metrics_choice, a_quiet_name_keeps_its_place_against_one_barely_busier)
{
	activity((uint64_t[N]){10, 10, 0, 0, 0, 0});
	metrics_choose(ptr, N, 2, 1);
	activity((uint64_t[N]){10, 10, 15, 0, 0, 0});
	cr_assert_eq(metrics_choose(ptr, N, 2, 10), 0, "15 is not twice 10 and 2 more");
	cr_assert(names[0].own && names[1].own && !names[2].own);
}

Test(metrics_choice, a_much_busier_name_takes_the_quietest_place)
{
	activity((uint64_t[N]){10, 1, 0, 0, 0, 0});
	metrics_choose(ptr, N, 2, 1);
	activity((uint64_t[N]){10, 1, 50, 0, 0, 0});
	cr_assert_eq(metrics_choose(ptr, N, 2, 10), 2);
	cr_assert(names[0].own && !names[1].own && names[2].own);
}

Test(metrics_choice, no_name_changes_side_from_one_write_to_the_next)
{
	/* Activity that swings every write: each name changes side at most once in
	 * METRICS_CHOICE_STABLE_ROUNDS writes, and never at two writes in a row. */
	uint32_t last_change[N] = {0};
	bool before[N];
	for (uint32_t round = 1; round <= 60; round++) {
		for (unsigned i = 0; i < N; i++) {
			names[i].activity = ((round + i) % 2) ? 100 * (i + 1) : 0;
			before[i] = names[i].own;
		}
		metrics_choose(ptr, N, 3, round);
		unsigned own = 0;
		for (unsigned i = 0; i < N; i++) {
			own += names[i].own;
			if (names[i].own != before[i]) {
				cr_assert(last_change[i] == 0 || round - last_change[i] >= METRICS_CHOICE_STABLE_ROUNDS,
					  "name %u changed at writes %u and %u", i, last_change[i], round);
				last_change[i] = round;
			}
		}
		cr_assert_leq(own, 3, "never more than the limit");
	}
}

Test(metrics_choice, zero_places_means_everything_under_other)
{
	activity((uint64_t[N]){5, 5, 5, 5, 5, 5});
	metrics_choose(ptr, N, 0, 1);
	for (unsigned i = 0; i < N; i++)
		cr_assert_not(names[i].own);
}
