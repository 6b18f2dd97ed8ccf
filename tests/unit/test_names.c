#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "stats_names.h"

static struct ip_addr v4(const char *text)
{
	struct ip_addr a = {.family = AF_INET};
	inet_pton(AF_INET, text, a.bytes);
	return a;
}

static sigset_t saved;

static void lock(void)
{
	names_lock(&saved);
}

static void unlock(void)
{
	names_unlock(&saved);
}

TestSuite(names, .init = lock, .fini = unlock);

Test(names, normalize)
{
	char out[NAME_MAX_LEN + 1];
	cr_assert(names_normalize("API.Example.COM.", out));
	cr_assert_str_eq(out, "api.example.com");
	cr_assert_not(names_normalize("", out));
	cr_assert_not(names_normalize(".", out));
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	cr_assert_not(names_normalize(longname, out));
}

Test(names, learn_and_claim)
{
	struct ip_addr a = v4("127.0.0.10"), b = v4("127.0.0.11");
	struct name_entry *svc = names_learn("svc.test", &a, 1, 1000);
	cr_assert_not_null(svc);
	cr_assert_eq(names_learn("svc.test", &b, 1, 2000), svc, "the same name is one entry");
	cr_assert_eq(svc->records.count, 2);
	cr_assert_eq(atomic_load(&names_count), 1);

	struct name_entry *other = names_learn("alias.test", &a, 1, 2000);
	struct name_entry *found[4];
	cr_assert_eq(names_claim_for_address(&a, found, 4), 2, "both names hold .10");
	cr_assert_eq(svc->live_sockets, 1);
	cr_assert_eq(other->live_sockets, 1);
	struct ip_addr c = v4("127.0.0.12");
	cr_assert_eq(names_claim_for_address(&c, found, 4), 0);
}

Test(names, claim_departed)
{
	/* A connect planned while .30 was current that ends after an answer removed it. */
	struct ip_addr a = v4("127.0.0.30"), b = v4("127.0.0.31");
	struct name_entry *moved = names_learn("moved.test", &a, 1, 1000);
	struct recordset_change change;
	recordset_apply_answer(&moved->records, &b, 1, 1, &change);
	cr_assert_eq(change.removed_count, 1);
	struct name_entry *found[4];
	cr_assert_eq(names_claim_for_address(&a, found, 4), 0, ".30 is no longer current");
	cr_assert_eq(names_claim_departed(&a, found, 4), 1, "but moved.test had it");
	cr_assert_eq(found[0], moved);
	cr_assert_eq(moved->live_sockets, 1);
	cr_assert_eq(names_claim_departed(&b, found, 4), 0, ".31 never left");
	names_release(moved);
}

Test(names, forget_only_unused_and_old)
{
	struct ip_addr a = v4("127.0.0.20");
	struct name_entry *kept = names_learn("kept.test", &a, 1, 0);
	names_learn("dropped.test", &a, 1, 0);
	struct name_entry *claimed[4];
	unsigned n = names_claim_for_address(&a, claimed, 4);
	cr_assert_eq(n, 2);
	for (unsigned i = 0; i < n; i++)
		if (claimed[i] != kept)
			names_release(claimed[i]);
	unsigned before = atomic_load(&names_count);
	names_forget_unused(NAMES_UNUSED_KEEP_MS - 1);
	cr_assert_eq(atomic_load(&names_count), before, "too recent to forget");
	names_forget_unused(NAMES_UNUSED_KEEP_MS);
	cr_assert_eq(atomic_load(&names_count), before - 1, "only the name with no socket goes");
	cr_assert_eq(names_first()->live_sockets, 1);
	names_release(kept);
	cr_assert_eq(kept->next_refresh_ms, 0, "no socket left: no refresh");
}

Test(names, refresh_in_flight_is_never_freed)
{
	struct ip_addr a = v4("127.0.0.30");
	struct name_entry *e = names_learn("busy.test", &a, 1, 0);
	e->refresh_in_flight = true;
	names_forget_unused(UINT64_MAX / 2);
	cr_assert_eq(atomic_load(&names_count), 1);
}

/* Balance and the stats file count a name's sockets per current address. */
Test(names, sockets_counted_per_address)
{
	struct ip_addr a = v4("127.0.0.20"), b = v4("127.0.0.21");
	struct ip_addr both[2] = {a, b};
	struct name_entry *e = names_learn("count.test", both, 2, 1000);
	struct name_entry *held[1];
	cr_assert_eq(names_claim_for_address(&a, held, 1), 1);
	names_count_socket(held, 1, &a, +1);
	names_count_socket(held, 1, &a, +1);
	names_count_socket(held, 1, &b, +1);
	cr_assert_eq(e->records.records[0].conns, 2);
	cr_assert_eq(e->records.records[1].conns, 1);
	names_count_socket(held, 1, &a, -1);
	names_count_socket(held, 1, &b, -1);
	names_count_socket(held, 1, &b, -1);
	cr_assert_eq(e->records.records[0].conns, 1);
	cr_assert_eq(e->records.records[1].conns, 0, "never below 0");
	struct ip_addr gone = v4("127.0.0.99");
	names_count_socket(held, 1, &gone, +1); /* not current: nothing to count */

	names_record_connect(e, CONNECT_OK, 1000, 32);
	struct stats_names *out = calloc(1, sizeof *out + 32 * sizeof out->name[0]);
	out->capacity = 32;
	stats_names_collect(out);
	bool seen = false;
	for (unsigned i = 0; i < out->count; i++) {
		if (strcmp(out->name[i].name, "count.test") != 0)
			continue;
		seen = true;
		cr_assert_eq(out->name[i].count, 2);
		cr_assert_str_eq(out->name[i].address[0], "127.0.0.20");
		cr_assert_eq(out->name[i].sockets[0], 1);
		cr_assert_eq(out->name[i].sockets[1], 0);
	}
	free(out);
	cr_assert(seen, "a name that connected is in the stats");
	names_release(e);
}

/* DNSAWARE_METRICS_NAMES: the first names to connect get series of their own and keep them; the
 * rest are counted under _other, and a forgotten name's counts go there too. */
Test(names, metrics_names_are_stable)
{
	char host[32];
	struct name_entry *e[40];
	for (unsigned i = 0; i < 40; i++) {
		struct ip_addr a = v4("127.0.2.1");
		a.bytes[3] = (uint8_t)(i + 1);
		snprintf(host, sizeof host, "n%02u.test", i);
		e[i] = names_learn(host, &a, 1, 1000);
		names_record_connect(e[i], CONNECT_OK, 1000000, 32);
	}
	for (unsigned k = 0; k < 100; k++)
		names_record_connect(e[39], CONNECT_REFUSED, 0, 32); /* the busiest now, but it came late */
	struct stats_names *out = calloc(1, sizeof *out + 32 * sizeof out->name[0]);
	out->capacity = 32;
	stats_names_collect(out);
	cr_assert_eq(out->count, 32);
	cr_assert_str_eq(out->name[0].name, "n00.test", "sorted by name");
	cr_assert_str_eq(out->name[31].name, "n31.test");
	cr_assert(out->has_other);
	cr_assert_eq(out->other_metrics.results[CONNECT_OK], 8, "n32..n39's connects");
	cr_assert_eq(out->other_metrics.results[CONNECT_REFUSED], 100);
	cr_assert_eq(out->name[5].metrics.results[CONNECT_OK], 1);
	/* The same again: nothing moves from one write to the next. */
	stats_names_collect(out);
	cr_assert_eq(out->count, 32);
	cr_assert_str_eq(out->name[31].name, "n31.test");
	/* A name with series of its own is forgotten (no socket, unused for 10 minutes): its
	 * counts go to _other, which never goes down, and its place is free for the next to connect. */
	names_forget_unused(1000 + 11 * 60 * 1000);
	names_unlock(&saved);
	names_lock(&saved);
	stats_names_collect(out);
	cr_assert_eq(out->count, 0, "every name was unused and is forgotten");
	cr_assert_eq(out->other_metrics.results[CONNECT_OK], 40);
	struct ip_addr a = v4("127.0.3.1");
	struct name_entry *late = names_learn("late.test", &a, 1, 2000000);
	names_record_connect(late, CONNECT_OK, 1000000, 32);
	stats_names_collect(out);
	cr_assert_eq(out->count, 1);
	cr_assert_str_eq(out->name[0].name, "late.test");
	free(out);
}

/* At the stats file's writes, a much busier name takes the place of a quiet one; the quiet one's
 * counts stay in the file under _other. */
Test(names, a_busier_name_takes_a_quiet_ones_place_at_a_write)
{
	struct ip_addr a = v4("127.0.4.1"), b = v4("127.0.4.2");
	struct name_entry *quiet = names_learn("quiet.test", &a, 1, 1000);
	struct name_entry *busy = names_learn("busy.test", &b, 1, 1000);
	names_record_connect(quiet, CONNECT_OK, 1000000, 1);
	for (unsigned k = 0; k < 5; k++)
		names_record_connect(busy, CONNECT_OK, 1000000, 1);
	cr_assert(quiet->choice.own && !busy->choice.own, "the first to connect has the one place");
	/* The quiet one got its place at the first write's round: it keeps it for
	 * METRICS_CHOICE_STABLE_ROUNDS writes. */
	for (unsigned round = 0; round <= METRICS_CHOICE_STABLE_ROUNDS; round++) {
		for (unsigned k = 0; k < 50; k++)
			names_record_connect(busy, CONNECT_OK, 1000000, 1);
		names_choose_metrics(1);
	}
	cr_assert(busy->choice.own && !quiet->choice.own, "the busy one has it now");
	cr_assert_eq(quiet->metrics.results[CONNECT_OK], 0);
	cr_assert_eq(names_other_metrics.results[CONNECT_OK], 1 + 5 + 50 * (METRICS_CHOICE_STABLE_ROUNDS + 1),
		     "the quiet one's and the busy one's earlier");
	names_record_connect(busy, CONNECT_OK, 1000000, 1);
	cr_assert_eq(busy->metrics.results[CONNECT_OK], 1, "its own series starts at its place");
}

/* A name that lost its place at a write does not take a free one back at its next connect: it
 * changes side at most once in METRICS_CHOICE_STABLE_ROUNDS writes, at a connect as at a write. */
Test(names, a_name_that_lost_its_place_waits_to_take_a_free_one)
{
	struct ip_addr a = v4("127.0.5.1"), b = v4("127.0.5.2");
	struct name_entry *quiet = names_learn("quiet5.test", &a, 1, 1000);
	struct name_entry *busy = names_learn("busy5.test", &b, 1, 1000);
	names_record_connect(quiet, CONNECT_OK, 1000000, 1);
	for (unsigned round = 0; round <= METRICS_CHOICE_STABLE_ROUNDS; round++) {
		for (unsigned k = 0; k < 50; k++)
			names_record_connect(busy, CONNECT_OK, 1000000, 1);
		names_choose_metrics(1);
	}
	cr_assert(busy->choice.own && !quiet->choice.own);
	/* A second place (DNSAWARE_METRICS_NAMES raised, or a name forgotten): not at once. */
	names_record_connect(quiet, CONNECT_OK, 1000000, 2);
	cr_assert(!quiet->choice.own, "it took a place back right after losing one");
	for (unsigned round = 0; round < METRICS_CHOICE_STABLE_ROUNDS; round++)
		names_choose_metrics(2);
	names_record_connect(quiet, CONNECT_OK, 1000000, 2);
	cr_assert(quiet->choice.own, "settled: its next connect takes the free place");
}

/* A name with series of its own stays a candidate however many names were learned after it (the
 * list is newest first; the candidates are 1024): the places never exceed DNSAWARE_METRICS_NAMES. */
Test(names, places_stay_counted_past_a_thousand_names)
{
	struct ip_addr a = v4("127.0.6.1");
	struct name_entry *first = names_learn("first6.test", &a, 1, 1000);
	names_record_connect(first, CONNECT_OK, 1000000, 1);
	cr_assert(first->choice.own);
	char host[32];
	struct name_entry *last = NULL;
	for (unsigned i = 0; i < 1100; i++) {
		snprintf(host, sizeof host, "m%04u.test", i);
		last = names_learn(host, &a, 1, 2000);
	}
	for (unsigned k = 0; k < 100; k++)
		names_record_connect(last, CONNECT_OK, 1000000, 1);
	names_choose_metrics(1);
	cr_assert(first->choice.own != last->choice.own, "one place, one name: first %d, last %d", first->choice.own,
		  last->choice.own);
}
