#include "exchange_watch.h"

#include <netinet/tcp.h>

static void saw_request(struct exchange_watch *w, uint64_t now_ms)
{
	if (w->phase == EXCHANGE_ANSWERED) {
		/* A whole exchange: its answer ended at answer_ms (at the latest), the next request went
		 * out by now. */
		uint64_t size = w->received - w->received_at_ask;
		if (w->exchanges == 0 || size < w->answer_min_bytes)
			w->answer_min_bytes = size;
		if (w->exchanges == 0 || size > w->answer_max_bytes)
			w->answer_max_bytes = size;
		uint64_t think = now_ms - w->answer_ms;
		if (w->exchanges == 0 || think < w->think_min_ms)
			w->think_min_ms = think;
		if (w->exchanges == 0 || think > w->think_max_ms)
			w->think_max_ms = think;
		w->exchanges++;
	}
	w->phase = EXCHANGE_ASKED;
	w->asked_ms = now_ms;
	w->received_at_ask = w->received;
}

static void saw_answer(struct exchange_watch *w, uint64_t now_ms)
{
	if (w->phase == EXCHANGE_ANSWERED) {
		/* More of the same answer after a quiet: an upper bound of the pause, to stay safe. */
		uint64_t pause = now_ms - w->answer_ms;
		if (pause > w->longest_pause_ms)
			w->longest_pause_ms = (uint32_t)pause;
	} else if (w->phase == EXCHANGE_ASKED) {
		w->phase = EXCHANGE_ANSWERED;
	}
	w->answer_ms = now_ms;
}

void exchange_watch_look(struct exchange_watch *w, const struct socket_view *v, const struct send_record *r,
			 uint64_t sends, uint64_t now_ms)
{
	if (!w->started) {
		/* asked_ms: the drain's first looks are fast, to learn a busy socket's rhythm soon. */
		*w = (struct exchange_watch){.started = true, .sends = sends, .sent = v->bytes_sent,
					     .received = v->bytes_received, .start_ms = now_ms, .look_ms = now_ms,
					     .asked_ms = now_ms};
		return;
	}
	bool asked = sends != w->sends, received = v->bytes_received > w->received;
	/* Bytes went out that no hooked send let through: stdio's own write, splice, io_uring. A
	 * request all the same, though its order against what came in is unknown: taken as the last,
	 * so its answer is still to come. */
	bool asked_unseen = !asked && v->bytes_sent > w->sent;
	if (asked_unseen) {
		if (received)
			saw_answer(w, now_ms);
		w->received = v->bytes_received;
		saw_request(w, now_ms);
	} else if (asked) {
		/* The send path recorded what had come in when the program sent: the answer, if any
		 * came in this interval, is the new request's only if it came after that. */
		bool answered_after = r->valid && v->bytes_received > r->bytes_received_at_send;
		if (received && !answered_after)
			saw_answer(w, now_ms); /* the end of the previous answer, then the request */
		w->received = r->valid ? r->bytes_received_at_send : w->received;
		saw_request(w, now_ms);
		if (answered_after)
			saw_answer(w, now_ms);
	} else if (received) {
		saw_answer(w, now_ms);
	}
	w->sends = sends;
	w->sent = v->bytes_sent;
	w->received = v->bytes_received;
	w->look_ms = now_ms;
}

/* The answer in progress is the size of the answers the rhythm was learned from: at most a
 * sixteenth and 8 bytes smaller (a counter or a port in it has a digit less), at most a quarter and
 * 64 bytes larger. A first piece smaller than that is how a streamed answer starts (the headers
 * alone, or the headers and a first chunk, flushed before the rest is ready), and a larger one is
 * the start of a large answer: both get DNSAWARE_IDLE's quiet. */
static bool answer_like_the_others(const struct exchange_watch *w)
{
	uint64_t size = w->received - w->received_at_ask;
	uint64_t low_slack = w->answer_min_bytes / 16 + 8, high_slack = w->answer_max_bytes / 4 + 64;
	uint64_t low = w->answer_min_bytes > low_slack ? w->answer_min_bytes - low_slack : 0;
	return size >= low && size <= w->answer_max_bytes + high_slack;
}

uint64_t exchange_watch_quiet_ms(const struct exchange_watch *w, uint64_t idle_ms)
{
	if (w->exchanges < EXCHANGE_LEARN || !answer_like_the_others(w))
		return idle_ms;
	uint64_t quiet = 2 * (uint64_t)w->longest_pause_ms + EXCHANGE_LOOK_MS;
	if (quiet < EXCHANGE_QUIET_MIN_MS)
		quiet = EXCHANGE_QUIET_MIN_MS;
	return quiet < idle_ms ? quiet : idle_ms;
}

enum idle_verdict exchange_watch_verdict(const struct exchange_watch *w, const struct socket_view *v, uint64_t now_ms,
					 uint64_t idle_ms)
{
	if (v->tcp_state != TCP_ESTABLISHED)
		return v->tcp_state == TCP_SYN_SENT || v->tcp_state == TCP_SYN_RECV ? IDLE_BUSY : IDLE_GONE;
	if (!w->started || w->phase != EXCHANGE_ANSWERED || v->unread_bytes != 0 || v->unsent_bytes != 0)
		return IDLE_BUSY;
	/* Counters moved since the watch's last look: the caller looks first. */
	if (v->bytes_sent != w->sent || v->bytes_received != w->received)
		return IDLE_BUSY;
	return now_ms - w->answer_ms >= exchange_watch_quiet_ms(w, idle_ms) ? IDLE_READY : IDLE_BUSY;
}

enum exchange_hold exchange_watch_hold_long_quiet(const struct exchange_watch *w, uint64_t now_ms,
						  uint64_t look_ms)
{
	if (!w->started || now_ms == w->start_ms)
		return EXCHANGE_HOLD_NONE;
	if (w->exchanges == 0) /* a connection nothing ever went over has no rhythm to meet */
		return w->sent > 0 || w->received > 0 ? EXCHANGE_HOLD_RHYTHM_UNKNOWN : EXCHANGE_HOLD_NONE;
	if (w->phase != EXCHANGE_ANSWERED)
		return EXCHANGE_HOLD_NONE;
	uint64_t quiet = now_ms - w->answer_ms;
	uint64_t low_slack = w->think_min_ms / 8 + 2 * look_ms, high_slack = w->think_max_ms / 8 + 2 * look_ms;
	uint64_t low = w->think_min_ms > low_slack ? w->think_min_ms - low_slack : 0;
	return quiet >= low && quiet <= w->think_max_ms + high_slack ? EXCHANGE_HOLD_REQUEST_DUE : EXCHANGE_HOLD_NONE;
}
