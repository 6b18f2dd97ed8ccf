/* The stress test's record of what happened, against which every connection's end is judged:
 * each address's ins and outs of its name's set (the mover makes them, rewriting the hosts file),
 * and each connection's record. Judging happens here, once per connection, whoever saw the end. */
#include "stress.h"

/* ---- the names' history ---- */

struct addr_history hist[ADDRS];
static pthread_mutex_t hist_lock = PTHREAD_MUTEX_INITIALIZER;
int members[NAMES][SET], outq[NAMES][POOL - SET]; /* the mover's alone */
_Atomic bool stop_mover;
_Atomic long moves;

void addr_text(int a, char buf[INET_ADDRSTRLEN])
{
	snprintf(buf, INET_ADDRSTRLEN, "127.0.%u.%u", (unsigned char)(a / POOL + 1), (unsigned char)(a % POOL + 1));
}

/* The index of a pool address, or -1. */
int addr_index(const struct sockaddr_in *sa)
{
	const unsigned char *b = (const unsigned char *)&sa->sin_addr;
	if (sa->sin_family != AF_INET || b[0] != 127 || b[1] != 0 || b[2] < 1 || b[2] > NAMES || b[3] < 1 || b[3] > POOL)
		return -1;
	return (b[2] - 1) * POOL + (b[3] - 1);
}

static void hist_add(int a, bool in)
{
	pthread_mutex_lock(&hist_lock);
	CHECK(hist[a].n < MAX_EVENTS);
	hist[a].ev[hist[a].n++] = (struct event){ .t = now_ms(), .in = in };
	pthread_mutex_unlock(&hist_lock);
}

/* Was address a out of its name's set at any moment of [from, to]? */
static bool was_out_during(int a, uint64_t from, uint64_t to)
{
	pthread_mutex_lock(&hist_lock);
	bool in = hist[a].initially_in, out = false;
	for (int i = 0; i < hist[a].n && !out; i++) {
		if (hist[a].ev[i].t > to)
			break;
		if (hist[a].ev[i].t <= from)
			in = hist[a].ev[i].in;
		else if (!hist[a].ev[i].in)
			out = true;
	}
	pthread_mutex_unlock(&hist_lock);
	return out || !in;
}

/* When address a last went out of its set, if it is out at t (0 if it is in). */
uint64_t out_since(int a, uint64_t t)
{
	pthread_mutex_lock(&hist_lock);
	uint64_t since = hist[a].initially_in ? 0 : 1;
	for (int i = 0; i < hist[a].n && hist[a].ev[i].t <= t; i++)
		since = hist[a].ev[i].in ? 0 : hist[a].ev[i].t;
	pthread_mutex_unlock(&hist_lock);
	return since;
}

bool ever_removed(int a)
{
	pthread_mutex_lock(&hist_lock);
	bool removed = false;
	for (int i = 0; i < hist[a].n; i++)
		removed = removed || !hist[a].ev[i].in;
	pthread_mutex_unlock(&hist_lock);
	return removed;
}

void print_history(int a, uint64_t from, uint64_t to)
{
	char text[INET_ADDRSTRLEN];
	addr_text(a, text);
	pthread_mutex_lock(&hist_lock);
	fprintf(stderr, "history of %s (n%d.test), ms since start: initially %s", text, a / POOL,
		hist[a].initially_in ? "in" : "out");
	for (int i = 0; i < hist[a].n; i++)
		if (hist[a].ev[i].t + 3000 >= from && hist[a].ev[i].t <= to + 3000)
			fprintf(stderr, "; %s at %llu", hist[a].ev[i].in ? "in" : "out",
				(unsigned long long)(hist[a].ev[i].t - start_ms));
	fprintf(stderr, "\n");
	pthread_mutex_unlock(&hist_lock);
}

static void write_names(void)
{
	char lines[1024];
	int n = 0;
	for (int k = 0; k < NAMES; k++)
		for (int j = 0; j < SET; j++)
			n += snprintf(lines + n, sizeof lines - (size_t)n, "127.0.%d.%d n%d.test\n", k + 1,
				      members[k][j] % POOL + 1, k);
	CHECK(n < (int)sizeof lines);
	set_hosts(lines);
}

void *mover_main(void *unused)
{
	(void)unused;
	unsigned tick = 0;
	uint64_t next = now_ms() + MOVE_EVERY_MS;
	while (!atomic_load(&stop_mover)) {
		uint64_t now = now_ms();
		if (now < next) {
			sleep_ms((unsigned)(next - now));
			continue;
		}
		next += MOVE_EVERY_MS;
		int k = (int)(tick++ % NAMES);
		int old = members[k][0], fresh = outq[k][0];
		memmove(&members[k][0], &members[k][1], (SET - 1) * sizeof members[k][0]);
		members[k][SET - 1] = fresh;
		memmove(&outq[k][0], &outq[k][1], (POOL - SET - 1) * sizeof outq[k][0]);
		outq[k][POOL - SET - 1] = old;
		hist_add(old, false);
		write_names();
		hist_add(fresh, true);
		atomic_fetch_add(&moves, 1);
	}
	return NULL;
}

/* ---- connections and their ends ---- */

struct rec *recs;
_Atomic unsigned next_id = 1;

_Atomic long exchanges, connects, seen_dns_only, seen_max_age_only, seen_both, by_server, by_send,
	by_peek, op_close, op_rawclose, op_dup, op_dup2_other, op_dup2_pipe, op_share, op_decoy, gai_failures;
static _Atomic bool failing;

__attribute__((noreturn, format(printf, 2, 3))) void stress_fail(int addr, const char *fmt, ...)
{
	if (atomic_exchange(&failing, true))
		for (;;)
			pause();
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "[stress pid %d] FAILED: %s\n", (int)getpid(), msg);
	if (addr >= 0) {
		char text[INET_ADDRSTRLEN], needle[64];
		addr_text(addr, text);
		snprintf(needle, sizeof needle, " %s:%d", text, PORT);
		print_log_tail(getpid(), needle, 30);
	}
	fflush(stderr);
	_exit(1);
}

/* The end of connection id was seen by `where`: legitimate only as stress.c's top comment says. */
void end_seen(unsigned id, const char *where)
{
	uint64_t t = now_ms();
	struct rec *r = &recs[id];
	if (atomic_exchange(&r->end_seen, true))
		return;
	uint64_t age = t - r->t_connect;
	bool max_age = age + 2 >= (uint64_t)max_age_ms * 9 / 10;
	uint64_t from = r->t_connect > LAG_MS ? r->t_connect - LAG_MS : 0;
	bool stale = was_out_during(r->addr, from, t);
	if (!stale && !max_age) {
		char text[INET_ADDRSTRLEN];
		addr_text(r->addr, text);
		print_history(r->addr, r->t_connect, t);
		stress_fail(r->addr,
			    "connection %u to %s:%d (n%d.test) was shut down though neither stale nor old: connected at "
			    "+%llu ms, end seen by the %s at +%llu ms (age %llu ms; max age %u ms), its address in the "
			    "set throughout", id, text, PORT, r->addr / POOL, (unsigned long long)(r->t_connect - start_ms),
			    where, (unsigned long long)(t - start_ms), (unsigned long long)age, max_age_ms);
	}
	atomic_fetch_add(stale && max_age ? &seen_both : stale ? &seen_dns_only : &seen_max_age_only, 1);
}
