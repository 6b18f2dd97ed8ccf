/* The program's own DNS sockets (design.md, "Programs that speak DNS themselves"): what the hooks
 * keep of the queries it sends and the answers it receives on them, until the connect hook or the
 * background thread reads them (dns_learn.c). The hooks only copy bytes here: no lock, no
 * allocation, no parsing, so every hook on a DNS socket stays async-signal-safe and its cost is a
 * copy of a few hundred bytes. Pure data structure code, unit-testable.
 *
 * A fixed pool of sockets (each mapped on first use), each with a ring of recent queries and a few answer slots. Each slot is
 * owned by whoever moved it out of FREE/READY with a compare-and-swap, so a reader never sees
 * bytes being written. TCP sockets carry length-prefixed messages; each direction is reassembled
 * in a bounded buffer, and a message too long for it is skipped whole. */
#ifndef DNSAWARE_DNS_WATCH_H
#define DNSAWARE_DNS_WATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define DNS_WATCH_SOCKETS 64 /* FDTABLE_DNS_SOCKETS: one gate each */
/* Queries kept per socket: a client with more outstanding on one socket loses the oldest (their
 * answers are then not learned from; nothing else happens). */
#define DNS_WATCH_QUERIES 16
/* The header and the longest question (a 255-byte name, type, class): all a match needs. */
#define DNS_QUERY_KEEP 272
#define DNS_WATCH_ANSWERS 4
/* Longer answers (hundreds of addresses, over TCP) are skipped: the record set holds fewer. */
#define DNS_ANSWER_MAX 4096

enum dns_slot_state { DNS_SLOT_FREE, DNS_SLOT_WRITING, DNS_SLOT_READY, DNS_SLOT_READING };

struct dns_query_slot {
	_Atomic int state;
	uint16_t len;
	uint8_t bytes[DNS_QUERY_KEEP];
};

struct dns_answer_slot {
	_Atomic int state;
	uint16_t len;
	uint8_t bytes[DNS_ANSWER_MAX];
};

/* One direction of a TCP DNS connection. */
struct dns_stream {
	_Atomic bool busy;      /* a hook is feeding it (two threads at once: the stream is given up) */
	bool lost;              /* out of step (concurrent use, discarded bytes): no more learning */
	uint8_t prefix[2];
	uint8_t prefix_have;
	uint32_t message_len;   /* of the message being read, once its prefix is complete */
	uint32_t have;          /* bytes of it read so far */
};

struct dns_watched_socket {
	_Atomic int refs;       /* fds that refer to it (dup); 0: free */
	bool stream;            /* TCP: length-prefixed messages */
	struct dns_stream in, out;
	uint8_t in_buf[DNS_ANSWER_MAX];
	uint8_t out_buf[DNS_QUERY_KEEP];
	_Atomic unsigned next_query;
	struct dns_query_slot queries[DNS_WATCH_QUERIES];
	struct dns_answer_slot answers[DNS_WATCH_ANSWERS];
};

/* Each entry is mapped when first claimed (mmap: async-signal-safe) and never unmapped, so a
 * process that never speaks DNS itself pays no memory for them; NULL until then. */
extern _Atomic(struct dns_watched_socket *) dns_watch_pool[DNS_WATCH_SOCKETS];

/* The socket of a claimed index. */
static inline struct dns_watched_socket *dns_watch_socket(int index)
{
	return atomic_load_explicit(&dns_watch_pool[index], memory_order_acquire);
}
/* Answers waiting in the pool: the connect hook reads them only when this is not 0. */
extern _Atomic unsigned dns_watch_pending;
/* Answers dropped because every slot of their socket was full, or too long to keep. */
extern _Atomic uint64_t dns_watch_dropped;

/* A free socket of the pool, with one reference, reset; -1 when all are in use. */
int dns_watch_claim(bool stream);
void dns_watch_ref(int index);
void dns_watch_unref(int index);
/* A fork child, after its fd table was cleared: every socket of the pool is free. */
void dns_watch_forget_all(void);

/* Bytes the program sent (n of them, gathered from iov) on socket index: a datagram is one query;
 * a stream is fed to the reassembly. Bytes that are not a query (QR set) are not kept. */
void dns_watch_sent(int index, const struct iovec *iov, int iovcnt, size_t n);
/* Bytes the program received. truncated: a datagram that did not fit the program's buffer. A
 * stream's bytes that were discarded rather than read (MSG_TRUNC) are reported with iov NULL. */
void dns_watch_received(int index, const struct iovec *iov, int iovcnt, size_t n, bool truncated);

/* Takes one ready answer: copies it into buf (DNS_ANSWER_MAX bytes) and frees its slot. Returns
 * its length and sets *index to its socket, or returns 0 when none is ready. */
size_t dns_watch_take_answer(uint8_t *buf, unsigned *index);
/* Calls match on each query socket index holds, until one returns true; true if one did. */
bool dns_watch_find_query(unsigned index, bool (*match)(const uint8_t *query, size_t len, void *context),
			  void *context);

#endif
