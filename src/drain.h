/* Draining: the decisions about one tracked socket whose peer left its names' record sets, or that
 * passed its max age: when it becomes DRAINING, when it is idle enough to shut down (or past its
 * drain deadline), and what is logged and counted. Runs on the background thread; the lists that
 * hold the sockets are thread_lists.c's. */
#ifndef DNSAWARE_DRAIN_H
#define DNSAWARE_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "stats.h"
#include "tracked.h"

struct name_entry;

/* How often draining sockets are looked at while they wait for an idle boundary. */
#define DRAIN_CHECK_MS 25
/* A draining socket the program sent on lately is looked at every EXCHANGE_LOOK_MS for this long
 * after it started draining, to catch the short gaps of a busy connection (issue 16); then, or
 * while it is quiet, every DRAIN_CHECK_MS. Past DRAIN_LEARN_MS the send path takes a busy
 * connection's next exchange anyway: this is its margin. */
#define DRAIN_FAST_LOOKS_MS 2000
/* At most this many sockets get those fast looks at once (the first to ask); the others are looked
 * at every DRAIN_CHECK_MS, their busy exchanges left to the send path. Each fast look costs the
 * thread a few microseconds (docs/performance.md, "Busy draining sockets"). */
#define DRAIN_FAST_MAX 32

/* How long after it starts draining a socket's new exchanges still go through: the background
 * path learns its rhythm meanwhile and shuts it in a gap, and only then does the send path fail
 * the next exchange (a busy connection's fallback). */
#define DRAIN_LEARN_MS 500
/* A long quiet on a socket busy when its drain began is held back this long while nothing is known
 * of its rhythm (exchange_watch.h): a moment set by the drain, not by the program's last answer,
 * cannot be the one the program asks again at; and the send path does not take over yet. */
#define DRAIN_HOLD_UNKNOWN_MS (DRAIN_LEARN_MS / 2)

/* After a look (drain_check): when s is to be looked at next (s->drain_look_at_ms), taking or
 * giving back a fast-look place. */
void drain_plan_next_look(struct tracked_socket *s, uint64_t now);

/* s leaves the thread's attention (drained, closed): gives back its fast-look place. */
void drain_forget_looks(struct tracked_socket *s);

/* Fork child: the parent's lists are gone, and so are their places. */
void drain_after_fork_child(void);

/* Starts draining s, its DRAINING bit set at not_before (its turn in the spread); looks at it at
 * once. The caller keeps it on the attention list until drain_reason is DRAIN_NONE again. */
void drain_start(struct tracked_socket *s, enum drain_reason reason, uint64_t now, uint64_t not_before);

/* Draining already, or done with draining. */
bool drain_marked(const struct tracked_socket *s);

/* Names lock held. No name s was tracked under still has its peer in its set. */
bool drain_all_names_dropped(const struct tracked_socket *s);

/* Names lock held. After an answer that removed addresses: s is to start draining now (it is not
 * draining yet, the program still has it, and its peer left every name it was tracked under). */
bool drain_wanted_by_answer(const struct tracked_socket *s);

/* The index-th of count sockets that went stale together starts draining this long after the
 * answer (spread over up to one TTL, interval_ms). */
uint64_t drain_spread_offset_ms(unsigned index, unsigned count, uint64_t interval_ms);

/* The look at a draining socket: sets DRAINING at its turn, shuts it down at an idle boundary or at
 * its deadline (DRAIN_NONE again then), notices the send path's shutdown or the peer's close. */
void drain_check(struct tracked_socket *s, uint64_t now);

/* Counts (and at info level logs) a shutdown of s; fd -1 when the program closed every fd of it. */
void drain_log_shutdown(struct tracked_socket *s, int fd, enum stats_path where);

#endif
