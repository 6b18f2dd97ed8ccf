/* What an answer from c-ares says, read once by the background thread (design.md, "Staleness":
 * the TTL is the minimum over the answer, CNAME chain included, and never negative or wrapped). */
#include "answer.h"

#include <ares.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include "schedule.h"

/* An answer can carry thousands of addresses (over TCP), and the thread reads it holding the names
 * lock that the program's connects wait for: each address is looked up in the record set and
 * among those taken through these small hash sets, a probe or two, rather than compared with up
 * to 64 addresses twice. At most ANSWER_MAX entries in twice as many slots. */
#define INDEX_SLOTS (2 * ANSWER_MAX)

struct address_index {
	const struct ip_addr *slots[INDEX_SLOTS]; /* into the record set or the answer; NULL: free */
};

/* FNV-1a over the family and the address bytes (only those: padding is not compared either). */
static unsigned slot_of(const struct ip_addr *addr)
{
	unsigned length = addr->family == AF_INET6 ? 16 : 4;
	uint32_t hash = 2166136261u;

	hash = (hash ^ addr->family) * 16777619u;
	for (unsigned i = 0; i < length; i++)
		hash = (hash ^ addr->bytes[i]) * 16777619u;
	return hash % INDEX_SLOTS;
}

static bool index_contains(const struct address_index *index, const struct ip_addr *addr)
{
	for (unsigned slot = slot_of(addr); index->slots[slot] != NULL; slot = (slot + 1) % INDEX_SLOTS)
		if (ip_addr_equal(index->slots[slot], addr))
			return true;
	return false;
}

/* The caller adds at most ANSWER_MAX addresses, so a free slot is always found. */
static void index_add(struct address_index *index, const struct ip_addr *addr)
{
	unsigned slot = slot_of(addr);

	while (index->slots[slot] != NULL)
		slot = (slot + 1) % INDEX_SLOTS;
	index->slots[slot] = addr;
}

/* c-ares hands TTLs over as int: a DNS TTL with its top bit set arrives negative, and RFC 2181
 * says to read it as 0. The minimum starts from the largest int, so nothing can wrap. */
static uint32_t minimum_ttl(const struct ares_addrinfo *result)
{
	int minimum = INT_MAX;
	bool seen = false;

	for (const struct ares_addrinfo_node *node = result->nodes; node != NULL; node = node->ai_next) {
		seen = true;
		if (node->ai_ttl < minimum)
			minimum = node->ai_ttl;
	}
	for (const struct ares_addrinfo_cname *cname = result->cnames; cname != NULL; cname = cname->next) {
		seen = true;
		if (cname->ttl < minimum)
			minimum = cname->ttl;
	}
	return !seen || minimum < 0 ? 0 : (uint32_t)minimum;
}

/* One pass over the nodes, taking the usable addresses not taken yet (with members, only those
 * among them, member_count of which there are). Stops as soon as nothing more can change: every
 * member found, or the answer full and known to be truncated; a long answer is scanned once at
 * most per pass. */
static void collect_pass(const struct ares_addrinfo *result, const struct address_index *members,
			 unsigned member_count, struct address_index *taken, struct answer *out)
{
	for (const struct ares_addrinfo_node *node = result->nodes; node != NULL; node = node->ai_next) {
		struct ip_addr addr;

		if (members != NULL && out->count == member_count)
			break;
		if (!ip_addr_from_sockaddr(node->ai_addr, node->ai_addrlen, &addr, NULL))
			continue;
		if (members != NULL && !index_contains(members, &addr))
			continue;
		if (index_contains(taken, &addr))
			continue;
		if (out->count == ANSWER_MAX) {
			out->truncated = true;
			break;
		}
		out->addrs[out->count] = addr;
		index_add(taken, &out->addrs[out->count]);
		out->count++;
	}
}

void answer_collect(const struct ares_addrinfo *result, const struct recordset *current, struct answer *out)
{
	struct address_index members;
	struct address_index taken;
	unsigned member_count = 0;

	memset(out, 0, sizeof *out);
	if (result == NULL)
		return;
	out->ttl_seconds = minimum_ttl(result);
	memset(&taken, 0, sizeof taken);
	/* The set holds at most ANSWER_MAX addresses, so all of its members in the answer fit; the
	 * second pass finds them taken already. */
	if (current != NULL && current->count > 0) {
		memset(&members, 0, sizeof members);
		for (unsigned i = 0; i < current->count && i < ANSWER_MAX; i++) {
			if (index_contains(&members, &current->records[i].addr))
				continue; /* a set never holds one twice; counted once if it did */
			index_add(&members, &current->records[i].addr);
			member_count++;
		}
		collect_pass(result, &members, member_count, &taken, out);
	}
	collect_pass(result, NULL, 0, &taken, out);
}

uint64_t answer_interval_ms(const struct answer *answer, uint64_t floor_ms, uint64_t ceiling_ms)
{
	return schedule_ttl_ms(answer->ttl_seconds, floor_ms, ceiling_ms);
}
