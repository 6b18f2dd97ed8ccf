/* The unit tests' store of last good answers (stale_store.h): a store over a zeroed block of
 * the test's, and a name's key and answers to keep in it. */
#ifndef DNSAWARE_TEST_STALE_FIXTURE_H
#define DNSAWARE_TEST_STALE_FIXTURE_H

#include <criterion/criterion.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ip_literal.h"
#include "stale_store.h"

static void *block;
static struct stale_store store;

static inline void open_store(unsigned count)
{
	block = calloc(1, stale_store_size(count));
	cr_assert_not_null(block);
	cr_assert(stale_store_attach(&store, block, count));
}

static inline void close_store(void)
{
	free(block);
	block = NULL;
}

static inline struct lookup_key key_of(const char *node, const struct addrinfo *hints)
{
	struct lookup_key key;

	cr_assert(lookup_key_for_getaddrinfo(node, NULL, hints, 0, &key));
	return key;
}

/* An answer of the given addresses, one stream entry each. */
static inline struct gai_copy answer_of(const char *const *texts, unsigned n)
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

/* Most tests keep one name's answer: db.test (glibc's default hints), 192.0.2.1 or db_addrs. */
static struct lookup_key db;
static struct gai_copy one, db_answer;
static const char *const db_addrs[] = {"192.0.2.1", "192.0.2.2"};

/* A suite's .init: an empty store of STALE_STORE_SLOTS slots, and db's key and answers. */
static inline void start(void)
{
	open_store(STALE_STORE_SLOTS);
	db = key_of("db.test", NULL);
	one = answer_of(db_addrs, 1);
	db_answer = answer_of(db_addrs, 2);
}

static inline void put(const struct lookup_key *key, const struct gai_copy *answer, uint64_t now)
{
	uint64_t served;

	cr_assert_not(stale_store_put(&store, key, answer, now, 0, &served), "the slot was failing");
	cr_assert_eq(served, 0);
}

/* Finds at the start of time: they take over no lock a test set. */
#define FIND_MS 1

static inline struct stale_record found(const struct lookup_key *key)
{
	struct stale_record record;

	cr_assert(stale_store_find(&store, key, FIND_MS, &record), "%s not found", key->node);
	return record;
}

static inline bool has(const struct lookup_key *key)
{
	struct stale_record record;

	return stale_store_find(&store, key, FIND_MS, &record);
}

static inline unsigned used_slots(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < store.count; i++)
		n += store.slots[i].used;
	return n;
}

static inline struct stale_slot *slot_of(const struct lookup_key *key)
{
	for (unsigned i = 0; i < store.count; i++)
		if (store.slots[i].used && lookup_key_equal(&store.slots[i].key, key))
			return &store.slots[i];
	cr_assert_fail("no slot for %s", key->node);
	return NULL;
}

#endif
