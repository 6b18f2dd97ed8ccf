/* The store of last good answers (stale_store.c), over a block of memory as the shared file gives
 * it: attaching, keeping and finding, the failing state and its claims, the per-slot lock with its
 * time-out, and two processes sharing one block. The comparison with the library's own answer
 * and the cache's confirmations: test_stale_confirm.c. */
#include <arpa/inet.h>
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

#include "stale_fixture.h"

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
	struct gai_copy answer = ANSWER("192.0.2.1", "2001:db8::1");

	put(&db, &answer, 1000);
	struct stale_record record = found(&db);
	cr_assert_eq(memcmp(&record.answer, &answer, sizeof answer), 0);
	cr_assert_eq(record.state.stored_ms, 1000);
	cr_assert_eq(record.state.failing_since_ms, 0);
	cr_assert_eq(record.state.served_stale, 0);
	cr_assert_not(record.state.dns_confirmed);
}

Test(keep, other_key_not_found)
{
	struct addrinfo v4 = {.ai_family = AF_INET};

	cr_assert_not(has(&db), "an empty store");
	put(&db, &one, 1000);
	struct lookup_key other = key_of("db2.test", NULL), other_shape = key_of("db.test", &v4);
	cr_assert_not(has(&other));
	cr_assert_not(has(&other_shape));
}

Test(keep, same_key_updated_in_place)
{
	struct gai_copy first = ANSWER("192.0.2.1"), second = ANSWER("192.0.2.2", "192.0.2.3");

	put(&db, &first, 1000);
	put(&db, &second, 2000);
	struct stale_record record = found(&db);
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
	cr_assert_not(stale_store_note_stale(&store, &db, 2000, 30000), "no slot");
	put(&db, &one, 1000);
	cr_assert(stale_store_note_stale(&store, &db, 2000, 30000));
	struct stale_record record = found(&db);
	cr_assert_eq(record.state.failing_since_ms, 2000);
	cr_assert_eq(record.state.retry_at_ms, 32000);
	cr_assert_eq(record.state.served_stale, 1);
	cr_assert_not(stale_store_note_stale(&store, &db, 3000, 30000));
	cr_assert_not(stale_store_note_stale(&store, &db, 4000, 30000));
	record = found(&db);
	cr_assert_eq(record.state.failing_since_ms, 2000);
	cr_assert_eq(record.state.retry_at_ms, 32000);
	cr_assert_eq(record.state.served_stale, 3);
	cr_assert_eq(record.state.stored_ms, 1000, "the answer is as old as before");

	/* A good answer ends it: said once, with the count. */
	uint64_t served = 0;
	cr_assert(stale_store_put(&store, &db, &one, 5000, 0, &served));
	cr_assert_eq(served, 3);
	record = found(&db);
	cr_assert_eq(record.state.failing_since_ms, 0);
	cr_assert_eq(record.state.served_stale, 0);
	cr_assert_eq(record.state.stored_ms, 5000);
	cr_assert_not(stale_store_put(&store, &db, &one, 6000, 0, &served));
	cr_assert_eq(served, 0);
}

Test(failing, claim_retry_once_per_period_when_due)
{
	cr_assert_not(stale_store_claim_retry(&store, &db, 100000, 30000), "no slot");
	put(&db, &one, 1000);
	cr_assert_not(stale_store_claim_retry(&store, &db, 100000, 30000), "not failing");
	cr_assert(stale_store_note_stale(&store, &db, 2000, 30000));
	cr_assert_not(stale_store_claim_retry(&store, &db, 31999, 30000), "not due");
	cr_assert(stale_store_claim_retry(&store, &db, 32000, 30000));
	cr_assert_not(stale_store_claim_retry(&store, &db, 32000, 30000), "claimed already");
	cr_assert_not(stale_store_claim_retry(&store, &db, 61999, 30000));
	cr_assert_eq(found(&db).state.retry_at_ms, 62000);
	cr_assert(stale_store_claim_retry(&store, &db, 62000, 30000));
	cr_assert_eq(found(&db).state.failing_since_ms, 2000, "still failing");
}

Test(failing, claim_refresh_once_per_hold)
{
	cr_assert_not(stale_store_claim_refresh(&store, &db, 1000, 2000), "no slot");
	put(&db, &one, 1000);
	cr_assert(stale_store_claim_refresh(&store, &db, 1000, 2000));
	cr_assert_not(stale_store_claim_refresh(&store, &db, 1000, 2000));
	cr_assert_not(stale_store_claim_refresh(&store, &db, 2999, 2000));
	cr_assert(stale_store_claim_refresh(&store, &db, 3000, 2000));
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
	put(&db, &one, 1000);
	struct stale_slot *slot = slot_of(&db);
	atomic_store(&slot->lock, 1000 + STALE_STORE_LOCK_MS); /* held since 1000 */

	struct timespec start_time;
	clock_gettime(CLOCK_MONOTONIC, &start_time);
	struct stale_record record;
	cr_assert_not(stale_store_find(&store, &db, 1500, &record));
	double spent = elapsed_ms(&start_time);
	cr_assert_lt(spent, 2000.0, "a find gave up after %.0f ms", spent);
	cr_log_info("a find of a locked slot gave up after %.1f ms", spent);
	cr_assert_not(stale_store_note_stale(&store, &db, 1500, 30000), "taken while its holder lives");
	cr_assert_eq(atomic_load(&slot->lock), 1000 + STALE_STORE_LOCK_MS, "the lock word was changed");
	/* Past its time, the holder is presumed dead: taken over, and released. */
	cr_assert(stale_store_note_stale(&store, &db, 1000 + STALE_STORE_LOCK_MS + 1, 30000));
	cr_assert_eq(atomic_load(&slot->lock), 0);
	cr_assert(has(&db));
}

Test(lock, dead_holder_taken_over)
{
	put(&db, &one, 1000);
	struct stale_slot *slot = slot_of(&db);
	atomic_store(&slot->lock, 500); /* a holder that died before 500 */

	cr_assert(stale_store_claim_refresh(&store, &db, 1000, 2000));
	cr_assert_eq(atomic_load(&slot->lock), 0);
	atomic_store(&slot->lock, 500);
	struct stale_record record;
	cr_assert(stale_store_find(&store, &db, 1000, &record), "a find takes it over too");
	cr_assert_eq(atomic_load(&slot->lock), 0);
	atomic_store(&slot->lock, 500);
	stale_store_forget(&store, &db, 1000);
	cr_assert_not(has(&db), "nor does a dead holder keep a forget out");
	put(&db, &one, 1500);
	atomic_store(&slot->lock, 500);
	uint64_t served;
	cr_assert_not(stale_store_put(&store, &db, &one, 2000, 0, &served));
	cr_assert_eq(used_slots(), 1, "the key's own slot, not a second one");
	cr_assert_eq(found(&db).state.stored_ms, 2000);
}

/* A put while the key's slot is held (a holder not yet presumed dead) must not make the key a
 * second slot: a forget would then leave that one behind, and a gone name be served stale. */
Test(lock, put_never_makes_a_second_slot_for_a_held_key)
{
	struct gai_copy old = ANSWER("192.0.2.1"), new = ANSWER("192.0.2.2");
	put(&db, &old, 1000);
	struct stale_slot *slot = slot_of(&db);
	atomic_store(&slot->lock, 2000 + STALE_STORE_LOCK_MS);

	uint64_t served;
	cr_assert_not(stale_store_put(&store, &db, &new, 2500, 0, &served));
	cr_assert_eq(used_slots(), 1, "the key got a second slot");
	atomic_store(&slot->lock, 0);
	stale_store_forget(&store, &db, 3000);
	cr_assert_not(has(&db), "a forgotten name still has an answer");
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
		ok = ok && !stale_store_put(&mine, &key, &answer, 1000, 0, &served);
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
	stale_store_put(&mine, &key, &answers[0], boot_ms(), 0, &served);

	pid_t child = fork();
	cr_assert_neq(child, -1);
	if (child == 0) {
		uint64_t until = boot_ms() + 300;
		for (unsigned i = 0; boot_ms() < until; i++)
			stale_store_put(&mine, &key, &answers[i % 2], boot_ms(), 0, &served);
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

static struct ip_addr ip_of(const char *text)
{
	struct ip_addr addr = {0};
	unsigned char bytes[16];
	if (inet_pton(AF_INET, text, bytes) == 1)
		ip_addr_from_bytes(AF_INET, bytes, &addr);
	else if (inet_pton(AF_INET6, text, bytes) == 1)
		ip_addr_from_bytes(AF_INET6, bytes, &addr);
	return addr;
}

Test(order, no_order_without_two_addresses_of_a_family)
{
	struct ip_addr one[2] = {ip_of("127.0.0.10"), ip_of("fd00::10")};
	cr_assert_eq(stale_answer_order(one, 1), STALE_ORDER_NONE);
	cr_assert_eq(stale_answer_order(one, 2), STALE_ORDER_NONE, "one of each family: nothing to order");
	cr_assert_eq(stale_answer_order(one, 0), STALE_ORDER_NONE);
}

Test(order, per_family_sequence)
{
	struct ip_addr ab[3] = {ip_of("127.0.0.10"), ip_of("127.0.0.11"), ip_of("fd00::10")};
	struct ip_addr ba[3] = {ip_of("127.0.0.11"), ip_of("127.0.0.10"), ip_of("fd00::10")};
	struct ip_addr ab_v6_first[3] = {ip_of("fd00::10"), ip_of("127.0.0.10"), ip_of("127.0.0.11")};
	uint64_t order = stale_answer_order(ab, 3);
	cr_assert_neq(order, 0, "never 0 (0 is \"not known\")");
	cr_assert_neq(order, STALE_ORDER_NONE);
	cr_assert_neq(order, stale_answer_order(ba, 3), "the DNS rotated the IPv4 addresses");
	cr_assert_eq(order, stale_answer_order(ab_v6_first, 3),
		     "where the families come in the answer does not matter, only each one's order");
}
