#include "balance_growth.h"

#include <sys/socket.h>

#include "balance.h"
#include "drain.h"
#include "names.h"
#include "schedule.h"
#include "stats.h"
#include "thread_lists.h"

/* One record of the name: how many of its sockets to recycle. */
struct growth_plan {
	uint32_t excess[RECORDSET_MAX];
	uint32_t share[RECORDSET_MAX];
	uint32_t addrs[RECORDSET_MAX]; /* addresses of its family */
	unsigned total;
};

static void plan_family(const struct recordset *rs, uint8_t family, struct growth_plan *plan)
{
	uint32_t conns = 0, addrs = 0;
	for (unsigned i = 0; i < rs->count; i++) {
		if (rs->records[i].addr.family == family) {
			conns += rs->records[i].conns;
			addrs++;
		}
	}
	uint32_t share = balance_fair_share(conns, addrs);
	for (unsigned i = 0; i < rs->count; i++) {
		if (rs->records[i].addr.family != family)
			continue;
		plan->excess[i] = addrs < 2 ? 0 : balance_excess(rs->records[i].conns, share);
		plan->share[i] = share;
		plan->addrs[i] = addrs;
		plan->total += plan->excess[i];
	}
}

static int record_index(const struct recordset *rs, const struct ip_addr *addr)
{
	for (unsigned i = 0; i < rs->count; i++)
		if (ip_addr_equal(&rs->records[i].addr, addr))
			return (int)i;
	return -1;
}

static bool held_by(const struct tracked_socket *s, const struct name_entry *entry)
{
	for (unsigned i = 0; i < s->name_count; i++)
		if (s->names[i] == entry)
			return true;
	return false;
}

unsigned balance_growth_recycle(const struct name_entry *entry, uint64_t now)
{
	const struct recordset *rs = &entry->records;
	if (rs->rotating)
		return 0;
	struct growth_plan plan = {0};
	plan_family(rs, AF_INET, &plan);
	plan_family(rs, AF_INET6, &plan);
	if (plan.total == 0)
		return 0;
	unsigned started = 0;
	uint64_t visits = 0;
	/* Spread over one TTL: the program reconnects them one at a time, each to the address
	 * with the fewest sockets then. */
	for (struct tracked_socket *s = thread_lists_sockets(); s != NULL && started < plan.total; s = s->next) {
		visits++;
		if (atomic_load(&s->refs) == 0 || !s->conns_counted || drain_marked(s) || !held_by(s, entry))
			continue;
		int i = record_index(rs, &s->peer);
		if (i < 0 || plan.excess[i] == 0)
			continue;
		plan.excess[i]--;
		uint64_t offset = schedule_spread_ms(started, plan.total, entry->interval_ms,
						     entry->interval_ms / plan.total);
		/* Its one info line is its shutdown's (drain_log_shutdown), with these. */
		s->balance_held = rs->records[i].conns;
		s->balance_share = plan.share[i];
		s->balance_addrs = plan.addrs[i];
		thread_lists_start_draining(s, DRAIN_BALANCE, now, now + offset);
		started++;
	}
	stats_count(&stats.thread_socket_visits, visits);
	return started;
}
