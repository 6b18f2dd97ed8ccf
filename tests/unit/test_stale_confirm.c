/* The store's side of the cache (stale_store.c): whether the library's own answer agrees with a
 * kept one (per family, with and without AI_ADDRCONFIG), and what a confirmation of a name does to
 * its slots (recovery, mismatch, /etc/hosts, the family asked). */
#include <criterion/criterion.h>

#include <netdb.h>
#include <sys/socket.h>

#include "stale_fixture.h"

static const char *const other_addrs[] = {"192.0.2.9"};

/* ---- The library's own answer against the kept one ---- */

static bool matches(const struct lookup_key *key, const struct gai_copy *kept, const char *const *texts, unsigned n)
{
	struct ip_addr addrs[16];

	for (unsigned i = 0; i < n; i++)
		addrs[i] = ip(texts[i]);
	return stale_answer_matches(key, kept, addrs, n);
}

#define MATCHES(key, kept, ...) \
	matches(key, kept, (const char *[]){__VA_ARGS__}, sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *))

TestSuite(matches, .init = start, .fini = close_store);

Test(matches, any_family_without_addrconfig_compares_both)
{
	struct addrinfo any = {.ai_family = AF_UNSPEC};
	struct lookup_key key = key_of("db.test", &any);
	struct gai_copy v4_only = ANSWER("192.0.2.1");
	struct gai_copy both = ANSWER("192.0.2.1", "2001:db8::1");

	cr_assert(MATCHES(&key, &v4_only, "192.0.2.1"));
	cr_assert_not(MATCHES(&key, &v4_only, "192.0.2.1", "2001:db8::1"), "an IPv6 address the kept answer lacks");
	cr_assert(MATCHES(&key, &both, "2001:db8::1", "192.0.2.1"), "order does not matter");
	cr_assert_not(MATCHES(&key, &both, "192.0.2.1"), "a kept address missing");
}

Test(matches, addrconfig_compares_the_kept_families_only)
{
	struct lookup_key key = key_of("db.test", NULL); /* glibc's defaults: AI_ADDRCONFIG */
	struct gai_copy v4_only = ANSWER("192.0.2.1", "192.0.2.2");

	cr_assert(MATCHES(&key, &v4_only, "192.0.2.2", "2001:db8::1", "192.0.2.1"), "IPv6 not compared");
	cr_assert_not(MATCHES(&key, &v4_only, "192.0.2.1", "192.0.2.2", "192.0.2.3"), "an extra IPv4 address");
	cr_assert_not(MATCHES(&key, &v4_only, "192.0.2.1"), "a kept address missing");
	cr_assert_not(MATCHES(&key, &v4_only, "2001:db8::1"));
}

Test(matches, ipv4_key_ignores_ipv6)
{
	struct addrinfo v4 = {.ai_family = AF_INET};
	struct lookup_key key = key_of("db.test", &v4);
	struct gai_copy kept = ANSWER("192.0.2.1");
	struct lookup_key he;

	cr_assert(MATCHES(&key, &kept, "192.0.2.1", "2001:db8::1", "2001:db8::2"));
	cr_assert_not(MATCHES(&key, &kept, "192.0.2.1", "192.0.2.9"));
	cr_assert(lookup_key_for_hostent("db.test", AF_INET, false, 0, &he));
	cr_assert(MATCHES(&he, &kept, "2001:db8::1", "192.0.2.1"));
}

Test(matches, v4_mapped_kept_compares_as_ipv4)
{
	struct addrinfo v6 = {.ai_family = AF_INET6, .ai_flags = AI_V4MAPPED};
	struct lookup_key key = key_of("db.test", &v6);
	struct gai_copy kept = ANSWER("::ffff:192.0.2.1");

	cr_assert(MATCHES(&key, &kept, "192.0.2.1"));
	cr_assert_not(MATCHES(&key, &kept, "192.0.2.2"));
}

Test(matches, empty_kept_answer_never_matches)
{
	struct gai_copy empty = answer_of(NULL, 0);

	cr_assert_not(MATCHES(&db, &empty, "192.0.2.1"));
	cr_assert_not(stale_answer_matches(&db, &empty, NULL, 0));
}

/* ---- Confirmations (the cache) ---- */

TestSuite(confirm, .init = start, .fini = close_store);

static struct stale_confirm_result confirm(const char *name, int family, const char *const *texts, unsigned n,
					   bool in_hosts, bool recover, uint64_t until, uint64_t now)
{
	struct ip_addr addrs[16];

	for (unsigned i = 0; i < n; i++)
		addrs[i] = ip(texts[i]);
	return stale_store_confirm(&store, name, family, addrs, n, in_hosts, recover, until, now);
}

Test(confirm, agreeing_slot_confirmed_until)
{
	put(&db, &db_answer, 1000);

	struct stale_confirm_result result = confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 2000);
	cr_assert_eq(result.slots, 1);
	cr_assert_eq(result.recovered, 0);
	struct stale_record record = found(&db);
	cr_assert(record.state.dns_confirmed);
	cr_assert_eq(record.state.confirmed_ms, 2000);
	cr_assert_eq(record.state.confirmed_until_ms, 61000);
	cr_assert_eq(record.state.stored_ms, 1000, "not refreshed without recover");

	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, true, 63000, 3000);
	record = found(&db);
	cr_assert_eq(record.state.stored_ms, 3000, "refreshed with recover");
	cr_assert_eq(record.state.confirmed_until_ms, 63000);
}

Test(confirm, failing_slot_recovers_only_with_recover)
{
	put(&db, &db_answer, 1000);
	cr_assert(stale_store_note_stale(&store, &db, 2000, 30000));
	cr_assert_not(stale_store_note_stale(&store, &db, 2500, 30000));

	struct stale_confirm_result result = confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 3000);
	cr_assert_eq(result.slots, 1);
	cr_assert_eq(result.recovered, 0);
	struct stale_record record = found(&db);
	cr_assert_eq(record.state.failing_since_ms, 2000, "still failing");
	cr_assert_eq(record.state.confirmed_until_ms, 0, "a failing slot is not confirmed");

	result = confirm("db.test", AF_UNSPEC, db_addrs, 2, false, true, 64000, 4000);
	cr_assert_eq(result.slots, 1);
	cr_assert_eq(result.recovered, 1);
	cr_assert_eq(result.served, 2);
	record = found(&db);
	cr_assert_eq(record.state.failing_since_ms, 0);
	cr_assert_eq(record.state.served_stale, 0);
	cr_assert(record.state.dns_confirmed);
	cr_assert_eq(record.state.confirmed_until_ms, 64000);
	cr_assert_eq(record.state.stored_ms, 4000);
}

Test(confirm, mismatch_unconfirms)
{
	put(&db, &db_answer, 1000);
	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 2000);
	cr_assert(stale_store_claim_refresh(&store, &db, 2500, 60000));

	struct stale_confirm_result result = confirm("db.test", AF_UNSPEC, other_addrs, 1, false, false, 62000, 3000);
	cr_assert_eq(result.slots, 1);
	struct stale_record record = found(&db);
	cr_assert_eq(record.state.confirmed_until_ms, 0, "no longer fresh");
	cr_assert_eq(record.state.confirmed_ms, 2000);
	cr_assert_eq(record.state.refresh_claimed_until_ms, 0, "the query came back: another may be sent");
	/* The kept answer changing is what drops dns_confirmed. */
	struct gai_copy changed = answer_of(other_addrs, 1);
	put(&db, &changed, 4000);
	cr_assert_not(found(&db).state.dns_confirmed);
}

Test(confirm, in_hosts_marks_and_never_confirms)
{
	put(&db, &db_answer, 1000);
	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 2000);

	confirm("db.test", AF_UNSPEC, db_addrs, 2, true, false, 62000, 3000);
	struct stale_record record = found(&db);
	cr_assert(record.state.from_hosts);
	cr_assert_not(record.state.dns_confirmed);
	cr_assert_eq(record.state.confirmed_until_ms, 0);

	/* Out of /etc/hosts again: confirmed again. */
	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 64000, 4000);
	record = found(&db);
	cr_assert_not(record.state.from_hosts);
	cr_assert(record.state.dns_confirmed);
}

Test(confirm, family_and_name_filter)
{
	struct addrinfo v4 = {.ai_family = AF_INET};
	struct lookup_key any = key_of("db.test", NULL), only_v4 = key_of("db.test", &v4);
	struct lookup_key absolute = key_of("db.test.", &v4), other = key_of("db.test.example", &v4);
	struct gai_copy answer = answer_of(db_addrs, 2);
	put(&any, &answer, 1000);
	put(&only_v4, &answer, 1000);
	put(&absolute, &answer, 1000);
	put(&other, &answer, 1000);

	struct stale_confirm_result result = confirm("db.test", AF_INET, db_addrs, 2, false, false, 61000, 2000);
	cr_assert_eq(result.slots, 2, "db.test and db.test., of AF_INET");
	cr_assert(found(&only_v4).state.dns_confirmed);
	cr_assert(found(&absolute).state.dns_confirmed);
	cr_assert_not(found(&any).state.dns_confirmed, "AF_UNSPEC slot left alone");
	cr_assert_not(found(&other).state.dns_confirmed, "another name");

	result = confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 62000, 3000);
	cr_assert_eq(result.slots, 3);
	cr_assert(found(&any).state.dns_confirmed);
	cr_assert_not(found(&other).state.dns_confirmed);
}

Test(confirm, note_stale_ends_the_confirmation)
{
	put(&db, &db_answer, 1000);
	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 2000);
	cr_assert(stale_store_note_stale(&store, &db, 3000, 30000));
	cr_assert_eq(found(&db).state.confirmed_until_ms, 0);
}
