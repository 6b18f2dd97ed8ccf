/* A name's record set and the staleness rules of design.md ("Staleness"). */
#include "recordset.h"

#include <limits.h>
#include <string.h>
#include <sys/socket.h>

/* Bytes that carry the address; anything else in ip_addr is padding we must not compare. */
static unsigned address_length(uint8_t family)
{
	switch (family) {
	case AF_INET:
		return 4;
	case AF_INET6:
		return 16;
	default:
		return 0;
	}
}

static bool is_valid(const struct ip_addr *addr)
{
	return address_length(addr->family) != 0;
}

/* Kept local rather than using ip_addr_equal so this module links without addr.c. */
static bool same_address(const struct ip_addr *a, const struct ip_addr *b)
{
	unsigned length = address_length(a->family);

	return length != 0 && a->family == b->family && memcmp(a->bytes, b->bytes, length) == 0;
}

/* Stored copies have zeroed padding, so callers that memcmp whole ip_addr values agree with us. */
static struct ip_addr normalized(const struct ip_addr *addr)
{
	struct ip_addr copy;

	memset(&copy, 0, sizeof(copy));
	copy.family = addr->family;
	memcpy(copy.bytes, addr->bytes, address_length(addr->family));
	return copy;
}

static struct record *find_record(struct recordset *rs, const struct ip_addr *addr)
{
	for (unsigned i = 0; i < rs->count; i++)
		if (same_address(&rs->records[i].addr, addr))
			return &rs->records[i];
	return NULL;
}

static bool answer_contains(const struct ip_addr *addrs, unsigned n, const struct ip_addr *addr)
{
	for (unsigned i = 0; i < n; i++)
		if (same_address(&addrs[i], addr))
			return true;
	return false;
}

/* Returns true when the address was new and fitted; a full set silently ignores the rest. */
static bool add_record(struct recordset *rs, const struct ip_addr *addr)
{
	if (rs->count >= RECORDSET_MAX)
		return false;
	struct record *record = &rs->records[rs->count++];
	record->addr = normalized(addr);
	record->absent_count = 0;
	record->was_absent = false;
	record->conns = 0;
	return true;
}

static bool forget_former(struct recordset *rs, const struct ip_addr *addr)
{
	for (unsigned i = 0; i < rs->former_count; i++) {
		if (same_address(&rs->former[i], addr)) {
			memmove(&rs->former[i], &rs->former[i + 1], (rs->former_count - i - 1) * sizeof rs->former[0]);
			rs->former_count--;
			return true;
		}
	}
	return false;
}

static void remember_former(struct recordset *rs, const struct ip_addr *addr)
{
	forget_former(rs, addr);
	if (rs->former_count == RECORDSET_FORMER_MAX) {
		memmove(&rs->former[0], &rs->former[1], (RECORDSET_FORMER_MAX - 1) * sizeof rs->former[0]);
		rs->former_count--;
	}
	rs->former[rs->former_count++] = normalized(addr);
}

bool recordset_was_member(const struct recordset *rs, const struct ip_addr *addr)
{
	for (unsigned i = 0; i < rs->former_count; i++)
		if (same_address(&rs->former[i], addr))
			return true;
	return false;
}

static void remember_departed(struct recordset *rs, const struct ip_addr *addr)
{
	struct departed *slot = &rs->departed[rs->departed_next];
	rs->departed_next = (rs->departed_next + 1) % RECORDSET_DEPARTED_MAX;
	slot->addr = *addr;
	slot->answers_left = RECORDSET_DEPARTED_ANSWERS;
}

unsigned recordset_learn(struct recordset *rs, const struct ip_addr *addrs, unsigned n)
{
	unsigned added = 0;

	for (unsigned i = 0; i < n; i++) {
		if (!is_valid(&addrs[i]))
			continue;
		forget_former(rs, &addrs[i]);
		struct record *record = find_record(rs, &addrs[i]);
		if (record != NULL) {
			/* The program is using it right now: whatever absence we counted is moot. */
			record->absent_count = 0;
			record->was_absent = false;
		} else if (add_record(rs, &addrs[i])) {
			added++;
		}
	}
	return added;
}

void recordset_apply_failure(struct recordset *rs)
{
	if (rs->failures < UINT_MAX)
		rs->failures++;
}

static unsigned count_valid(const struct ip_addr *addrs, unsigned n)
{
	unsigned valid = 0;

	for (unsigned i = 0; i < n; i++)
		if (is_valid(&addrs[i]))
			valid++;
	return valid;
}

void recordset_apply_answer(struct recordset *rs, const struct ip_addr *addrs, unsigned n,
			    unsigned stale_after, struct recordset_change *change)
{
	struct recordset_change scratch;

	if (change == NULL)
		change = &scratch;
	change->removed_count = 0;
	change->added_count = 0;
	change->became_rotating = false;

	/* An answer with nothing usable in it says nothing about which addresses left. */
	if (addrs == NULL || count_valid(addrs, n) == 0) {
		recordset_apply_failure(rs);
		return;
	}
	rs->failures = 0;

	/* Detect rotation before counting absences, so the answer that reveals a rotating name
	 * cannot also remove one of its addresses. */
	for (unsigned i = 0; i < RECORDSET_DEPARTED_MAX; i++) {
		struct departed *gone = &rs->departed[i];
		if (gone->answers_left == 0)
			continue;
		if (answer_contains(addrs, n, &gone->addr) && !rs->rotating) {
			rs->rotating = true;
			change->became_rotating = true;
		}
		gone->answers_left--;
	}
	for (unsigned i = 0; i < rs->count; i++) {
		struct record *record = &rs->records[i];
		if (!answer_contains(addrs, n, &record->addr))
			continue;
		if (record->was_absent && !rs->rotating) {
			rs->rotating = true;
			change->became_rotating = true;
		}
		record->absent_count = 0;
	}

	unsigned kept = 0;
	for (unsigned i = 0; i < rs->count; i++) {
		struct record record = rs->records[i];
		if (!answer_contains(addrs, n, &record.addr)) {
			if (record.absent_count < UINT16_MAX)
				record.absent_count++;
			record.was_absent = true;
			if (!rs->rotating && record.absent_count >= stale_after) {
				change->removed[change->removed_count++] = record.addr;
				remember_departed(rs, &record.addr);
				remember_former(rs, &record.addr);
				continue;
			}
		}
		rs->records[kept++] = record;
	}
	rs->count = kept;

	/* Added after removal so the slots freed by departed addresses are available. */
	for (unsigned i = 0; i < n; i++) {
		if (!is_valid(&addrs[i]))
			continue;
		forget_former(rs, &addrs[i]);
		if (find_record(rs, &addrs[i]) != NULL)
			continue;
		if (add_record(rs, &addrs[i]))
			change->added_count++;
	}
}

void recordset_count_conn(struct recordset *rs, const struct ip_addr *addr, int delta)
{
	struct record *record = find_record(rs, addr);
	if (record == NULL || (delta < 0 && record->conns == 0))
		return;
	record->conns += (uint32_t)delta;
}

bool recordset_contains(const struct recordset *rs, const struct ip_addr *addr)
{
	for (unsigned i = 0; i < rs->count; i++)
		if (same_address(&rs->records[i].addr, addr))
			return true;
	return false;
}
