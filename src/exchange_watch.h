/* The background path's view of a busy draining socket (issue 16): looks taken every few
 * milliseconds, their counters (TCP_INFO's bytes sent and received) compared look to look, tell
 * the program's requests from the peer's answers without the kernel's jiffy stamps, and learn the
 * socket's rhythm: how long its answers pause inside, how soon the program asks again. A short
 * gap between exchanges then counts as an idle boundary once it has lasted a quiet time learned
 * for this socket. Pure, unit-tested; drain.c feeds it. */
#ifndef DNSAWARE_EXCHANGE_WATCH_H
#define DNSAWARE_EXCHANGE_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "idle.h"

/* How often a draining socket is looked at while it is busy. */
#define EXCHANGE_LOOK_MS 2
/* The shortest quiet the watch ever accepts: two looks and a margin. */
#define EXCHANGE_QUIET_MIN_MS 6
/* Exchanges seen whole before the watch trusts the socket's rhythm (until then the quiet time is
 * DNSAWARE_IDLE's). */
#define EXCHANGE_LEARN 3

enum exchange_phase {
	EXCHANGE_UNKNOWN = 0, /* not seen a request yet */
	EXCHANGE_ASKED,       /* a request went out; no answer since */
	EXCHANGE_ANSWERED,    /* an answer came after the last request */
};

struct exchange_watch {
	bool started;
	uint64_t sends;             /* the send path's count at the last look */
	uint64_t sent;              /* the counters at the last look */
	uint64_t received;
	uint64_t start_ms;          /* the first look */
	uint64_t look_ms;           /* the last look */
	enum exchange_phase phase;
	uint64_t asked_ms;          /* the look that saw the last request */
	uint64_t answer_ms;         /* the look that saw the last bytes of the answer arrive */
	uint64_t received_at_ask;   /* bytes received when the last request was seen */
	unsigned exchanges;         /* whole exchanges seen: an answer, then the next request */
	uint32_t longest_pause_ms;  /* the longest quiet seen inside one answer */
	uint64_t answer_min_bytes;  /* the sizes of the whole answers seen */
	uint64_t answer_max_bytes;
	uint64_t think_min_ms;      /* how soon the program asked again after an answer, at the least */
	uint64_t think_max_ms;      /* and at the most */
	uint64_t held_gap;          /* drain.c: the answer_ms + 1 of the gap it last held back (logged once) */
};

/* One look at now (ms). sends: the sends the send path let through so far (the state word's
 * sequence); r: what it recorded at the last one. A request is a send; an answer is data that came
 * in after it. */
void exchange_watch_look(struct exchange_watch *w, const struct socket_view *v, const struct send_record *r,
			 uint64_t sends, uint64_t now_ms);

/* The quiet time after an answer that makes this socket idle. DNSAWARE_IDLE's until the watch has
 * seen EXCHANGE_LEARN exchanges, and for an answer whose size is outside the sizes of those (the
 * first piece of a streamed or a large answer is no answer like the others); else twice the longest pause seen
 * inside an answer (and a look's margin), at least EXCHANGE_QUIET_MIN_MS, at most idle_ms. */
uint64_t exchange_watch_quiet_ms(const struct exchange_watch *w, uint64_t idle_ms);

/* IDLE_READY when the last request has been answered, every byte of it read, nothing unsent, and
 * nothing has come in for the quiet time (measured from the look that saw the answer's last
 * bytes: a lower bound). IDLE_GONE for a closing connection. */
enum idle_verdict exchange_watch_verdict(const struct exchange_watch *w, const struct socket_view *v, uint64_t now_ms,
					 uint64_t idle_ms);

/* Whether a long quiet (DNSAWARE_IDLE's) that makes the socket idle now is to be held back. It
 * may end just when the program asks again: the program may have checked the socket already and
 * be on its way to send, and a shutdown between the two fails that request. A program asking about
 * every DNSAWARE_IDLE meets a fixed quiet at the very end of its gaps. The caller bounds each hold
 * (drain.c); meanwhile the watch learns the rhythm and takes a gap right after an answer. */
enum exchange_hold {
	EXCHANGE_HOLD_NONE = 0,
	/* Nothing known yet of how long the program waits before asking again (no whole exchange
	 * seen) on a connection that carried data, not quiet already at the watch's first look (an
	 * idle socket). */
	EXCHANGE_HOLD_RHYTHM_UNKNOWN,
	/* The quiet is about as long as the waits seen: each end widened by an eighth and two looks of
	 * look_ms (the look interval). */
	EXCHANGE_HOLD_REQUEST_DUE,
};
enum exchange_hold exchange_watch_hold_long_quiet(const struct exchange_watch *w, uint64_t now_ms,
						  uint64_t look_ms);

#endif
