/* Per-destination connect metrics (design.md's metrics contract; issue 18): a name's connects by
 * result, and the time each took from the connect call to the established connection, as a
 * histogram. Pure, unit-tested (tests/unit/test_name_metrics.c); kept in the name entries under the
 * names lock (names.c), written by stats.c. */
#ifndef DNSAWARE_NAME_METRICS_H
#define DNSAWARE_NAME_METRICS_H

#include <stdint.h>

enum connect_result {
	CONNECT_OK,
	CONNECT_REFUSED,
	CONNECT_TIMEOUT,
	CONNECT_UNREACHABLE,
	CONNECT_ERROR,
	CONNECT_RESULTS
};

/* The histogram's upper bounds, in ns: 0.5 ms to 10 s (then +Inf). */
#define NAME_METRICS_BUCKETS 14
extern const uint64_t name_metrics_bucket_ns[NAME_METRICS_BUCKETS];
/* Their le labels: "0.0005" ... "10". */
extern const char *const name_metrics_bucket_le[NAME_METRICS_BUCKETS];

struct name_metrics {
	uint64_t results[CONNECT_RESULTS];
	uint64_t buckets[NAME_METRICS_BUCKETS + 1]; /* not cumulative; the last is +Inf's own */
	uint64_t duration_count;
	uint64_t duration_sum_ns;
};

/* "ok", "refused", "timeout", "unreachable", "error". */
const char *connect_result_name(enum connect_result r);

/* A failed connect's errno: ECONNREFUSED refused, ETIMEDOUT timeout, EHOSTUNREACH/ENETUNREACH
 * unreachable, anything else error. */
enum connect_result connect_result_of_errno(int e);

/* One connect's outcome; an ok one with the time it took (duration_ns), which the histogram
 * counts. */
void name_metrics_record(struct name_metrics *m, enum connect_result r, uint64_t duration_ns);

/* A non-blocking connect's time, seen after it ended (the thread's look, or close): the handshake's
 * round trip (tcpi_rtt), plus the kernel's SYN retries (1 s, then doubling) when syn_retrans > 0,
 * and never more than elapsed_ns since the connect call. */
uint64_t name_metrics_connect_ns(uint64_t elapsed_ns, uint32_t rtt_us, uint32_t syn_retrans);

/* dst += src (a name's counts folded into name="_other" when it loses its own series). */
void name_metrics_add(struct name_metrics *dst, const struct name_metrics *src);

/* The histogram's cumulative count at bucket i (i == NAME_METRICS_BUCKETS: +Inf, the count). */
uint64_t name_metrics_cumulative(const struct name_metrics *m, unsigned i);

#endif
