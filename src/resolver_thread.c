#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "drain.h"
#include "fork_keep.h"
#include "log.h"
#include "names.h"
#include "real.h"
#include "refresh.h"
#include "resolver_thread.h"
#include "runtime.h"
#include "stats.h"
#include "stats_file.h"
#include "thread_lists.h"

enum thread_state { THREAD_NONE = 0, THREAD_STARTING = 1, THREAD_RUNNING = 2, THREAD_FAILED = 3 };

static _Atomic int thread_state;
static _Atomic(struct tracked_socket *) incoming;
/* The wake-up pipe: the thread polls the read end, wake_thread writes to the write end. A pipe, not
 * an eventfd: its inode is its own (every eventfd shares one), so shimfd can tell it from a program's
 * file at the same number; and when the program closes the write end, by any means, the read end the
 * thread sleeps on reports POLLHUP, so a program that closes every fd wakes the thread itself. */
static _Atomic int wake_fd = -1;
static _Atomic int wake_write_fd = -1;

/* ---- the hand-over from connect ---- */

static void wake_thread(void)
{
	int saved_errno = errno;
	int fd = atomic_load(&wake_write_fd);
	if (fd >= 0 && !shimfd_is_lost(fd))
		(void)!REAL(write)(fd, "", 1); /* a full pipe (EAGAIN) is awake already */
	errno = saved_errno;
}

static void *thread_main(void *unused);
static bool thread_running(void);

static void start_thread(void)
{
	int expected = THREAD_NONE;
	if (!atomic_compare_exchange_strong(&thread_state, &expected, THREAD_STARTING))
		return;
	/* The wake-up pipe is made by the thread (renew_wake_fd, before its first look at the
	 * incoming list, so no socket handed over meanwhile goes unseen): moving the library's first
	 * fd high up grows the kernel's fd table, which waits out an RCU grace period in a
	 * multi-threaded process, 4 to 15 ms measured, and that must not be the program's connect. */
	/* The thread takes no signal of the program's. */
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t thread;
	int rc = pthread_create(&thread, &attr, thread_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rc != 0) {
		atomic_store(&thread_state, THREAD_FAILED);
		log_msg(LOG_ERROR, "cannot start the background thread (%s); sockets are not watched", strerror(rc));
		return;
	}
	atomic_store(&thread_state, THREAD_RUNNING);
	stats_file_at_exit(thread_running);
}

static bool thread_running(void)
{
	return atomic_load(&thread_state) == THREAD_RUNNING;
}

bool resolver_thread_failed(void)
{
	return atomic_load(&thread_state) == THREAD_FAILED;
}

void resolver_thread_adopt(struct tracked_socket *s)
{
	struct tracked_socket *head = atomic_load(&incoming);
	do
		s->next_incoming = head;
	while (!atomic_compare_exchange_weak(&incoming, &head, s));
	start_thread();
	wake_thread();
}

void resolver_thread_nudge(void)
{
	wake_thread();
}

void resolver_thread_after_fork_child(void)
{
	/* The parent's thread does not exist here; its channel and sockets are kept, unused. Taken
	 * under the lock fork's prepare handler takes too (adopt_incoming, thread_lists_collect_released), so no
	 * socket was only on the stack of a thread the child does not have. */
	void *const kept[] = {atomic_load(&incoming), atomic_load(&tracked_released)};
	fork_keep(kept, sizeof kept / sizeof kept[0]);
	thread_lists_after_fork_child();
	channel_after_fork_child();
	fdtable_clear_all();
	atomic_store(&tracked_live_count, 0); /* the child tracks nothing yet */
	shimfd_close_all();
	atomic_store(&wake_fd, -1);
	atomic_store(&wake_write_fd, -1);
	atomic_store(&incoming, NULL);
	atomic_store(&tracked_released, NULL);
	atomic_store(&thread_state, THREAD_NONE);
}

/* ---- the loop ---- */

/* Returns whether it adopted any socket. */
static bool adopt_incoming(uint64_t now)
{
	sigset_t saved;
	/* Taken under the lock fork's prepare handler takes too: a fork child never finds these
	 * sockets only on the stack of a thread it does not have (it keeps them, fork_keep.h). */
	names_lock(&saved);
	struct tracked_socket *list = atomic_exchange(&incoming, NULL);
	bool adopted = list != NULL;
	while (list != NULL) {
		struct tracked_socket *s = list;
		list = s->next_incoming;
		thread_lists_add(s);
		for (unsigned i = 0; i < s->name_count; i++)
			refresh_schedule_first(s->names[i], now);
		if (log_enabled(LOG_DEBUG)) {
			char text[IP_ADDR_STRLEN];
			log_msg(LOG_DEBUG, "tracking fd %d to %s:%u (%s)", tracked_any_fd(s), ip_addr_format(&s->peer, text),
				s->port, s->names[0]->host);
		}
		/* Its address left its names after the connect claimed them (in the set then) and before
		 * this: the answer's thread_lists_drain_removed walked the list before the socket was on it. */
		if (atomic_load(&s->refs) > 0 && drain_all_names_dropped(s))
			thread_lists_start_draining(s, DRAIN_DNS, now, now);
	}
	names_unlock(&saved);
	return adopted;
}

static int wait_for_work(uint64_t now, uint64_t wake_at)
{
	struct pollfd fds[CHANNEL_POLL_MAX + 1];
	unsigned nfds = channel_pollfds(fds);
	unsigned channel_fds = nfds;
	int wake = atomic_load(&wake_fd);
	if (wake >= 0)
		fds[nfds++] = (struct pollfd){.fd = wake, .events = POLLIN};
	bool changed = refresh_take_schedule_changed();
	uint64_t timeout_ms = wake_at > now && !changed ? wake_at - now : 0;
	if (channel_fds > 0)
		timeout_ms = channel_timeout_ms(timeout_ms);
	if (timeout_ms > INT32_MAX)
		timeout_ms = INT32_MAX;
	int ready = poll(fds, (nfds_t)nfds, (int)timeout_ms);
	if (ready < 0)
		return 0;
	for (unsigned i = 0; i < channel_fds; i++)
		channel_process(&fds[i]);
	if (wake >= 0 && !shimfd_is_lost(wake) && (fds[channel_fds].revents & POLLIN)) {
		char drain[64];
		while (read(wake, drain, sizeof drain) > 0) {
		}
	}
	/* Timeouts and retries. */
	channel_process_timeouts();
	return ready;
}

/* Makes the wake-up pipe, and a new one when the program closed an end of it (it closes every fd,
 * say): the end still ours is closed; a lost one's number is the program's now. */
static void renew_wake_fd(void)
{
	int r = atomic_load(&wake_fd), w = atomic_load(&wake_write_fd);
	if (r >= 0 && w >= 0 && !shimfd_is_lost(r) && !shimfd_is_lost(w))
		return;
	if (r >= 0 && shimfd_release(r))
		REAL(close)(r);
	if (w >= 0 && shimfd_release(w))
		REAL(close)(w);
	atomic_store(&wake_fd, -1);
	atomic_store(&wake_write_fd, -1);
	int p[2];
	if (REAL(pipe2)(p, O_CLOEXEC | O_NONBLOCK) != 0)
		return;
	atomic_store(&wake_fd, shimfd_adopt(p[0], false));
	atomic_store(&wake_write_fd, shimfd_adopt(p[1], false));
}

/* The gauges of the stats file, from the thread's own view. */
static void update_gauges(void)
{
	uint64_t watched = 0;
	sigset_t saved;
	names_lock(&saved);
	for (struct name_entry *e = names_first(); e != NULL; e = e->next)
		watched += e->live_sockets > 0;
	names_unlock(&saved);
	atomic_store_explicit(&stats.tracked_sockets, atomic_load(&tracked_live_count), memory_order_relaxed);
	atomic_store_explicit(&stats.watched_names, watched, memory_order_relaxed);
}

static void *thread_main(void *unused)
{
	(void)unused;
	runtime_inside = true;
	/* Operators find the thread by name in top -H and /proc/PID/task/TID/comm. */
	pthread_setname_np(pthread_self(), "dnsaware");
	if (!channel_open()) {
		atomic_store(&thread_state, THREAD_FAILED);
		return NULL;
	}
	log_msg(LOG_DEBUG, "background thread started");
	uint64_t next_stats_ms = runtime_now_ms();
	/* The socket list is walked only when something may need it, so a wake-up for a refresh
	 * costs the same with ten or fifty thousand healthy sockets. */
	for (;;) {
		stats_count(&stats.thread_wakeups, 1);
		uint64_t now = runtime_now_ms();
		uint64_t wake_at = now + runtime_config.ttl_ceiling_ms;
		renew_wake_fd();
		adopt_incoming(now);
		thread_lists_collect_released(now);
		thread_lists_reap_closed(now, &wake_at);
		thread_lists_mark_max_age(now, &wake_at);
		thread_lists_watch_attention(now, &wake_at);
		refresh_start_due(now, &wake_at);
		update_gauges();
		if (stats_file_wanted()) {
			if (now >= next_stats_ms) {
				stats_file_write();
				next_stats_ms = now + runtime_config.stats_interval_ms;
			}
			if (next_stats_ms < wake_at)
				wake_at = next_stats_ms;
		}
		wait_for_work(runtime_now_ms(), wake_at);
	}
	return NULL;
}
