/* The names the program resolved, their record sets and refresh schedule. Guarded by one lock,
 * taken with signals blocked (so a signal handler can never interrupt its holder on the same
 * thread); never taken on the fast path. */
#ifndef DNSAWARE_NAMES_H
#define DNSAWARE_NAMES_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "metrics_choice.h"
#include "name_metrics.h"
#include "recordset.h"
#include "steer.h"

#define NAME_MAX_LEN 255
/* Names kept with no socket: the least recently learned go first. */
#define NAMES_MAX_UNUSED 4096
/* A name with no socket left is forgotten this long after the program last resolved it. */
#define NAMES_UNUSED_KEEP_MS (10 * 60 * 1000)

struct name_entry {
	char host[NAME_MAX_LEN + 1];
	struct recordset records;
	uint64_t last_learned_ms;
	uint64_t fresh_ms;         /* its set last answered or asked for: the program's lookup, or a refresh */
	/* The TTL of the last DNS answer the program read itself (dns_learn.c): the first refresh
	 * waits for it instead of the floor. */
	bool learned_ttl_known;
	uint32_t learned_ttl_seconds;
	uint64_t next_refresh_ms;  /* 0: not scheduled (no socket yet) */
	uint64_t interval_ms;      /* the clamped TTL of the last good answer, or the floor */
	bool interval_answered;    /* interval_ms came from a refresh's answer (it outranks the first guess) */
	unsigned live_sockets;     /* tracked sockets that hold this entry */
	bool refresh_in_flight;
	unsigned steer_turn;       /* spreads steered connects over the current addresses */
	unsigned balance_turn[2];  /* spreads balanced connects of each family (IPv4, IPv6) */
	/* Its connects' outcomes (issue 18), when it has series of its own in the stats file
	 * (choice.own: metrics_choice.h); else they go to names_other_metrics. */
	struct metrics_choice choice;
	struct name_metrics metrics;
	struct name_entry *next;
};

void names_lock(sigset_t *saved);
void names_unlock(const sigset_t *saved);

/* Count of entries, readable without the lock: connect skips all work while it is 0. */
extern _Atomic unsigned names_count;

/* Lock held. Records an answer the program got. Returns the entry, or NULL without memory. */
struct name_entry *names_learn(const char *host, const struct ip_addr *addrs, unsigned n, uint64_t now_ms);
/* Lock held. Entries whose current set holds addr, up to max; live_sockets++ on each returned. */
unsigned names_claim_for_address(const struct ip_addr *addr, struct name_entry **out, unsigned max);
/* Lock held. The same for entries that removed addr from their set and have not seen it since (a
 * connect to it began while it was current and ended after an answer removed it). */
unsigned names_claim_departed(const struct ip_addr *addr, struct name_entry **out, unsigned max);
/* Lock held. */
void names_release(struct name_entry *entry);

/* Lock held. A connect to one of entry's addresses ended (ok after duration_ns, or failed). A name
 * without series of its own gets them at once while fewer than max_own names have them; else it is
 * counted in names_other_metrics (names_choose_metrics may give it a place later). */
void names_record_connect(struct name_entry *entry, enum connect_result r, uint64_t duration_ns, unsigned max_own);
/* Lock held. The same for the entry of host (nothing if the name is not known). */
void names_record_connect_host(const char *host, enum connect_result r, uint64_t duration_ns, unsigned max_own);
/* Lock held. The connects of the names without series of their own, and of the names forgotten. */
extern struct name_metrics names_other_metrics;
/* Lock held. At each write of the stats file: which names have series of their own now
 * (metrics_choice.h); a name that loses them leaves its counts to names_other_metrics. */
void names_choose_metrics(unsigned max_own);
/* Lock held. A tracked socket to peer, held by these entries, came (delta +1) or went (-1): the
 * count of each entry's record of peer (balance's choice, its fair share, the stats file). */
void names_count_socket(struct name_entry *const *entries, unsigned n, const struct ip_addr *peer, int delta);

/* Addresses whose connect failed lately (blocking connects in the hook, non-blocking ones seen
 * failing by the background thread). Lock held. */
extern struct steer_cooldowns names_failed_connects;

/* What connect steering knows of a peer address. */
struct steer_plan {
	bool departed;             /* peer left host's set (it is not in any name's set now) */
	char host[NAME_MAX_LEN + 1];
	unsigned turn;             /* this connect's turn among host's steered connects */
	unsigned balance_turn;     /* its turn among host's connects of its family (balance) */
	struct ip_addr current[STEER_MAX_CANDIDATES]; /* host's current addresses */
	uint32_t conns[STEER_MAX_CANDIDATES];         /* this process's tracked sockets to each */
	unsigned count;
};
/* Lock held. The first name whose set holds addr, else the first that lost it (and still has
 * addresses): false when no name produced addr. */
bool names_steer_plan(const struct ip_addr *addr, struct steer_plan *plan);
/* Lock held. Frees entries with no socket, no refresh in flight, unused for NAMES_UNUSED_KEEP_MS. */
void names_forget_unused(uint64_t now_ms);
struct name_entry *names_first(void);
/* Fork child, in the atfork handler: the lock the fork took is free again. */
void names_after_fork_child(void);
/* Lock held. A fork child settling (runtime.h): counts of sockets and refreshes cleared (the child
 * tracks nothing yet). */
void names_forget_parent_sockets(void);
void names_prepare_fork(void);
void names_after_fork_parent(void);

/* Lowercases and drops one trailing dot; false if the name does not fit or is empty. */
bool names_normalize(const char *host, char out[NAME_MAX_LEN + 1]);

#endif
