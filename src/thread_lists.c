#include "thread_lists.h"

#include <stdlib.h>

#include "connect_watch.h"
#include "drain.h"
#include "fork_keep.h"
#include "names.h"
#include "runtime.h"
#include "schedule.h"
#include "stats.h"

/* A closed socket's object is freed this long after its last fd closed: a send hook that loaded
 * the pointer just before the close has long finished with it by then. */
#define RELEASE_GRACE_MS 2000

static struct tracked_socket *sockets;
/* Sockets whose last fd closed, waiting out RELEASE_GRACE_MS before they are freed. */
static struct tracked_socket *closed;
/* Released sockets taken from tracked_released and not yet on `closed`. */
static struct tracked_socket *collecting;
/* The sockets that need the thread's looks (connecting, draining). */
static struct tracked_socket *attention;
/* The earliest max-age deadline of a socket not yet draining. */
static uint64_t next_max_age_ms = UINT64_MAX;

/* Every walk of `sockets` or `attention` counts the sockets it looks at and adds them to
 * stats.thread_socket_visits once at its end (one atomic add per walk, not per socket): divided by
 * stats.thread_wakeups, the thread's work per wake-up, which tests/preload/thread_work.c checks does
 * not grow with healthy sockets. */

void thread_lists_want_attention(struct tracked_socket *s)
{
	if (s->on_attention)
		return;
	s->on_attention = true;
	s->next_attention = attention;
	attention = s;
}

static void drop_attention(struct tracked_socket *s)
{
	uint64_t visits = 0;
	for (struct tracked_socket **link = &attention; *link != NULL; link = &(*link)->next_attention) {
		visits++;
		if (*link == s) {
			*link = s->next_attention;
			s->on_attention = false;
			drain_forget_looks(s);
			break;
		}
	}
	stats_count(&stats.thread_socket_visits, visits);
}

void thread_lists_add(struct tracked_socket *s)
{
	if (runtime_config.max_age_ms != 0) {
		s->max_age_deadline_ms = s->connected_at_ms + schedule_jitter(runtime_config.max_age_ms, runtime_random());
		if (s->max_age_deadline_ms < next_max_age_ms)
			next_max_age_ms = s->max_age_deadline_ms;
	}
	if (atomic_load(&s->connecting))
		thread_lists_want_attention(s);
	s->prev = NULL;
	s->next = sockets;
	if (sockets != NULL)
		sockets->prev = s;
	sockets = s;
	s->adopted = true;
}

void thread_lists_start_draining(struct tracked_socket *s, enum drain_reason reason, uint64_t now, uint64_t not_before)
{
	thread_lists_want_attention(s);
	drain_start(s, reason, now, not_before);
}

struct tracked_socket *thread_lists_sockets(void)
{
	return sockets;
}

void thread_lists_drain_removed(const struct name_entry *entry, uint64_t now)
{
	unsigned count = 0;
	uint64_t visits = 0;
	for (struct tracked_socket *s = sockets; s != NULL; s = s->next) {
		visits++;
		if (drain_wanted_by_answer(s))
			count++;
	}
	unsigned index = 0;
	for (struct tracked_socket *s = sockets; s != NULL; s = s->next) {
		visits++;
		if (!drain_wanted_by_answer(s))
			continue;
		uint64_t offset = drain_spread_offset_ms(index++, count, entry->interval_ms);
		s->conns_counted = false; /* its count left the set with its address */
		thread_lists_start_draining(s, DRAIN_DNS, now, now + offset);
	}
	stats_count(&stats.thread_socket_visits, visits);
}


/* A socket the program closed stops counting for its address at once (balance chooses by these
 * counts: a pool that reconnects must not see its closed sockets), and counts again if a dup that
 * raced the close revived it. */
static void count_socket(struct tracked_socket *s, bool counted)
{
	sigset_t saved;
	names_lock(&saved);
	if (s->conns_counted != counted) {
		names_count_socket(s->names, s->name_count, &s->peer, counted ? +1 : -1);
		s->conns_counted = counted;
	}
	names_unlock(&saved);
}

void thread_lists_collect_released(uint64_t now)
{
	uint64_t visits = 0;
	/* Under the fork lock and into a static, for the reason adopt_incoming gives. */
	sigset_t saved;
	names_lock(&saved);
	collecting = tracked_take_released();
	names_unlock(&saved);
	while (collecting != NULL) {
		struct tracked_socket *s = collecting;
		/* Onto `closed` before it leaves `collecting`: always reachable from a static. */
		bool taken = !s->closed_listed && atomic_load(&s->refs) == 0;
		if (taken) {
			s->closed_listed = true;
			s->released_at_ms = now;
			s->next_closed = closed;
			closed = s;
		}
		collecting = s->next_released;
		atomic_store(&s->release_pushed, false);
		visits++;
		if (!taken) {
			atomic_fetch_add(&tracked_released_done, 1);
			continue; /* already waiting, or revived by a dup that raced the close */
		}
		count_socket(s, false);
		if (atomic_exchange(&s->connecting, false))
			connect_watch_closed(s);
		atomic_fetch_add(&tracked_released_done, 1);
		/* The program closed it right after the send path shut it down (and failed its send
		 * with EPIPE): say so before forgetting it. */
		if ((atomic_load(&s->state) & STATE_SHUT_BY_SEND) && s->drain_reason != DRAIN_NONE) {
			drain_log_shutdown(s, -1, STATS_PATH_SEND);
			s->drain_reason = DRAIN_NONE;
		}
	}
	stats_count(&stats.thread_socket_visits, visits);
}

static void unlink_socket(struct tracked_socket *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		sockets = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
}

/* Hooks that loaded the pointer before the close are done with it by the end of the grace. */
void thread_lists_reap_closed(uint64_t now, uint64_t *wake_at)
{
	uint64_t visits = 0;
	struct tracked_socket **link = &closed;
	while (*link != NULL) {
		struct tracked_socket *s = *link;
		visits++;
		if (atomic_load(&s->refs) > 0) {
			*link = s->next_closed; /* revived by a dup that raced the close */
			s->closed_listed = false;
			s->released_at_ms = 0;
			count_socket(s, true);
			continue;
		}
		/* Not adopted yet (closed before the thread took it in), or pushed again after a
		 * revival: wait for the next look. */
		if (!s->adopted || atomic_load(&s->release_pushed) || now - s->released_at_ms < RELEASE_GRACE_MS) {
			if (s->released_at_ms + RELEASE_GRACE_MS < *wake_at)
				*wake_at = s->released_at_ms + RELEASE_GRACE_MS;
			link = &s->next_closed;
			continue;
		}
		*link = s->next_closed;
		unlink_socket(s);
		if (s->on_attention)
			drop_attention(s);
		sigset_t saved;
		names_lock(&saved);
		if (s->conns_counted)
			names_count_socket(s->names, s->name_count, &s->peer, -1);
		for (unsigned i = 0; i < s->name_count; i++)
			names_release(s->names[i]);
		names_unlock(&saved);
		free(s);
	}
	stats_count(&stats.thread_socket_visits, visits);
}

/* Returns the earliest deadline still ahead. */
static uint64_t drain_past_max_age(uint64_t now)
{
	uint64_t next = UINT64_MAX;
	uint64_t visits = 0;
	for (struct tracked_socket *s = sockets; s != NULL; s = s->next) {
		visits++;
		if (atomic_load(&s->refs) == 0 || drain_marked(s) || s->max_age_deadline_ms == 0)
			continue;
		if (now >= s->max_age_deadline_ms)
			thread_lists_start_draining(s, DRAIN_MAX_AGE, now, now);
		else if (s->max_age_deadline_ms < next)
			next = s->max_age_deadline_ms;
	}
	stats_count(&stats.thread_socket_visits, visits);
	return next;
}

void thread_lists_watch_attention(uint64_t now, uint64_t *wake_at)
{
	uint64_t visits = 0;
	struct tracked_socket **link = &attention;
	while (*link != NULL) {
		struct tracked_socket *s = *link;
		visits++;
		if (atomic_load(&s->refs) > 0) {
			if (atomic_load(&s->connecting)) {
				connect_watch_check(s, now);
				if (atomic_load(&s->connecting) && now + CONNECT_CHECK_MS < *wake_at)
					*wake_at = now + CONNECT_CHECK_MS;
			}
			if (s->drain_reason != DRAIN_NONE && now >= s->drain_look_at_ms) {
				drain_check(s, now);
				drain_plan_next_look(s, now);
			}
			if (s->drain_reason != DRAIN_NONE && s->drain_look_at_ms < *wake_at)
				*wake_at = s->drain_look_at_ms;
		}
		/* A closed socket stays until reap_closed, which drops it from this list. */
		if (atomic_load(&s->refs) > 0 && (atomic_load(&s->connecting) || s->drain_reason != DRAIN_NONE)) {
			link = &s->next_attention;
			continue;
		}
		*link = s->next_attention;
		s->on_attention = false;
		drain_forget_looks(s);
	}
	stats_count(&stats.thread_socket_visits, visits);
}

void thread_lists_mark_max_age(uint64_t now, uint64_t *wake_at)
{
	if (now >= next_max_age_ms)
		next_max_age_ms = drain_past_max_age(now);
	if (next_max_age_ms < *wake_at)
		*wake_at = next_max_age_ms;
}

void thread_lists_after_fork_child(void)
{
	void *const kept[] = {sockets, closed, collecting, attention};
	fork_keep(kept, sizeof kept / sizeof kept[0]);
	sockets = NULL;
	closed = NULL;
	collecting = NULL;
	attention = NULL;
	next_max_age_ms = UINT64_MAX;
	drain_after_fork_child();
}
