/* What the background thread takes from a c-ares answer (answer.c): the addresses, deduplicated
 * and capped, the current ones kept first; the TTL, the minimum over nodes and CNAMEs, never
 * negative; the interval, clamped to the floor and ceiling. Answers are built by hand exactly as
 * c-ares hands them over. */
#include <criterion/criterion.h>

#include <ares.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "answer.h"
#include "ip_literal.h"
#include "recordset.h"

#define NODES_MAX 5000

/* An answer under construction: nodes with their sockaddrs, and a CNAME chain. */
static struct ares_addrinfo_node nodes[NODES_MAX];
static struct sockaddr_in6 storage[NODES_MAX];
static struct ares_addrinfo_cname cnames[8];
static struct ares_addrinfo info;
static unsigned node_count;
static unsigned cname_count;

static void start(void)
{
	memset(nodes, 0, sizeof nodes);
	memset(storage, 0, sizeof storage);
	memset(cnames, 0, sizeof cnames);
	memset(&info, 0, sizeof info);
	node_count = 0;
	cname_count = 0;
}

static struct ares_addrinfo_node *append_node(int ttl, socklen_t len)
{
	cr_assert_lt(node_count, NODES_MAX);
	struct ares_addrinfo_node *node = &nodes[node_count];
	node->ai_ttl = ttl;
	node->ai_addr = (struct sockaddr *)&storage[node_count];
	node->ai_addrlen = len;
	if (node_count > 0)
		nodes[node_count - 1].ai_next = node;
	info.nodes = &nodes[0];
	node_count++;
	return node;
}

/* A node for an IPv4 or IPv6 literal (AF_INET6 for "::ffff:a.b.c.d" too). */
static void add(const char *text, int ttl)
{
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(443)};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};

	if (inet_pton(AF_INET, text, &v4.sin_addr) == 1) {
		struct ares_addrinfo_node *node = append_node(ttl, sizeof v4);
		node->ai_family = AF_INET;
		memcpy(node->ai_addr, &v4, sizeof v4);
		return;
	}
	cr_assert_eq(inet_pton(AF_INET6, text, &v6.sin6_addr), 1, "bad literal %s", text);
	struct ares_addrinfo_node *node = append_node(ttl, sizeof v6);
	node->ai_family = AF_INET6;
	memcpy(node->ai_addr, &v6, sizeof v6);
}

/* 10.x.y.z, distinct for i < 2^24. */
static void add_numbered(unsigned i, int ttl)
{
	char text[32];

	snprintf(text, sizeof text, "10.%u.%u.%u", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
	add(text, ttl);
}

static void add_cname(int ttl)
{
	cr_assert_lt(cname_count, 8);
	cnames[cname_count].ttl = ttl;
	cnames[cname_count].alias = (char *)"www.example.com";
	cnames[cname_count].name = (char *)"edge.example.net";
	if (cname_count > 0)
		cnames[cname_count - 1].next = &cnames[cname_count];
	info.cnames = &cnames[0];
	cname_count++;
}

static struct answer collect(const struct recordset *current)
{
	struct answer answer;

	memset(&answer, 0xa5, sizeof answer); /* every field must be written */
	answer_collect(&info, current, &answer);
	return answer;
}

static bool holds(const struct answer *answer, const char *text)
{
	struct ip_addr addr = ip(text);

	for (unsigned i = 0; i < answer->count; i++)
		if (answer->addrs[i].family == addr.family &&
		    memcmp(answer->addrs[i].bytes, addr.bytes, addr.family == AF_INET ? 4 : 16) == 0)
			return true;
	return false;
}

TestSuite(addresses, .init = start);
TestSuite(ttl, .init = start);

Test(addresses, both_families_in_order)
{
	add("192.0.2.1", 60);
	add("2001:db8::1", 60);
	add("192.0.2.2", 60);
	struct answer answer = collect(NULL);

	cr_assert_eq(answer.count, 3);
	cr_assert_eq(answer.addrs[0].family, AF_INET);
	cr_assert_eq(answer.addrs[1].family, AF_INET6);
	cr_assert(holds(&answer, "192.0.2.2"));
	cr_assert_not(answer.truncated);
}

Test(addresses, v4_mapped_folds_to_ipv4_and_counts_once)
{
	add("192.0.2.1", 60);
	add("::ffff:192.0.2.1", 60);
	add("::ffff:192.0.2.7", 60);
	struct answer answer = collect(NULL);

	cr_assert_eq(answer.count, 2);
	cr_assert_eq(answer.addrs[1].family, AF_INET);
	cr_assert(holds(&answer, "192.0.2.7"));
}

Test(addresses, duplicates_count_once)
{
	for (int i = 0; i < 100; i++)
		add("192.0.2.1", 60);
	add("2001:db8::1", 60);
	add("2001:db8::1", 60);
	struct answer answer = collect(NULL);

	cr_assert_eq(answer.count, 2);
	cr_assert_not(answer.truncated);
}

/* Before answer.c, 64 copies of one address filled the 64 slots and the next address was lost. */
Test(addresses, duplicates_take_no_room)
{
	for (int i = 0; i < ANSWER_MAX; i++)
		add("192.0.2.1", 60);
	add("192.0.2.2", 60);
	struct answer answer = collect(NULL);

	cr_assert_eq(answer.count, 2);
	cr_assert(holds(&answer, "192.0.2.2"));
}

Test(addresses, unusable_nodes_are_skipped)
{
	struct sockaddr_un local = {.sun_family = AF_UNIX};
	struct ares_addrinfo_node *node = append_node(60, sizeof local);
	memcpy(node->ai_addr, &local, sizeof local);
	node = append_node(60, 0);
	node->ai_addr = NULL; /* no sockaddr at all */
	add("192.0.2.1", 60);
	nodes[node_count - 1].ai_addrlen = sizeof(struct sockaddr_in) - 1; /* too short for IPv4 */
	add("2001:db8::1", 60);
	nodes[node_count - 1].ai_addrlen = offsetof(struct sockaddr_in6, sin6_addr) + 15;
	add("2001:db8::2", 60);
	/* Linux's RFC 2133 layout, without sin6_scope_id, is a whole IPv6 sockaddr. */
	nodes[node_count - 1].ai_addrlen = offsetof(struct sockaddr_in6, sin6_addr) + 16;
	struct answer answer = collect(NULL);

	cr_assert_eq(answer.count, 1);
	cr_assert(holds(&answer, "2001:db8::2"));
}

Test(addresses, nothing_from_no_result)
{
	struct answer answer;

	memset(&answer, 0xa5, sizeof answer);
	answer_collect(NULL, NULL, &answer);
	cr_assert_eq(answer.count, 0);
	cr_assert_eq(answer.ttl_seconds, 0);
	cr_assert_not(answer.truncated);
}

Test(addresses, thousands_are_capped_and_marked)
{
	for (unsigned i = 0; i < 4000; i++)
		add_numbered(i, 60);
	struct answer answer = collect(NULL);

	cr_assert_eq(answer.count, ANSWER_MAX);
	cr_assert(answer.truncated);
	cr_assert(holds(&answer, "10.0.0.0"));
	cr_assert(holds(&answer, "10.0.0.63"));
}

Test(addresses, exactly_full_is_not_truncated)
{
	for (unsigned i = 0; i < ANSWER_MAX; i++)
		add_numbered(i, 60);
	add_numbered(0, 60);
	struct answer answer = collect(NULL);

	cr_assert_eq(answer.count, ANSWER_MAX);
	cr_assert_not(answer.truncated);
}

/* Fuzzing finding (tests/fuzz/regressions/answer/long-answer-removes-current-address): with more
 * addresses than fit, the first ANSWER_MAX were taken, so the set's addresses further down the
 * answer counted as absent from it and were removed, their sockets drained, while DNS still had
 * them. The set's addresses are now taken first. */
Test(addresses, long_answer_keeps_the_current_addresses)
{
	struct recordset current;
	struct ip_addr learned[10];
	memset(&current, 0, sizeof current);
	for (unsigned i = 0; i < 10; i++) {
		char text[32];
		snprintf(text, sizeof text, "10.0.1.%u", i);
		learned[i] = ip(text);
	}
	recordset_learn(&current, learned, 10);
	for (unsigned i = 0; i < 300; i++)
		add_numbered(i, 60); /* 10.0.1.0 .. 10.0.1.9 at 256 .. 265 */
	struct answer answer = collect(&current);

	cr_assert_eq(answer.count, ANSWER_MAX);
	cr_assert(answer.truncated);
	cr_assert(holds(&answer, "10.0.1.0"));
	cr_assert(holds(&answer, "10.0.1.9"));
	cr_assert(holds(&answer, "10.0.0.0"), "the rest filled in answer order");

	struct recordset_change change;
	recordset_apply_answer(&current, answer.addrs, answer.count, 1, &change);
	cr_assert_eq(change.removed_count, 0);
}

Test(addresses, without_a_set_the_answer_order_is_kept)
{
	for (unsigned i = 0; i < 300; i++)
		add_numbered(i, 60);
	struct answer answer = collect(NULL);

	cr_assert_not(holds(&answer, "10.0.1.0"));
	cr_assert(holds(&answer, "10.0.0.63"));
}

Test(ttl, minimum_over_nodes_and_cnames)
{
	add("192.0.2.1", 300);
	add("192.0.2.2", 120);
	add_cname(3600);
	cr_assert_eq(collect(NULL).ttl_seconds, 120);
	add_cname(30);
	cr_assert_eq(collect(NULL).ttl_seconds, 30, "a short CNAME TTL bounds the answer");
}

Test(ttl, unusable_nodes_count_too)
{
	add("192.0.2.1", 300);
	struct ares_addrinfo_node *node = append_node(10, 0);
	node->ai_addr = NULL;
	cr_assert_eq(collect(NULL).ttl_seconds, 10);
}

/* c-ares hands a DNS TTL with its top bit set over as a negative int: RFC 2181 reads it as 0. */
Test(ttl, negative_is_zero)
{
	add("192.0.2.1", 300);
	add("192.0.2.2", -1);
	cr_assert_eq(collect(NULL).ttl_seconds, 0);
	start();
	add("192.0.2.1", 300);
	add_cname(INT_MIN);
	cr_assert_eq(collect(NULL).ttl_seconds, 0);
}

Test(ttl, largest_is_kept_without_wrapping)
{
	add("192.0.2.1", INT_MAX);
	add_cname(INT_MAX);
	struct answer answer = collect(NULL);

	cr_assert_eq(answer.ttl_seconds, (uint32_t)INT_MAX);
	cr_assert_eq(answer_interval_ms(&answer, 5000, 300000), 300000);
	cr_assert_eq(answer_interval_ms(&answer, 5000, 30ULL * 24 * 3600 * 1000), 30ULL * 24 * 3600 * 1000);
}

Test(ttl, hosts_file_answers_use_the_floor)
{
	add("127.0.0.1", 0);
	struct answer answer = collect(NULL);

	cr_assert_eq(answer.ttl_seconds, 0);
	cr_assert_eq(answer_interval_ms(&answer, 5000, 300000), 5000);
}

Test(ttl, interval_is_the_ttl_within_bounds)
{
	add("192.0.2.1", 60);
	struct answer answer = collect(NULL);

	cr_assert_eq(answer_interval_ms(&answer, 5000, 300000), 60000);
	cr_assert_eq(answer_interval_ms(&answer, 90000, 300000), 90000);
	cr_assert_eq(answer_interval_ms(&answer, 1000, 30000), 30000);
}

Test(ttl, empty_answer_has_zero)
{
	cr_assert_eq(collect(NULL).ttl_seconds, 0);
	add_cname(60);
	cr_assert_eq(collect(NULL).ttl_seconds, 60, "CNAMEs alone still bound the TTL");
	cr_assert_eq(collect(NULL).count, 0);
}
