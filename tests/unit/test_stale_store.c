/* The store of last good answers (stale_store.c), over a block of memory as the shared file gives
 * it: attaching, keeping and finding, the failing state and its claims, the comparison with the
 * library's own answer, the confirmations of the cache, the per-slot lock with its time-out, and
 * two processes sharing one block. */
#include <criterion/criterion.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ip_literal.h"
#include "stale_store.h"

static void *block;
static struct stale_store store;

static void open_store(unsigned count)
{
	block = calloc(1, stale_store_size(count));
	cr_assert_not_null(block);
	cr_assert(stale_store_attach(&store, block, count));
}

static void close_store(void)
{
	free(block);
	block = NULL;
}

static void start(void)
{
	open_store(STALE_STORE_SLOTS);
}

static struct lookup_key key_of(const char *node, const struct addrinfo *hints)
{
	struct lookup_key key;

	cr_assert(lookup_key_for_getaddrinfo(node, NULL, hints, 0, &key));
	return key;
}

/* An answer of the given addresses, one stream entry each. */
static struct gai_copy answer_of(const char *const *texts, unsigned n)
{
	struct gai_copy copy;

	memset(&copy, 0, sizeof copy);
	for (unsigned i = 0; i < n; i++) {
		struct ip_addr addr = ip(texts[i]);
		copy.addrs[i].family = addr.family;
		memcpy(copy.addrs[i].bytes, addr.bytes, 16);
		copy.entries[i] = (struct gai_copy_entry){.addr = (uint8_t)i, .socktype = SOCK_STREAM, .protocol = 6};
	}
	copy.addr_count = (uint8_t)n;
	copy.entry_count = (uint8_t)n;
	return copy;
}

#define ANSWER(...) answer_of((const char *[]){__VA_ARGS__}, sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *))

static void put(const struct lookup_key *key, const struct gai_copy *answer, uint64_t now)
{
	uint64_t served;

	cr_assert_not(stale_store_put(&store, key, answer, now, &served), "the slot was failing");
	cr_assert_eq(served, 0);
}

/* Finds at the start of time: they take over no lock a test set. */
#define FIND_MS 1

static struct stale_record found(const struct lookup_key *key)
{
	struct stale_record record;

	cr_assert(stale_store_find(&store, key, FIND_MS, &record), "%s not found", key->node);
	return record;
}

static bool has(const struct lookup_key *key)
{
	struct stale_record record;

	return stale_store_find(&store, key, FIND_MS, &record);
}

static unsigned used_slots(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < store.count; i++)
		n += store.slots[i].used;
	return n;
}

static struct stale_slot *slot_of(const struct lookup_key *key)
{
	for (unsigned i = 0; i < store.count; i++)
		if (store.slots[i].used && lookup_key_equal(&store.slots[i].key, key))
			return &store.slots[i];
	cr_assert_fail("no slot for %s", key->node);
	return NULL;
}

/* ---- Attaching ---- */

Test(attach, zero_block_becomes_a_store)
{
	void *zero = calloc(1, stale_store_size(16));
	struct stale_store a, b;

	cr_assert(stale_store_attach(&a, zero, 16));
	cr_assert_str_eq(a.header->magic, STALE_STORE_MAGIC);
	cr_assert_eq(a.header->slot_count, 16);
	cr_assert_eq(a.header->slot_size, sizeof(struct stale_slot));
	cr_assert_eq(a.count, 16);
	/* A second process attaches the same block. */
	cr_assert(stale_store_attach(&b, zero, 16));
	cr_assert_eq(b.slots, a.slots);
	free(zero);
}

static void assert_refused_untouched(void *other, unsigned count, size_t size)
{
	void *before = malloc(size);
	struct stale_store s;

	memcpy(before, other, size);
	cr_assert_not(stale_store_attach(&s, other, count));
	cr_assert_eq(memcmp(before, other, size), 0, "the block was written");
	free(before);
}

Test(attach, other_magic_or_layout_refused_and_left_alone)
{
	size_t size = stale_store_size(16);
	void *other = calloc(1, size);
	struct stale_store s;

	cr_assert(stale_store_attach(&s, other, 16));
	memcpy(s.header->magic, "dnsaware answers v0", sizeof "dnsaware answers v0");
	assert_refused_untouched(other, 16, size);

	memset(other, 0, size);
	cr_assert(stale_store_attach(&s, other, 16));
	s.header->slot_size += 8; /* another version's slots */
	assert_refused_untouched(other, 16, size);

	memset(other, 0, size);
	cr_assert(stale_store_attach(&s, other, 16));
	assert_refused_untouched(other, 8, size); /* another slot count */

	memset(other, 0, size);
	((char *)other)[sizeof(struct stale_store_header) - 1] = 1; /* not zero, not a store */
	assert_refused_untouched(other, 16, size);
	free(other);
}

/* ---- Keeping and finding ---- */

TestSuite(keep, .init = start, .fini = close_store);

Test(keep, put_then_find)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = ANSWER("192.0.2.1", "2001:db8::1");

	put(&key, &answer, 1000);
	struct stale_record record = found(&key);
	cr_assert_eq(memcmp(&record.answer, &answer, sizeof answer), 0);
	cr_assert_eq(record.state.stored_ms, 1000);
	cr_assert_eq(record.state.failing_since_ms, 0);
	cr_assert_eq(record.state.served_stale, 0);
	cr_assert_not(record.state.dns_confirmed);
}

Test(keep, other_key_not_found)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = ANSWER("192.0.2.1");
	struct addrinfo v4 = {.ai_family = AF_INET};

	cr_assert_not(has(&key), "an empty store");
	put(&key, &answer, 1000);
	struct lookup_key other = key_of("db2.test", NULL), other_shape = key_of("db.test", &v4);
	cr_assert_not(has(&other));
	cr_assert_not(has(&other_shape));
}

Test(keep, same_key_updated_in_place)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy first = ANSWER("192.0.2.1"), second = ANSWER("192.0.2.2", "192.0.2.3");

	put(&key, &first, 1000);
	put(&key, &second, 2000);
	struct stale_record record = found(&key);
	cr_assert_eq(memcmp(&record.answer, &second, sizeof second), 0);
	cr_assert_eq(record.state.stored_ms, 2000);
	cr_assert_eq(used_slots(), 1);
}

Test(keep, forget_removes)
{
	struct lookup_key key = key_of("gone.test", NULL);
	struct gai_copy answer = ANSWER("192.0.2.1");

	stale_store_forget(&store, &key, 500); /* nothing to forget */
	put(&key, &answer, 1000);
	stale_store_forget(&store, &key, 1500);
	cr_assert_not(has(&key));
	cr_assert_eq(used_slots(), 0);
	put(&key, &answer, 2000);
	cr_assert_eq(found(&key).state.stored_ms, 2000);
}

static struct lookup_key numbered(unsigned i)
{
	char node[32];

	snprintf(node, sizeof node, "k%u.test", i);
	return key_of(node, NULL);
}

Test(evict, oldest_stored_goes_first)
{
	/* 8 slots: every key's neighbourhood (STALE_STORE_PROBES) is the whole store. */
	close_store();
	open_store(STALE_STORE_PROBES);
	struct gai_copy answer = ANSWER("192.0.2.1");
	struct lookup_key keys[40];

	for (unsigned i = 0; i < STALE_STORE_PROBES; i++) {
		keys[i] = numbered(i);
		put(&keys[i], &answer, 1000 + i);
	}
	for (unsigned i = 0; i < STALE_STORE_PROBES; i++)
		cr_assert(has(&keys[i]));
	/* One more: k0, stored first, makes room. */
	keys[8] = numbered(8);
	put(&keys[8], &answer, 1008);
	cr_assert_not(has(&keys[0]));
	for (unsigned i = 1; i <= 8; i++)
		cr_assert(has(&keys[i]), "k%u", i);
	/* An answer kept again is young again: k2 goes, not k1. */
	put(&keys[1], &answer, 1009);
	keys[9] = numbered(9);
	put(&keys[9], &answer, 1010);
	cr_assert(has(&keys[1]));
	cr_assert_not(has(&keys[2]));
	/* Many more: the last 8 stay. */
	for (unsigned i = 10; i < 40; i++) {
		keys[i] = numbered(i);
		put(&keys[i], &answer, 1000 + i + 1);
	}
	for (unsigned i = 0; i < 40; i++)
		cr_assert_eq(has(&keys[i]), i >= 32, "k%u", i);
	close_store();
}

/* ---- Failing, retrying, refreshing ---- */

TestSuite(failing, .init = start, .fini = close_store);

Test(failing, note_stale_starts_once_and_counts)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = ANSWER("192.0.2.1");

	cr_assert_not(stale_store_note_stale(&store, &key, 2000, 30000), "no slot");
	put(&key, &answer, 1000);
	cr_assert(stale_store_note_stale(&store, &key, 2000, 30000));
	struct stale_record record = found(&key);
	cr_assert_eq(record.state.failing_since_ms, 2000);
	cr_assert_eq(record.state.retry_at_ms, 32000);
	cr_assert_eq(record.state.served_stale, 1);
	cr_assert_not(stale_store_note_stale(&store, &key, 3000, 30000));
	cr_assert_not(stale_store_note_stale(&store, &key, 4000, 30000));
	record = found(&key);
	cr_assert_eq(record.state.failing_since_ms, 2000);
	cr_assert_eq(record.state.retry_at_ms, 32000);
	cr_assert_eq(record.state.served_stale, 3);
	cr_assert_eq(record.state.stored_ms, 1000, "the answer is as old as before");

	/* A good answer ends it: said once, with the count. */
	uint64_t served = 0;
	cr_assert(stale_store_put(&store, &key, &answer, 5000, &served));
	cr_assert_eq(served, 3);
	record = found(&key);
	cr_assert_eq(record.state.failing_since_ms, 0);
	cr_assert_eq(record.state.served_stale, 0);
	cr_assert_eq(record.state.stored_ms, 5000);
	cr_assert_not(stale_store_put(&store, &key, &answer, 6000, &served));
	cr_assert_eq(served, 0);
}

Test(failing, claim_retry_once_per_period_when_due)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = ANSWER("192.0.2.1");

	cr_assert_not(stale_store_claim_retry(&store, &key, 100000, 30000), "no slot");
	put(&key, &answer, 1000);
	cr_assert_not(stale_store_claim_retry(&store, &key, 100000, 30000), "not failing");
	cr_assert(stale_store_note_stale(&store, &key, 2000, 30000));
	cr_assert_not(stale_store_claim_retry(&store, &key, 31999, 30000), "not due");
	cr_assert(stale_store_claim_retry(&store, &key, 32000, 30000));
	cr_assert_not(stale_store_claim_retry(&store, &key, 32000, 30000), "claimed already");
	cr_assert_not(stale_store_claim_retry(&store, &key, 61999, 30000));
	cr_assert_eq(found(&key).state.retry_at_ms, 62000);
	cr_assert(stale_store_claim_retry(&store, &key, 62000, 30000));
	cr_assert_eq(found(&key).state.failing_since_ms, 2000, "still failing");
}

Test(failing, claim_refresh_once_per_hold)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = ANSWER("192.0.2.1");

	cr_assert_not(stale_store_claim_refresh(&store, &key, 1000, 2000), "no slot");
	put(&key, &answer, 1000);
	cr_assert(stale_store_claim_refresh(&store, &key, 1000, 2000));
	cr_assert_not(stale_store_claim_refresh(&store, &key, 1000, 2000));
	cr_assert_not(stale_store_claim_refresh(&store, &key, 2999, 2000));
	cr_assert(stale_store_claim_refresh(&store, &key, 3000, 2000));
}

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
	cr_assert(lookup_key_for_hostent("db.test", AF_INET, 0, &he));
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
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy empty = answer_of(NULL, 0);

	cr_assert_not(MATCHES(&key, &empty, "192.0.2.1"));
	cr_assert_not(stale_answer_matches(&key, &empty, NULL, 0));
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

static const char *const db_addrs[] = {"192.0.2.1", "192.0.2.2"};
static const char *const other_addrs[] = {"192.0.2.9"};

Test(confirm, agreeing_slot_confirmed_until)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = answer_of(db_addrs, 2);
	put(&key, &answer, 1000);

	struct stale_confirm_result result = confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 2000);
	cr_assert_eq(result.slots, 1);
	cr_assert_eq(result.recovered, 0);
	struct stale_record record = found(&key);
	cr_assert(record.state.dns_confirmed);
	cr_assert_eq(record.state.confirmed_ms, 2000);
	cr_assert_eq(record.state.confirmed_until_ms, 61000);
	cr_assert_eq(record.state.stored_ms, 1000, "not refreshed without recover");

	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, true, 63000, 3000);
	record = found(&key);
	cr_assert_eq(record.state.stored_ms, 3000, "refreshed with recover");
	cr_assert_eq(record.state.confirmed_until_ms, 63000);
}

Test(confirm, failing_slot_recovers_only_with_recover)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = answer_of(db_addrs, 2);
	put(&key, &answer, 1000);
	cr_assert(stale_store_note_stale(&store, &key, 2000, 30000));
	cr_assert_not(stale_store_note_stale(&store, &key, 2500, 30000));

	struct stale_confirm_result result = confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 3000);
	cr_assert_eq(result.slots, 1);
	cr_assert_eq(result.recovered, 0);
	struct stale_record record = found(&key);
	cr_assert_eq(record.state.failing_since_ms, 2000, "still failing");
	cr_assert_eq(record.state.confirmed_until_ms, 0, "a failing slot is not confirmed");

	result = confirm("db.test", AF_UNSPEC, db_addrs, 2, false, true, 64000, 4000);
	cr_assert_eq(result.slots, 1);
	cr_assert_eq(result.recovered, 1);
	cr_assert_eq(result.served, 2);
	record = found(&key);
	cr_assert_eq(record.state.failing_since_ms, 0);
	cr_assert_eq(record.state.served_stale, 0);
	cr_assert(record.state.dns_confirmed);
	cr_assert_eq(record.state.confirmed_until_ms, 64000);
	cr_assert_eq(record.state.stored_ms, 4000);
}

Test(confirm, mismatch_unconfirms)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = answer_of(db_addrs, 2);
	put(&key, &answer, 1000);
	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 2000);
	cr_assert(stale_store_claim_refresh(&store, &key, 2500, 60000));

	struct stale_confirm_result result = confirm("db.test", AF_UNSPEC, other_addrs, 1, false, false, 62000, 3000);
	cr_assert_eq(result.slots, 1);
	struct stale_record record = found(&key);
	cr_assert_eq(record.state.confirmed_until_ms, 0, "no longer fresh");
	cr_assert_eq(record.state.confirmed_ms, 2000);
	cr_assert_eq(record.state.refresh_claimed_until_ms, 0, "the query came back: another may be sent");
	/* The kept answer changing is what drops dns_confirmed. */
	struct gai_copy changed = answer_of(other_addrs, 1);
	put(&key, &changed, 4000);
	cr_assert_not(found(&key).state.dns_confirmed);
}

Test(confirm, in_hosts_marks_and_never_confirms)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = answer_of(db_addrs, 2);
	put(&key, &answer, 1000);
	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 2000);

	confirm("db.test", AF_UNSPEC, db_addrs, 2, true, false, 62000, 3000);
	struct stale_record record = found(&key);
	cr_assert(record.state.from_hosts);
	cr_assert_not(record.state.dns_confirmed);
	cr_assert_eq(record.state.confirmed_until_ms, 0);

	/* Out of /etc/hosts again: confirmed again. */
	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 64000, 4000);
	record = found(&key);
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
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = answer_of(db_addrs, 2);
	put(&key, &answer, 1000);
	confirm("db.test", AF_UNSPEC, db_addrs, 2, false, false, 61000, 2000);
	cr_assert(stale_store_note_stale(&store, &key, 3000, 30000));
	cr_assert_eq(found(&key).state.confirmed_until_ms, 0);
}

/* ---- The lock ---- */

TestSuite(lock, .init = start, .fini = close_store);

static double elapsed_ms(const struct timespec *from)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - from->tv_sec) * 1e3 + (double)(now.tv_nsec - from->tv_nsec) / 1e6;
}

Test(lock, live_holder_not_taken)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = ANSWER("192.0.2.1");
	put(&key, &answer, 1000);
	struct stale_slot *slot = slot_of(&key);
	atomic_store(&slot->lock, 1000 + STALE_STORE_LOCK_MS); /* held since 1000 */

	struct timespec start_time;
	clock_gettime(CLOCK_MONOTONIC, &start_time);
	struct stale_record record;
	cr_assert_not(stale_store_find(&store, &key, 1500, &record));
	double spent = elapsed_ms(&start_time);
	cr_assert_lt(spent, 2000.0, "a find gave up after %.0f ms", spent);
	cr_log_info("a find of a locked slot gave up after %.1f ms", spent);
	cr_assert_not(stale_store_note_stale(&store, &key, 1500, 30000), "taken while its holder lives");
	cr_assert_eq(atomic_load(&slot->lock), 1000 + STALE_STORE_LOCK_MS, "the lock word was changed");
	/* Past its time, the holder is presumed dead: taken over, and released. */
	cr_assert(stale_store_note_stale(&store, &key, 1000 + STALE_STORE_LOCK_MS + 1, 30000));
	cr_assert_eq(atomic_load(&slot->lock), 0);
	cr_assert(has(&key));
}

Test(lock, dead_holder_taken_over)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy answer = ANSWER("192.0.2.1");
	put(&key, &answer, 1000);
	struct stale_slot *slot = slot_of(&key);
	atomic_store(&slot->lock, 500); /* a holder that died before 500 */

	cr_assert(stale_store_claim_refresh(&store, &key, 1000, 2000));
	cr_assert_eq(atomic_load(&slot->lock), 0);
	atomic_store(&slot->lock, 500);
	struct stale_record record;
	cr_assert(stale_store_find(&store, &key, 1000, &record), "a find takes it over too");
	cr_assert_eq(atomic_load(&slot->lock), 0);
	atomic_store(&slot->lock, 500);
	stale_store_forget(&store, &key, 1000);
	cr_assert_not(has(&key), "nor does a dead holder keep a forget out");
	put(&key, &answer, 1500);
	atomic_store(&slot->lock, 500);
	uint64_t served;
	cr_assert_not(stale_store_put(&store, &key, &answer, 2000, &served));
	cr_assert_eq(used_slots(), 1, "the key's own slot, not a second one");
	cr_assert_eq(found(&key).state.stored_ms, 2000);
}

/* A put while the key's slot is held (a holder not yet presumed dead) must not make the key a
 * second slot: a forget would then leave that one behind, and a gone name be served stale. */
Test(lock, put_never_makes_a_second_slot_for_a_held_key)
{
	struct lookup_key key = key_of("db.test", NULL);
	struct gai_copy old = ANSWER("192.0.2.1"), new = ANSWER("192.0.2.2");
	put(&key, &old, 1000);
	struct stale_slot *slot = slot_of(&key);
	atomic_store(&slot->lock, 2000 + STALE_STORE_LOCK_MS);

	uint64_t served;
	cr_assert_not(stale_store_put(&store, &key, &new, 2500, &served));
	cr_assert_eq(used_slots(), 1, "the key got a second slot");
	atomic_store(&slot->lock, 0);
	stale_store_forget(&store, &key, 3000);
	cr_assert_not(has(&key), "a forgotten name still has an answer");
}

/* ---- Processes sharing one block ---- */

Test(shared, child_puts_parent_finds)
{
	size_t size = stale_store_size(STALE_STORE_SLOTS);
	void *shared = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(shared, MAP_FAILED);
	struct lookup_key key = key_of("shared.test", NULL);
	struct gai_copy answer = ANSWER("192.0.2.7", "2001:db8::7");

	pid_t child = fork();
	cr_assert_neq(child, -1);
	if (child == 0) {
		struct stale_store mine;
		uint64_t served;
		bool ok = stale_store_attach(&mine, shared, STALE_STORE_SLOTS);
		ok = ok && !stale_store_put(&mine, &key, &answer, 1000, &served);
		_exit(ok ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	struct stale_store parent;
	struct stale_record record;
	cr_assert(stale_store_attach(&parent, shared, STALE_STORE_SLOTS));
	cr_assert(stale_store_find(&parent, &key, 2000, &record));
	cr_assert_eq(memcmp(&record.answer, &answer, sizeof answer), 0);
	cr_assert_eq(record.state.stored_ms, 1000);
	munmap(shared, size);
}

static uint64_t boot_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A writer in one process, finds in another, on the shim's clock: every answer found is one that
 * was put, never a mix of two (a find holds the slot's lock as long as it copies). */
Test(shared, find_never_reads_a_torn_answer)
{
	size_t size = stale_store_size(STALE_STORE_SLOTS);
	void *shared = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(shared, MAP_FAILED);
	struct stale_store mine;
	cr_assert(stale_store_attach(&mine, shared, STALE_STORE_SLOTS));
	struct lookup_key key = key_of("torn.test", NULL);
	struct gai_copy answers[2];
	memset(answers, 0, sizeof answers);
	for (unsigned i = 0; i < GAI_COPY_ADDRS_MAX; i++) {
		answers[0].addrs[i] = (struct gai_copy_addr){.family = AF_INET, .bytes = {192, 0, 2, (uint8_t)i}};
		answers[1].addrs[i] = (struct gai_copy_addr){.family = AF_INET6, .bytes = {0x20, 1, 0xd, 0xb8, [15] = (uint8_t)i}};
	}
	answers[0].addr_count = answers[1].addr_count = GAI_COPY_ADDRS_MAX;
	memset(answers[0].name, 'a', GAI_COPY_NAME_MAX);
	memset(answers[1].name, 'b', GAI_COPY_NAME_MAX);
	uint64_t served;
	stale_store_put(&mine, &key, &answers[0], boot_ms(), &served);

	pid_t child = fork();
	cr_assert_neq(child, -1);
	if (child == 0) {
		uint64_t until = boot_ms() + 300;
		for (unsigned i = 0; boot_ms() < until; i++)
			stale_store_put(&mine, &key, &answers[i % 2], boot_ms(), &served);
		_exit(0);
	}
	unsigned torn = 0, finds = 0;
	for (int status; waitpid(child, &status, WNOHANG) == 0;) {
		struct stale_record record;
		if (!stale_store_find(&mine, &key, boot_ms(), &record))
			continue;
		finds++;
		torn += memcmp(&record.answer, &answers[0], sizeof answers[0]) != 0 &&
			memcmp(&record.answer, &answers[1], sizeof answers[1]) != 0;
	}
	cr_log_info("%u finds, %u torn", finds, torn);
	cr_assert_gt(finds, 0);
	cr_assert_eq(torn, 0, "%u of %u finds read a torn answer", torn, finds);
	munmap(shared, size);
}
