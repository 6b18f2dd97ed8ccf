/* The busy draining socket's watch (exchange_watch.h): exchanges told apart by counters from look
 * to look, the rhythm learned, and a short gap taken as an idle boundary only once learned, never
 * inside an answer that arrives in pieces. Each test drives looks every EXCHANGE_LOOK_MS over a
 * simulated connection. */
#include <criterion/criterion.h>
#include <netinet/tcp.h>

#include "exchange_watch.h"

#define IDLE_MS 100

/* A connection as the kernel reports it (the counters, what is unread, the stamps) and as the send
 * path records it (its sends, and what had come in at the last one). */
struct conn {
	uint64_t sent, received;
	uint32_t unread;
	uint64_t last_send_ms, last_recv_ms;
	uint64_t sends;
	struct send_record record;
};

/* The program sends a request of 100 bytes at t (through the send path, which records it). */
static void ask(struct conn *c, uint64_t t)
{
	c->sent += 100;
	c->last_send_ms = t;
	c->sends++;
	c->record = (struct send_record){.valid = true, .bytes_received_at_send = c->received};
}

static struct socket_view view_at(const struct conn *c, uint64_t now)
{
	return (struct socket_view){.tcp_state = TCP_ESTABLISHED, .unread_bytes = c->unread,
				    .ms_since_send = (uint32_t)(now - c->last_send_ms),
				    .ms_since_recv = (uint32_t)(now - c->last_recv_ms),
				    .bytes_sent = c->sent, .bytes_received = c->received};
}

/* Looks from t0 to t1 (exclusive); returns the first time the verdict was READY, or 0. */
static uint64_t watch(struct exchange_watch *w, const struct conn *c, uint64_t t0, uint64_t t1)
{
	for (uint64_t t = t0; t < t1; t += EXCHANGE_LOOK_MS) {
		struct socket_view v = view_at(c, t);
		exchange_watch_look(w, &v, &c->record, c->sends, t);
		if (exchange_watch_verdict(w, &v, t, IDLE_MS) == IDLE_READY)
			return t;
	}
	return 0;
}

/* A request at t (100 bytes) and its answer of size bytes, read at once, at t + 1. */
static void exchange(struct conn *c, uint64_t t, uint64_t size)
{
	ask(c, t);
	c->received += size;
	c->last_recv_ms = t + 1;
}

/* 50 requests/s: an exchange every 20 ms, the answer 1 ms after its request, and looks between. */
static uint64_t busy(struct exchange_watch *w, struct conn *c, unsigned exchanges, uint64_t *t)
{
	uint64_t ready = 0;
	for (unsigned i = 0; i < exchanges && ready == 0; i++) {
		watch(w, c, *t, *t + 1);
		ask(c, *t + 1);
		ready = watch(w, c, *t + 2, *t + 3);
		c->received += 500;
		c->last_recv_ms = *t + 3;
		if (ready == 0)
			ready = watch(w, c, *t + 4, *t + 20);
		*t += 20;
	}
	return ready;
}

Test(exchange_watch, busy_socket_learns_and_catches_its_gap)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	uint64_t t = 1000;
	cr_assert_eq(busy(&w, &c, EXCHANGE_LEARN, &t), 0, "no gap is taken before the rhythm is learned");
	cr_assert_eq(w.exchanges, EXCHANGE_LEARN - 1, "whole exchanges seen: %u (the last one's end is the next request)", w.exchanges);
	uint64_t ready = busy(&w, &c, 4, &t);
	cr_assert_neq(ready, 0, "a learned busy socket's 17 ms gap counts");
	cr_assert_leq(exchange_watch_quiet_ms(&w, IDLE_MS), 10, "quiet %llu",
		      (unsigned long long)exchange_watch_quiet_ms(&w, IDLE_MS));
}

Test(exchange_watch, unlearned_socket_waits_for_the_idle_time)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	watch(&w, &c, 0, 2);
	exchange(&c, 2, 500);
	cr_assert_eq(watch(&w, &c, 4, 4 + IDLE_MS - 4), 0, "quiet below DNSAWARE_IDLE: not idle");
	cr_assert_neq(watch(&w, &c, 4 + IDLE_MS - 4, 4 + IDLE_MS + 10), 0, "quiet past it: idle");
}

Test(exchange_watch, an_answer_in_pieces_is_never_cut)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	uint64_t t = 1000;
	busy(&w, &c, 8, &t); /* learned: a short quiet */
	/* Then a 1 MB answer in pieces of 64 KB with 50 ms pauses, each piece read at once. */
	watch(&w, &c, t, t + 1);
	ask(&c, t + 1);
	for (int piece = 0; piece < 16; piece++) {
		uint64_t at = t + 2 + (uint64_t)piece * 50;
		c.received += 65536;
		c.last_recv_ms = at;
		cr_assert_eq(watch(&w, &c, at, at + 50), 0, "cut in the pause after piece %d", piece);
	}
}

/* A streamed answer on a socket busy before it: the headers flushed at once, the first chunk 50 ms
 * later. The headers alone are smaller than the whole answers learned: DNSAWARE_IDLE's quiet. */
Test(exchange_watch, a_streamed_answer_is_never_cut_after_its_headers)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	uint64_t t = 1000;
	busy(&w, &c, 8, &t); /* learned: answers of 500 bytes, a short quiet */
	watch(&w, &c, t, t + 1);
	ask(&c, t + 1);
	c.received += 400; /* the headers of a chunked answer */
	c.last_recv_ms = t + 2;
	cr_assert_eq(watch(&w, &c, t + 2, t + 52), 0, "cut in the pause after the headers");
	for (int chunk = 0; chunk < 10; chunk++) {
		uint64_t at = t + 52 + (uint64_t)chunk * 50;
		c.received += 70;
		c.last_recv_ms = at;
		cr_assert_eq(watch(&w, &c, at, at + 50), 0, "cut in the pause after chunk %d", chunk);
	}
}

/* Answers that carry a counter vary by a few bytes: one a digit shorter still counts. */
Test(exchange_watch, an_answer_a_few_bytes_shorter_counts)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	uint64_t t = 1000;
	busy(&w, &c, EXCHANGE_LEARN, &t);
	watch(&w, &c, t, t + 1);
	ask(&c, t + 1);
	c.received += 495;
	c.last_recv_ms = t + 2;
	cr_assert_neq(watch(&w, &c, t + 2, t + 20), 0, "a learned socket's gap after a 495-byte answer");
}

Test(exchange_watch, unread_or_unsent_is_busy)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	uint64_t t = 1000;
	busy(&w, &c, 8, &t);
	watch(&w, &c, t, t + 1);
	exchange(&c, t + 1, 500);
	c.unread = 10;
	cr_assert_eq(watch(&w, &c, t + 2, t + 18), 0, "bytes the program has not read: not idle");
}

Test(exchange_watch, request_and_answer_in_one_look)
{
	/* A fast answer comes within the same look as its request: the send path's record says
	 * whether the bytes came after the send (its answer) or before it (the previous answer). */
	struct exchange_watch w = {0};
	struct conn c = {0};
	watch(&w, &c, 0, 2);
	ask(&c, 3);
	c.received += 500; /* after the send */
	c.last_recv_ms = 3;
	struct socket_view v = view_at(&c, 4);
	exchange_watch_look(&w, &v, &c.record, c.sends, 4);
	cr_assert_eq(w.phase, EXCHANGE_ANSWERED, "the answer came after the request");
	/* The previous answer's last bytes, then the next request, within one look. */
	c.received += 50;
	ask(&c, 5);
	v = view_at(&c, 6);
	exchange_watch_look(&w, &v, &c.record, c.sends, 6);
	cr_assert_eq(w.phase, EXCHANGE_ASKED, "the bytes came before the request: it is still unanswered");
}

Test(exchange_watch, closing_is_gone)
{
	struct exchange_watch w = {0};
	struct socket_view v = {.tcp_state = TCP_CLOSE_WAIT};
	struct send_record r = {0};
	exchange_watch_look(&w, &v, &r, 0, 0);
	cr_assert_eq(exchange_watch_verdict(&w, &v, 0, IDLE_MS), IDLE_GONE);
}

/* A program asking every period ms (its answer 1 ms after each request), looked at every
 * EXCHANGE_LOOK_MS: n exchanges from *t, the looks up to the next request included. */
static void periodic(struct exchange_watch *w, struct conn *c, uint64_t period, unsigned n, uint64_t *t)
{
	for (unsigned i = 0; i < n; i++) {
		exchange(c, *t + 1, 500);
		for (uint64_t at = *t + 2; at < *t + period; at += EXCHANGE_LOOK_MS) {
			struct socket_view v = view_at(c, at);
			exchange_watch_look(w, &v, &c->record, c->sends, at);
		}
		*t += period;
	}
}

static enum exchange_hold hold_at(const struct exchange_watch *w, uint64_t at)
{
	return exchange_watch_hold_long_quiet(w, at, EXCHANGE_LOOK_MS);
}

Test(exchange_watch, a_socket_quiet_when_its_drain_began_is_not_held)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	exchange(&c, 0, 500);
	watch(&w, &c, 5000, 5001); /* the drain's first look, long after the last answer */
	cr_assert_eq(hold_at(&w, 5000), EXCHANGE_HOLD_NONE);
}

Test(exchange_watch, a_busy_socket_of_unknown_rhythm_is_held)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	uint64_t t = 1000;
	exchange(&c, t - 40, 500);
	watch(&w, &c, t, t + 1); /* the first look, 40 ms after an answer */
	cr_assert_eq(hold_at(&w, t + 60), EXCHANGE_HOLD_RHYTHM_UNKNOWN, "quiet for 100 ms, nothing known of its waits");
	periodic(&w, &c, 100, 1, &t);
	cr_assert_eq(w.exchanges, 0, "a request and its answer, no wait seen after it yet");
	cr_assert_eq(hold_at(&w, t), EXCHANGE_HOLD_RHYTHM_UNKNOWN);
}

/* Two exchanges period ms apart watched from their start, then a third request and its answer:
 * returns the third's start (its answer came at + 1). */
static uint64_t after_two_exchanges(struct exchange_watch *w, uint64_t period)
{
	static struct conn c;
	c = (struct conn){0};
	uint64_t t = 1000;
	watch(w, &c, t - 1, t);
	periodic(w, &c, period, 2, &t);
	exchange(&c, t + 1, 500);
	watch(w, &c, t + 2, t + 4);
	return t;
}

/* A program asking every 100 ms: a quiet of DNSAWARE_IDLE's 100 ms ends as it asks again. */
Test(exchange_watch, a_program_asking_every_idle_is_held_about_when_it_asks)
{
	struct exchange_watch w = {0};
	uint64_t t = after_two_exchanges(&w, 100);
	cr_assert_eq(w.exchanges, 2);
	cr_assert(w.think_min_ms >= 97 && w.think_max_ms <= 101, "waits %llu-%llu ms",
		  (unsigned long long)w.think_min_ms, (unsigned long long)w.think_max_ms);
	cr_assert_eq(hold_at(&w, t + 2 + 98), EXCHANGE_HOLD_REQUEST_DUE, "quiet for 98 ms, it asks at 99");
	cr_assert_eq(hold_at(&w, t + 2 + 84), EXCHANGE_HOLD_REQUEST_DUE, "an eighth and two looks early");
	cr_assert_eq(hold_at(&w, t + 2 + 40), EXCHANGE_HOLD_NONE, "quiet for 40 ms: far from its next request");
	cr_assert_eq(hold_at(&w, t + 2 + 130), EXCHANGE_HOLD_NONE, "quiet well past its usual wait: idle");
}

Test(exchange_watch, a_program_asking_every_500ms_is_not_held_at_100ms)
{
	struct exchange_watch w = {0};
	uint64_t t = after_two_exchanges(&w, 500);
	cr_assert_eq(hold_at(&w, t + 2 + 100), EXCHANGE_HOLD_NONE, "quiet for 100 ms, it asks at 499");
	cr_assert_eq(hold_at(&w, t + 2 + 480), EXCHANGE_HOLD_REQUEST_DUE);
}

Test(exchange_watch, a_connection_nothing_went_over_is_not_held)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	watch(&w, &c, 1000, 1001); /* just connected when its drain began */
	cr_assert_eq(hold_at(&w, 1100), EXCHANGE_HOLD_NONE);
}

/* A request the hooks never saw (stdio's own write on the socket, splice): the bytes went out, the
 * send path's count did not move. Its slow answer is awaited, not taken for a gap. */
Test(exchange_watch, a_request_the_hooks_did_not_see_is_awaited)
{
	struct exchange_watch w = {0};
	struct conn c = {0};
	uint64_t t = 1000;
	busy(&w, &c, 8, &t); /* learned: a short quiet */
	watch(&w, &c, t, t + 1);
	c.sent += 100; /* no ask(): c.sends and the record stay */
	c.last_send_ms = t + 1;
	cr_assert_eq(watch(&w, &c, t + 2, t + 60), 0, "a gap taken under a request still waiting for its answer");
	cr_assert_eq(w.phase, EXCHANGE_ASKED);
	c.received += 500;
	c.last_recv_ms = t + 60;
	cr_assert_neq(watch(&w, &c, t + 60, t + 80), 0, "its answer came: the gap after it counts");
}
