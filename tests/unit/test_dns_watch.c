/* What the hooks keep of the program's own DNS exchanges (dns_watch.c): queries and answers by
 * datagram and over TCP (length-prefixed, reassembled across any split, bounded), each answer
 * taken once, the pool's sockets claimed and freed. */
#include <criterion/criterion.h>

#include "dns_watch.h"
#include "dns_wire.h"
#include "dnsmsg.h"

static struct wire query, answer;

static void messages(void)
{
	w_message(&query, 0x1111, 0x0100, "svc.test", DNSMSG_TYPE_A);
	w_message(&answer, 0x1111, 0x8180, "svc.test", DNSMSG_TYPE_A);
	w_a(&answer, "svc.test", 30, "10.0.0.1");
}

static void feed(int index, bool sent, const uint8_t *bytes, size_t n)
{
	struct iovec iov = {(void *)bytes, n};
	if (sent)
		dns_watch_sent(index, &iov, 1, n);
	else
		dns_watch_received(index, &iov, 1, n, false);
}

static bool same_as_query(const uint8_t *q, size_t len, void *context)
{
	(void)context;
	return len == query.n && memcmp(q, query.b, len) == 0;
}

static void take_all(void)
{
	uint8_t buf[DNS_ANSWER_MAX];
	unsigned index;
	while (dns_watch_take_answer(buf, &index) > 0)
		;
}

static void fresh(void)
{
	take_all();
	dns_watch_forget_all();
	messages();
}

TestSuite(dns_watch, .init = fresh);

Test(dns_watch, datagram_query_and_answer)
{
	int index = dns_watch_claim(false);
	cr_assert_geq(index, 0);
	feed(index, true, query.b, query.n);
	feed(index, false, answer.b, answer.n);
	cr_assert_eq(dns_watch_pending, 1);
	uint8_t buf[DNS_ANSWER_MAX];
	unsigned from = 99;
	size_t len = dns_watch_take_answer(buf, &from);
	cr_assert_eq(len, answer.n);
	cr_assert_eq(from, (unsigned)index);
	cr_assert_arr_eq(buf, answer.b, len);
	cr_assert(dns_watch_find_query(from, same_as_query, NULL));
	cr_assert_eq(dns_watch_take_answer(buf, &from), 0, "an answer was taken twice");
	cr_assert_eq(dns_watch_pending, 0);
}

Test(dns_watch, answers_and_queries_are_not_confused)
{
	int index = dns_watch_claim(false);
	feed(index, false, query.b, query.n); /* a query received: not an answer */
	feed(index, true, answer.b, answer.n); /* an answer sent: not a query */
	cr_assert_eq(dns_watch_pending, 0);
	cr_assert_not(dns_watch_find_query(index, same_as_query, NULL));
}

Test(dns_watch, truncated_datagram_dropped)
{
	int index = dns_watch_claim(false);
	struct iovec iov = {answer.b, answer.n};
	dns_watch_received(index, &iov, 1, answer.n, true);
	cr_assert_eq(dns_watch_pending, 0);
}

Test(dns_watch, datagram_gathered_from_scattered_buffers)
{
	int index = dns_watch_claim(false);
	struct iovec iov[3] = { {answer.b, 3}, {answer.b + 3, 10}, {answer.b + 13, sizeof answer.b - 13} };
	dns_watch_received(index, iov, 3, answer.n, false);
	uint8_t buf[DNS_ANSWER_MAX];
	unsigned from;
	cr_assert_eq(dns_watch_take_answer(buf, &from), answer.n);
	cr_assert_arr_eq(buf, answer.b, answer.n);
}

/* A stream of prefixed messages, fed in pieces of every size from 1 byte up. */
Test(dns_watch, stream_reassembled_across_any_split)
{
	uint8_t stream[2 * (2 + 4096)];
	size_t n = 0;
	for (int m = 0; m < 2; m++) {
		stream[n++] = (uint8_t)(answer.n >> 8);
		stream[n++] = (uint8_t)answer.n;
		memcpy(stream + n, answer.b, answer.n);
		n += answer.n;
	}
	for (size_t piece = 1; piece <= n; piece++) {
		int index = dns_watch_claim(true);
		for (size_t at = 0; at < n; at += piece)
			feed(index, false, stream + at, at + piece <= n ? piece : n - at);
		uint8_t buf[DNS_ANSWER_MAX];
		unsigned from;
		for (int m = 0; m < 2; m++) {
			size_t len = dns_watch_take_answer(buf, &from);
			cr_assert_eq(len, answer.n, "piece %zu, message %d: %zu bytes", piece, m, len);
			cr_assert_arr_eq(buf, answer.b, len);
		}
		cr_assert_eq(dns_watch_take_answer(buf, &from), 0);
		dns_watch_unref(index);
	}
}

Test(dns_watch, stream_query_kept)
{
	int index = dns_watch_claim(true);
	uint8_t prefix[2] = {(uint8_t)(query.n >> 8), (uint8_t)query.n};
	feed(index, true, prefix, 1);
	feed(index, true, prefix + 1, 1);
	feed(index, true, query.b, 5);
	feed(index, true, query.b + 5, query.n - 5);
	cr_assert(dns_watch_find_query(index, same_as_query, NULL));
}

/* A message longer than the buffer is skipped whole; the next one is read. */
Test(dns_watch, stream_overlong_message_skipped)
{
	int index = dns_watch_claim(true);
	static uint8_t big[2 + 9000];
	big[0] = 9000 >> 8;
	big[1] = 9000 & 0xff;
	memset(big + 2, 0x81, 9000);
	feed(index, false, big, sizeof big);
	cr_assert_eq(dns_watch_pending, 0);
	uint8_t prefix[2] = {(uint8_t)(answer.n >> 8), (uint8_t)answer.n};
	feed(index, false, prefix, 2);
	feed(index, false, answer.b, answer.n);
	cr_assert_eq(dns_watch_pending, 1);
}

/* Discarded bytes (MSG_TRUNC on a stream): out of step for good, nothing more is kept. */
Test(dns_watch, stream_lost_after_discarded_bytes)
{
	int index = dns_watch_claim(true);
	dns_watch_received(index, NULL, 0, 3, false);
	uint8_t prefix[2] = {(uint8_t)(answer.n >> 8), (uint8_t)answer.n};
	feed(index, false, prefix, 2);
	feed(index, false, answer.b, answer.n);
	cr_assert_eq(dns_watch_pending, 0);
}

Test(dns_watch, full_slots_drop_new_answers)
{
	int index = dns_watch_claim(false);
	uint64_t dropped = dns_watch_dropped;
	for (int i = 0; i < DNS_WATCH_ANSWERS + 2; i++)
		feed(index, false, answer.b, answer.n);
	cr_assert_eq(dns_watch_pending, DNS_WATCH_ANSWERS);
	cr_assert_eq(dns_watch_dropped, dropped + 2);
}

Test(dns_watch, queries_ring_keeps_the_latest)
{
	int index = dns_watch_claim(false);
	for (int i = 0; i < DNS_WATCH_QUERIES * 2; i++) {
		query.b[1] = (uint8_t)i;
		feed(index, true, query.b, query.n);
	}
	query.b[1] = DNS_WATCH_QUERIES * 2 - 1;
	cr_assert(dns_watch_find_query(index, same_as_query, NULL), "the latest query was lost");
	query.b[1] = 0;
	cr_assert_not(dns_watch_find_query(index, same_as_query, NULL), "the oldest was kept");
}

Test(dns_watch, pool_claimed_and_freed)
{
	int claimed[DNS_WATCH_SOCKETS];
	for (int i = 0; i < DNS_WATCH_SOCKETS; i++)
		cr_assert_geq(claimed[i] = dns_watch_claim(false), 0);
	cr_assert_eq(dns_watch_claim(false), -1, "more sockets than the pool holds");
	dns_watch_ref(claimed[5]);
	dns_watch_unref(claimed[5]);
	cr_assert_eq(dns_watch_claim(false), -1, "freed while a duplicate held it");
	dns_watch_unref(claimed[5]);
	cr_assert_eq(dns_watch_claim(false), claimed[5]);
}

/* A freed socket's unread answer is never matched against its next owner's queries. */
Test(dns_watch, reclaimed_socket_forgets_old_answers)
{
	int index = dns_watch_claim(false);
	feed(index, false, answer.b, answer.n);
	dns_watch_unref(index);
	cr_assert_eq(dns_watch_claim(false), index);
	cr_assert_eq(dns_watch_pending, 0);
}
