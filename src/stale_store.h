/* The last good answer of each query shape, kept in memory that this user's processes share (a
 * file each maps, stale_file.c) or that one process and its children share, and what is known of
 * the resolver for it: failing since when, retried when, confirmed by the library's own DNS query
 * until when (the cache). Pure logic over a block of memory, unit-tested.
 *
 * Each slot has a lock word: 0 when free, else the time after which a holder is presumed dead and
 * the lock may be taken over (a process killed while holding it never blocks the others for
 * long). Every read and write of a slot is done holding it: a few hundred bytes copied, so holders
 * never wait long, and no torn answer is ever read. */
#ifndef DNSAWARE_STALE_STORE_H
#define DNSAWARE_STALE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "gai_copy.h"
#include "lookup_key.h"

#define STALE_STORE_MAGIC "dnsaware answers v1"
/* What the slots' fields mean, in the store file's name beside their size: a library whose slots
 * mean something else uses a file of its own rather than misread another's (2: hostent answers keep
 * their h_errno value, and the _r forms keep answers of their own). */
#define STALE_STORE_LAYOUT 2
#define STALE_STORE_SLOTS 256
/* A slot is looked for in this many places from its hash. */
#define STALE_STORE_PROBES 8
/* A holder of a slot's lock for longer than this is presumed dead. */
#define STALE_STORE_LOCK_MS 1000

struct stale_slot_state {
	uint64_t stored_ms;          /* when the last good answer came */
	uint64_t failing_since_ms;   /* 0: the resolver answers */
	uint64_t retry_at_ms;        /* failing: when a lookup may ask the resolver again */
	uint64_t confirmed_ms;       /* when the library's own query last agreed with the answer */
	uint64_t confirmed_until_ms; /* ... and fresh until then (the cache) */
	uint64_t refresh_claimed_until_ms; /* a query of the library's for it is on its way */
	uint64_t served_stale;       /* stale answers since it began failing */
	/* The order the DNS gave the addresses in, per family, when the real call made the kept
	 * answer (stale_answer_order; 0: not known): glibc's order follows it for addresses its sort
	 * ranks alike, so the kept answer stands for the real call's only while the DNS keeps it. */
	uint64_t dns_order;
	bool dns_confirmed;          /* the library's own DNS query once gave the same addresses */
	bool from_hosts;             /* the name is in /etc/hosts: never cached */
};

struct stale_slot {
	_Atomic uint64_t lock;
	bool used;
	uint64_t key_hash;
	struct lookup_key key;
	struct stale_slot_state state;
	struct gai_copy answer;
};

struct stale_store_header {
	char magic[24];
	uint32_t slot_count;
	uint32_t slot_size;
};

struct stale_store {
	struct stale_store_header *header;
	struct stale_slot *slots;
	unsigned count;
};

/* The size of the memory block of a store of count slots. */
uint64_t stale_store_size(unsigned count);
/* Over block (stale_store_size bytes): true when it holds a store of this layout, or was all zero
 * (then made one). False for anything else: another version's file is left alone. */
bool stale_store_attach(struct stale_store *store, void *block, unsigned count);

struct stale_record {
	struct stale_slot_state state;
	struct gai_copy answer;
};

/* The key's slot, copied out. False when there is none (or its lock could not be had). Like every
 * call that takes a slot's lock, it needs the store's clock: the lock word it writes is when it is
 * presumed dead (now_ms + STALE_STORE_LOCK_MS). */
bool stale_store_find(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms,
		      struct stale_record *out);

/* A good answer from the resolver: kept, the failing state ended. Returns whether the slot was
 * failing (the caller says so once); *served is how many stale answers it gave meanwhile. A new
 * set of addresses is no longer confirmed (the library's own query checks it again). Not kept
 * when a slot where the key may be is held by another past the lock's tries. */
bool stale_store_put(struct stale_store *store, const struct lookup_key *key, const struct gai_copy *answer,
		     uint64_t now_ms, uint64_t dns_order, uint64_t *served);

/* The order of the addresses of a DNS answer, per family, as a number (never 0). 1 when no family
 * has two addresses: there is then no order to keep. */
#define STALE_ORDER_NONE 1
uint64_t stale_answer_order(const struct ip_addr *addrs, unsigned n);

/* An authoritative negative answer: the name is gone, and so is its answer. */
void stale_store_forget(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms);

/* A stale answer is being served: the slot counts it and, if it was not failing, starts failing
 * (true: the caller says so once) with its first retry at now + retry_every_ms. */
bool stale_store_note_stale(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms,
			    uint64_t retry_every_ms);

/* Failing and due: the one lookup that gets true retries the resolver; the next retry is at
 * now + retry_every_ms. */
bool stale_store_claim_retry(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms,
			     uint64_t retry_every_ms);

/* One query of the library's at a time per slot: true when the caller should send it. */
bool stale_store_claim_refresh(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms,
			       uint64_t hold_ms);

/* Whether the library's own answer (addrs, every family it asked) agrees with a kept answer. The
 * families compared are those of the kept answer, and both when the program asked for any
 * family without AI_ADDRCONFIG. */
bool stale_answer_matches(const struct lookup_key *key, const struct gai_copy *answer, const struct ip_addr *addrs,
			  unsigned n);

struct stale_confirm_result {
	unsigned slots;     /* slots of the name */
	unsigned recovered; /* of them, failing until now */
	uint64_t served;    /* stale answers they gave */
};

/* The library's own query of name (normalized, names.h) answered: slots whose answer agrees are
 * confirmed until until_ms and refreshed; the others are no longer confirmed. in_hosts: the name is
 * in /etc/hosts, never confirmed. recover: the query asked the program's servers, which answer,
 * so no slot of the name is failing any more. family: what the query asked for (AF_UNSPEC: every
 * slot of the name; else the slots of that family only). */
struct stale_confirm_result stale_store_confirm(struct stale_store *store, const char *name, int family,
						const struct ip_addr *addrs, unsigned n, bool in_hosts, bool recover,
						uint64_t until_ms, uint64_t now_ms);

#endif
