/* The state machine of a failing name (stale_policy.c): what a lookup does given the kept state
 * and the time, as a table of cases; the boundaries of a usable stale answer and of the cache's
 * refresh-ahead; and a name walked through a resolver's failure and recovery with the store and
 * the policy together. */
#include <criterion/criterion.h>

#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "ip_literal.h"
#include "stale_policy.h"

#define S 1000ull   /* a second, in ms */
#define DAY (86400 * S)

static const char *plan_name(enum stale_plan plan)
{
	switch (plan) {
	case STALE_PLAN_ASK: return "ASK";
	case STALE_PLAN_ASK_TIMED: return "ASK_TIMED";
	case STALE_PLAN_STALE: return "STALE";
	case STALE_PLAN_STALE_RETRY: return "STALE_RETRY";
	case STALE_PLAN_CACHED: return "CACHED";
	}
	return "?";
}

/* The defaults: DNSAWARE_STALE_MAX 1d, DNSAWARE_RESOLVE_TIMEOUT 1800ms, no cache. */
static const struct stale_settings defaults = {.stale_max_ms = DAY, .resolve_timeout_ms = 1800};
static const struct stale_settings no_timer = {.stale_max_ms = DAY};
static const struct stale_settings never_stale = {.stale_max_ms = 0, .resolve_timeout_ms = 1800};
static const struct stale_settings cache = {.stale_max_ms = DAY, .resolve_timeout_ms = 1800, .cache = true};
static const struct stale_settings cache_only = {.cache = true};

struct plan_case {
	const char *what;
	struct stale_slot_state state;
	const struct stale_settings *settings;
	uint64_t now;
	enum stale_plan want;
	bool no_record;
};

/* A name kept at 100 s, failing since 200 s with its retry at 230 s, confirmed at 100 s until
 * 160 s: the cases vary one thing at a time. */
#define KEPT .stored_ms = 100 * S
#define FAILING .failing_since_ms = 200 * S, .retry_at_ms = 230 * S, .served_stale = 3
#define CONFIRMED .dns_confirmed = true, .confirmed_ms = 100 * S, .confirmed_until_ms = 160 * S

/* ROW(what, settings, now, plan, state fields...) */
#define ROW(what_, settings_, now_, want_, ...) \
	{.what = what_, .settings = settings_, .now = now_, .want = want_, .state = {__VA_ARGS__}}
#define NO_RECORD(what_, settings_, now_, want_) \
	{.what = what_, .settings = settings_, .now = now_, .want = want_, .no_record = true}

static const struct plan_case plan_cases[] = {
	NO_RECORD("no record", &defaults, 100 * S, STALE_PLAN_ASK),
	NO_RECORD("no record, cache on", &cache, 100 * S, STALE_PLAN_ASK),
	ROW("healthy and young, with the timer", &defaults, 150 * S, STALE_PLAN_ASK_TIMED, KEPT),
	ROW("healthy and young, no timer", &no_timer, 150 * S, STALE_PLAN_ASK, KEPT),
	ROW("healthy, exactly stale_max old", &defaults, 100 * S + DAY, STALE_PLAN_ASK_TIMED, KEPT),
	ROW("healthy, older than stale_max", &defaults, 100 * S + DAY + 1, STALE_PLAN_ASK, KEPT),
	ROW("healthy, stale_max 0", &never_stale, 150 * S, STALE_PLAN_ASK, KEPT),
	ROW("stored in the future (another clock)", &defaults, 50 * S, STALE_PLAN_ASK, KEPT),
	ROW("failing, not due", &defaults, 229 * S, STALE_PLAN_STALE, KEPT, FAILING),
	ROW("failing, not due, no timer", &no_timer, 229 * S, STALE_PLAN_STALE, KEPT, FAILING),
	ROW("failing, due", &defaults, 230 * S, STALE_PLAN_STALE_RETRY, KEPT, FAILING),
	ROW("failing, long due", &defaults, 900 * S, STALE_PLAN_STALE_RETRY, KEPT, FAILING),
	ROW("failing, older than stale_max", &defaults, 100 * S + DAY + 1, STALE_PLAN_ASK, KEPT, FAILING),
	ROW("failing, stale_max 0", &never_stale, 229 * S, STALE_PLAN_ASK, KEPT, FAILING),
	ROW("cache: confirmed and fresh", &cache, 150 * S, STALE_PLAN_CACHED, KEPT, CONFIRMED),
	ROW("cache: fresh, stale_max 0", &cache_only, 150 * S, STALE_PLAN_CACHED, KEPT, CONFIRMED),
	ROW("cache: last ms of the confirmation", &cache, 160 * S - 1, STALE_PLAN_CACHED, KEPT, CONFIRMED),
	ROW("cache: at confirmed_until", &cache, 160 * S, STALE_PLAN_ASK_TIMED, KEPT, CONFIRMED),
	ROW("cache: after confirmed_until", &cache, 170 * S, STALE_PLAN_ASK_TIMED, KEPT, CONFIRMED),
	ROW("cache: after confirmed_until, stale_max 0", &cache_only, 170 * S, STALE_PLAN_ASK, KEPT, CONFIRMED),
	ROW("cache: never confirmed", &cache, 150 * S, STALE_PLAN_ASK_TIMED, KEPT, .confirmed_until_ms = 160 * S),
	ROW("cache: failing, confirmed until later", &cache, 210 * S, STALE_PLAN_STALE, KEPT, FAILING,
	    .dns_confirmed = true, .confirmed_ms = 100 * S, .confirmed_until_ms = 300 * S),
	ROW("cache: from /etc/hosts", &cache, 150 * S, STALE_PLAN_ASK, KEPT, CONFIRMED, .from_hosts = true),
	ROW("cache off: confirmed and fresh", &defaults, 150 * S, STALE_PLAN_ASK_TIMED, KEPT, CONFIRMED),
	ROW("from /etc/hosts: never the timer", &defaults, 150 * S, STALE_PLAN_ASK, KEPT, .from_hosts = true),
	ROW("from /etc/hosts, failing: stale", &defaults, 229 * S, STALE_PLAN_STALE, KEPT, FAILING, .from_hosts = true),
};

Test(plan, table)
{
	for (size_t i = 0; i < sizeof plan_cases / sizeof plan_cases[0]; i++) {
		const struct plan_case *c = &plan_cases[i];
		struct stale_record record;
		memset(&record, 0, sizeof record);
		record.state = c->state;
		enum stale_plan got = stale_plan_lookup(c->no_record ? NULL : &record, c->settings, c->now);
		cr_expect_eq(got, c->want, "%s: %s, expected %s", c->what, plan_name(got), plan_name(c->want));
	}
}

Test(usable, boundaries)
{
	struct stale_record record;
	memset(&record, 0, sizeof record);
	record.state.stored_ms = 100 * S;
	struct stale_settings one_hour = {.stale_max_ms = 3600 * S};

	cr_assert_not(stale_usable(NULL, &one_hour, 100 * S));
	cr_assert(stale_usable(&record, &one_hour, 100 * S), "just stored");
	cr_assert(stale_usable(&record, &one_hour, 100 * S + 3600 * S), "exactly stale_max old");
	cr_assert_not(stale_usable(&record, &one_hour, 100 * S + 3600 * S + 1), "one ms more");
	cr_assert_not(stale_usable(&record, &one_hour, 100 * S - 1), "stored after now");
	cr_assert_not(stale_usable(&record, &never_stale, 100 * S), "stale_max 0");
	/* The failing state does not change how long an answer may be served. */
	record.state.failing_since_ms = 200 * S;
	cr_assert(stale_usable(&record, &one_hour, 100 * S + 3600 * S));
	cr_assert_not(stale_usable(&record, &one_hour, 100 * S + 3600 * S + 1));
}

Test(refresh_due, last_quarter_only)
{
	struct stale_record record;
	memset(&record, 0, sizeof record);
	record.state.confirmed_ms = 100 * S;
	record.state.confirmed_until_ms = 116 * S; /* 16 s: the last quarter is its last 4 s */

	cr_assert_not(stale_refresh_due(&record, 100 * S));
	cr_assert_not(stale_refresh_due(&record, 112 * S - 1), "4 s and 1 ms left");
	cr_assert(stale_refresh_due(&record, 112 * S), "4 s left");
	cr_assert(stale_refresh_due(&record, 116 * S - 1), "1 ms left");
	cr_assert_not(stale_refresh_due(&record, 116 * S), "expired: the cache no longer serves it");
	cr_assert_not(stale_refresh_due(&record, 200 * S));
	cr_assert_not(stale_refresh_due(&record, 99 * S), "before the confirmation (another clock)");

	memset(&record, 0, sizeof record);
	cr_assert_not(stale_refresh_due(&record, 0), "never confirmed");
	cr_assert_not(stale_refresh_due(&record, 100 * S));
}

/* ---- A name through a resolver's bad day: the store and the policy together ---- */

static void *block;
static struct stale_store store;

static void open_store(void)
{
	block = calloc(1, stale_store_size(STALE_STORE_SLOTS));
	cr_assert_not_null(block);
	cr_assert(stale_store_attach(&store, block, STALE_STORE_SLOTS));
}

static void close_store(void)
{
	free(block);
}

static struct gai_copy answer_of(const char *text)
{
	struct gai_copy copy;
	struct ip_addr addr = ip(text);

	memset(&copy, 0, sizeof copy);
	copy.addrs[0].family = addr.family;
	memcpy(copy.addrs[0].bytes, addr.bytes, 16);
	copy.entries[0] = (struct gai_copy_entry){.socktype = SOCK_STREAM, .protocol = 6};
	copy.addr_count = copy.entry_count = 1;
	return copy;
}

/* What a lookup of key at now plans, from the store as it is. */
static enum stale_plan plan_at(const struct lookup_key *key, const struct stale_settings *settings, uint64_t now)
{
	struct stale_record record;
	bool have = stale_store_find(&store, key, now, &record);

	return stale_plan_lookup(have ? &record : NULL, settings, now);
}

#define ASSERT_PLAN(key, settings, now, want)                                                             \
	do {                                                                                              \
		enum stale_plan got_ = plan_at(key, settings, now);                                       \
		cr_assert_eq(got_, want, "at %llu ms: %s, expected %s", (unsigned long long)(now), plan_name(got_), \
			     plan_name(want));                                                            \
	} while (0)

Test(scenario, failing_name_served_stale_retried_and_recovered, .init = open_store, .fini = close_store)
{
	struct lookup_key key;
	cr_assert(lookup_key_for_getaddrinfo("api.example.test", "443", NULL, 0, &key));
	struct gai_copy good = answer_of("192.0.2.10");
	uint64_t t0 = 5000 * S; /* the store's clock: time since boot */
	uint64_t served = 0;

	/* Never looked up: the resolver is asked. */
	ASSERT_PLAN(&key, &defaults, t0, STALE_PLAN_ASK);
	/* t = 0: a good answer, kept. */
	cr_assert_not(stale_store_put(&store, &key, &good, t0, 0, &served));
	ASSERT_PLAN(&key, &defaults, t0 + 1 * S, STALE_PLAN_ASK_TIMED);

	/* t = 10 s: the resolver fails; the lookup serves the stale answer, and the name starts
	 * failing (said once). */
	uint64_t t_fail = t0 + 10 * S;
	ASSERT_PLAN(&key, &defaults, t_fail, STALE_PLAN_ASK_TIMED);
	cr_assert(stale_store_note_stale(&store, &key, t_fail, STALE_RETRY_EVERY_MS));
	/* Later lookups get it at once, and are counted; none starts the failing again. */
	for (uint64_t t = t_fail + 1 * S; t < t_fail + STALE_RETRY_EVERY_MS; t += 5 * S) {
		ASSERT_PLAN(&key, &defaults, t, STALE_PLAN_STALE);
		cr_assert_not(stale_store_note_stale(&store, &key, t, STALE_RETRY_EVERY_MS));
		cr_assert_not(stale_store_claim_retry(&store, &key, t, STALE_RETRY_EVERY_MS), "retried before its time");
	}
	ASSERT_PLAN(&key, &defaults, t_fail + STALE_RETRY_EVERY_MS - 1, STALE_PLAN_STALE);

	/* t = 40 s: due. Of the lookups that see it, one claims the retry; the others are served
	 * stale at once. */
	uint64_t t_retry = t_fail + STALE_RETRY_EVERY_MS;
	ASSERT_PLAN(&key, &defaults, t_retry, STALE_PLAN_STALE_RETRY);
	ASSERT_PLAN(&key, &defaults, t_retry, STALE_PLAN_STALE_RETRY);
	cr_assert(stale_store_claim_retry(&store, &key, t_retry, STALE_RETRY_EVERY_MS));
	/* The claimer is served stale too while the thread's query retries. */
	cr_assert_not(stale_store_note_stale(&store, &key, t_retry, STALE_RETRY_EVERY_MS));
	cr_assert_not(stale_store_claim_retry(&store, &key, t_retry, STALE_RETRY_EVERY_MS));
	cr_assert_not(stale_store_claim_retry(&store, &key, t_retry + 1 * S, STALE_RETRY_EVERY_MS));
	cr_assert_not(stale_store_note_stale(&store, &key, t_retry, STALE_RETRY_EVERY_MS)); /* the other lookup */
	/* The retry failed too: stale until the next one, 30 s later. */
	cr_assert_not(stale_store_note_stale(&store, &key, t_retry + 2 * S, STALE_RETRY_EVERY_MS));
	ASSERT_PLAN(&key, &defaults, t_retry + 2 * S, STALE_PLAN_STALE);
	ASSERT_PLAN(&key, &defaults, t_retry + STALE_RETRY_EVERY_MS, STALE_PLAN_STALE_RETRY);

	/* t = 70 s: the retry gets a good answer: the name recovers (said once, with the count of
	 * stale answers: the first, 6 in the loop, 2 at 40 s, 1 at 42 s). */
	uint64_t t_ok = t_retry + STALE_RETRY_EVERY_MS;
	cr_assert(stale_store_claim_retry(&store, &key, t_ok, STALE_RETRY_EVERY_MS));
	cr_assert(stale_store_put(&store, &key, &good, t_ok, 0, &served));
	cr_assert_eq(served, 10);
	cr_assert_not(stale_store_put(&store, &key, &good, t_ok + 1, 0, &served), "recovery is said once");
	cr_assert_eq(served, 0);
	ASSERT_PLAN(&key, &defaults, t_ok + 1 * S, STALE_PLAN_ASK_TIMED);
	cr_assert_not(stale_store_claim_retry(&store, &key, t_ok + 60 * S, STALE_RETRY_EVERY_MS), "no longer failing");

	/* A whole day later than the last good answer, a failure is answered as without the library. */
	ASSERT_PLAN(&key, &defaults, t_ok + 1 + DAY + 1, STALE_PLAN_ASK);
}

Test(scenario, cache_serves_confirmed_answer_until_it_expires, .init = open_store, .fini = close_store)
{
	struct lookup_key key;
	cr_assert(lookup_key_for_getaddrinfo("api.example.test", NULL, NULL, 0, &key));
	struct gai_copy good = answer_of("192.0.2.10");
	struct ip_addr addrs[] = {ip("192.0.2.10")};
	uint64_t t0 = 5000 * S, served;

	cr_assert_not(stale_store_put(&store, &key, &good, t0, 0, &served));
	ASSERT_PLAN(&key, &cache, t0 + 1, STALE_PLAN_ASK_TIMED); /* not confirmed yet */
	/* The library's own query agrees; its TTL is 60 s. */
	struct stale_confirm_result result =
		stale_store_confirm(&store, "api.example.test", AF_UNSPEC, addrs, 1, false, false, t0 + 61 * S, t0 + 1 * S);
	cr_assert_eq(result.slots, 1);
	ASSERT_PLAN(&key, &cache, t0 + 2 * S, STALE_PLAN_CACHED);
	struct stale_record record;
	cr_assert(stale_store_find(&store, &key, t0 + 2 * S, &record));
	cr_assert_not(stale_refresh_due(&record, t0 + 2 * S));
	cr_assert(stale_refresh_due(&record, t0 + 46 * S), "the last quarter of 60 s");
	ASSERT_PLAN(&key, &cache, t0 + 61 * S - 1, STALE_PLAN_CACHED);
	ASSERT_PLAN(&key, &cache, t0 + 61 * S, STALE_PLAN_ASK_TIMED);
	/* A failure ends the cache's service of it: stale, then retried. */
	cr_assert(stale_store_note_stale(&store, &key, t0 + 62 * S, STALE_RETRY_EVERY_MS));
	ASSERT_PLAN(&key, &cache, t0 + 63 * S, STALE_PLAN_STALE);
}
