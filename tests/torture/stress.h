/* What the files of the stress test (stress.c and its stress_*.c) share: the sizes of the run, the
 * names' history, the connections' records and the counters the end of the run reports, and the
 * threads main() starts. One program: the state is the program's, each part kept by the file that
 * makes it. */
#ifndef DNSAWARE_STRESS_H
#define DNSAWARE_STRESS_H

#include "torture.h"

enum { NAMES = 4, POOL = 8, SET = 3, THREADS = 16, SLOTS = 3, PORT = 7000 };
#define ADDRS (NAMES * POOL)
#define MOVE_EVERY_MS 100
#define LAG_MS 250
/* A connection that sends a request this long after its address left (or after its max age) was
 * missed: the shim should have been draining it, and the send path fails new requests then. */
#define MISSED_MS 1000
#define MAX_RECS (1u << 20)
#define MAX_EVENTS 4096

extern unsigned max_age_ms;
extern uint64_t start_ms, end_ms;

/* ---- the names' history (stress_history.c) ---- */

struct event {
	uint64_t t;
	bool in;
};
struct addr_history {
	struct event ev[MAX_EVENTS];
	int n;
	bool initially_in;
};
extern struct addr_history hist[ADDRS];
extern int members[NAMES][SET], outq[NAMES][POOL - SET];
extern _Atomic bool stop_mover;
extern _Atomic long moves;

void addr_text(int a, char buf[INET_ADDRSTRLEN]);
int addr_index(const struct sockaddr_in *sa);
uint64_t out_since(int a, uint64_t t);
bool ever_removed(int a);
void print_history(int a, uint64_t from, uint64_t to);
void *mover_main(void *unused);

/* ---- connections and their ends (stress_history.c) ---- */

struct rec {
	uint64_t t_connect;
	int addr;
	_Atomic bool closing;   /* set by the client before it closes the connection's last fd */
	_Atomic bool end_seen;  /* its end was judged */
};
extern struct rec *recs;
extern _Atomic unsigned next_id;

extern _Atomic long exchanges, connects, seen_dns_only, seen_max_age_only, seen_both, by_server, by_send,
	by_peek, op_close, op_rawclose, op_dup, op_dup2_other, op_dup2_pipe, op_share, op_decoy, gai_failures;

__attribute__((noreturn, format(printf, 2, 3))) void stress_fail(int addr, const char *fmt, ...);
void end_seen(unsigned id, const char *where);

/* ---- servers (stress_servers.c) ---- */

extern int listeners[ADDRS];
extern _Atomic int live_handlers;

void *accept_main(void *unused);

/* ---- clients (stress_clients.c) ---- */

extern int decoy_listeners[THREADS];

void await_answer(int fd, unsigned id, char resp[9]);
void *client_main(void *arg);

#endif
