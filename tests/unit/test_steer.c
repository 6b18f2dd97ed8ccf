/* Connect steering's choices: spread over the current addresses, cooldowns, families. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "ip_literal.h"
#include "steer.h"

static bool is(const struct ip_addr *a, const char *text)
{
	struct ip_addr b = ip(text);
	return ip_addr_equal(a, &b);
}

static struct steer_cooldowns none;

Test(order, healthy_candidates_of_the_family_rotate_with_the_turn)
{
	struct ip_addr cands[] = {ip("10.0.0.1"), ip("2001:db8::1"), ip("10.0.0.2"), ip("10.0.0.3")};
	struct ip_addr out[STEER_MAX_CANDIDATES];
	unsigned healthy, seen[3] = {0};

	for (unsigned turn = 0; turn < 300; turn++) {
		unsigned n = steer_order(cands, 4, AF_INET, 80, &none, 1000, turn, NULL, 0, out, STEER_MAX_CANDIDATES,
					 &healthy);
		cr_assert_eq(n, 3, "the IPv6 candidate must never be offered to an IPv4 connect");
		cr_assert_eq(healthy, 3);
		for (unsigned i = 0; i < 3; i++)
			cr_assert_eq(out[i].family, AF_INET);
		seen[out[0].bytes[3] - 1]++;
	}
	/* Successive connects spread evenly over the three. */
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(seen[i], 100, "10.0.0.%u first %u times of 300", i + 1, seen[i]);
}

Test(order, skip_leaves_out_the_addresses_already_tried)
{
	struct ip_addr cands[] = {ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")};
	struct ip_addr skip[] = {ip("10.0.0.2")};
	struct ip_addr out[STEER_MAX_CANDIDATES];

	unsigned n = steer_order(cands, 3, AF_INET, 80, &none, 1000, 0, skip, 1, out, STEER_MAX_CANDIDATES, NULL);
	cr_assert_eq(n, 2);
	cr_assert(is(&out[0], "10.0.0.1") && is(&out[1], "10.0.0.3"));
}

Test(order, no_candidate_of_the_family)
{
	struct ip_addr cands[] = {ip("2001:db8::1")};
	struct ip_addr out[STEER_MAX_CANDIDATES];
	unsigned healthy = 99;

	cr_assert_eq(steer_order(cands, 1, AF_INET, 80, &none, 0, 0, NULL, 0, out, STEER_MAX_CANDIDATES, &healthy), 0);
	cr_assert_eq(healthy, 0);
}

Test(cooldown, failed_addresses_go_last_soonest_recovery_first_then_recover)
{
	struct steer_cooldowns c;
	memset(&c, 0, sizeof c);
	struct ip_addr cands[] = {ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")};
	struct ip_addr out[STEER_MAX_CANDIDATES];
	unsigned healthy;

	steer_mark_failed(&c, &cands[0], 80, 1000, 30000); /* until 31000 */
	steer_mark_failed(&c, &cands[1], 80, 2000, 10000); /* until 12000 */
	cr_assert(steer_cooling(&c, &cands[0], 80, 5000));
	cr_assert_not(steer_cooling(&c, &cands[0], 443, 5000), "a cooldown is per port");

	for (unsigned turn = 0; turn < 5; turn++) {
		unsigned n = steer_order(cands, 3, AF_INET, 80, &c, 5000, turn, NULL, 0, out, STEER_MAX_CANDIDATES,
					 &healthy);
		cr_assert_eq(n, 3);
		cr_assert_eq(healthy, 1);
		cr_assert(is(&out[0], "10.0.0.3"), "the only healthy address goes first");
		cr_assert(is(&out[1], "10.0.0.2"), "then the one back soonest");
		cr_assert(is(&out[2], "10.0.0.1"));
	}
	/* Past its cooldown an address is healthy again; a successful connect clears it at once. */
	steer_order(cands, 3, AF_INET, 80, &c, 12000, 0, NULL, 0, out, STEER_MAX_CANDIDATES, &healthy);
	cr_assert_eq(healthy, 2);
	steer_mark_healthy(&c, &cands[0], 80);
	cr_assert_not(steer_cooling(&c, &cands[0], 80, 12000));
}

Test(cooldown, zero_cooldown_remembers_nothing_and_full_table_drops_the_soonest)
{
	struct steer_cooldowns c;
	memset(&c, 0, sizeof c);
	struct ip_addr a = ip("10.0.0.1");

	steer_mark_failed(&c, &a, 80, 1000, 0);
	cr_assert_not(steer_cooling(&c, &a, 80, 1000));

	char text[32];
	for (unsigned i = 0; i < STEER_COOLDOWN_SLOTS; i++) {
		snprintf(text, sizeof text, "10.1.%u.%u", i / 256, i % 256);
		struct ip_addr b = ip(text);
		steer_mark_failed(&c, &b, 80, 1000, 10000 + i);
	}
	struct ip_addr newest = ip("10.2.0.1");
	steer_mark_failed(&c, &newest, 80, 1000, 50000);
	cr_assert(steer_cooling(&c, &newest, 80, 2000));
	struct ip_addr first = ip("10.1.0.0");
	cr_assert_not(steer_cooling(&c, &first, 80, 2000), "the entry closest to recovery made room");
}
