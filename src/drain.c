#include "drain.h"

#include <stdio.h>
#include <sys/socket.h>

#include "idle.h"
#include "log.h"
#include "names.h"
#include "runtime.h"
#include "schedule.h"
#include "sockview.h"

/* Step between the shutdowns of sockets that went stale together (spread over up to one TTL). */
#define DRAIN_SPREAD_STEP_MS 20

/* A socket already quiet is shut down at once: waiting would only let the program's next request
 * meet the send path. */
/* The DRAINING bit, which the send path also sees, is set only when the socket's turn in the
 * spread comes (drain_check): a program that starts a new exchange on a socket still waiting
 * for its turn is not failed for it. */
void drain_start(struct tracked_socket *s, enum drain_reason reason, uint64_t now, uint64_t not_before)
{
	s->drain_reason = reason;
	s->drain_turn_ms = not_before; /* set again when the turn comes (drain_check) */
	s->drain_not_before_ms = not_before;
	s->watch = (struct exchange_watch){0}; /* learned afresh by each drain */
	s->drain_look_at_ms = now;
	/* A recycle for balance has one info line, its shutdown's: its start is a detail. */
	enum log_level level = reason == DRAIN_BALANCE ? LOG_DEBUG : LOG_INFO;
	if (log_enabled(level)) {
		char text[IP_PEER_STRLEN];
		log_msg(level, "draining fd %d to %s (%s) from +%llums", tracked_any_fd(s),
			ip_addr_format_peer(&s->peer, s->port, text),
			reason == DRAIN_MAX_AGE	  ? "max age reached"
			: reason == DRAIN_BALANCE ? "for balance: more than its address's fair share"
						  : "address left the record set",
			(unsigned long long)(not_before - now));
	}
	drain_check(s, now);
}

bool drain_marked(const struct tracked_socket *s)
{
	return s->drain_reason != DRAIN_NONE || (atomic_load(&s->state) & STATE_DRAINING);
}

void drain_log_shutdown(struct tracked_socket *s, int fd, enum stats_path where)
{
	enum stats_reason reason = s->drain_reason == DRAIN_MAX_AGE   ? STATS_REASON_MAX_AGE
				   : s->drain_reason == DRAIN_BALANCE ? STATS_REASON_BALANCE
								      : STATS_REASON_DNS;
	stats_count(&stats.shutdowns[reason][where], 1);
	const char *path = stats_path_name(where);
	if (!log_enabled(LOG_INFO))
		return;
	char text[IP_PEER_STRLEN];
	char fd_text[24] = "a socket"; /* the program may have closed every fd of it already */
	if (fd >= 0)
		snprintf(fd_text, sizeof fd_text, "fd %d", fd);
	const char *name = s->name_count > 0 ? s->names[0]->host : "?";
	if (s->drain_reason == DRAIN_MAX_AGE)
		log_msg(LOG_INFO, "shut down %s to %s (older than DNSAWARE_MAX_AGE; path %s)", fd_text,
			ip_addr_format_peer(&s->peer, s->port, text), path);
	else if (s->drain_reason == DRAIN_BALANCE)
		log_msg(LOG_INFO,
			"shut down %s to %s (for balance: %s grew, %u sockets there, a fair share of %u over %u "
			"addresses; path %s)",
			fd_text, ip_addr_format_peer(&s->peer, s->port, text), name, s->balance_held, s->balance_share,
			s->balance_addrs, path);
	else
		log_msg(LOG_INFO, "shut down %s to %s (%s no longer resolves to it; path %s)", fd_text,
			ip_addr_format_peer(&s->peer, s->port, text), name, path);
}

/* Claims the socket (no send began since the state was read) and shuts it down. */
static bool claim_and_shut(struct tracked_socket *s, int fd, uint64_t expected_state, enum stats_path path)
{
	if (!atomic_compare_exchange_strong(&s->state, &expected_state, expected_state | STATE_CLOSING))
		return false;
	/* Closed since the identity check (and the number perhaps taken again): not ours to shut. */
	if (fdtable_socket(fdtable_load(fd)) != s)
		return true;
	shutdown(fd, SHUT_RDWR);
	drain_log_shutdown(s, fd, path);
	return true;
}

bool drain_all_names_dropped(const struct tracked_socket *s)
{
	for (unsigned i = 0; i < s->name_count; i++)
		if (recordset_contains(&s->names[i]->records, &s->peer))
			return false;
	return true;
}

bool drain_wanted_by_answer(const struct tracked_socket *s)
{
	return !drain_marked(s) && atomic_load(&s->refs) > 0 && drain_all_names_dropped(s);
}

/* Sockets holding a fast-look place (the thread's). */
static unsigned fast_look_sockets;

static bool wants_fast_looks(const struct tracked_socket *s, uint64_t now)
{
	/* Only a socket the program asks on lately: a gap is a pause between its requests (a stream
	 * it only reads has none, and is left to DRAIN_CHECK_MS looks). */
	const struct exchange_watch *w = &s->watch;
	bool asking = w->started && now - w->look_ms <= DRAIN_CHECK_MS && now - w->asked_ms < runtime_config.idle_ms;
	return asking && now - s->drain_turn_ms < DRAIN_FAST_LOOKS_MS;
}

void drain_plan_next_look(struct tracked_socket *s, uint64_t now)
{
	bool draining = s->drain_reason != DRAIN_NONE && (atomic_load(&s->state) & STATE_DRAINING);
	bool fast = draining && wants_fast_looks(s, now) && (s->fast_looks || fast_look_sockets < DRAIN_FAST_MAX);
	if (fast != s->fast_looks) {
		fast_look_sockets += fast ? 1 : -1u;
		s->fast_looks = fast;
	}
	if (s->drain_reason != DRAIN_NONE && !draining)
		s->drain_look_at_ms = s->drain_not_before_ms; /* waiting for its turn in the spread */
	else /* the next point of a grid all draining sockets share: one wake-up looks at them all */
		s->drain_look_at_ms = (now / (fast ? EXCHANGE_LOOK_MS : DRAIN_CHECK_MS) + 1) *
				      (fast ? EXCHANGE_LOOK_MS : DRAIN_CHECK_MS);
}

void drain_forget_looks(struct tracked_socket *s)
{
	if (s->fast_looks) {
		fast_look_sockets--;
		s->fast_looks = false;
	}
}

void drain_after_fork_child(void)
{
	fast_look_sockets = 0;
}

uint64_t drain_spread_offset_ms(unsigned index, unsigned count, uint64_t interval_ms)
{
	return schedule_spread_ms(index, count, interval_ms, DRAIN_SPREAD_STEP_MS);
}

/* Nothing left to drain: the peer is closing it, or it was reset. The view may have seen the send
 * path's own shutdown, claimed since the state word was read: that one is still to be told. */
static void drain_gone(struct tracked_socket *s, int fd)
{
	uint64_t state = atomic_load(&s->state);
	if ((state & STATE_CLOSING) && (state & STATE_SHUT_BY_SEND))
		drain_log_shutdown(s, fd, STATS_PATH_SEND);
	s->drain_reason = DRAIN_NONE;
}

static void log_watch_gap(const struct tracked_socket *s, int fd, uint64_t now)
{
	const struct exchange_watch *w = &s->watch;
	log_msg(LOG_DEBUG,
		"fd %d: a gap between exchanges, quiet for %llums (%llums needed: %u exchanges seen, "
		"answers of %llu-%llu bytes, this one %llu, pauses inside them up to %ums)",
		fd, (unsigned long long)(now - w->answer_ms),
		(unsigned long long)exchange_watch_quiet_ms(w, runtime_config.idle_ms), w->exchanges,
		(unsigned long long)w->answer_min_bytes, (unsigned long long)w->answer_max_bytes,
		(unsigned long long)(w->received - w->received_at_ask), w->longest_pause_ms);
}

/* A long quiet held back while the watch learns the socket's rhythm (exchange_watch.h), counted
 * from its turn: an unknown rhythm for DRAIN_HOLD_UNKNOWN_MS; a quiet about as long as the
 * program's waits until the send path takes over (DRAIN_LEARN_MS): past that it fails the next
 * request for sure, a shutdown now only maybe. */
static bool long_quiet_held(struct tracked_socket *s, uint64_t now)
{
	struct exchange_watch *w = &s->watch;
	enum exchange_hold hold =
		exchange_watch_hold_long_quiet(w, now, s->fast_looks ? EXCHANGE_LOOK_MS : DRAIN_CHECK_MS);
	uint64_t held_for = now - s->drain_turn_ms;
	if (hold == EXCHANGE_HOLD_NONE || held_for >= DRAIN_LEARN_MS ||
	    (hold == EXCHANGE_HOLD_RHYTHM_UNKNOWN && held_for >= DRAIN_HOLD_UNKNOWN_MS))
		return false;
	if (w->held_gap != w->answer_ms + 1 && log_enabled(LOG_DEBUG)) {
		if (hold == EXCHANGE_HOLD_RHYTHM_UNKNOWN)
			log_msg(LOG_DEBUG, "fd %d: quiet, its rhythm unknown yet (busy when its drain began): not shut yet",
				tracked_any_fd(s));
		else
			log_msg(LOG_DEBUG,
				"fd %d: quiet for %llums, about when the program asks again (after waits of %llu-%llums, "
				"%u exchanges seen): not shut yet",
				tracked_any_fd(s), (unsigned long long)(now - w->answer_ms),
				(unsigned long long)w->think_min_ms, (unsigned long long)w->think_max_ms, w->exchanges);
	}
	w->held_gap = w->answer_ms + 1; /* one line per gap */
	return true;
}

void drain_check(struct tracked_socket *s, uint64_t now)
{
	if (s->drain_reason == DRAIN_NONE)
		return;
	uint64_t state = atomic_load(&s->state);
	if (!(state & STATE_DRAINING)) {
		if (now < s->drain_not_before_ms)
			return;
		s->drain_turn_ms = now;
		atomic_store(&s->send_claim_after_ms, now + DRAIN_LEARN_MS);
		state = atomic_fetch_or(&s->state, STATE_DRAINING) | STATE_DRAINING;
		s->observed_state = state;
	}
	if (state & STATE_CLOSING) {
		if (state & STATE_SHUT_BY_SEND)
			drain_log_shutdown(s, tracked_any_fd(s), STATS_PATH_SEND);
		s->drain_reason = DRAIN_NONE; /* done with it */
		return;
	}
	int fd = tracked_any_fd(s);
	if (fd < 0)
		return;
	enum identity identity = sockview_identity(fd, s);
	if (identity == IDENTITY_DIFFERENT) {
		/* The fd was closed behind our back and the number reused: never touch it. */
		tracked_detach_if(fd, s);
		return;
	}
	struct socket_view view;
	if (identity == IDENTITY_UNSURE) {
		/* No peer: still connecting (wait), or reset (nothing left to drain). */
		if (sockview_read(fd, &view) && idle_background(&view, &(struct send_record){0}, 0) == IDLE_GONE)
			drain_gone(s, fd);
		return;
	}
	/* From its turn: a socket spread far into a TTL (balance, many sockets) gets its whole time. */
	if (runtime_config.drain_timeout_ms != 0 && now - s->drain_turn_ms >= runtime_config.drain_timeout_ms) {
		if (claim_and_shut(s, fd, state, STATS_PATH_DEADLINE))
			s->drain_reason = DRAIN_NONE;
		return;
	}
	if (!sockview_read(fd, &view))
		return;
	struct send_record record = {
		.valid = atomic_load(&s->send_recorded),
		.bytes_received_at_send = atomic_load(&s->bytes_received_at_send),
	};
	exchange_watch_look(&s->watch, &view, &record, state / STATE_SEQ_ONE, now);
	/* A send went through since the last look: it may still be on its way into the kernel, so
	 * judge the socket only once a look finds the word unchanged. */
	if (state != s->observed_state) {
		s->observed_state = state;
		return;
	}
	enum idle_verdict verdict = idle_background(&view, &record, runtime_config.idle_ms);
	bool long_quiet = verdict == IDLE_READY;
	/* A busy socket's short gap between exchanges (exchange_watch.h). */
	if (verdict == IDLE_BUSY) {
		verdict = exchange_watch_verdict(&s->watch, &view, now, runtime_config.idle_ms);
		long_quiet = exchange_watch_quiet_ms(&s->watch, runtime_config.idle_ms) >= runtime_config.idle_ms;
	}
	if (verdict == IDLE_READY && long_quiet && long_quiet_held(s, now))
		verdict = IDLE_BUSY;
	/* A request the watch saw and no answer since (one the hooks did not see: the kernel's stamps
	 * and the send record cannot tell it). */
	if (verdict == IDLE_READY && s->watch.phase == EXCHANGE_ASKED)
		verdict = IDLE_BUSY;
	if (verdict == IDLE_READY && !long_quiet && log_enabled(LOG_DEBUG))
		log_watch_gap(s, fd, now);
	switch (verdict) {
	case IDLE_READY:
		if (claim_and_shut(s, fd, state, STATS_PATH_IDLE))
			s->drain_reason = DRAIN_NONE;
		break;
	case IDLE_GONE:
		/* The peer is closing it; unread data stays the program's to read. */
		drain_gone(s, fd);
		break;
	case IDLE_BUSY:
		break;
	}
}
