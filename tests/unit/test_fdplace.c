/* Where the library's own fds go: the band under the top of the smallest fd table the program's own
 * fds need, independent of RLIMIT_NOFILE. */
#include <criterion/criterion.h>

#include <stdint.h>

#include "fdplace.h"
#include "tracked.h"

#define NO_LIMIT ((uint64_t)1 << 20) /* 1,048,576: RLIMIT_NOFILE in many containers */

Test(table, sizes_follow_the_kernel)
{
	cr_assert_eq(fdplace_table_size(0), 64);
	cr_assert_eq(fdplace_table_size(63), 64);
	cr_assert_eq(fdplace_table_size(64), 128);
	cr_assert_eq(fdplace_table_size(127), 128);
	cr_assert_eq(fdplace_table_size(128), 256);
	cr_assert_eq(fdplace_table_size(255), 256);
	cr_assert_eq(fdplace_table_size(256), 512);
	cr_assert_eq(fdplace_table_size(383), 512);
	cr_assert_eq(fdplace_table_size(511), 512);
	cr_assert_eq(fdplace_table_size(512), 1024);
	cr_assert_eq(fdplace_table_size(19999), 32768);
	cr_assert_eq(fdplace_table_size(1048575), 1048576);
	cr_assert_geq(fdplace_table_size(UINT64_MAX), (uint64_t)1 << 62); /* no wrap */
}

Test(band, a_small_program_keeps_the_first_table_whatever_the_limit)
{
	for (uint64_t limit = 64; limit <= NO_LIMIT; limit *= 2) {
		cr_assert_eq(fdplace_band_low(2, limit, FDTABLE_MAX_FD), 64 - FDPLACE_BAND, "limit %llu",
			     (unsigned long long)limit);
		cr_assert_eq(fdplace_band_low(-1, limit, FDTABLE_MAX_FD), 64 - FDPLACE_BAND);
	}
}

Test(band, the_table_never_grows_past_the_programs_need_plus_a_constant)
{
	/* For every program size: the band's top is the table the kernel would give a program with
	 * GAP + BAND more fds, and the band stays GAP above the program's fds. */
	for (int64_t dense_top = -1; dense_top < 300000; dense_top += dense_top < 2000 ? 1 : 997) {
		int64_t low = fdplace_band_low(dense_top, NO_LIMIT, FDTABLE_MAX_FD);
		cr_assert_geq(low, dense_top + 1 + FDPLACE_GAP, "dense_top %lld", (long long)dense_top);
		uint64_t top = (uint64_t)low + FDPLACE_BAND;
		uint64_t need = fdplace_table_size((uint64_t)(dense_top + FDPLACE_GAP + FDPLACE_BAND));
		cr_assert_eq(top, need, "dense_top %lld: band top %llu, table %llu", (long long)dense_top,
			     (unsigned long long)top, (unsigned long long)need);
		/* At most twice the table of the program alone, and never the limit's. */
		cr_assert_leq(top, 2 * fdplace_table_size((uint64_t)(dense_top < 0 ? 0 : dense_top)) + 64);
	}
}

Test(band, the_same_band_under_any_limit_that_holds_it)
{
	for (int64_t dense_top = -1; dense_top < 5000; dense_top += 7) {
		int64_t reference = fdplace_band_low(dense_top, NO_LIMIT, FDTABLE_MAX_FD);
		uint64_t top = (uint64_t)reference + FDPLACE_BAND;
		for (uint64_t limit = top; limit <= NO_LIMIT; limit = limit * 3 / 2)
			cr_assert_eq(fdplace_band_low(dense_top, limit, FDTABLE_MAX_FD), reference);
	}
}

Test(band, a_low_limit_squeezes_the_band_but_keeps_it_above_the_program)
{
	cr_assert_eq(fdplace_band_low(2, 40, FDTABLE_MAX_FD), 40 - FDPLACE_BAND);
	cr_assert_eq(fdplace_band_low(30, 40, FDTABLE_MAX_FD), 31);
	cr_assert_eq(fdplace_band_low(38, 40, FDTABLE_MAX_FD), 39);
	cr_assert_eq(fdplace_band_low(39, 40, FDTABLE_MAX_FD), -1);
	cr_assert_eq(fdplace_band_low(100, 50, FDTABLE_MAX_FD), -1);
	cr_assert_eq(fdplace_band_low(2, 0, FDTABLE_MAX_FD), -1);
}

Test(band, never_past_the_library_table)
{
	cr_assert_eq(fdplace_band_low(FDTABLE_MAX_FD - 10, NO_LIMIT * 4, FDTABLE_MAX_FD), FDTABLE_MAX_FD - 9);
	cr_assert_eq(fdplace_band_low(FDTABLE_MAX_FD - 1, NO_LIMIT * 4, FDTABLE_MAX_FD), -1);
	cr_assert_eq(fdplace_band_low(-5, NO_LIMIT, FDTABLE_MAX_FD), 64 - FDPLACE_BAND);
}
