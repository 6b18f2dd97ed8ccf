#include "name_metrics.h"

#include <errno.h>

const uint64_t name_metrics_bucket_ns[NAME_METRICS_BUCKETS] = {
	500000ull,    1000000ull,   2500000ull,    5000000ull,    10000000ull,   25000000ull,   50000000ull,
	100000000ull, 250000000ull, 500000000ull, 1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull,
};
const char *const name_metrics_bucket_le[NAME_METRICS_BUCKETS] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};

static const char *const result_names[CONNECT_RESULTS] = {"ok", "refused", "timeout", "unreachable", "error"};

const char *connect_result_name(enum connect_result r)
{
	return r < CONNECT_RESULTS ? result_names[r] : "error";
}

enum connect_result connect_result_of_errno(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return CONNECT_REFUSED;
	case ETIMEDOUT:
		return CONNECT_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
		return CONNECT_UNREACHABLE;
	default:
		return CONNECT_ERROR;
	}
}

void name_metrics_record(struct name_metrics *m, enum connect_result r, uint64_t duration_ns)
{
	m->results[r < CONNECT_RESULTS ? r : CONNECT_ERROR]++;
	if (r != CONNECT_OK)
		return;
	unsigned i = 0;
	while (i < NAME_METRICS_BUCKETS && duration_ns > name_metrics_bucket_ns[i])
		i++;
	m->buckets[i]++;
	m->duration_count++;
	m->duration_sum_ns += duration_ns;
}

uint64_t name_metrics_connect_ns(uint64_t elapsed_ns, uint32_t rtt_us, uint32_t syn_retrans)
{
	uint64_t retries_ns = 0;
	for (uint32_t i = 0; i < syn_retrans && i < 8; i++)
		retries_ns += 1000000000ull << i;
	uint64_t estimate = (uint64_t)rtt_us * 1000 + retries_ns;
	return estimate < elapsed_ns ? estimate : elapsed_ns;
}

void name_metrics_add(struct name_metrics *dst, const struct name_metrics *src)
{
	for (unsigned i = 0; i < CONNECT_RESULTS; i++)
		dst->results[i] += src->results[i];
	for (unsigned i = 0; i <= NAME_METRICS_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->duration_count += src->duration_count;
	dst->duration_sum_ns += src->duration_sum_ns;
}

uint64_t name_metrics_cumulative(const struct name_metrics *m, unsigned i)
{
	uint64_t total = 0;
	for (unsigned k = 0; k <= i && k <= NAME_METRICS_BUCKETS; k++)
		total += m->buckets[k];
	return total;
}
