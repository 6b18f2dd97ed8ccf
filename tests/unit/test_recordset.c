/* Staleness rules of design.md: what removes an address from a name's set and what must not. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "ip_literal.h"
#include "recordset.h"

/* 10.0.x.y for i < 65536: many distinct addresses for capacity tests. */
static struct ip_addr numbered(unsigned i)
{
	char text[32];

	snprintf(text, sizeof(text), "10.0.%u.%u", (i >> 8) & 0xff, i & 0xff);
	return ip(text);
}

static struct recordset empty_set(void)
{
	struct recordset rs;

	memset(&rs, 0, sizeof(rs));
	return rs;
}

static struct recordset learned(const char *const *texts, unsigned n)
{
	struct recordset rs = empty_set();
	struct ip_addr addrs[RECORDSET_MAX];

	for (unsigned i = 0; i < n; i++)
		addrs[i] = ip(texts[i]);
	cr_assert_eq(recordset_learn(&rs, addrs, n), n);
	return rs;
}

static struct recordset_change answer(struct recordset *rs, const char *const *texts, unsigned n,
				      unsigned stale_after)
{
	struct ip_addr addrs[RECORDSET_MAX];
	struct recordset_change change;

	for (unsigned i = 0; i < n; i++)
		addrs[i] = ip(texts[i]);
	recordset_apply_answer(rs, addrs, n, stale_after, &change);
	return change;
}

static bool has(const struct recordset *rs, const char *text)
{
	struct ip_addr addr = ip(text);

	return recordset_contains(rs, &addr);
}

static bool same_bytes(const struct ip_addr *a, const char *text)
{
	struct ip_addr b = ip(text);

	return a->family == b.family && memcmp(a->bytes, b.bytes, sizeof(b.bytes)) == 0;
}

#define A "192.0.2.1"
#define B "192.0.2.2"
#define C "192.0.2.3"
#define D "192.0.2.4"

Test(learn, adds_the_union_and_keeps_order)
{
	struct recordset rs = learned((const char *[]){A, B}, 2);
	struct ip_addr more[] = {ip(B), ip(C)};

	cr_assert_eq(recordset_learn(&rs, more, 2), 1);
	cr_assert_eq(rs.count, 3);
	cr_assert(same_bytes(&rs.records[0].addr, A));
	cr_assert(same_bytes(&rs.records[1].addr, B));
	cr_assert(same_bytes(&rs.records[2].addr, C));
	cr_assert_not(rs.rotating);
	cr_assert_eq(rs.failures, 0);
}

Test(learn, counts_duplicates_once)
{
	struct recordset rs = empty_set();
	struct ip_addr addrs[] = {ip(A), ip(A), ip(B), ip(A)};

	cr_assert_eq(recordset_learn(&rs, addrs, 4), 2);
	cr_assert_eq(rs.count, 2);
	cr_assert_eq(recordset_learn(&rs, addrs, 4), 0);
	cr_assert_eq(rs.count, 2);
}

Test(learn, ignores_addresses_beyond_capacity)
{
	struct recordset rs = empty_set();
	struct ip_addr addrs[RECORDSET_MAX + 6];

	for (unsigned i = 0; i < RECORDSET_MAX + 6; i++)
		addrs[i] = numbered(i);
	cr_assert_eq(recordset_learn(&rs, addrs, RECORDSET_MAX + 6), RECORDSET_MAX);
	cr_assert_eq(rs.count, RECORDSET_MAX);
	cr_assert(recordset_contains(&rs, &addrs[RECORDSET_MAX - 1]));
	cr_assert_not(recordset_contains(&rs, &addrs[RECORDSET_MAX]));
	cr_assert_eq(recordset_learn(&rs, &addrs[RECORDSET_MAX], 6), 0);
	cr_assert_eq(rs.count, RECORDSET_MAX);
}

Test(learn, resets_absence_and_never_removes)
{
	struct recordset rs = learned((const char *[]){A, B}, 2);
	struct ip_addr b = ip(B);

	answer(&rs, (const char *[]){A}, 1, 3);
	cr_assert_eq(rs.records[1].absent_count, 1);
	cr_assert(rs.records[1].was_absent);

	cr_assert_eq(recordset_learn(&rs, &b, 1), 0);
	cr_assert_eq(rs.records[1].absent_count, 0);
	cr_assert_not(rs.records[1].was_absent);

	/* B was learned again, so its return in an answer is not a sign of rotation. */
	struct recordset_change change = answer(&rs, (const char *[]){A, B}, 2, 3);
	cr_assert_not(change.became_rotating);
	cr_assert_not(rs.rotating);
	cr_assert_eq(rs.count, 2);
}

Test(answer, move_with_stale_after_2_removes_on_second_answer)
{
	struct recordset rs = learned((const char *[]){A}, 1);

	struct recordset_change first = answer(&rs, (const char *[]){B}, 1, 2);
	cr_assert_eq(first.added_count, 1);
	cr_assert_eq(first.removed_count, 0);
	cr_assert(has(&rs, A));
	cr_assert(has(&rs, B));
	cr_assert_eq(rs.records[0].absent_count, 1);

	struct recordset_change second = answer(&rs, (const char *[]){B}, 1, 2);
	cr_assert_eq(second.added_count, 0);
	cr_assert_eq(second.removed_count, 1);
	cr_assert(same_bytes(&second.removed[0], A));
	cr_assert_not(has(&rs, A));
	cr_assert_eq(rs.count, 1);
	cr_assert(same_bytes(&rs.records[0].addr, B));
	cr_assert_not(second.became_rotating);
}

Test(answer, stale_after_1_removes_at_once)
{
	struct recordset rs = learned((const char *[]){A}, 1);

	struct recordset_change change = answer(&rs, (const char *[]){B}, 1, 1);
	cr_assert_eq(change.added_count, 1);
	cr_assert_eq(change.removed_count, 1);
	cr_assert(same_bytes(&change.removed[0], A));
	cr_assert_eq(rs.count, 1);
	cr_assert(has(&rs, B));
}

Test(answer, stale_after_0_behaves_as_1)
{
	struct recordset rs = learned((const char *[]){A, B}, 2);

	struct recordset_change change = answer(&rs, (const char *[]){A}, 1, 0);
	cr_assert_eq(change.removed_count, 1);
	cr_assert(has(&rs, A));
	cr_assert_not(has(&rs, B));
}

Test(answer, present_address_resets_absence)
{
	struct recordset rs = learned((const char *[]){A, B}, 2);

	answer(&rs, (const char *[]){B}, 1, 2);
	cr_assert_eq(rs.records[0].absent_count, 1);
	/* A back, B gone: A's return makes the name rotating, so nothing may go. */
	struct recordset_change change = answer(&rs, (const char *[]){A}, 1, 2);
	cr_assert(change.became_rotating);
	cr_assert_eq(change.removed_count, 0);
	cr_assert_eq(rs.records[0].absent_count, 0);
}

Test(failure, keeps_the_set_and_counts)
{
	struct recordset rs = learned((const char *[]){A, B}, 2);

	for (unsigned i = 1; i <= 5; i++) {
		recordset_apply_failure(&rs);
		cr_assert_eq(rs.failures, i);
	}
	cr_assert_eq(rs.count, 2);
	cr_assert(has(&rs, A));
	cr_assert(has(&rs, B));
	cr_assert_eq(rs.records[0].absent_count, 0);
	cr_assert_not(rs.records[0].was_absent);

	answer(&rs, (const char *[]){A, B}, 2, 2);
	cr_assert_eq(rs.failures, 0);
}

Test(failure, saturates)
{
	struct recordset rs = empty_set();

	rs.failures = UINT_MAX;
	recordset_apply_failure(&rs);
	cr_assert_eq(rs.failures, UINT_MAX);
}

Test(failure, between_answers_neither_removes_nor_forgets_absence)
{
	struct recordset rs = learned((const char *[]){A}, 1);

	answer(&rs, (const char *[]){B}, 1, 2);
	recordset_apply_failure(&rs);
	recordset_apply_failure(&rs);
	cr_assert(has(&rs, A));
	cr_assert_eq(rs.records[0].absent_count, 1);

	struct recordset_change change = answer(&rs, (const char *[]){B}, 1, 2);
	cr_assert_eq(change.removed_count, 1);
	cr_assert_not(has(&rs, A));
}

Test(failure, empty_answer_is_a_failure)
{
	struct recordset rs = learned((const char *[]){A}, 1);
	struct ip_addr none[1];
	struct recordset_change change;

	memset(&change, 0xff, sizeof(change));
	for (unsigned i = 0; i < 5; i++) {
		recordset_apply_answer(&rs, none, 0, 1, &change);
		cr_assert_eq(change.removed_count, 0);
		cr_assert_eq(change.added_count, 0);
		cr_assert_not(change.became_rotating);
	}
	recordset_apply_answer(&rs, NULL, 0, 1, &change);
	cr_assert_eq(rs.failures, 6);
	cr_assert(has(&rs, A));
	cr_assert_eq(rs.records[0].absent_count, 0);
	cr_assert_not(rs.records[0].was_absent);
}

Test(failure, answer_without_a_valid_family_is_a_failure)
{
	struct recordset rs = learned((const char *[]){A}, 1);
	struct ip_addr junk;
	struct recordset_change change;

	memset(&junk, 0, sizeof(junk));
	junk.family = AF_UNIX;
	recordset_apply_answer(&rs, &junk, 1, 1, &change);
	cr_assert_eq(change.removed_count, 0);
	cr_assert_eq(change.added_count, 0);
	cr_assert_eq(rs.failures, 1);
	cr_assert(has(&rs, A));
	cr_assert_not(recordset_contains(&rs, &junk));
}

Test(answer, one_added_one_removed_in_a_set_of_three)
{
	struct recordset rs = learned((const char *[]){A, B, C}, 3);

	struct recordset_change first = answer(&rs, (const char *[]){A, B, D}, 3, 2);
	cr_assert_eq(first.added_count, 1);
	cr_assert_eq(first.removed_count, 0);
	cr_assert_eq(rs.count, 4);

	struct recordset_change second = answer(&rs, (const char *[]){D, B, A}, 3, 2);
	cr_assert_eq(second.added_count, 0);
	cr_assert_eq(second.removed_count, 1);
	cr_assert(same_bytes(&second.removed[0], C));
	cr_assert_eq(rs.count, 3);
	cr_assert(same_bytes(&rs.records[0].addr, A));
	cr_assert(same_bytes(&rs.records[1].addr, B));
	cr_assert(same_bytes(&rs.records[2].addr, D));
	cr_assert_not(rs.rotating);
}

Test(answer, removal_compacts_and_keeps_order)
{
	struct recordset rs = learned((const char *[]){A, B, C, D}, 4);

	struct recordset_change change = answer(&rs, (const char *[]){D, A, C}, 3, 1);
	cr_assert_eq(change.removed_count, 1);
	cr_assert(same_bytes(&change.removed[0], B));
	cr_assert_eq(rs.count, 3);
	cr_assert(same_bytes(&rs.records[0].addr, A));
	cr_assert(same_bytes(&rs.records[1].addr, C));
	cr_assert(same_bytes(&rs.records[2].addr, D));
}

Test(answer, duplicates_count_once)
{
	struct recordset rs = learned((const char *[]){A}, 1);

	struct recordset_change change = answer(&rs, (const char *[]){B, B, A, B}, 4, 2);
	cr_assert_eq(change.added_count, 1);
	cr_assert_eq(change.removed_count, 0);
	cr_assert_eq(rs.count, 2);
}

Test(answer, removed_address_back_within_a_few_answers_reveals_rotation)
{
	struct recordset rs = learned((const char *[]){A, B, C}, 3);

	answer(&rs, (const char *[]){C}, 1, 1);
	cr_assert_not(has(&rs, A));
	cr_assert_not(has(&rs, B));
	answer(&rs, (const char *[]){C}, 1, 1);
	struct recordset_change change = answer(&rs, (const char *[]){A, C}, 2, 1);
	cr_assert(change.became_rotating, "A came back two answers after it was removed");
	cr_assert_eq(change.removed_count, 0);
	/* From now on absence alone removes nothing. */
	change = answer(&rs, (const char *[]){A}, 1, 1);
	cr_assert_eq(change.removed_count, 0);
	cr_assert(has(&rs, C));
}

Test(answer, removed_address_back_much_later_is_a_move_back_not_rotation)
{
	struct recordset rs = learned((const char *[]){A, B}, 2);

	answer(&rs, (const char *[]){A}, 1, 1);
	cr_assert_not(has(&rs, B));
	for (unsigned i = 0; i < RECORDSET_DEPARTED_ANSWERS; i++)
		answer(&rs, (const char *[]){A}, 1, 1);
	/* Blue/green flipping back: B returns and A leaves; A must still be removable. */
	struct recordset_change change = answer(&rs, (const char *[]){B}, 1, 1);
	cr_assert_eq(change.added_count, 1);
	cr_assert_not(change.became_rotating);
	cr_assert_not(rs.rotating);
	cr_assert_eq(change.removed_count, 1);
	cr_assert(same_bytes(&change.removed[0], A));
}

Test(answer, capacity_is_respected_and_freed_slots_reused)
{
	struct recordset rs = empty_set();
	struct ip_addr old[RECORDSET_MAX];
	struct ip_addr fresh[RECORDSET_MAX + 10];
	struct recordset_change change;

	for (unsigned i = 0; i < RECORDSET_MAX; i++)
		old[i] = numbered(i);
	for (unsigned i = 0; i < RECORDSET_MAX + 10; i++)
		fresh[i] = numbered(1000 + i);
	recordset_learn(&rs, old, RECORDSET_MAX);

	recordset_apply_answer(&rs, fresh, RECORDSET_MAX + 10, 1, &change);
	cr_assert_eq(change.removed_count, RECORDSET_MAX);
	cr_assert_eq(change.added_count, RECORDSET_MAX);
	cr_assert_eq(rs.count, RECORDSET_MAX);
	cr_assert(recordset_contains(&rs, &fresh[0]));
	cr_assert(recordset_contains(&rs, &fresh[RECORDSET_MAX - 1]));
	cr_assert_not(recordset_contains(&rs, &fresh[RECORDSET_MAX]));
	cr_assert_not(recordset_contains(&rs, &old[0]));
}

Test(answer, full_set_ignores_new_addresses_while_old_ones_linger)
{
	struct recordset rs = empty_set();
	struct ip_addr old[RECORDSET_MAX];
	struct ip_addr fresh = numbered(5000);
	struct recordset_change change;

	for (unsigned i = 0; i < RECORDSET_MAX; i++)
		old[i] = numbered(i);
	recordset_learn(&rs, old, RECORDSET_MAX);

	recordset_apply_answer(&rs, &fresh, 1, 2, &change);
	cr_assert_eq(change.added_count, 0);
	cr_assert_eq(rs.count, RECORDSET_MAX);
	recordset_apply_answer(&rs, &fresh, 1, 2, &change);
	cr_assert_eq(change.removed_count, RECORDSET_MAX);
	cr_assert_eq(change.added_count, 1);
	cr_assert_eq(rs.count, 1);
	cr_assert(recordset_contains(&rs, &fresh));
}

/* Small deterministic generator: the test must fail the same way every run. */
static uint32_t next_random(uint32_t *state)
{
	*state = *state * 1664525u + 1013904223u;
	return *state >> 8;
}

Test(rotating, random_subsets_never_remove_and_report_once)
{
	const char *const all[] = {A, B, C, D};
	struct recordset rs = learned(all, 4);
	unsigned rotating_reports = 0;
	uint32_t state = 12345;

	/* A fixed start, so rotation is seen before any address could reach stale_after. */
	struct recordset_change change = answer(&rs, (const char *[]){A, B}, 2, 2);
	cr_assert_eq(change.removed_count, 0);
	change = answer(&rs, (const char *[]){C, A}, 2, 2);
	cr_assert(change.became_rotating);
	cr_assert_eq(change.removed_count, 0, "the answer that reveals rotation removed something");
	rotating_reports++;

	for (unsigned round = 0; round < 2000; round++) {
		unsigned first = next_random(&state) % 4;
		unsigned second = (first + 1 + next_random(&state) % 3) % 4;
		change = answer(&rs, (const char *[]){all[first], all[second]}, 2, 2);
		cr_assert_eq(change.removed_count, 0, "round %u removed an address", round);
		cr_assert_eq(change.added_count, 0);
		if (change.became_rotating)
			rotating_reports++;
		cr_assert_eq(rs.count, 4);
	}
	cr_assert_eq(rotating_reports, 1);
	cr_assert(rs.rotating);
}

/* The matrix's rotating scenario, from any start: the program is handed 2 of 4 addresses and
 * connects to the first; every refresh answers 2 of 4 at random. Before rotation is seen, an
 * address absent from two answers in a row is removed, and a connection to it drains (the
 * program reconnects with a fresh answer). The removed address coming back soon after must end
 * the churn: over 12 refreshes, fewer than 3 % of connections drain twice (about 6 % without
 * remembering departed addresses). */
Test(rotating, random_subsets_rarely_drain_a_connection_twice)
{
	const char *const all[] = {A, B, C, D};
	uint32_t state = 777;
	unsigned runs = 20000, twice = 0, once = 0;

	for (unsigned run = 0; run < runs; run++) {
		unsigned first = next_random(&state) % 4;
		unsigned second = (first + 1 + next_random(&state) % 3) % 4;
		struct recordset rs = learned((const char *[]){all[first], all[second]}, 2);
		const char *connected = all[first];
		unsigned drains = 0;
		for (unsigned round = 0; round < 12; round++) {
			first = next_random(&state) % 4;
			second = (first + 1 + next_random(&state) % 3) % 4;
			struct recordset_change change = answer(&rs, (const char *[]){all[first], all[second]}, 2, 2);
			bool drained = false;
			for (unsigned i = 0; i < change.removed_count; i++)
				drained |= same_bytes(&change.removed[i], connected);
			if (!drained)
				continue;
			drains++;
			first = next_random(&state) % 4;
			second = (first + 1 + next_random(&state) % 3) % 4;
			struct ip_addr fresh[2] = {ip(all[first]), ip(all[second])};
			recordset_learn(&rs, fresh, 2);
			connected = all[first];
		}
		once += drains == 1;
		twice += drains > 1;
	}
	printf("rotating 2 of 4, %u connections over 12 refreshes: %u drained once, %u more than once\n", runs,
	       once, twice);
	cr_assert_lt(twice, runs * 3 / 100, "%u of %u connections drained more than once", twice, runs);
}

Test(rotating, absence_no_longer_removes_after_rotation)
{
	struct recordset rs = learned((const char *[]){A, B}, 2);

	answer(&rs, (const char *[]){A}, 1, 2);
	struct recordset_change change = answer(&rs, (const char *[]){B}, 1, 2);
	cr_assert(change.became_rotating);

	/* Even a real move is not acted on by absence now: max age and connect failures handle it. */
	for (unsigned i = 0; i < 10; i++) {
		change = answer(&rs, (const char *[]){C}, 1, 2);
		cr_assert_eq(change.removed_count, 0);
		cr_assert_not(change.became_rotating);
	}
	cr_assert(has(&rs, A));
	cr_assert(has(&rs, B));
	cr_assert(has(&rs, C));
	cr_assert(rs.records[0].absent_count >= 10);
}

Test(rotating, learn_does_not_make_a_set_rotating)
{
	struct recordset rs = learned((const char *[]){A}, 1);
	struct ip_addr b = ip(B);

	recordset_learn(&rs, &b, 1);
	recordset_learn(&rs, &b, 1);
	cr_assert_not(rs.rotating);
}

Test(families, ipv6_move)
{
	struct recordset rs = learned((const char *[]){"2001:db8::1"}, 1);

	answer(&rs, (const char *[]){"2001:db8::2"}, 1, 2);
	cr_assert(has(&rs, "2001:db8::1"));
	struct recordset_change change = answer(&rs, (const char *[]){"2001:db8::2"}, 1, 2);
	cr_assert_eq(change.removed_count, 1);
	cr_assert(same_bytes(&change.removed[0], "2001:db8::1"));
	cr_assert_not(has(&rs, "2001:db8::1"));
	cr_assert(has(&rs, "2001:db8::2"));
}

Test(families, ipv6_differs_in_last_byte)
{
	struct recordset rs = learned((const char *[]){"2001:db8::1"}, 1);

	cr_assert_not(has(&rs, "2001:db8::101"));
	cr_assert_not(has(&rs, "2001:db9::1"));
}

Test(families, mixed_families_are_tracked_separately)
{
	struct recordset rs = learned((const char *[]){"10.0.0.1", "2001:db8::1"}, 2);

	struct recordset_change change = answer(&rs, (const char *[]){"10.0.0.1", "2001:db8::2"}, 2, 1);
	cr_assert_eq(change.removed_count, 1);
	cr_assert(same_bytes(&change.removed[0], "2001:db8::1"));
	cr_assert_eq(change.added_count, 1);
	cr_assert(has(&rs, "10.0.0.1"));
	cr_assert(has(&rs, "2001:db8::2"));
}

Test(families, same_leading_bytes_different_family_differ)
{
	struct recordset rs = learned((const char *[]){"10.0.0.1"}, 1);
	struct ip_addr v6;

	memset(&v6, 0, sizeof(v6));
	v6.family = AF_INET6;
	memcpy(v6.bytes, (uint8_t[]){10, 0, 0, 1}, 4);
	cr_assert_not(recordset_contains(&rs, &v6));
	cr_assert_eq(recordset_learn(&rs, &v6, 1), 1);
	cr_assert_eq(rs.count, 2);
}

Test(families, ipv4_padding_is_ignored)
{
	struct recordset rs = learned((const char *[]){"10.0.0.1"}, 1);
	struct ip_addr dirty = ip("10.0.0.1");

	memset(dirty.bytes + 4, 0xaa, 12);
	cr_assert(recordset_contains(&rs, &dirty));
	cr_assert_eq(recordset_learn(&rs, &dirty, 1), 0);

	struct ip_addr other = ip("10.0.0.2");
	memset(other.bytes + 4, 0xbb, 12);
	cr_assert_eq(recordset_learn(&rs, &other, 1), 1);
	/* Stored copies are clean, so a whole-struct comparison elsewhere agrees with ours. */
	for (unsigned i = 4; i < 16; i++)
		cr_assert_eq(rs.records[1].addr.bytes[i], 0);
}

/* ---- former addresses (connect steering) ---- */

Test(former, removed_addresses_are_former_until_seen_again)
{
	struct recordset rs = learned((const char *[]){A, B}, 2);
	struct ip_addr a = ip(A), b = ip(B);

	answer(&rs, (const char *[]){B}, 1, 1);
	cr_assert(recordset_was_member(&rs, &a));
	cr_assert_not(recordset_was_member(&rs, &b), "a current address is not former");

	/* Back in an answer: current again (and, this soon, a sign of rotation). */
	struct recordset back = rs;
	answer(&back, (const char *[]){A, B}, 2, 1);
	cr_assert_not(recordset_was_member(&back, &a));

	/* Handed to the program again: current again too. */
	struct ip_addr again[] = {a};
	recordset_learn(&rs, again, 1);
	cr_assert_not(recordset_was_member(&rs, &a));
}

Test(former, only_the_newest_are_kept)
{
	struct recordset rs = empty_set();
	struct ip_addr keep = ip(A);
	struct ip_addr addrs[1];

	for (unsigned i = 0; i < RECORDSET_FORMER_MAX + 5; i++) {
		addrs[0] = numbered(i);
		recordset_learn(&rs, addrs, 1);
		recordset_apply_answer(&rs, &keep, 1, 1, NULL);
	}
	cr_assert_eq(rs.former_count, RECORDSET_FORMER_MAX);
	struct ip_addr oldest = numbered(0), newest = numbered(RECORDSET_FORMER_MAX + 4);
	cr_assert_not(recordset_was_member(&rs, &oldest));
	cr_assert(recordset_was_member(&rs, &newest));
}
