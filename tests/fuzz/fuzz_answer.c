/* Fuzz target: what the background thread does with c-ares answers (answer.c) and the record set
 * updates they drive (recordset.c), over a sequence of answers for one name, as on_answer in
 * resolver_thread.c does it, with the program's own answers (getaddrinfo, recordset_learn)
 * interleaved.
 *
 * Input: a header (TTL floor and ceiling, DNSAWARE_STALE_AFTER), then operations until the input
 * ends: the program learns addresses; a refresh fails (timeout, SERVFAIL: c-ares hands over no
 * result); or a refresh succeeds with an ares_addrinfo built from the input: CNAMEs and nodes with
 * odd TTLs (negative, INT_MIN, INT_MAX), duplicates (addresses come mostly from a small pool),
 * IPv4, IPv6, v4-mapped IPv6, foreign families, short or missing sockaddrs, and generated runs of
 * up to 4096 nodes (about what c-ares can get over TCP; 6000 over one input). Each sockaddr of an explicit node is allocated at
 * exactly its ai_addrlen, so AddressSanitizer sees a read past it.
 *
 * Checked, after every step:
 * - the answer: at most ANSWER_MAX addresses, distinct, IPv4 or IPv6 (never v4-mapped), each one of
 *   the usable nodes; all usable nodes unless marked truncated; the TTL is the minimum over nodes
 *   and CNAMEs, never negative; the interval is within [floor, ceiling];
 * - the record set: bounded (records, former, departed), no duplicates, no address both current and
 *   former; a failure changes nothing but the failure count; a success removes only addresses absent
 *   from the whole answer, never one the answer holds, keeps every address of the answer unless the
 *   set is full, counts what it added, and leaves no record absent stale_after times unless the
 *   name is rotating (which no answer ever undoes). */
#include "fuzz.h"

#include <ares.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "answer.h"
#include "recordset.h"

#define OPERATIONS_MAX 64
#define CNAMES_MAX 8
#define EXPLICIT_NODES_MAX 96
#define GENERATED_NODES_MAX 4096
/* Nodes over all the answers of one input: thousands in one answer, without every input taking
 * seconds (each answer is checked against the whole of itself). */
#define NODE_BUDGET 6000
#define POOL_SIZE 8
/* Node kinds (make_sockaddr): 0-2 IPv4, 3-4 IPv6, 5 v4-mapped, 6 IPv6 without scope id, 7 another
 * family, 8 too short, 9 no sockaddr. */
#define KINDS 10
#define KIND_NO_SOCKADDR 9

static const uint64_t floors_ms[] = { 1, 1000, 5000, 30000, 300000 };
static const uint64_t ceilings_ms[] = { 1, 5000, 300000, 86400000, 30ULL * 24 * 3600 * 1000 };

struct built_answer {
	struct ares_addrinfo info;
	struct ares_addrinfo_cname cnames[CNAMES_MAX];
	struct ares_addrinfo_node *nodes;
	unsigned node_count;
	struct sockaddr_in6 *block; /* a generated run's sockaddrs, in one allocation */
};

static unsigned node_budget;

/* ---- the input's choices ---- */

static int read_ttl(struct fuzz_input *in)
{
	uint8_t choice = fuzz_byte(in);

	switch (choice % 8) {
	case 0:
		return 0; /* /etc/hosts */
	case 1:
		return -1;
	case 2:
		return INT_MIN; /* a DNS TTL of 2^31 as c-ares hands it over */
	case 3:
		return INT_MAX;
	case 4:
		return choice / 8; /* a few seconds */
	case 5:
		return 300;
	case 6:
		return (int)fuzz_u32(in);
	default:
		return 86400;
	}
}

/* A sockaddr of exactly *len bytes (NULL for none). */
static struct sockaddr *make_sockaddr(uint8_t kind, const uint8_t raw[16], socklen_t *len)
{
	struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = htons(443) };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct sockaddr_un other = { .sun_family = AF_UNIX };
	const void *source = NULL;
	struct sockaddr *sa;

	switch (kind % KINDS) {
	case 0:
	case 1:
	case 2:
		memcpy(&v4.sin_addr, raw, 4);
		source = &v4;
		*len = sizeof v4;
		break;
	case 3:
	case 4:
		memcpy(&v6.sin6_addr, raw, 16);
		source = &v6;
		*len = sizeof v6;
		break;
	case 5: /* ::ffff:a.b.c.d, the same address as IPv4 a.b.c.d */
		v6.sin6_addr.s6_addr[10] = 0xff;
		v6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&v6.sin6_addr.s6_addr[12], raw, 4);
		source = &v6;
		*len = sizeof v6;
		break;
	case 6: /* the RFC 2133 layout, without sin6_scope_id */
		memcpy(&v6.sin6_addr, raw, 16);
		source = &v6;
		*len = offsetof(struct sockaddr_in6, sin6_addr) + sizeof v6.sin6_addr;
		break;
	case 7: /* a family the library does not compare */
		source = &other;
		*len = sizeof other.sun_family + 4;
		break;
	case 8: /* too short for its family */
		memcpy(&v4.sin_addr, raw, 4);
		source = &v4;
		*len = (socklen_t)(raw[4] % sizeof v4);
		break;
	default: /* KIND_NO_SOCKADDR */
		*len = 0;
		return NULL;
	}
	sa = malloc(*len > 0 ? *len : 1);
	if (sa != NULL && *len > 0)
		memcpy(sa, source, *len);
	return sa;
}

static void free_answer(struct built_answer *built)
{
	if (built->block == NULL)
		for (unsigned i = 0; i < built->node_count; i++)
			free(built->nodes[i].ai_addr);
	free(built->block);
	built->block = NULL;
	free(built->nodes);
	built->nodes = NULL;
	built->node_count = 0;
}

/* False only when out of memory. */
static bool set_node(struct ares_addrinfo_node *node, uint8_t kind, const uint8_t raw[16], int ttl)
{
	socklen_t len = 0;

	node->ai_ttl = ttl;
	node->ai_socktype = SOCK_STREAM;
	node->ai_addr = make_sockaddr(kind, raw, &len);
	node->ai_addrlen = len;
	node->ai_family = kind % KINDS >= 3 && kind % KINDS <= 6 ? AF_INET6 : AF_INET;
	return kind % KINDS == KIND_NO_SOCKADDR || node->ai_addr != NULL;
}

/* The address bytes a node of this kind needs: from a small pool for kinds 0, 1, 3 and 5 (so
 * duplicates and overlap between answers are common), from the input for the others. */
static void read_address(struct fuzz_input *in, uint8_t kind, uint8_t raw[16])
{
	uint8_t pool_index = 1 + fuzz_byte(in) % POOL_SIZE;

	switch (kind % KINDS) {
	case 0:
	case 1:
	case 5:
		memcpy(raw, (uint8_t[]){ 192, 0, 2, pool_index }, 4); /* 192.0.2.1.. */
		break;
	case 3:
		memcpy(raw, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8 }, 4); /* 2001:db8::1.. */
		raw[15] = pool_index;
		break;
	case 2:
		fuzz_bytes(in, raw, 4);
		break;
	case 4:
	case 6:
		fuzz_bytes(in, raw, 16);
		break;
	case 8:
		fuzz_bytes(in, raw, 5);
		break;
	}
}

/* Explicit nodes, each described by the input, or a generated run of distinct addresses. */
static bool build_answer(struct fuzz_input *in, struct built_answer *built)
{
	memset(built, 0, sizeof *built);
	unsigned cname_count = fuzz_byte(in) % (CNAMES_MAX + 1);
	for (unsigned i = 0; i < cname_count; i++) {
		built->cnames[i].ttl = read_ttl(in);
		built->cnames[i].alias = (char *)"alias.example";
		built->cnames[i].name = (char *)"name.example";
		built->cnames[i].next = i + 1 < cname_count ? &built->cnames[i + 1] : NULL;
	}
	built->info.cnames = cname_count > 0 ? &built->cnames[0] : NULL;

	/* Shape: bit 15 clear, explicit nodes (the low byte counts them); bit 15 set, a generated run
	 * of up to 255 nodes, or with bit 14 too, of up to 4096 (kept the rarer: they are slow). */
	uint16_t shape = fuzz_u16(in);
	bool generated = shape & 0x8000;
	unsigned count = (shape & 0xff) % (EXPLICIT_NODES_MAX + 1);
	if (generated)
		count = shape & 0x4000 ? (shape & 0x1fffu) % (GENERATED_NODES_MAX + 1) : shape & 0xffu;
	if (count > node_budget)
		count = node_budget;
	node_budget -= count;
	if (count == 0)
		return true;
	built->nodes = calloc(count, sizeof *built->nodes);
	if (built->nodes == NULL)
		return false;
	/* Thousands of allocations per answer would make the fuzzer crawl: one block instead. */
	if (generated) {
		built->block = calloc(count, sizeof *built->block);
		if (built->block == NULL)
			return false;
	}

	if (generated) {
		/* Distinct addresses numbered from a base, each once or twice, in one family, both in
		 * turn, or IPv4 with v4-mapped twins; TTLs stepping from a chosen one (wrapping). */
		uint8_t pattern = fuzz_byte(in);
		uint8_t base[16] = { 0 };
		fuzz_bytes(in, base, sizeof base);
		int ttl = read_ttl(in);
		int ttl_step = (int8_t)fuzz_byte(in);
		bool twice = pattern & 1;
		for (unsigned i = 0; i < count; i++) {
			unsigned serial = twice ? i / 2 : i;
			uint8_t kind = 2; /* IPv4 */
			switch ((pattern >> 1) % 4) {
			case 1:
				kind = 4; /* IPv6 */
				break;
			case 2:
				kind = serial % 2 ? 4 : 2;
				break;
			case 3:
				kind = twice && i % 2 ? 5 : 2; /* the second of each pair v4-mapped */
				break;
			}
			uint8_t address[16];
			memcpy(address, base, sizeof address);
			unsigned last = kind == 4 ? 15 : 3;
			address[last] ^= (uint8_t)serial;
			address[last - 1] ^= (uint8_t)(serial >> 8);
			struct ares_addrinfo_node *node = &built->nodes[built->node_count++];
			node->ai_ttl = (int)((unsigned)ttl + (unsigned)ttl_step * i); /* wraps on purpose */
			node->ai_socktype = SOCK_STREAM;
			node->ai_addr = (struct sockaddr *)&built->block[i];
			if (kind == 2) {
				struct sockaddr_in v4 = { .sin_family = AF_INET };
				memcpy(&v4.sin_addr, address, 4);
				memcpy(&built->block[i], &v4, sizeof v4);
				node->ai_family = AF_INET;
				node->ai_addrlen = sizeof v4;
			} else {
				struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
				if (kind == 5) {
					v6.sin6_addr.s6_addr[10] = 0xff;
					v6.sin6_addr.s6_addr[11] = 0xff;
					memcpy(&v6.sin6_addr.s6_addr[12], address, 4);
				} else {
					memcpy(&v6.sin6_addr, address, 16);
				}
				built->block[i] = v6;
				node->ai_family = AF_INET6;
				node->ai_addrlen = sizeof v6;
			}
		}
	} else {
		for (unsigned i = 0; i < count; i++) {
			uint8_t kind = fuzz_byte(in);
			uint8_t raw[16] = { 0 };
			read_address(in, kind, raw);
			if (!set_node(&built->nodes[built->node_count++], kind, raw, read_ttl(in)))
				return false;
		}
	}
	for (unsigned i = 0; i + 1 < built->node_count; i++)
		built->nodes[i].ai_next = &built->nodes[i + 1];
	built->info.nodes = &built->nodes[0];
	built->info.name = (char *)"name.example";
	return true;
}

/* ---- an independent reading of the answer ---- */

static bool same(const struct ip_addr *a, const struct ip_addr *b)
{
	if (a->family != b->family)
		return false;
	return memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static bool usable(const struct ares_addrinfo_node *node, struct ip_addr *out)
{
	sa_family_t family;

	memset(out, 0, sizeof *out);
	if (node->ai_addr == NULL || node->ai_addrlen < sizeof family)
		return false;
	memcpy(&family, node->ai_addr, sizeof family);
	if (family == AF_INET && node->ai_addrlen >= sizeof(struct sockaddr_in)) {
		out->family = AF_INET;
		memcpy(out->bytes, (const uint8_t *)node->ai_addr + offsetof(struct sockaddr_in, sin_addr), 4);
		return true;
	}
	if (family == AF_INET6 && node->ai_addrlen >= offsetof(struct sockaddr_in6, sin6_addr) + 16) {
		const uint8_t *bytes = (const uint8_t *)node->ai_addr + offsetof(struct sockaddr_in6, sin6_addr);
		if (memcmp(bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
			out->family = AF_INET;
			memcpy(out->bytes, bytes + 12, 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->bytes, bytes, 16);
		}
		return true;
	}
	return false;
}

/* The distinct usable addresses of an answer, sorted: the checks ask it thousands of times. */
struct usable_set {
	struct ip_addr *addrs;
	unsigned count;
};

static int compare_addresses(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ip_addr));
}

static bool read_usable(const struct ares_addrinfo *info, struct usable_set *set)
{
	unsigned nodes = 0;

	set->count = 0;
	for (const struct ares_addrinfo_node *node = info->nodes; node != NULL; node = node->ai_next)
		nodes++;
	set->addrs = malloc((nodes > 0 ? nodes : 1) * sizeof *set->addrs);
	if (set->addrs == NULL)
		return false;
	for (const struct ares_addrinfo_node *node = info->nodes; node != NULL; node = node->ai_next)
		if (usable(node, &set->addrs[set->count]))
			set->count++;
	qsort(set->addrs, set->count, sizeof *set->addrs, compare_addresses);
	unsigned distinct = 0;
	for (unsigned i = 0; i < set->count; i++)
		if (distinct == 0 || compare_addresses(&set->addrs[distinct - 1], &set->addrs[i]) != 0)
			set->addrs[distinct++] = set->addrs[i];
	set->count = distinct;
	return true;
}

static bool answer_holds(const struct usable_set *set, const struct ip_addr *addr)
{
	struct ip_addr key;

	/* Compared as usable() writes them: padding zeroed. */
	memset(&key, 0, sizeof key);
	key.family = addr->family;
	memcpy(key.bytes, addr->bytes, addr->family == AF_INET ? 4 : 16);
	return bsearch(&key, set->addrs, set->count, sizeof key, compare_addresses) != NULL;
}

static bool in_list(const struct ip_addr *list, unsigned n, const struct ip_addr *addr)
{
	for (unsigned i = 0; i < n; i++)
		if (same(&list[i], addr))
			return true;
	return false;
}

static void check_answer(const struct ares_addrinfo *info, const struct usable_set *usable_addrs,
			 const struct answer *answer, uint64_t floor_ms, uint64_t ceiling_ms)
{
	int64_t minimum = INT64_MAX;

	FUZZ_CHECK(answer->count <= ANSWER_MAX, "%u addresses", answer->count);
	for (unsigned i = 0; i < answer->count; i++) {
		const struct ip_addr *addr = &answer->addrs[i];
		FUZZ_CHECK(addr->family == AF_INET || addr->family == AF_INET6, "family %u", addr->family);
		FUZZ_CHECK(!(addr->family == AF_INET6 && memcmp(addr->bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0),
			   "a v4-mapped address was not folded");
		FUZZ_CHECK(!in_list(answer->addrs, i, addr), "address %u is a duplicate", i);
		FUZZ_CHECK(answer_holds(usable_addrs, addr), "address %u is not in the answer", i);
	}
	/* Distinct addresses of the answer, so: all of them, or as many as fit and a mark. */
	if (answer->truncated)
		FUZZ_CHECK(answer->count == ANSWER_MAX && usable_addrs->count > ANSWER_MAX,
			   "truncated at %u of %u addresses", answer->count, usable_addrs->count);
	else
		FUZZ_CHECK(answer->count == usable_addrs->count, "%u of the %u addresses of the answer, not truncated",
			   answer->count, usable_addrs->count);
	for (const struct ares_addrinfo_node *node = info->nodes; node != NULL; node = node->ai_next)
		if (node->ai_ttl < minimum)
			minimum = node->ai_ttl;
	for (const struct ares_addrinfo_cname *cname = info->cnames; cname != NULL; cname = cname->next)
		if (cname->ttl < minimum)
			minimum = cname->ttl;
	uint32_t expected_ttl = minimum == INT64_MAX || minimum < 0 ? 0 : (uint32_t)minimum;
	FUZZ_CHECK(answer->ttl_seconds == expected_ttl, "ttl %u, the minimum is %u", answer->ttl_seconds, expected_ttl);

	uint64_t interval = answer_interval_ms(answer, floor_ms, ceiling_ms);
	FUZZ_CHECK(interval >= floor_ms && interval <= ceiling_ms, "interval %llu outside [%llu, %llu]",
		   (unsigned long long)interval, (unsigned long long)floor_ms, (unsigned long long)ceiling_ms);
	uint64_t ttl_ms = (uint64_t)answer->ttl_seconds * 1000;
	if (ttl_ms >= floor_ms && ttl_ms <= ceiling_ms)
		FUZZ_CHECK(interval == ttl_ms, "ttl %us within bounds became %llu ms", answer->ttl_seconds,
			   (unsigned long long)interval);
}

/* ---- the record set ---- */

static struct ip_addr normalized(const struct ip_addr *addr)
{
	struct ip_addr copy;

	memset(&copy, 0, sizeof copy);
	copy.family = addr->family;
	memcpy(copy.bytes, addr->bytes, addr->family == AF_INET ? 4 : 16);
	return copy;
}

/* Sorted rather than compared pairwise: this runs after every step of every input. */
static void check_set(const struct recordset *rs, unsigned stale_after)
{
	struct ip_addr all[RECORDSET_MAX + RECORDSET_FORMER_MAX];
	unsigned count = 0;

	FUZZ_CHECK(rs->count <= RECORDSET_MAX, "%u records", rs->count);
	FUZZ_CHECK(rs->former_count <= RECORDSET_FORMER_MAX, "%u former addresses", rs->former_count);
	FUZZ_CHECK(rs->departed_next < RECORDSET_DEPARTED_MAX, "departed cursor %u", rs->departed_next);
	for (unsigned i = 0; i < rs->count; i++) {
		const struct record *record = &rs->records[i];
		FUZZ_CHECK(record->addr.family == AF_INET || record->addr.family == AF_INET6, "record family %u",
			   record->addr.family);
		FUZZ_CHECK(rs->rotating || record->absent_count < stale_after,
			   "record %u absent %u times (stale after %u) and still current", i, record->absent_count,
			   stale_after);
		all[count++] = normalized(&record->addr);
	}
	for (unsigned i = 0; i < rs->former_count; i++)
		all[count++] = normalized(&rs->former[i]);
	/* No address twice among the records, nor among the former ones, nor in both. */
	qsort(all, count, sizeof all[0], compare_addresses);
	for (unsigned i = 1; i < count; i++)
		FUZZ_CHECK(compare_addresses(&all[i - 1], &all[i]) != 0,
			   "an address is twice among the records and former addresses");
	/* The lookups agree with the arrays (the first and last of each). */
	if (rs->count > 0) {
		FUZZ_CHECK(recordset_contains(rs, &rs->records[0].addr), "record 0 is not found");
		FUZZ_CHECK(recordset_contains(rs, &rs->records[rs->count - 1].addr), "the last record is not found");
		FUZZ_CHECK(!recordset_was_member(rs, &rs->records[0].addr), "record 0 counts as departed");
	}
	if (rs->former_count > 0) {
		FUZZ_CHECK(recordset_was_member(rs, &rs->former[0]), "former 0 is not found");
		FUZZ_CHECK(!recordset_contains(rs, &rs->former[rs->former_count - 1]), "the last former is current");
	}
}

static void check_failure(const struct recordset *before, const struct recordset *after)
{
	FUZZ_CHECK(after->count == before->count && memcmp(after->records, before->records, sizeof after->records) == 0,
		   "a failed refresh changed the records");
	FUZZ_CHECK(after->former_count == before->former_count && after->rotating == before->rotating,
		   "a failed refresh changed the former addresses or rotation");
	FUZZ_CHECK(after->failures == (before->failures == UINT_MAX ? UINT_MAX : before->failures + 1),
		   "failures %u after %u", after->failures, before->failures);
}

static void check_success(const struct usable_set *usable_addrs, const struct answer *answer,
			  const struct recordset *before, const struct recordset *after,
			  const struct recordset_change *change)
{
	unsigned added = 0;

	FUZZ_CHECK(after->failures == 0, "a good answer left %u failures", after->failures);
	FUZZ_CHECK(!before->rotating || after->rotating, "a rotating name stopped rotating");
	FUZZ_CHECK(!change->became_rotating || (after->rotating && !before->rotating), "became_rotating twice");
	FUZZ_CHECK(!before->rotating || change->removed_count == 0, "a rotating name lost an address to absence");
	FUZZ_CHECK(change->removed_count <= before->count, "%u removed of %u", change->removed_count, before->count);
	for (unsigned i = 0; i < change->removed_count; i++) {
		const struct ip_addr *gone = &change->removed[i];
		FUZZ_CHECK(recordset_contains(before, gone), "removed %u was not in the set", i);
		FUZZ_CHECK(!recordset_contains(after, gone), "removed %u is still in the set", i);
		FUZZ_CHECK(!answer_holds(usable_addrs, gone), "removed %u is in the answer", i);
		/* Only the newest RECORDSET_FORMER_MAX are kept for connect steering. */
		if (i + RECORDSET_FORMER_MAX >= change->removed_count)
			FUZZ_CHECK(recordset_was_member(after, gone), "removed %u is not remembered as former", i);
		FUZZ_CHECK(!in_list(change->removed, i, gone), "removed %u twice", i);
	}
	for (unsigned i = 0; i < before->count; i++) {
		const struct ip_addr *addr = &before->records[i].addr;
		if (answer_holds(usable_addrs, addr))
			FUZZ_CHECK(recordset_contains(after, addr), "record %u is in the answer but was dropped", i);
		else if (!recordset_contains(after, addr))
			FUZZ_CHECK(in_list(change->removed, change->removed_count, addr), "record %u vanished unreported", i);
	}
	for (unsigned i = 0; i < answer->count; i++)
		FUZZ_CHECK(recordset_contains(after, &answer->addrs[i]) || after->count == RECORDSET_MAX,
			   "answer address %u is missing with room in the set", i);
	for (unsigned i = 0; i < after->count; i++) {
		const struct ip_addr *addr = &after->records[i].addr;
		if (!recordset_contains(before, addr)) {
			FUZZ_CHECK(in_list(answer->addrs, answer->count, addr), "record %u came from nowhere", i);
			added++;
		}
	}
	FUZZ_CHECK(added == change->added_count, "added %u, reported %u", added, change->added_count);
}

/* ---- the steps ---- */

static void learn(struct fuzz_input *in, struct recordset *rs, unsigned stale_after)
{
	struct ip_addr addrs[RECORDSET_MAX + 16];
	unsigned n = fuzz_byte(in) % (RECORDSET_MAX + 16 + 1);
	unsigned fresh = 0;

	for (unsigned i = 0; i < n; i++) {
		struct ares_addrinfo_node node = { 0 };
		uint8_t kind = fuzz_byte(in) % 7; /* the usable kinds */
		uint8_t raw[16] = { 0 };
		read_address(in, kind, raw);
		/* The program's answers come from sockaddrs too (hook_resolve.c): only usable ones. */
		if (!set_node(&node, kind, raw, 0) || !usable(&node, &addrs[fresh])) {
			free(node.ai_addr);
			continue;
		}
		free(node.ai_addr);
		fresh++;
	}
	struct recordset before = *rs;
	unsigned added = recordset_learn(rs, addrs, fresh);
	unsigned expected_added = 0;
	for (unsigned i = 0; i < rs->count; i++)
		expected_added += !recordset_contains(&before, &rs->records[i].addr);
	FUZZ_CHECK(added == expected_added, "learn added %u, reported %u", expected_added, added);
	for (unsigned i = 0; i < fresh; i++) {
		FUZZ_CHECK(recordset_contains(rs, &addrs[i]) || rs->count == RECORDSET_MAX,
			   "learned address %u is missing with room in the set", i);
		FUZZ_CHECK(!recordset_was_member(rs, &addrs[i]), "learned address %u still counts as departed", i);
	}
	for (unsigned i = 0; i < before.count; i++)
		FUZZ_CHECK(recordset_contains(rs, &before.records[i].addr), "learning removed record %u", i);
	check_set(rs, stale_after);
}

static bool refresh(struct fuzz_input *in, struct recordset *rs, bool succeeded, uint64_t floor_ms,
		    uint64_t ceiling_ms, unsigned stale_after)
{
	struct built_answer built;
	struct usable_set usable_addrs = { NULL, 0 };
	struct answer answer;
	struct recordset_change change;
	struct recordset before = *rs;
	bool built_ok = build_answer(in, &built) && read_usable(&built.info, &usable_addrs);

	if (!built_ok)
		goto done; /* out of memory: nothing to learn from this input */
	/* As on_answer: a failed query's result is not read. */
	answer_collect(succeeded ? &built.info : NULL, rs, &answer);
	if (succeeded)
		check_answer(&built.info, &usable_addrs, &answer, floor_ms, ceiling_ms);
	else
		FUZZ_CHECK(answer.count == 0, "a failed query gave %u addresses", answer.count);
	if (answer.count > 0) {
		recordset_apply_answer(rs, answer.addrs, answer.count, stale_after, &change);
		check_success(&usable_addrs, &answer, &before, rs, &change);
	} else {
		recordset_apply_failure(rs);
		check_failure(&before, rs);
	}
	check_set(rs, stale_after);
done:
	free(usable_addrs.addrs);
	free_answer(&built);
	return built_ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct recordset rs;
	uint8_t bounds = fuzz_byte(&in);
	uint64_t floor_ms = floors_ms[(bounds & 0x0f) % (sizeof floors_ms / sizeof floors_ms[0])];
	uint64_t ceiling_ms = ceilings_ms[(bounds >> 4) % (sizeof ceilings_ms / sizeof ceilings_ms[0])];
	uint8_t stale_choice = fuzz_byte(&in);
	/* config.c accepts 1..100; small values are where removal happens. */
	unsigned stale_after = stale_choice >= 250 ? 100 : 1 + stale_choice % 4;

	if (floor_ms > ceiling_ms) {
		/* config.c never lets the floor above the ceiling. */
		uint64_t swap = floor_ms;
		floor_ms = ceiling_ms;
		ceiling_ms = swap;
	}
	memset(&rs, 0, sizeof rs);
	node_budget = NODE_BUDGET;
	for (unsigned step = 0; step < OPERATIONS_MAX && fuzz_more(&in); step++) {
		uint8_t operation = fuzz_byte(&in) % 8;
		if (operation == 0)
			learn(&in, &rs, stale_after);
		else if (!refresh(&in, &rs, operation != 1, floor_ms, ceiling_ms, stale_after))
			break;
	}
	return 0;
}
