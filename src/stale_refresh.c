#include "stale_refresh.h"

#include <ares.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "answer.h"
#include "channel.h"
#include "fork_keep.h"
#include "log.h"
#include "lookup_key.h"
#include "names.h"
#include "refresh.h"
#include "resolver_thread.h"
#include "runtime.h"
#include "schedule.h"
#include "stale_file.h"
#include "stale_store.h"

struct stale_query {
	struct stale_query *next;
	char node[LOOKUP_NODE_MAX + 1]; /* as the program asked (search domains apply alike) */
	int family;
};

static _Atomic(struct stale_query *) queued;
/* Queued while the thread does not run. */
static _Atomic unsigned waiting;

bool stale_status_negative(int status)
{
	return status == ARES_ENOTFOUND || status == ARES_ENODATA || status == ARES_ENONAME;
}

void stale_query_post(const char *node, int family)
{
	bool running = resolver_thread_running();
	if (!running && atomic_fetch_add(&waiting, 1) >= STALE_QUERIES_WAITING) {
		atomic_fetch_sub(&waiting, 1);
		return;
	}
	struct stale_query *query = calloc(1, sizeof *query);
	if (query == NULL)
		return;
	snprintf(query->node, sizeof query->node, "%s", node);
	query->family = family;
	struct stale_query *head = atomic_load(&queued);
	do
		query->next = head;
	while (!atomic_compare_exchange_weak(&queued, &head, query));
	if (running)
		resolver_thread_nudge();
}

static void on_query_answer(void *arg, int status, int timeouts, struct ares_addrinfo *result)
{
	(void)timeouts;
	struct stale_query *query = arg;
	char name[NAME_MAX_LEN + 1];
	if (status != ARES_EDESTRUCTION && names_normalize(query->node, name)) {
		stale_refresh_apply(name, query->family, status, result);
		/* Only a whole answer: one family alone would look like the other's addresses gone. */
		if (status == ARES_SUCCESS && query->family == AF_UNSPEC)
			refresh_take_lookup_answer(name, result);
	}
	if (result != NULL)
		ares_freeaddrinfo(result);
	free(query);
}

void stale_refresh_send_queued(void)
{
	struct stale_query *list = atomic_exchange(&queued, NULL);
	atomic_store(&waiting, 0);
	while (list != NULL) {
		struct stale_query *query = list;
		list = query->next;
		/* NOSORT, as refresh.c's queries: only the set is compared. */
		struct ares_addrinfo_hints hints = {.ai_family = query->family, .ai_socktype = SOCK_STREAM,
						    .ai_flags = ARES_AI_NOSORT};
		log_msg(LOG_DEBUG, "asking for %s (a lookup of the program's)", query->node);
		channel_getaddrinfo(query->node, &hints, on_query_answer, query);
	}
}

void stale_refresh_apply(const char *name, int family, int status, const struct ares_addrinfo *result)
{
	struct stale_store *store = stale_file_mapped();
	if (store == NULL || status != ARES_SUCCESS || result == NULL)
		return;
	struct answer answer;
	answer_collect(result, NULL, &answer);
	if (answer.count == 0)
		return;
	stale_refresh_confirm(store, name, family, answer.addrs, answer.count, answer.ttl_seconds,
			      channel_in_hosts_file(name), runtime_config.nameservers[0] == '\0', stale_file_now_ms());
}

void stale_refresh_confirm(struct stale_store *store, const char *name, int family, const struct ip_addr *addrs,
			   unsigned n, uint32_t ttl_seconds, bool in_hosts, bool recover, uint64_t now_ms)
{
	uint64_t interval = schedule_ttl_ms(ttl_seconds, runtime_config.ttl_floor_ms, runtime_config.ttl_ceiling_ms);
	struct stale_confirm_result confirmed =
		stale_store_confirm(store, name, family, addrs, n, in_hosts, recover, now_ms + interval, now_ms);
	if (confirmed.recovered > 0)
		stale_refresh_log_recovered(name, confirmed.served);
}

void stale_refresh_log_recovered(const char *name, uint64_t served)
{
	log_msg(LOG_INFO, "%s resolves again: lookups get the resolver's answers (%llu stale answers served)", name,
		(unsigned long long)served);
}

void stale_refresh_after_fork_child(void)
{
	void *const kept[] = {atomic_load(&queued)};
	fork_keep(kept, 1);
	atomic_store(&queued, NULL);
	atomic_store(&waiting, 0);
}
