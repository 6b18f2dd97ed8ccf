/* balance.c: the connect's choice among a name's addresses, and the fair share. */
#include <criterion/criterion.h>

#include "balance.h"

/* Connects made one after the other, each counted where it went: the counts they leave. */
static void connect_many(struct balance_candidate *c, unsigned n, unsigned connects, unsigned turn0)
{
	for (unsigned i = 0; i < connects; i++) {
		int pick = balance_choose(c, n, turn0 + i);
		cr_assert_geq(pick, 0);
		c[pick].conns++;
	}
}

Test(balance, the_fewest_connections_win)
{
	struct balance_candidate c[4] = {{.conns = 3}, {.conns = 1}, {.conns = 2}, {.conns = 5}};
	cr_assert_eq(balance_choose(c, 4, 0), 1);
	cr_assert_eq(balance_choose(c, 4, 7), 1, "one address with the fewest: the turn does not matter");
}

Test(balance, ties_are_taken_in_turn)
{
	struct balance_candidate c[3] = {{.conns = 2}, {.conns = 2}, {.conns = 2}};
	cr_assert_eq(balance_choose(c, 3, 0), 0);
	cr_assert_eq(balance_choose(c, 3, 1), 1);
	cr_assert_eq(balance_choose(c, 3, 2), 2);
	cr_assert_eq(balance_choose(c, 3, 3), 0);
}

Test(balance, connections_that_close_at_once_go_round)
{
	/* Fresh connections closed before the next one: every count stays 0, the turn spreads them. */
	struct balance_candidate c[4] = {{0}};
	unsigned got[4] = {0};
	for (unsigned turn = 0; turn < 100; turn++)
		got[balance_choose(c, 4, turn)]++;
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(got[i], 25, "address %u got %u of 100", i, got[i]);
}

Test(balance, a_pool_spreads_evenly)
{
	struct balance_candidate c[4] = {{0}};
	connect_many(c, 4, 64, 5);
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(c[i].conns, 16);
}

Test(balance, a_cooling_address_is_never_chosen_while_another_is_healthy)
{
	struct balance_candidate c[3] = {{.conns = 0, .cooling = true}, {.conns = 9}, {.conns = 4}};
	for (unsigned turn = 0; turn < 10; turn++)
		cr_assert_eq(balance_choose(c, 3, turn), 2);
	c[1].cooling = c[2].cooling = true;
	cr_assert_eq(balance_choose(c, 3, 0), 0, "all cooling: the fewest of all");
}

Test(balance, no_candidate)
{
	cr_assert_eq(balance_choose(NULL, 0, 0), -1);
}

Test(balance, fair_share_is_the_ceiling)
{
	cr_assert_eq(balance_fair_share(8, 4), 2);
	cr_assert_eq(balance_fair_share(9, 4), 3);
	cr_assert_eq(balance_fair_share(64, 4), 16);
	cr_assert_eq(balance_fair_share(1, 4), 1);
	cr_assert_eq(balance_fair_share(0, 4), 0);
	cr_assert_eq(balance_fair_share(5, 0), 0);
}

Test(balance, growth_from_one_address_to_four)
{
	/* 8 connections on the one address; the set grows to 4: 6 are above the share of 2, and once
	 * they reconnect (each to the fewest) every address holds 2. */
	struct balance_candidate c[4] = {{.conns = 8}, {0}, {0}, {0}};
	uint32_t share = balance_fair_share(8, 4);
	uint32_t recycle = balance_excess(c[0].conns, share);
	cr_assert_eq(recycle, 6);
	c[0].conns -= recycle;
	connect_many(c, 4, recycle, 0);
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(c[i].conns, 2, "address %u holds %u", i, c[i].conns);
	cr_assert_eq(balance_excess(2, share), 0);
	cr_assert_eq(balance_excess(1, share), 0);
}
