#include <ares.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "answer.h"
#include "connect_failures.h"
#include "idle.h"
#include "log.h"
#include "names.h"
#include "real.h"
#include "resolver_thread.h"
#include "runtime.h"
#include "schedule.h"
#include "sockview.h"
#include "stats.h"
#include "stats_file.h"

/* How often draining sockets are looked at while they wait for an idle boundary. */
#define DRAIN_CHECK_MS 25
/* How often a connect in progress is looked at, and for how long at most. */
#define CONNECT_CHECK_MS 10
#define CONNECT_WATCH_MS 30000
/* Step between the shutdowns of sockets that went stale together (spread over up to one TTL). */
#define DRAIN_SPREAD_STEP_MS 20
/* A closed socket's object is freed this long after its last fd closed: a send hook that loaded
 * the pointer just before the close has long finished with it by then. */
#define RELEASE_GRACE_MS 2000
#define FORGET_NAMES_EVERY_MS 60000
#define POLL_FDS_MAX (ARES_GETSOCK_MAXNUM + 1)

enum thread_state { THREAD_NONE = 0, THREAD_STARTING = 1, THREAD_RUNNING = 2, THREAD_FAILED = 3 };

static _Atomic int thread_state;
static _Atomic(struct tracked_socket *) incoming;
/* The wake-up pipe: the thread polls the read end, wake_thread writes to the write end. A pipe, not
 * an eventfd: its inode is its own (every eventfd shares one), so shimfd can tell it from a program's
 * file at the same number; and when the program closes the write end, by any means, the read end the
 * thread sleeps on reports POLLHUP, so a program that closes every fd wakes the thread itself. */
static _Atomic int wake_fd = -1;
static _Atomic int wake_write_fd = -1;

/* Owned by the thread. */
static struct tracked_socket *sockets;
/* Sockets whose last fd closed, waiting out RELEASE_GRACE_MS before they are freed. */
static struct tracked_socket *closed;
/* Released sockets taken from tracked_released and not yet on `closed`. */
static struct tracked_socket *collecting;
static ares_channel channel;
static uint64_t next_forget_ms;
/* An answer came in (c-ares answers /etc/hosts names from within ares_getaddrinfo itself): the
 * wake-up time computed before it is out of date. */
static bool schedule_changed;
/* The sockets that need the thread's looks (connecting, draining): only these are looked at
 * every few ms, so a wake-up costs the same with ten or fifty thousand healthy sockets. */
static struct tracked_socket *attention;
/* The earliest max-age deadline of a socket not yet draining. */
static uint64_t next_max_age_ms = UINT64_MAX;

/* Every walk of `sockets` or `attention` counts the sockets it looks at and adds them to
 * stats.thread_socket_visits once at its end (one atomic add per walk, not per socket): divided by
 * stats.thread_wakeups, the thread's work per wake-up, which tests/preload/thread_work.c checks does
 * not grow with healthy sockets. */

static void want_attention(struct tracked_socket *s)
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
			break;
		}
	}
	stats_count(&stats.thread_socket_visits, visits);
}

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

/* What a fork child keeps of its parent's (and its parent's parents') thread: the channel and
 * the socket lists, never used again. The parent's thread may have been in the middle of changing
 * them when the program forked, so the child cannot walk or free them; it keeps pointers to them,
 * one small block per generation, so that they stay what they are: memory kept on purpose,
 * bounded by one parent's worth per fork (LeakSanitizer reported it as lost in every fork child). */
struct fork_leftovers {
	ares_channel channel;
	struct tracked_socket *sockets, *closed, *collecting, *attention, *incoming, *released;
	struct fork_leftovers *older;
};
static struct fork_leftovers *fork_leftovers;

static void keep_fork_leftovers(void)
{
	if (channel == NULL && sockets == NULL && closed == NULL && collecting == NULL && attention == NULL &&
	    atomic_load(&incoming) == NULL && atomic_load(&tracked_released) == NULL)
		return;
	/* glibc's fork leaves malloc usable in the child. Without memory, they are simply lost. */
	struct fork_leftovers *l = malloc(sizeof *l);
	if (l == NULL)
		return;
	*l = (struct fork_leftovers){
		.channel = channel, .sockets = sockets, .closed = closed, .collecting = collecting,
		.attention = attention,
		.incoming = atomic_load(&incoming), .released = atomic_load(&tracked_released),
		.older = fork_leftovers,
	};
	fork_leftovers = l;
}

void resolver_thread_after_fork_child(void)
{
	/* The parent's thread does not exist here; its channel and sockets are kept, unused. */
	keep_fork_leftovers();
	fdtable_clear_all();
	atomic_store(&tracked_live_count, 0); /* the child tracks nothing yet */
	attention = NULL;
	next_max_age_ms = UINT64_MAX;
	shimfd_close_all();
	atomic_store(&wake_fd, -1);
	atomic_store(&wake_write_fd, -1);
	atomic_store(&incoming, NULL);
	atomic_store(&tracked_released, NULL);
	sockets = NULL;
	closed = NULL;
	collecting = NULL;
	channel = NULL;
	atomic_store(&thread_state, THREAD_NONE);
}

/* ---- c-ares, given the real libc calls so the library never tracks itself ---- */

/* Non-blocking: c-ares configures no socket it did not make itself (no O_NONBLOCK, whatever
 * ares_set_socket_functions is given), and reads a UDP socket until EAGAIN. A blocking one would
 * hold the thread in recvfrom for good after a reply c-ares drops (wrong ID, garbage) or one that
 * sends the query to TCP (truncated), with no timeout ever run again. */
static ares_socket_t channel_socket(int domain, int type, int protocol, void *user)
{
	(void)user;
	return shimfd_adopt(REAL(socket)(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol), false);
}

static int channel_close(ares_socket_t fd, void *user)
{
	(void)user;
	if (!shimfd_release(fd))
		return 0; /* the program closed it already; the number may be someone else's now */
	return REAL(close)(fd);
}

static int channel_connect(ares_socket_t fd, const struct sockaddr *addr, ares_socklen_t len, void *user)
{
	(void)user;
	if (shimfd_is_lost(fd)) {
		errno = EBADF;
		return -1;
	}
	return REAL(connect)(fd, addr, len);
}

static ares_ssize_t channel_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags, struct sockaddr *from,
				     ares_socklen_t *from_len, void *user)
{
	(void)user;
	if (shimfd_is_lost(fd)) {
		errno = EBADF;
		return -1;
	}
	return recvfrom(fd, buf, len, flags, from, from_len);
}

static ares_ssize_t channel_sendv(ares_socket_t fd, const struct iovec *iov, int iovcnt, void *user)
{
	(void)user;
	if (shimfd_is_lost(fd)) {
		errno = EBADF;
		return -1;
	}
	return REAL(writev)(fd, iov, iovcnt);
}

static const struct ares_socket_functions channel_functions = {
	.asocket = channel_socket,
	.aclose = channel_close,
	.aconnect = channel_connect,
	.arecvfrom = channel_recvfrom,
	.asendv = channel_sendv,
};

static void ares_library_init_all(void)
{
	ares_library_init(ARES_LIB_INIT_ALL);
}

static bool channel_open(void)
{
	static pthread_once_t library_once = PTHREAD_ONCE_INIT;
	pthread_once(&library_once, ares_library_init_all);
	struct ares_options options = {.timeout = 2000, .tries = 2};
	int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	int rc = ares_init_options(&channel, &options, mask);
	if (rc != ARES_SUCCESS) {
		log_msg(LOG_ERROR, "cannot set up the resolver: %s", ares_strerror(rc));
		channel = NULL;
		return false;
	}
	ares_set_socket_functions(channel, &channel_functions, NULL);
	if (runtime_config.nameservers[0] != '\0') {
		rc = ares_set_servers_ports_csv(channel, runtime_config.nameservers);
		if (rc != ARES_SUCCESS)
			log_msg(LOG_WARN, "DNSAWARE_NAMESERVERS=%s is not a list of host[:port] (%s); using resolv.conf",
				runtime_config.nameservers, ares_strerror(rc));
	}
	return true;
}

/* ---- draining ---- */

static void check_draining(struct tracked_socket *s, uint64_t now);

/* A socket already quiet is shut down at once: waiting would only let the program's next request
 * meet the send path. */
/* The DRAINING bit, which the send path also sees, is set only when the socket's turn in the
 * spread comes (check_draining): a program that starts a new exchange on a socket still waiting
 * for its turn is not failed for it. */
static void mark_draining(struct tracked_socket *s, enum drain_reason reason, uint64_t now, uint64_t not_before)
{
	s->drain_reason = reason;
	s->drain_started_ms = now;
	s->drain_not_before_ms = not_before;
	want_attention(s);
	if (log_enabled(LOG_INFO)) {
		char text[IP_ADDR_STRLEN];
		log_msg(LOG_INFO, "draining fd %d to %s:%u (%s) from +%llums", tracked_any_fd(s),
			ip_addr_format(&s->peer, text), s->port,
			reason == DRAIN_MAX_AGE ? "max age reached" : "address left the record set",
			(unsigned long long)(not_before - now));
	}
	check_draining(s, now);
}

static bool drain_marked(const struct tracked_socket *s)
{
	return s->drain_reason != DRAIN_NONE || (atomic_load(&s->state) & STATE_DRAINING);
}

static void log_shutdown(struct tracked_socket *s, int fd, enum stats_path where)
{
	stats_count(&stats.shutdowns[s->drain_reason == DRAIN_MAX_AGE ? STATS_REASON_MAX_AGE : STATS_REASON_DNS][where],
		    1);
	const char *path = stats_path_name(where);
	if (!log_enabled(LOG_INFO))
		return;
	char text[IP_ADDR_STRLEN];
	char fd_text[24] = "a socket"; /* the program may have closed every fd of it already */
	if (fd >= 0)
		snprintf(fd_text, sizeof fd_text, "fd %d", fd);
	const char *name = s->name_count > 0 ? s->names[0]->host : "?";
	if (s->drain_reason == DRAIN_MAX_AGE)
		log_msg(LOG_INFO, "shut down %s to %s:%u (older than DNSAWARE_MAX_AGE; path %s)", fd_text,
			ip_addr_format(&s->peer, text), s->port, path);
	else
		log_msg(LOG_INFO, "shut down %s to %s:%u (%s no longer resolves to it; path %s)", fd_text,
			ip_addr_format(&s->peer, text), s->port, name, path);
}

/* Claims the socket (no send began since the state was read) and shuts it down. */
static bool claim_and_shut(struct tracked_socket *s, int fd, uint64_t expected_state, enum stats_path path)
{
	if (!atomic_compare_exchange_strong(&s->state, &expected_state, expected_state | STATE_CLOSING))
		return false;
	shutdown(fd, SHUT_RDWR);
	log_shutdown(s, fd, path);
	return true;
}

static bool all_names_dropped(const struct tracked_socket *s)
{
	for (unsigned i = 0; i < s->name_count; i++)
		if (recordset_contains(&s->names[i]->records, &s->peer))
			return false;
	return true;
}

/* Lock held. The sockets to addresses no name of theirs still holds start draining, spread. */
static void drain_removed(const struct name_entry *entry, uint64_t now)
{
	unsigned count = 0;
	uint64_t visits = 0;
	for (struct tracked_socket *s = sockets; s != NULL; s = s->next) {
		visits++;
		if (!drain_marked(s) && atomic_load(&s->refs) > 0 && all_names_dropped(s))
			count++;
	}
	unsigned index = 0;
	for (struct tracked_socket *s = sockets; s != NULL; s = s->next) {
		visits++;
		if (drain_marked(s) || atomic_load(&s->refs) == 0 || !all_names_dropped(s))
			continue;
		uint64_t offset = schedule_spread_ms(index++, count, entry->interval_ms, DRAIN_SPREAD_STEP_MS);
		mark_draining(s, DRAIN_DNS, now, now + offset);
	}
	stats_count(&stats.thread_socket_visits, visits);
}

/* Nothing left to drain: the peer is closing it, or it was reset. The view may have seen the send
 * path's own shutdown, claimed since the state word was read: that one is still to be told. */
static void drain_gone(struct tracked_socket *s, int fd)
{
	uint64_t state = atomic_load(&s->state);
	if ((state & STATE_CLOSING) && (state & STATE_SHUT_BY_SEND))
		log_shutdown(s, fd, STATS_PATH_SEND);
	s->drain_reason = DRAIN_NONE;
}

static void check_draining(struct tracked_socket *s, uint64_t now)
{
	if (s->drain_reason == DRAIN_NONE)
		return;
	uint64_t state = atomic_load(&s->state);
	if (!(state & STATE_DRAINING)) {
		if (now < s->drain_not_before_ms)
			return;
		state = atomic_fetch_or(&s->state, STATE_DRAINING) | STATE_DRAINING;
		s->observed_state = state;
	}
	if (state & STATE_CLOSING) {
		if (state & STATE_SHUT_BY_SEND)
			log_shutdown(s, tracked_any_fd(s), STATS_PATH_SEND);
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
	if (runtime_config.drain_timeout_ms != 0 && now - s->drain_started_ms >= runtime_config.drain_timeout_ms) {
		if (claim_and_shut(s, fd, state, STATS_PATH_DEADLINE))
			s->drain_reason = DRAIN_NONE;
		return;
	}
	/* A send went through since the last look: it may still be on its way into the kernel, so
	 * judge the socket only once a look finds the word unchanged. */
	if (state != s->observed_state) {
		s->observed_state = state;
		return;
	}
	if (!sockview_read(fd, &view))
		return;
	struct send_record record = {
		.valid = atomic_load(&s->send_recorded),
		.bytes_received_at_send = atomic_load(&s->bytes_received_at_send),
	};
	switch (idle_background(&view, &record, runtime_config.idle_ms)) {
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

/* ---- re-resolving ---- */

static void format_list(const struct ip_addr *addrs, unsigned n, char *list, size_t size)
{
	size_t used = 0;
	list[0] = '\0';
	for (unsigned i = 0; i < n && used < size - IP_ADDR_STRLEN - 2; i++) {
		char text[IP_ADDR_STRLEN];
		used += (size_t)snprintf(list + used, size - used, "%s%s", i ? "," : "", ip_addr_format(&addrs[i], text));
	}
}

/* "re-resolved H: OLD -> NEW (ttl N s)": the set before the answer and the answer. An answer longer
 * than a record set holds says so on the same line, not on a line of its own per refresh. */
static void log_answer(const struct name_entry *entry, const struct ip_addr *before, unsigned before_count,
		       const struct answer *answer, const struct recordset_change *change)
{
	enum log_level level = change->removed_count > 0 || change->became_rotating ? LOG_INFO : LOG_DEBUG;
	if (!log_enabled(level))
		return;
	char old_list[160], new_list[160];
	format_list(before, before_count, old_list, sizeof old_list);
	format_list(answer->addrs, answer->count, new_list, sizeof new_list);
	char kept[80] = "";
	if (answer->truncated)
		snprintf(kept, sizeof kept, "; kept %u of a longer answer, the current ones first", (unsigned)ANSWER_MAX);
	log_msg(level, "re-resolved %s: %s -> %s (ttl %us%s)", entry->host, old_list, new_list, answer->ttl_seconds,
		kept);
	for (unsigned i = 0; i < change->removed_count; i++) {
		char text[IP_ADDR_STRLEN];
		log_msg(LOG_INFO, "removed %s from %s", ip_addr_format(&change->removed[i], text), entry->host);
	}
	if (change->became_rotating)
		log_msg(LOG_INFO, "%s answers with rotating subsets: absence no longer drains its sockets", entry->host);
}

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *result)
{
	(void)timeouts;
	struct name_entry *entry = arg;
	uint64_t now = runtime_now_ms();
	struct answer answer;
	struct recordset_change change = {0};
	struct ip_addr before[16];
	unsigned before_count = 0;
	unsigned failures_before = 0;

	schedule_changed = true;
	sigset_t saved;
	names_lock(&saved);
	entry->refresh_in_flight = false;
	if (status == ARES_EDESTRUCTION) {
		names_unlock(&saved);
		goto done;
	}
	/* Under the lock: a long answer is read keeping the addresses the set holds (answer.h). */
	answer_collect(status == ARES_SUCCESS ? result : NULL, &entry->records, &answer);
	failures_before = entry->records.failures;
	for (unsigned i = 0; i < entry->records.count && before_count < 16; i++)
		before[before_count++] = entry->records.records[i].addr;
	if (answer.count > 0) {
		stats_count(&stats.resolutions_ok, 1);
		recordset_apply_answer(&entry->records, answer.addrs, answer.count, runtime_config.stale_after, &change);
		stats_count(&stats.addresses_removed, change.removed_count);
		entry->interval_ms = answer_interval_ms(&answer, runtime_config.ttl_floor_ms, runtime_config.ttl_ceiling_ms);
		entry->next_refresh_ms = now + schedule_jitter(entry->interval_ms, runtime_random());
	} else {
		stats_count(&stats.resolutions_error, 1);
		recordset_apply_failure(&entry->records);
		uint64_t delay = schedule_backoff_ms(entry->records.failures, runtime_config.ttl_floor_ms,
						     runtime_config.ttl_ceiling_ms);
		entry->next_refresh_ms = now + schedule_jitter(delay, runtime_random());
		log_msg(LOG_INFO, "re-resolving %s failed (%s); keeping %u known addresses, retry in %llums", entry->host,
			status == ARES_SUCCESS ? "empty answer" : ares_strerror(status), entry->records.count,
			(unsigned long long)delay);
	}
	if (entry->live_sockets == 0)
		entry->next_refresh_ms = 0;
	names_unlock(&saved);
	if (answer.count == 0)
		goto done;
	if (failures_before > 0)
		log_msg(LOG_INFO, "re-resolving %s works again after %u failures", entry->host, failures_before);
	log_answer(entry, before, before_count, &answer, &change);
	if (change.removed_count > 0) {
		names_lock(&saved);
		drain_removed(entry, now);
		names_unlock(&saved);
	}
done:
	if (result != NULL)
		ares_freeaddrinfo(result);
}

/* ---- the loop ---- */

/* Returns whether it adopted any socket. */
static bool adopt_incoming(uint64_t now)
{
	sigset_t saved;
	/* Taken under the lock fork's prepare handler takes too: a fork child never finds these
	 * sockets only on the stack of a thread it does not have (it keeps them, fork_leftovers). */
	names_lock(&saved);
	struct tracked_socket *list = atomic_exchange(&incoming, NULL);
	bool adopted = list != NULL;
	while (list != NULL) {
		struct tracked_socket *s = list;
		list = s->next_incoming;
		if (runtime_config.max_age_ms != 0) {
			s->max_age_deadline_ms = s->connected_at_ms + schedule_jitter(runtime_config.max_age_ms, runtime_random());
			if (s->max_age_deadline_ms < next_max_age_ms)
				next_max_age_ms = s->max_age_deadline_ms;
		}
		if (atomic_load(&s->connecting))
			want_attention(s);
		for (unsigned i = 0; i < s->name_count; i++) {
			struct name_entry *entry = s->names[i];
			if (entry->next_refresh_ms == 0 && !entry->refresh_in_flight) {
				/* The program's own answer carries no TTL: ask once the floor has passed. */
				entry->interval_ms = runtime_config.ttl_floor_ms;
				entry->next_refresh_ms = now + schedule_jitter(runtime_config.ttl_floor_ms, runtime_random());
			}
		}
		s->prev = NULL;
		s->next = sockets;
		if (sockets != NULL)
			sockets->prev = s;
		sockets = s;
		s->adopted = true;
		if (log_enabled(LOG_DEBUG)) {
			char text[IP_ADDR_STRLEN];
			log_msg(LOG_DEBUG, "tracking fd %d to %s:%u (%s)", tracked_any_fd(s), ip_addr_format(&s->peer, text),
				s->port, s->names[0]->host);
		}
		/* Its address left its names after the connect claimed them (in the set then) and before
		 * this: the answer's drain_removed walked the list before the socket was on it. */
		if (atomic_load(&s->refs) > 0 && all_names_dropped(s))
			mark_draining(s, DRAIN_DNS, now, now);
	}
	names_unlock(&saved);
	return adopted;
}

static void remember_failed_connect(const struct tracked_socket *s)
{
	connect_failure_remember(&s->peer, s->port, s->name_count > 0 ? s->names[0]->host : "its name", true);
}

/* Moves the sockets that lost their last fd since the last look to the closed list. */
static void collect_released(uint64_t now)
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
		if (!taken)
			continue; /* already waiting, or revived by a dup that raced the close */
		if (atomic_load(&s->connect_failed) && atomic_exchange(&s->connecting, false))
			remember_failed_connect(s);
		/* The program closed it right after the send path shut it down (and failed its send
		 * with EPIPE): say so before forgetting it. */
		if ((atomic_load(&s->state) & STATE_SHUT_BY_SEND) && s->drain_reason != DRAIN_NONE) {
			log_shutdown(s, -1, STATS_PATH_SEND);
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

/* Frees the closed sockets whose grace period is over (hooks that loaded the pointer before the
 * close are done with it by then), lowering *wake_at to the next one. */
static void reap_closed(uint64_t now, uint64_t *wake_at)
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
		for (unsigned i = 0; i < s->name_count; i++)
			names_release(s->names[i]);
		names_unlock(&saved);
		free(s);
	}
	stats_count(&stats.thread_socket_visits, visits);
}

/* A non-blocking connect ends without the shim seeing it: a failure goes to the program through
 * SO_ERROR, which the shim must not read (reading clears it). TCP_INFO shows the outcome without
 * touching it: a socket back in CLOSE that never established did not connect, and its address
 * is avoided for DNSAWARE_COOLDOWN by later connects, blocking or not. */
static void check_connecting(struct tracked_socket *s, uint64_t now)
{
	int fd = tracked_any_fd(s);
	struct socket_view view;
	if (fd < 0)
		return; /* closed: close recorded the outcome for collect_released */
	if (sockview_identity(fd, s) == IDENTITY_DIFFERENT || !sockview_read(fd, &view) ||
	    now - s->connected_at_ms >= CONNECT_WATCH_MS) {
		atomic_store(&s->connecting, false);
		return;
	}
	if (view.tcp_state == TCP_SYN_SENT)
		return;
	/* Whoever clears the flag first (this look, or collect_released after close) remembers it. */
	if (atomic_exchange(&s->connecting, false) && idle_connect_failed(&view))
		remember_failed_connect(s);
}

/* Marks the sockets past their max age as draining; returns the earliest deadline still ahead.
 * A walk of every socket, but only when a deadline has come. */
static uint64_t mark_max_age(uint64_t now)
{
	uint64_t next = UINT64_MAX;
	uint64_t visits = 0;
	for (struct tracked_socket *s = sockets; s != NULL; s = s->next) {
		visits++;
		if (atomic_load(&s->refs) == 0 || drain_marked(s) || s->max_age_deadline_ms == 0)
			continue;
		if (now >= s->max_age_deadline_ms)
			mark_draining(s, DRAIN_MAX_AGE, now, now);
		else if (s->max_age_deadline_ms < next)
			next = s->max_age_deadline_ms;
	}
	stats_count(&stats.thread_socket_visits, visits);
	return next;
}

/* Looks at the sockets on the attention list (connecting, draining) and drops the ones done. */
static void watch_attention(uint64_t now, uint64_t *wake_at)
{
	uint64_t visits = 0;
	struct tracked_socket **link = &attention;
	while (*link != NULL) {
		struct tracked_socket *s = *link;
		visits++;
		if (atomic_load(&s->refs) > 0) {
			if (atomic_load(&s->connecting)) {
				check_connecting(s, now);
				if (atomic_load(&s->connecting) && now + CONNECT_CHECK_MS < *wake_at)
					*wake_at = now + CONNECT_CHECK_MS;
			}
			if (s->drain_reason != DRAIN_NONE) {
				check_draining(s, now);
				/* Waiting for its turn in the spread, or looked at again shortly. */
				uint64_t next = (atomic_load(&s->state) & STATE_DRAINING) ? now + DRAIN_CHECK_MS
											    : s->drain_not_before_ms;
				if (s->drain_reason != DRAIN_NONE && next < *wake_at)
					*wake_at = next;
			}
		}
		/* A closed socket stays until reap_closed, which drops it from this list. */
		if (atomic_load(&s->refs) > 0 && (atomic_load(&s->connecting) || s->drain_reason != DRAIN_NONE)) {
			link = &s->next_attention;
			continue;
		}
		*link = s->next_attention;
		s->on_attention = false;
	}
	stats_count(&stats.thread_socket_visits, visits);
}

struct due_name {
	struct name_entry *entry;
	char host[NAME_MAX_LEN + 1];
};

static void start_refreshes(uint64_t now, uint64_t *wake_at)
{
	struct due_name due[32];
	unsigned count = 0;
	sigset_t saved;
	names_lock(&saved);
	if (now >= next_forget_ms) {
		names_forget_unused(now);
		next_forget_ms = now + FORGET_NAMES_EVERY_MS;
	}
	for (struct name_entry *e = names_first(); e != NULL; e = e->next) {
		if (e->live_sockets == 0 || e->refresh_in_flight || e->next_refresh_ms == 0)
			continue;
		if (e->next_refresh_ms > now || count == sizeof due / sizeof due[0]) {
			if (e->next_refresh_ms < *wake_at)
				*wake_at = e->next_refresh_ms;
			continue;
		}
		e->refresh_in_flight = true;
		due[count].entry = e;
		strcpy(due[count].host, e->host);
		count++;
	}
	names_unlock(&saved);
	for (unsigned i = 0; i < count; i++) {
		/* NOSORT: the order is of no use here, and c-ares's RFC 6724 sort opens, connects and
		 * closes a UDP socket per address, itself, without O_CLOEXEC: 4,000 system calls and
		 * 6 ms of CPU for an answer of 1,000 addresses (tests/badinput/hostile_dns.py). */
		struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
						    .ai_flags = ARES_AI_NOSORT};
		log_msg(LOG_DEBUG, "re-resolving %s", due[i].host);
		ares_getaddrinfo(channel, due[i].host, NULL, &hints, on_answer, due[i].entry);
	}
}

static int wait_for_work(uint64_t now, uint64_t wake_at)
{
	struct pollfd fds[POLL_FDS_MAX];
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	int nfds = 0;
	/* Unsigned, and not through ARES_GETSOCK_WRITABLE: for the last socket that macro shifts an
	 * int's 1 into its sign bit (1 << 31), undefined behaviour (found by UBSan). */
	unsigned bitmask = (unsigned)ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
	for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
		short events = 0;
		if (bitmask & (1u << i))
			events |= POLLIN;
		if (bitmask & (1u << (i + ARES_GETSOCK_MAXNUM)))
			events |= POLLOUT;
		if (events == 0)
			continue;
		fds[nfds++] = (struct pollfd){.fd = socks[i], .events = events};
	}
	int wake = atomic_load(&wake_fd);
	int wake_index = -1;
	if (wake >= 0) {
		wake_index = nfds;
		fds[nfds++] = (struct pollfd){.fd = wake, .events = POLLIN};
	}
	uint64_t timeout_ms = wake_at > now && !schedule_changed ? wake_at - now : 0;
	schedule_changed = false;
	if (nfds > (wake_index >= 0 ? 1 : 0)) {
		struct timeval max = {.tv_sec = (time_t)(timeout_ms / 1000), .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000};
		struct timeval tv;
		struct timeval *t = ares_timeout(channel, &max, &tv);
		uint64_t ares_ms = (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000;
		if (ares_ms < timeout_ms)
			timeout_ms = ares_ms;
	}
	if (timeout_ms > INT32_MAX)
		timeout_ms = INT32_MAX;
	int ready = poll(fds, (nfds_t)nfds, (int)timeout_ms);
	if (ready < 0)
		return 0;
	for (int i = 0; i < nfds; i++) {
		/* poll looks fds up again on every pass: a number the program closed and reused while we
		 * waited may report the program's file, which is never ours to read. c-ares is told about
		 * a lost socket at once (its read fails with EBADF: it drops the socket and asks again on
		 * a new one) rather than left to poll a program's file until its query times out. */
		if (shimfd_is_lost(fds[i].fd)) {
			if (i != wake_index && fds[i].revents != 0)
				ares_process_fd(channel, fds[i].fd, ARES_SOCKET_BAD);
			continue;
		}
		if (i == wake_index) {
			char drain[64];
			if (fds[i].revents & POLLIN)
				while (read(wake, drain, sizeof drain) > 0) {
				}
			continue;
		}
		ares_socket_t r = fds[i].revents & (POLLIN | POLLERR | POLLHUP) ? fds[i].fd : ARES_SOCKET_BAD;
		ares_socket_t w = fds[i].revents & (POLLOUT | POLLERR) ? fds[i].fd : ARES_SOCKET_BAD;
		if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
			ares_process_fd(channel, r, w);
	}
	/* Timeouts and retries. */
	ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
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
		collect_released(now);
		if (closed != NULL)
			reap_closed(now, &wake_at);
		if (now >= next_max_age_ms)
			next_max_age_ms = mark_max_age(now);
		if (next_max_age_ms < wake_at)
			wake_at = next_max_age_ms;
		watch_attention(now, &wake_at);
		start_refreshes(now, &wake_at);
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
