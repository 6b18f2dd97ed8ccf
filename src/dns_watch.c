#include "dns_watch.h"

#include <string.h>
#include <sys/mman.h>

#include "tracked.h"

_Static_assert(DNS_WATCH_SOCKETS == FDTABLE_DNS_SOCKETS, "one fd-table gate per DNS socket");

_Atomic(struct dns_watched_socket *) dns_watch_pool[DNS_WATCH_SOCKETS];
_Atomic unsigned dns_watch_pending;
_Atomic uint64_t dns_watch_dropped;

#define DNS_HEADER_LEN 12

static bool slot_move(_Atomic int *state, int from, int to)
{
	return atomic_compare_exchange_strong_explicit(state, &from, to, memory_order_acquire, memory_order_relaxed);
}

static void slot_set(_Atomic int *state, int to)
{
	atomic_store_explicit(state, to, memory_order_release);
}

static void stream_reset(struct dns_stream *s)
{
	atomic_store_explicit(&s->busy, false, memory_order_relaxed);
	s->lost = false;
	s->prefix_have = 0;
	s->message_len = 0;
	s->have = 0;
}

/* Entry i, mapped if it was not yet; NULL without memory. */
static struct dns_watched_socket *entry(int i)
{
	struct dns_watched_socket *w = dns_watch_socket(i);
	if (w != NULL)
		return w;
	void *mapped = mmap(NULL, sizeof *w, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mapped == MAP_FAILED)
		return NULL;
	if (atomic_compare_exchange_strong(&dns_watch_pool[i], &w, (struct dns_watched_socket *)mapped))
		return mapped;
	munmap(mapped, sizeof *w); /* another claim mapped it first */
	return w;
}

int dns_watch_claim(bool stream)
{
	for (int i = 0; i < DNS_WATCH_SOCKETS; i++) {
		struct dns_watched_socket *w = entry(i);
		if (w == NULL)
			return -1;
		int expected = 0;
		if (!atomic_compare_exchange_strong(&w->refs, &expected, 1))
			continue;
		w->stream = stream;
		stream_reset(&w->in);
		stream_reset(&w->out);
		for (int q = 0; q < DNS_WATCH_QUERIES; q++)
			slot_move(&w->queries[q].state, DNS_SLOT_READY, DNS_SLOT_FREE);
		/* A previous owner's answer not read yet: never to be matched against this one's queries. */
		for (int a = 0; a < DNS_WATCH_ANSWERS; a++)
			if (slot_move(&w->answers[a].state, DNS_SLOT_READY, DNS_SLOT_FREE))
				atomic_fetch_sub(&dns_watch_pending, 1);
		return i;
	}
	return -1;
}

void dns_watch_ref(int index)
{
	atomic_fetch_add(&dns_watch_socket(index)->refs, 1);
}

void dns_watch_unref(int index)
{
	atomic_fetch_sub(&dns_watch_socket(index)->refs, 1);
}

void dns_watch_forget_all(void)
{
	/* Only the sockets in use: every page written here is one the kernel copies for the child. */
	for (int i = 0; i < DNS_WATCH_SOCKETS; i++) {
		struct dns_watched_socket *w = dns_watch_socket(i);
		if (w != NULL && atomic_load_explicit(&w->refs, memory_order_relaxed) != 0)
			atomic_store(&w->refs, 0);
	}
}

/* Copies up to cap of the n bytes held by iov into out; returns how many. */
static size_t gather(uint8_t *out, size_t cap, const struct iovec *iov, int iovcnt, size_t n)
{
	size_t copied = 0;
	for (int i = 0; i < iovcnt && copied < n && copied < cap; i++) {
		size_t take = iov[i].iov_len;
		if (take > n - copied)
			take = n - copied;
		if (take > cap - copied)
			take = cap - copied;
		if (take > 0 && iov[i].iov_base != NULL)
			memcpy(out + copied, iov[i].iov_base, take);
		copied += take;
	}
	return copied;
}

static bool is_response(const uint8_t *message)
{
	return (message[2] & 0x80) != 0;
}

static void keep_query(struct dns_watched_socket *w, const uint8_t *bytes, size_t len)
{
	if (len < DNS_HEADER_LEN || is_response(bytes))
		return;
	/* The oldest slot not being read right now. */
	for (int tries = 0; tries < DNS_WATCH_QUERIES; tries++) {
		unsigned i = atomic_fetch_add(&w->next_query, 1) % DNS_WATCH_QUERIES;
		struct dns_query_slot *q = &w->queries[i];
		if (!slot_move(&q->state, DNS_SLOT_FREE, DNS_SLOT_WRITING) &&
		    !slot_move(&q->state, DNS_SLOT_READY, DNS_SLOT_WRITING))
			continue;
		q->len = (uint16_t)len;
		memcpy(q->bytes, bytes, len);
		slot_set(&q->state, DNS_SLOT_READY);
		return;
	}
}

/* A free answer slot of w, now WRITING; NULL (the answer dropped) when every one is taken. */
static struct dns_answer_slot *claim_answer(struct dns_watched_socket *w)
{
	for (int i = 0; i < DNS_WATCH_ANSWERS; i++)
		if (slot_move(&w->answers[i].state, DNS_SLOT_FREE, DNS_SLOT_WRITING))
			return &w->answers[i];
	atomic_fetch_add_explicit(&dns_watch_dropped, 1, memory_order_relaxed);
	return NULL;
}

/* The claimed slot holds an answer of len bytes: ready for dns_watch_take_answer. */
static void publish_answer(struct dns_answer_slot *a, size_t len)
{
	a->len = (uint16_t)len;
	slot_set(&a->state, DNS_SLOT_READY);
	atomic_fetch_add(&dns_watch_pending, 1);
}

static void keep_answer(struct dns_watched_socket *w, const uint8_t *bytes, size_t len)
{
	if (len < DNS_HEADER_LEN || !is_response(bytes))
		return;
	struct dns_answer_slot *a = claim_answer(w);
	if (a == NULL)
		return;
	memcpy(a->bytes, bytes, len);
	publish_answer(a, len);
}

/* Feeds n bytes of a length-prefixed stream (iov NULL: n bytes discarded unseen). Each complete
 * message that fit in buf (cap bytes; partial: its first cap bytes are enough) goes to done. */
static void stream_feed(struct dns_watched_socket *w, struct dns_stream *s, uint8_t *buf, size_t cap,
			bool partial, void (*done)(struct dns_watched_socket *, const uint8_t *, size_t),
			const struct iovec *iov, int iovcnt, size_t n)
{
	if (atomic_exchange_explicit(&s->busy, true, memory_order_acquire)) {
		s->lost = true; /* another thread is in the middle of this stream */
		return;
	}
	if (iov == NULL)
		s->lost = true;
	for (int i = 0; i < iovcnt && n > 0 && !s->lost; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len < n ? iov[i].iov_len : n;
		n -= left;
		while (left > 0) {
			if (s->prefix_have < 2) {
				s->prefix[s->prefix_have++] = *p++;
				left--;
				if (s->prefix_have == 2) {
					s->message_len = (uint32_t)s->prefix[0] << 8 | s->prefix[1];
					s->have = 0;
				}
			} else {
				size_t take = s->message_len - s->have;
				if (take > left)
					take = left;
				if (s->have < cap) {
					size_t keep = cap - s->have < take ? cap - s->have : take;
					memcpy(buf + s->have, p, keep);
				}
				s->have += (uint32_t)take;
				p += take;
				left -= take;
			}
			if (s->prefix_have == 2 && s->have == s->message_len) {
				if (s->message_len <= cap || partial)
					done(w, buf, s->message_len <= cap ? s->message_len : cap);
				else
					atomic_fetch_add_explicit(&dns_watch_dropped, 1, memory_order_relaxed);
				s->prefix_have = 0;
			}
		}
	}
	atomic_store_explicit(&s->busy, false, memory_order_release);
}

void dns_watch_sent(int index, const struct iovec *iov, int iovcnt, size_t n)
{
	struct dns_watched_socket *w = dns_watch_socket(index);
	if (w->stream) {
		stream_feed(w, &w->out, w->out_buf, sizeof w->out_buf, true, keep_query, iov, iovcnt, n);
		return;
	}
	uint8_t query[DNS_QUERY_KEEP];
	keep_query(w, query, gather(query, sizeof query, iov, iovcnt, n));
}

void dns_watch_received(int index, const struct iovec *iov, int iovcnt, size_t n, bool truncated)
{
	struct dns_watched_socket *w = dns_watch_socket(index);
	if (w->stream) {
		stream_feed(w, &w->in, w->in_buf, sizeof w->in_buf, false, keep_answer, iov, iovcnt, n);
		return;
	}
	if (truncated || n > DNS_ANSWER_MAX) {
		atomic_fetch_add_explicit(&dns_watch_dropped, 1, memory_order_relaxed);
		return;
	}
	/* Straight into a free answer slot: no copy on the stack of whatever thread this is. */
	if (n < DNS_HEADER_LEN)
		return;
	struct dns_answer_slot *a = claim_answer(w);
	if (a == NULL)
		return;
	size_t len = gather(a->bytes, sizeof a->bytes, iov, iovcnt, n);
	if (len < DNS_HEADER_LEN || !is_response(a->bytes)) {
		slot_set(&a->state, DNS_SLOT_FREE);
		return;
	}
	publish_answer(a, len);
}

size_t dns_watch_take_answer(uint8_t *buf, unsigned *index)
{
	if (atomic_load(&dns_watch_pending) == 0)
		return 0;
	for (unsigned i = 0; i < DNS_WATCH_SOCKETS; i++) {
		struct dns_watched_socket *w = dns_watch_socket((int)i);
		if (w == NULL)
			break; /* entries are mapped in order: none after this one */
		for (int a = 0; a < DNS_WATCH_ANSWERS; a++) {
			struct dns_answer_slot *slot = &w->answers[a];
			if (!slot_move(&slot->state, DNS_SLOT_READY, DNS_SLOT_READING))
				continue;
			size_t len = slot->len;
			memcpy(buf, slot->bytes, len);
			slot_set(&slot->state, DNS_SLOT_FREE);
			atomic_fetch_sub(&dns_watch_pending, 1);
			*index = i;
			return len;
		}
	}
	return 0;
}

bool dns_watch_find_query(unsigned index, bool (*match)(const uint8_t *query, size_t len, void *context),
			  void *context)
{
	struct dns_watched_socket *w = dns_watch_socket((int)index);
	for (int i = 0; i < DNS_WATCH_QUERIES; i++) {
		struct dns_query_slot *q = &w->queries[i];
		if (!slot_move(&q->state, DNS_SLOT_READY, DNS_SLOT_READING))
			continue;
		bool found = match(q->bytes, q->len, context);
		slot_set(&q->state, DNS_SLOT_READY);
		if (found)
			return true;
	}
	return false;
}
