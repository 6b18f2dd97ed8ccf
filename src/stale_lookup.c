#include "stale_lookup.h"

#include <ares.h>
#include <errno.h>

#include "log.h"
#include "names.h"
#include "runtime.h"
#include "resolver_thread.h"
#include "stale_direct.h"
#include "stale_file.h"
#include "stale_policy.h"
#include "stale_refresh.h"
#include "stale_store.h"
#include "stats.h"

/* A query of the library's confirming an answer is not sent again for this long. */
#define CONFIRM_HOLD_MS 2000

struct flow {
	struct lookup_call *call;
	struct stale_store *store;
	struct stale_settings settings;
	bool have;
	struct stale_record record;
	uint64_t now; /* the store's clock */
	/* The DNS order of the library's query just before the real call (0: none). */
	uint64_t probe_order;
};

#define REASON_FAILED "the resolver failed"
#define REASON_TIMED_OUT "the resolver did not answer within DNSAWARE_RESOLVE_TIMEOUT"
#define REASON_FAILING "the resolver is failing"

/* Puts the kept answer where the program finds it. */
static bool serve_kept(struct flow *f)
{
	f->call->served_kept = f->call->serve(f->call, &f->record.answer);
	return f->call->served_kept;
}

/* Serves the kept answer as a stale one; false when it could not be put in place. */
static bool serve_stale(struct flow *f, const char *reason)
{
	if (!serve_kept(f))
		return false;
	stats_count(&stats.stale_answers, 1);
	if (stale_store_note_stale(f->store, &f->call->key, f->now, STALE_RETRY_EVERY_MS))
		log_msg(LOG_INFO, "serving a stale answer for %s (its last good answer, %llus old): %s; asking again every %ds",
			f->call->node, (unsigned long long)((f->now - f->record.state.stored_ms) / 1000), reason,
			STALE_RETRY_EVERY_MS / 1000);
	return true;
}

/* The thread's channel asks the servers the program's resolver asks (resolv.conf): not when
 * DNSAWARE_NAMESERVERS sends the library's own queries elsewhere. */
static bool thread_asks_like_program(void)
{
	return runtime_config.nameservers[0] == '\0' && resolver_thread_running();
}

/* The family the library's query asks for: the program's, so that a lookup of IPv4 addresses
 * costs the one query it costs the program's resolver. */
static int query_family(const struct lookup_key *key)
{
	return key->family == AF_INET || key->family == AF_INET6 ? key->family : AF_UNSPEC;
}

/* The lookup's own query agreed with the kept answer: as with the thread's answers, the kept answer
 * is fresh again, confirmed for the answer's TTL, and a failing name recovers (it asked
 * resolv.conf's servers). */
static void confirm_answer(struct flow *f, const struct stale_direct_answer *answer)
{
	char name[NAME_MAX_LEN + 1];
	if (names_normalize(f->call->node, name))
		stale_refresh_confirm(f->store, name, query_family(&f->call->key), answer->addrs, answer->count,
				      answer->ttl_seconds, answer->in_hosts, true, f->now);
}

/* After the real call: what it says about the name. */
static void learn_outcome(struct flow *f, enum lookup_outcome outcome)
{
	if (outcome == LOOKUP_NEGATIVE) {
		stale_store_forget(f->store, &f->call->key, f->now);
		return;
	}
	if (outcome != LOOKUP_GOOD)
		return;
	struct gai_copy answer;
	if (!f->call->keep(f->call, &answer))
		return;
	uint64_t served = 0;
	if (stale_store_put(f->store, &f->call->key, &answer, f->now, f->probe_order, &served))
		stale_refresh_log_recovered(f->call->node, served);
	/* The cache serves only an answer the library's own query agreed with (and that is not from
	 * /etc/hosts): asked once, by the thread. Without the cache nothing is asked: the timer's
	 * query checks the kept answer at the next lookup anyway. */
	struct stale_record now_kept;
	if (f->settings.cache && stale_store_find(f->store, &f->call->key, f->now, &now_kept) &&
	    !now_kept.state.from_hosts && now_kept.state.confirmed_until_ms <= f->now &&
	    stale_store_claim_refresh(f->store, &f->call->key, f->now, CONFIRM_HOLD_MS))
		stale_query_post(f->call->node, query_family(&f->call->key));
}

/* The real call, its temporary failure answered with the kept answer while that may be served. */
static void ask_resolver(struct flow *f)
{
	int saved_errno = errno;
	enum lookup_outcome outcome = f->call->ask(f->call);
	f->now = stale_file_now_ms();
	learn_outcome(f, outcome);
	if (outcome == LOOKUP_TEMPORARY && f->have && stale_usable(&f->record, &f->settings, f->now) &&
	    serve_stale(f, REASON_FAILED))
		errno = saved_errno;
}

/* The response timer: the library's own query, on the lookup's own channel (stale_direct.h: never
 * queued behind the background thread's work), waited for at most DNSAWARE_RESOLVE_TIMEOUT. An
 * answer that agrees with the kept one, addresses and their order as the DNS gave it when the real
 * call made it, serves it: the real call would return the same. One that does not (a new set, a
 * name whose DNS rotates its order, whose order glibc's sort would pass on), or a name that is
 * gone, is left to the real call. */
static void ask_timed(struct flow *f)
{
	int saved_errno = errno;
	struct stale_direct_answer answer;
	stale_direct_query(f->call->node, query_family(&f->call->key),
			   runtime_now_ms() + runtime_config.resolve_timeout_ms, &answer);
	f->now = stale_file_now_ms();
	bool answered = answer.done && answer.status == 0;
	f->probe_order = answered ? stale_answer_order(answer.addrs, answer.count) : 0;
	bool same_order = f->probe_order == STALE_ORDER_NONE || f->probe_order == f->record.state.dns_order;
	if (answered && same_order && stale_answer_matches(&f->call->key, &f->record.answer, answer.addrs, answer.count) &&
	    serve_kept(f)) {
		confirm_answer(f, &answer);
		errno = saved_errno;
		return;
	}
	if (answered || (answer.done && stale_status_negative(answer.status)) ||
	    !serve_stale(f, answer.done && answer.status != ARES_ETIMEOUT ? REASON_FAILED : REASON_TIMED_OUT)) {
		ask_resolver(f);
		return;
	}
	errno = saved_errno;
	/* A slow resolver's answer, late for this lookup, still refreshes what is kept: the thread
	 * asks again and waits as long as c-ares does. */
	if (!answer.done && thread_asks_like_program())
		stale_query_post(f->call->node, query_family(&f->call->key));
}

static void run_plan(struct flow *f, enum stale_plan plan)
{
	int saved_errno = errno;
	switch (plan) {
	case STALE_PLAN_CACHED:
		if (!serve_kept(f)) {
			stats_count(&stats.cache_misses, 1);
			break;
		}
		stats_count(&stats.cache_hits, 1);
		if (stale_refresh_due(&f->record, f->now) &&
		    stale_store_claim_refresh(f->store, &f->call->key, f->now, CONFIRM_HOLD_MS))
			stale_query_post(f->call->node, query_family(&f->call->key));
		errno = saved_errno;
		return;
	case STALE_PLAN_STALE_RETRY:
		if (stale_store_claim_retry(f->store, &f->call->key, f->now, STALE_RETRY_EVERY_MS)) {
			/* The retry: the thread's, while this lookup is answered at once; without a
			 * thread, this lookup's own, on the timer (or, with no timer, the real call's
			 * whole wait). */
			if (!thread_asks_like_program()) {
				if (f->settings.resolve_timeout_ms > 0)
					ask_timed(f);
				else
					ask_resolver(f);
				return;
			}
			stale_query_post(f->call->node, query_family(&f->call->key));
		}
		/* fall through */
	case STALE_PLAN_STALE:
		if (!serve_stale(f, REASON_FAILING))
			break;
		errno = saved_errno;
		return;
	case STALE_PLAN_ASK_TIMED:
		ask_timed(f);
		return;
	case STALE_PLAN_ASK:
		break;
	}
	ask_resolver(f);
}

void stale_lookup_run(struct lookup_call *call)
{
	int saved_errno = errno;
	/* Not zeroed whole: the record is a few kilobytes, filled by the find. */
	struct flow f;
	f.call = call;
	f.probe_order = 0;
	f.settings = (struct stale_settings){.stale_max_ms = runtime_config.stale_max_ms,
					     .resolve_timeout_ms = runtime_config.resolve_timeout_ms,
					     .cache = runtime_config.cache};
	if (f.settings.stale_max_ms == 0 && !f.settings.cache) {
		call->ask(call);
		return;
	}
	f.store = stale_file_store();
	errno = saved_errno;
	if (f.store == NULL) {
		call->ask(call);
		return;
	}
	call->key.context = stale_file_context();
	f.now = stale_file_now_ms();
	f.have = stale_store_find(f.store, &call->key, f.now, &f.record);
	enum stale_plan plan = stale_plan_lookup(f.have ? &f.record : NULL, &f.settings, f.now);
	if (f.settings.cache && plan != STALE_PLAN_CACHED)
		stats_count(&stats.cache_misses, 1);
	run_plan(&f, plan);
}
