/* DNS messages the program exchanged itself (dnsmsg.c): the question and id of a query or an
 * answer, and what an answer says (addresses, CNAME chains, the least TTL), read with c-ares'
 * parsers. Anything but a NOERROR, untruncated answer with addresses for the name is refused. */
#include <criterion/criterion.h>

#include <netinet/in.h>
#include <stdio.h>

#include "dns_wire.h"
#include "dnsmsg.h"

static struct wire w;

static bool holds(const struct dnsmsg_learned *l, int family, const char *ip)
{
	uint8_t bytes[16];
	inet_pton(family, ip, bytes);
	for (unsigned i = 0; i < l->count; i++)
		if (l->addrs[i].family == family && memcmp(l->addrs[i].bytes, bytes, family == AF_INET ? 4 : 16) == 0)
			return true;
	return false;
}

Test(dnsmsg, question_of_a_query)
{
	struct dnsmsg_question q;
	w_message(&w, 0xbeef, 0x0100, "Api.Example.COM", DNSMSG_TYPE_AAAA);
	cr_assert(dnsmsg_question(w.b, w.n, &q));
	cr_assert_eq(q.id, 0xbeef);
	cr_assert_eq(q.qtype, DNSMSG_TYPE_AAAA);
	cr_assert_eq(q.qclass, 1);
	cr_assert_str_eq(q.name, "Api.Example.COM");
}

Test(dnsmsg, question_refused_when_short_or_not_one)
{
	struct dnsmsg_question q;
	w_message(&w, 1, 0x0100, "a.test", DNSMSG_TYPE_A);
	for (size_t len = 0; len < w.n; len++)
		cr_assert_not(dnsmsg_question(w.b, len, &q), "accepted %zu of %zu bytes", len, w.n);
	w.b[5] = 2; /* two questions */
	cr_assert_not(dnsmsg_question(w.b, w.n, &q));
	w.b[5] = 0;
	cr_assert_not(dnsmsg_question(w.b, w.n, &q));
}

Test(dnsmsg, same_question_needs_id_type_class_and_name)
{
	struct dnsmsg_question a, b;
	w_message(&w, 7, 0x0100, "a.test", DNSMSG_TYPE_A);
	dnsmsg_question(w.b, w.n, &a);
	w_message(&w, 7, 0x8180, "A.TEST", DNSMSG_TYPE_A);
	dnsmsg_question(w.b, w.n, &b);
	cr_assert(dnsmsg_same_question(&a, &b), "names differ only in case");
	b.id = 8;
	cr_assert_not(dnsmsg_same_question(&a, &b));
	b.id = 7;
	b.qtype = DNSMSG_TYPE_AAAA;
	cr_assert_not(dnsmsg_same_question(&a, &b));
	b.qtype = DNSMSG_TYPE_A;
	b.qclass = 3;
	cr_assert_not(dnsmsg_same_question(&a, &b));
	b.qclass = 1;
	strcpy(b.name, "b.test");
	cr_assert_not(dnsmsg_same_question(&a, &b));
}

Test(dnsmsg, answer_with_addresses_and_least_ttl)
{
	struct dnsmsg_learned l;
	w_message(&w, 9, 0x8180, "svc.test", DNSMSG_TYPE_A);
	w_a(&w, "svc.test", 300, "10.0.0.1");
	w_a(&w, "svc.test", 60, "10.0.0.2");
	w_a(&w, "svc.test", 300, "10.0.0.1"); /* a duplicate, kept once */
	cr_assert(dnsmsg_read_answer(w.b, w.n, &l));
	cr_assert_str_eq(l.question.name, "svc.test");
	cr_assert_eq(l.count, 2);
	cr_assert(holds(&l, AF_INET, "10.0.0.1") && holds(&l, AF_INET, "10.0.0.2"));
	cr_assert_eq(l.ttl_seconds, 60);
}

Test(dnsmsg, cname_chain_followed_with_its_ttl)
{
	struct dnsmsg_learned l;
	w_message(&w, 9, 0x8180, "www.test", DNSMSG_TYPE_AAAA);
	w_cname(&w, "www.test", 5, "edge.test");
	w_cname(&w, "edge.test", 600, "node.cdn.test");
	w_aaaa(&w, "node.cdn.test", 120, "fd00::10");
	w_aaaa(&w, "elsewhere.test", 120, "fd00::99"); /* not on the chain: not the name's */
	cr_assert(dnsmsg_read_answer(w.b, w.n, &l));
	cr_assert_str_eq(l.question.name, "www.test");
	cr_assert_eq(l.count, 1);
	cr_assert(holds(&l, AF_INET6, "fd00::10"));
	cr_assert_eq(l.ttl_seconds, 5, "the CNAME's TTL bounds its address's: %u", l.ttl_seconds);
}

Test(dnsmsg, huge_ttl_is_zero_not_negative)
{
	struct dnsmsg_learned l;
	w_message(&w, 9, 0x8180, "svc.test", DNSMSG_TYPE_A);
	w_a(&w, "svc.test", 0x80000000u, "10.0.0.1");
	cr_assert(dnsmsg_read_answer(w.b, w.n, &l));
	cr_assert_eq(l.ttl_seconds, 0);
}

Test(dnsmsg, v4_mapped_aaaa_folds_to_ipv4)
{
	struct dnsmsg_learned l;
	w_message(&w, 9, 0x8180, "svc.test", DNSMSG_TYPE_AAAA);
	w_aaaa(&w, "svc.test", 30, "::ffff:10.0.0.7");
	cr_assert(dnsmsg_read_answer(w.b, w.n, &l));
	cr_assert(holds(&l, AF_INET, "10.0.0.7"));
}

Test(dnsmsg, refused_answers)
{
	struct dnsmsg_learned l;
	static const struct {
		unsigned flags;
		const char *why;
	} cases[] = {
		{0x0100, "a query"},
		{0x8183, "NXDOMAIN"},
		{0x8182, "SERVFAIL"},
		{0x8380, "truncated"},
		{0xa980, "an UPDATE, not a QUERY"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		w_message(&w, 9, cases[i].flags, "svc.test", DNSMSG_TYPE_A);
		w_a(&w, "svc.test", 30, "10.0.0.1");
		cr_assert_not(dnsmsg_read_answer(w.b, w.n, &l), "%s was read", cases[i].why);
	}
	w_message(&w, 9, 0x8180, "svc.test", DNSMSG_TYPE_A); /* NODATA */
	cr_assert_not(dnsmsg_read_answer(w.b, w.n, &l));
	w_message(&w, 9, 0x8180, "svc.test", 33); /* SRV */
	cr_assert_not(dnsmsg_read_answer(w.b, w.n, &l));
	w_message(&w, 9, 0x8180, "svc.test", DNSMSG_TYPE_A);
	w_a(&w, "svc.test", 30, "10.0.0.1");
	for (size_t len = 0; len < w.n; len++)
		cr_assert_not(dnsmsg_read_answer(w.b, len, &l), "a cut answer (%zu of %zu bytes) was read", len, w.n);
}

Test(dnsmsg, at_most_a_record_set)
{
	struct dnsmsg_learned l;
	w_message(&w, 9, 0x8180, "many.test", DNSMSG_TYPE_A);
	for (unsigned i = 0; i < RECORDSET_MAX + 20; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "10.1.%u.%u", i / 200, i % 200 + 1);
		w_a(&w, "many.test", 30, ip);
	}
	cr_assert(dnsmsg_read_answer(w.b, w.n, &l));
	cr_assert_eq(l.count, RECORDSET_MAX);
}
