/* The background thread's lists of tracked sockets: every socket it adopted, the ones whose last fd
 * closed (freed after a grace period), and the attention list (connecting or draining sockets, the
 * only ones looked at every few ms, so a wake-up costs the same with ten or fifty thousand healthy
 * sockets). Owned by the thread: nothing here is called from a hook. */
#ifndef DNSAWARE_THREAD_LISTS_H
#define DNSAWARE_THREAD_LISTS_H

#include <stdint.h>

#include "tracked.h"

struct name_entry;

/* Adds a socket just taken over from connect (names lock held). */
void thread_lists_add(struct tracked_socket *s);

/* s needs the thread's looks (connecting, or draining). */
void thread_lists_want_attention(struct tracked_socket *s);

/* Starts draining s and keeps looking at it until done. */
void thread_lists_start_draining(struct tracked_socket *s, enum drain_reason reason, uint64_t now, uint64_t not_before);

/* Names lock held. After entry's answer removed addresses: the sockets whose peer no name of
 * theirs still holds start draining, spread. */
void thread_lists_drain_removed(const struct name_entry *entry, uint64_t now);

/* The first of every socket the thread adopted (names lock held; ->next for the rest): for walks
 * that decide in a file of their own (balance_growth.c). */
struct tracked_socket *thread_lists_sockets(void);

/* Moves the sockets that lost their last fd since the last look to the closed list. */
void thread_lists_collect_released(uint64_t now);

/* Frees the closed sockets whose grace period is over, lowering *wake_at to the next one. */
void thread_lists_reap_closed(uint64_t now, uint64_t *wake_at);

/* Starts draining the sockets past their max age (a walk of every socket, only when the earliest
 * deadline has come); lowers *wake_at to the next deadline. */
void thread_lists_mark_max_age(uint64_t now, uint64_t *wake_at);

/* Looks at the attention list (connecting, draining), drops the ones done, lowers *wake_at. */
void thread_lists_watch_attention(uint64_t now, uint64_t *wake_at);

/* Fork child: the parent's lists are kept, unused (fork_keep.h); the child starts with none. */
void thread_lists_after_fork_child(void);

#endif
