/* A tracked TCP client socket, shared by every fd that refers to it (dup), and the
 * fd-indexed table that maps fds to it. Pure data structure code, unit-testable. */
#ifndef DNSAWARE_TRACKED_H
#define DNSAWARE_TRACKED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "addr.h"
#include "exchange_watch.h"
#include "name_metrics.h"

/* The state word the send hooks and the background thread agree through. */
#define STATE_DRAINING ((uint64_t)1 << 0) /* marked stale or too old: shut down at the next idle boundary */
#define STATE_CLOSING ((uint64_t)1 << 1)  /* claimed for shutdown: every send fails with EPIPE */
#define STATE_SHUT_BY_SEND ((uint64_t)1 << 2) /* the send path claimed it (the thread logs it) */
#define STATE_SEQ_ONE ((uint64_t)1 << 8)  /* added by each send a draining socket lets through */

#define TRACKED_MAX_NAMES 4
#define TRACKED_MAX_FDS 4

struct name_entry;

enum drain_reason { DRAIN_NONE = 0, DRAIN_DNS = 1, DRAIN_MAX_AGE = 2, DRAIN_BALANCE = 3 };

struct tracked_socket {
	_Atomic uint64_t state;             /* first: read through the slot as a gate's is (fdtable_slot_state) */
	_Atomic int refs;                   /* fds that refer to this socket */
	_Atomic int fds[TRACKED_MAX_FDS];   /* some of those fds, -1 for a free slot */

	/* Set once at connect, read-only afterwards. */
	dev_t dev;
	ino_t ino;
	struct ip_addr peer;
	uint16_t port;
	uint64_t connected_at_ms;
	struct name_entry *names[TRACKED_MAX_NAMES];
	unsigned name_count;

	/* Written by the send hooks' slow path (draining sockets only). */
	_Atomic bool send_recorded;
	_Atomic uint64_t bytes_received_at_send;
	/* Set by the thread before DRAINING: until then (runtime_now_ms) the send path lets new
	 * exchanges through, while the thread learns the socket's rhythm and looks for a gap between
	 * two of them (exchange_watch.h); from then on it fails the next one (the fallback). */
	_Atomic uint64_t send_claim_after_ms;

	/* A connect in progress: the thread watches how it ends, and so does close (the program may
	 * close a failed socket before the thread looks). */
	_Atomic bool connecting;
	_Atomic bool connect_failed;        /* close saw it end without connecting */
	/* How close found a connect still watched (issue 18's metrics): still pending (the program
	 * gave up on it: a timeout), or established, with its estimated time. */
	_Atomic bool connect_abandoned;
	_Atomic bool connect_seen_ok;
	_Atomic uint64_t connect_duration_ns;
	uint64_t connect_started_ns;        /* CLOCK_MONOTONIC at the connect call */
	enum connect_result connect_failed_result; /* close saw it fail: refused, or a timeout (SYNs sent again) */

	/* Owned by the background thread. */
	uint64_t max_age_deadline_ms;       /* 0: no max age */
	enum drain_reason drain_reason;
	uint64_t drain_turn_ms;             /* its turn in the spread came: DRAINING set (the deadline and the fast looks count from it) */
	uint64_t drain_not_before_ms;
	uint64_t drain_look_at_ms;          /* its next look (drain_plan_next_look) */
	bool fast_looks;                    /* it holds one of the DRAIN_FAST_MAX fast-look places */
	uint64_t observed_state;            /* the state word at the thread's last look */
	struct exchange_watch watch;        /* its exchanges while draining (drain.c) */
	/* Counted in its names' records of peer (names_count_socket; under the names lock): from
	 * the connect until the thread sees it closed, or until peer leaves the set. */
	bool conns_counted;
	/* Why balance recycles it (balance_growth.c), for its one log line: the sockets its address
	 * held, the fair share, the addresses of its family. */
	uint32_t balance_held, balance_share, balance_addrs;
	uint64_t released_at_ms;            /* when the thread first saw refs == 0 */
	struct tracked_socket *next;        /* the thread's list */
	struct tracked_socket *prev;        /* (doubly linked: a closed socket leaves it in O(1)) */
	struct tracked_socket *next_closed; /* the thread's list of released sockets in their grace */
	bool adopted;                       /* on the thread's list */
	bool closed_listed;                 /* on the thread's list of released sockets */
	struct tracked_socket *next_attention; /* the thread's list of sockets to look at */
	bool on_attention;
	struct tracked_socket *next_incoming; /* lock-free hand-over from connect to the thread */
	/* Lock-free hand-over from the last close to the thread: set while on that list, so a socket
	 * revived by a racing dup and closed again is never pushed twice. */
	_Atomic bool release_pushed;
	struct tracked_socket *next_released;
};

/* Sockets with at least one fd (the stats gauge); an atomic add in attach/release. */
extern _Atomic uint64_t tracked_live_count;

/* The sockets that lost their last fd, pushed by release (lock-free, async-signal-safe): the
 * thread frees closed sockets from this list, never by walking every socket, so its work per
 * wake-up does not grow with the number of healthy sockets. */
extern _Atomic(struct tracked_socket *) tracked_released;
/* Sockets pushed onto tracked_released so far, and those the thread has dealt with (counted
 * their connect's outcome, taken them off their address's count): the write at exit waits for
 * the second to reach the first. */
extern _Atomic uint64_t tracked_released_pushed;
extern _Atomic uint64_t tracked_released_done;

/* Takes the whole list (linked by next_released); clear each socket's release_pushed after
 * reading its next_released, before anything else. */
struct tracked_socket *tracked_take_released(void);

/* fd table: two levels of atomic slots, chunks mapped on first use (mmap: async-signal-safe). */
#define FDTABLE_CHUNK_BITS 10
#define FDTABLE_CHUNKS 1024
#define FDTABLE_MAX_FD (FDTABLE_CHUNKS << FDTABLE_CHUNK_BITS)

/* A slot holds 0 (not tracked), FDTABLE_SHIM (one of the library's own fds), a socket pointer, or
 * the gate of one of the program's DNS sockets (dns_watch.h): an entry of fdtable_dns_gates, whose
 * first word, like a socket's state word, the send hooks load. Its STATE_DNS_SOCKET bit sends them
 * to the slow path without a test of their own: a tracked socket costs what it did before DNS
 * sockets existed. */
#define FDTABLE_SHIM ((uintptr_t)1)
#define STATE_DNS_SOCKET ((uint64_t)1 << 3)
#define FDTABLE_DNS_SOCKETS 64

struct fdtable_dns_gate {
	_Atomic uint64_t state; /* STATE_DNS_SOCKET, always */
} __attribute__((aligned(16)));
extern struct fdtable_dns_gate fdtable_dns_gates[FDTABLE_DNS_SOCKETS] __attribute__((visibility("hidden")));

/* The first word of what a slot above FDTABLE_SHIM points to: a socket's state, or a gate's. */
static inline uint64_t fdtable_slot_state(uintptr_t slot)
{
	return atomic_load_explicit((_Atomic uint64_t *)slot, memory_order_acquire);
}
/* One subtraction and compare: the receive hooks' whole test. */
static inline bool fdtable_is_dns(uintptr_t slot)
{
	return slot - (uintptr_t)fdtable_dns_gates < sizeof fdtable_dns_gates;
}
static inline int fdtable_dns_index(uintptr_t slot)
{
	return (int)((slot - (uintptr_t)fdtable_dns_gates) / sizeof fdtable_dns_gates[0]);
}
static inline uintptr_t fdtable_dns_slot(int index)
{
	return (uintptr_t)&fdtable_dns_gates[index];
}

typedef _Atomic uintptr_t fdtable_slot;
extern _Atomic(fdtable_slot *) fdtable_chunks[FDTABLE_CHUNKS];

/* The slot of fd, or NULL when fd is out of range or its chunk was never mapped (such a slot holds
 * 0). Never maps: loads only. */
static inline fdtable_slot *fdtable_slot_of(int fd)
{
	if ((unsigned)fd >= (unsigned)FDTABLE_MAX_FD)
		return NULL;
	fdtable_slot *chunk = atomic_load_explicit(&fdtable_chunks[(unsigned)fd >> FDTABLE_CHUNK_BITS], memory_order_acquire);
	if (chunk == NULL)
		return NULL;
	return &chunk[(unsigned)fd & ((1u << FDTABLE_CHUNK_BITS) - 1)];
}

/* The fast path, inlined into every hook: two acquire loads, no allocation, no lock. */
static inline uintptr_t fdtable_load(int fd)
{
	fdtable_slot *slot = fdtable_slot_of(fd);
	return slot == NULL ? 0 : atomic_load_explicit(slot, memory_order_acquire);
}
static inline struct tracked_socket *fdtable_socket(uintptr_t slot)
{
	return slot > FDTABLE_SHIM && !fdtable_is_dns(slot) ? (struct tracked_socket *)slot : NULL;
}
/* Stores a slot value, mapping the chunk if needed. Returns the previous value, or sets *ok = false
 * (and stores nothing) when fd is out of range or memory cannot be had. */
uintptr_t fdtable_exchange(int fd, uintptr_t value, bool *ok);
/* The smallest fd >= from whose chunk is mapped (fds below it hold nothing), or FDTABLE_MAX_FD. */
int fdtable_next_mapped(int from);
/* Replaces expected by value; false (nothing stored) if the slot held something else. Never maps. */
bool fdtable_compare_exchange(int fd, uintptr_t expected, uintptr_t value);
/* Clears every slot (fork child). Does not free sockets. */
void fdtable_clear_all(void);

/* Initialises a socket object with refs = 0 and no fds. */
void tracked_init(struct tracked_socket *s);
/* fd now refers to s: refs++, remembered in a free fds[] slot. Whatever fd referred to before is
 * released. Returns false (nothing changed) if the table could not take it. */
bool tracked_attach(int fd, struct tracked_socket *s);
/* fd no longer refers to what it did (close, or a dup2/dup3 target): returns the socket it referred
 * to (refs already decremented) or NULL. Async-signal-safe. */
struct tracked_socket *tracked_detach(int fd);
/* Like tracked_detach, but only while fd still refers to s (the thread's clean-up of a stale entry
 * must not drop a socket the program tracked at that number in the meantime). */
bool tracked_detach_if(int fd, struct tracked_socket *s);
/* newfd is a duplicate of oldfd (dup, dup2, dup3, F_DUPFD): newfd refers to oldfd's socket, or
 * to nothing if oldfd is not tracked. */
void tracked_duplicate(int oldfd, int newfd);
/* fd is one of the program's DNS sockets: socket index of the pool (a reference the caller holds
 * passes to the table). Whatever fd referred to before is released. False (the reference dropped)
 * if the table could not take it. */
bool tracked_attach_dns(int fd, int index);
/* An fd of s that still refers to s in the table, or -1. */
int tracked_any_fd(struct tracked_socket *s);

#endif
