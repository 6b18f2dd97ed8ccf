/* name_metrics.c: connect results and the connect-time histogram. */
#include <criterion/criterion.h>
#include <errno.h>

#include "name_metrics.h"

Test(name_metrics, results_from_errno)
{
	cr_assert_eq(connect_result_of_errno(ECONNREFUSED), CONNECT_REFUSED);
	cr_assert_eq(connect_result_of_errno(ETIMEDOUT), CONNECT_TIMEOUT);
	cr_assert_eq(connect_result_of_errno(EHOSTUNREACH), CONNECT_UNREACHABLE);
	cr_assert_eq(connect_result_of_errno(ENETUNREACH), CONNECT_UNREACHABLE);
	cr_assert_eq(connect_result_of_errno(EACCES), CONNECT_ERROR);
	cr_assert_str_eq(connect_result_name(CONNECT_UNREACHABLE), "unreachable");
}

Test(name_metrics, buckets_are_upper_bounds_and_cumulative)
{
	struct name_metrics m = {0};
	name_metrics_record(&m, CONNECT_OK, 100000);      /* 0.1 ms */
	name_metrics_record(&m, CONNECT_OK, 500000);      /* exactly 0.5 ms: le="0.0005" */
	name_metrics_record(&m, CONNECT_OK, 700000);      /* le="0.001" */
	name_metrics_record(&m, CONNECT_OK, 3000000000);  /* 3 s: le="5" */
	name_metrics_record(&m, CONNECT_OK, 60000000000); /* 60 s: +Inf only */
	name_metrics_record(&m, CONNECT_REFUSED, 0);
	cr_assert_eq(name_metrics_cumulative(&m, 0), 2);
	cr_assert_eq(name_metrics_cumulative(&m, 1), 3);
	cr_assert_eq(name_metrics_cumulative(&m, 11), 3, "le=2.5");
	cr_assert_eq(name_metrics_cumulative(&m, 12), 4, "le=5");
	cr_assert_eq(name_metrics_cumulative(&m, NAME_METRICS_BUCKETS), 5, "+Inf is the count");
	cr_assert_eq(m.duration_count, 5, "failures are not timed");
	cr_assert_eq(m.duration_sum_ns, 100000ull + 500000 + 700000 + 3000000000ull + 60000000000ull);
	cr_assert_eq(m.results[CONNECT_OK], 5);
	cr_assert_eq(m.results[CONNECT_REFUSED], 1);
	for (unsigned i = 1; i <= NAME_METRICS_BUCKETS; i++)
		cr_assert_geq(name_metrics_cumulative(&m, i), name_metrics_cumulative(&m, i - 1));
}

Test(name_metrics, a_non_blocking_connects_time)
{
	cr_assert_eq(name_metrics_connect_ns(9000000, 120, 0), 120000, "the handshake's round trip");
	cr_assert_eq(name_metrics_connect_ns(50000, 120, 0), 50000, "never more than the time since the call");
	cr_assert_eq(name_metrics_connect_ns(5000000000ull, 300, 1), 1000300000ull, "one SYN sent again: 1 s more");
	cr_assert_eq(name_metrics_connect_ns(9000000000ull, 300, 2), 3000300000ull, "two: 1 + 2 s");
}

Test(name_metrics, folding_into_other_adds_everything)
{
	struct name_metrics a = {0}, b = {0};
	name_metrics_record(&a, CONNECT_OK, 1000000);
	name_metrics_record(&a, CONNECT_TIMEOUT, 0);
	name_metrics_record(&b, CONNECT_OK, 20000000);
	name_metrics_add(&b, &a);
	cr_assert_eq(b.results[CONNECT_OK], 2);
	cr_assert_eq(b.results[CONNECT_TIMEOUT], 1);
	cr_assert_eq(b.duration_count, 2);
	cr_assert_eq(name_metrics_cumulative(&b, NAME_METRICS_BUCKETS), 2);
	cr_assert_eq(b.duration_sum_ns, 21000000);
}
