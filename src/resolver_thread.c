#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cares_files.h"
#include "channel.h"
#include "dns_sockets.h"
#include "dns_learn.h"
#include "dns_watch.h"
#include "drain.h"
#include "fork_keep.h"
#include "log.h"
#include "names.h"
#include "real.h"
#include "refresh.h"
#include "resolver_thread.h"
#include "runtime.h"
#include "stale_refresh.h"
#include "stats.h"
#include "stats_file.h"
#include "thread_lists.h"

enum thread_state { THREAD_NONE = 0, THREAD_STARTING = 1, THREAD_RUNNING = 2, THREAD_FAILED = 3 };

static _Atomic int thread_state;
static _Atomic(struct tracked_socket *) incoming;
/* The thread sleeps on this word (a futex) while c-ares has nothing in flight; the hooks bump it and
 * wake it. No fd: nothing of the program's fd table, nothing the program can close. */
static _Atomic uint32_t wake_seq;
/* While c-ares has a query in flight the thread sleeps in poll() on its sockets, which a futex
 * wake cannot cut short: it looks for new work at least this often then. */
#define POLL_SLICE_MS 25

/* ---- the hand-over from connect ---- */

/* Async-signal-safe: an atomic add and a system call. */
static void wake_thread(void)
{
	int saved_errno = errno;
	atomic_fetch_add(&wake_seq, 1);
	syscall(SYS_futex, &wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	errno = saved_errno;
}

static void *thread_main(void *unused);
static bool thread_running(void);

/* At exit, before the last stats file: wakes the thread and waits (at most SETTLE_WAIT_MS) until
 * it has dealt with every socket closed so far, so that the connects the program closed just
 * before it exited are counted. The thread may be in c-ares' poll, which the wake-up cannot cut
 * short: the wait outlasts one POLL_SLICE_MS. Only when such sockets are pending. */
#define SETTLE_WAIT_MS (POLL_SLICE_MS + 10)
static void settle_before_exit(void)
{
	uint64_t target = atomic_load(&tracked_released_pushed);
	if (atomic_load(&tracked_released_done) >= target)
		return;
	wake_thread();
	for (int i = 0; i < SETTLE_WAIT_MS && atomic_load(&tracked_released_done) < target; i++) {
		struct timespec ms = {.tv_sec = 0, .tv_nsec = 1000000};
		nanosleep(&ms, NULL);
	}
}

static void start_thread(void)
{
	int expected = THREAD_NONE;
	if (!atomic_compare_exchange_strong(&thread_state, &expected, THREAD_STARTING))
		return;
	/* Every fd the thread will use is made here, by the program's thread inside its connect (it
	 * cannot be making an fd of its own meanwhile), never by the thread: the log file, the files
	 * c-ares reads at set-up, its sockets (docs/how-it-works.md, "Where the shim's fds live"). */
	log_open_for_thread();
	cares_files_pin();
	if (!channel_open()) {
		atomic_store(&thread_state, THREAD_FAILED);
		return;
	}
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
	stats_file_at_exit(thread_running, settle_before_exit);
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
	/* Not while another program thread is still starting it (setting the sockets up). */
	if (thread_running()) {
		dns_sockets_refill();
		cares_files_pin();
	}
	wake_thread();
}

bool resolver_thread_running(void)
{
	return thread_running();
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
	fork_keep_begin();
	fork_keep(kept, sizeof kept / sizeof kept[0]);
	thread_lists_after_fork_child();
	channel_after_fork_child();
	cares_files_after_fork_child();
	fdtable_clear_all();
	dns_watch_forget_all(); /* the child watches none of the program's DNS sockets yet */
	dns_learn_after_fork_child();
	stale_refresh_after_fork_child();
	atomic_store(&tracked_live_count, 0); /* the child tracks nothing yet */
	shimfd_close_all();
	atomic_store(&incoming, NULL);
	atomic_store(&tracked_released, NULL);
	atomic_store(&tracked_released_done, atomic_load(&tracked_released_pushed)); /* none pending here */
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
			char text[IP_PEER_STRLEN];
			log_msg(LOG_DEBUG, "tracking fd %d to %s (%s)", tracked_any_fd(s),
				ip_addr_format_peer(&s->peer, s->port, text), s->names[0]->host);
		}
		/* Its address left its names after the connect claimed them (in the set then) and before
		 * this: the answer's thread_lists_drain_removed walked the list before the socket was on it. */
		if (atomic_load(&s->refs) > 0 && drain_all_names_dropped(s)) {
			s->conns_counted = false; /* its count left the set with its address */
			thread_lists_start_draining(s, DRAIN_DNS, now, now);
		}
	}
	names_unlock(&saved);
	return adopted;
}

/* Sleeps until wake_at, a wake from a hook (since the wake count was `seen`), or c-ares' sockets
 * have something. */
static void wait_for_work(uint32_t seen, uint64_t now, uint64_t wake_at)
{
	struct pollfd fds[CHANNEL_POLL_MAX];
	unsigned nfds = channel_pollfds(fds);
	uint64_t timeout_ms = wake_at > now && !refresh_take_schedule_changed() ? wake_at - now : 0;
	if (nfds == 0) {
		if (timeout_ms > 0) {
			struct timespec timeout = {.tv_sec = (time_t)(timeout_ms / 1000),
						   .tv_nsec = (long)(timeout_ms % 1000) * 1000000L};
			/* Returns at once if a hook bumped the count since `seen`. */
			syscall(SYS_futex, &wake_seq, FUTEX_WAIT_PRIVATE, seen, &timeout, NULL, 0);
		}
	} else {
		timeout_ms = channel_timeout_ms(timeout_ms);
		if (timeout_ms > POLL_SLICE_MS)
			timeout_ms = POLL_SLICE_MS;
		if (poll(fds, (nfds_t)nfds, (int)timeout_ms) > 0)
			for (unsigned i = 0; i < nfds; i++)
				channel_process(&fds[i]);
	}
	/* Timeouts and retries. */
	channel_process_timeouts();
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
	runtime_on_thread = true;
	/* Operators find the thread by name in top -H and /proc/PID/task/TID/comm (prctl: no fd). */
	pthread_setname_np(pthread_self(), "dnsaware");
	log_msg(LOG_DEBUG, "background thread started");
	uint64_t next_stats_ms = runtime_now_ms();
	/* The socket list is walked only when something may need it, so a wake-up for a refresh
	 * costs the same with ten or fifty thousand healthy sockets. */
	for (;;) {
		stats_count(&stats.thread_wakeups, 1);
		/* Read before looking for work: a hand-over after this makes the wait return at once. */
		uint32_t seen = atomic_load(&wake_seq);
		uint64_t now = runtime_now_ms();
		uint64_t wake_at = now + runtime_config.ttl_ceiling_ms;
		dns_learn_pending(); /* what the program looked up itself since the last connect */
		adopt_incoming(now);
		thread_lists_collect_released(now);
		thread_lists_reap_closed(now, &wake_at);
		thread_lists_mark_max_age(now, &wake_at);
		thread_lists_watch_attention(now, &wake_at);
		refresh_start_due(now, &wake_at);
		stale_refresh_send_queued();
		update_gauges();
		if (stats_file_wanted()) {
			if (now >= next_stats_ms) {
				stats_file_write();
				next_stats_ms = now + runtime_config.stats_interval_ms;
			}
			if (next_stats_ms < wake_at)
				wake_at = next_stats_ms;
		}
		wait_for_work(seen, runtime_now_ms(), wake_at);
	}
	return NULL;
}
