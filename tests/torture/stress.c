/* 16 threads send on, close, raw-close, dup, dup2 over and reconnect tracked sockets while their
 * names move every 100 ms, for a given time (argv[1], seconds; 60 in the registered test).
 *
 * Four names n0..n3.test, each with a pool of 8 addresses (127.0.K.1-8, K = name + 1) of which 3
 * are in its set at a time, in a private /etc/hosts (mount namespace; a network namespace of its own
 * makes every address and port the test's). Every 100 ms one name moves: its oldest address leaves,
 * the address that has been out longest comes back (so an address stays 1.2 s in, 2 s out). The test
 * keeps each address's history (out from just before the file is rewritten, in from just after).
 *
 * Servers (one listener per address, a thread per connection) learn each connection's id from a
 * hello, answer each 8-byte request after 0-15 ms with the address they are and the request's number,
 * and report any end of a connection the client did not close itself. The clients report a failed
 * send (EPIPE) and an end seen while peeking. Each connection's end is judged once, by whoever saw it
 * first: it is legitimate only if
 *   - the connection's address was out of its name's set at some point from LAG_MS before its connect
 *     to when the end was seen (the shim's view lags the file by the time its thread takes between
 *     reading the hosts file and applying the answer), or
 *   - it was at least 0.9 x DNSAWARE_MAX_AGE old (the max age has a ±10 % jitter).
 * A request sent whole whose answer never came (the connection ended under it) is a failure, and so
 * is a SIGPIPE (the shim fails a send on a socket it shuts down with EPIPE, before the kernel sees it).
 * So is a missed drain: a request let through on a connection whose address has been out of its set
 * for MISSED_MS, or that is that much past its max age (every request here starts a new exchange,
 * which the send path fails on a draining socket).
 *
 * The fd operations: close, close by the raw system call (the shim's table keeps the number, which
 * anything may reuse), dup and fcntl(F_DUPFD_CLOEXEC) then close of the old fd, dup2 of another
 * slot's connection over a connection's fd, dup2 of a pipe over it, two slots sharing a connection,
 * and the raw dup3 of a decoy over it: an untracked TCP connection (to an address no name has) that
 * takes the tracked connection's number behind the shim's back, carries exchanges of its own, and
 * must never be shut down, though the shim will want to drain the connection it replaced.
 *
 * Afterwards: no fd the shim opened is left over (/proc/self/fd before and after); every "shut down"
 * log line for a DNS reason names an address that did leave that name; the stats file's shutdown
 * counts cover what the test saw, reason by reason.
 *
 * Env: LD_PRELOAD, DNSAWARE_TTL_FLOOR=1ms (the least accepted), DNSAWARE_MAX_AGE, DNSAWARE_IDLE,
 * DNSAWARE_LOG=info, DNSAWARE_LOG_FILE, DNSAWARE_STATS_FILE, DNSAWARE_STATS_INTERVAL. Root. */
#include <sys/uio.h>

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

static unsigned max_age_ms;
static uint64_t start_ms, end_ms;

/* ---- the names' history ---- */

struct event {
	uint64_t t;
	bool in;
};
static struct {
	struct event ev[MAX_EVENTS];
	int n;
	bool initially_in;
} hist[ADDRS];
static pthread_mutex_t hist_lock = PTHREAD_MUTEX_INITIALIZER;
static int members[NAMES][SET], outq[NAMES][POOL - SET]; /* the mover's alone */
static _Atomic bool stop_mover;
static _Atomic long moves;

static void addr_text(int a, char buf[INET_ADDRSTRLEN])
{
	snprintf(buf, INET_ADDRSTRLEN, "127.0.%u.%u", (unsigned char)(a / POOL + 1), (unsigned char)(a % POOL + 1));
}

/* The index of a pool address, or -1. */
static int addr_index(const struct sockaddr_in *sa)
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
static uint64_t out_since(int a, uint64_t t)
{
	pthread_mutex_lock(&hist_lock);
	uint64_t since = hist[a].initially_in ? 0 : 1;
	for (int i = 0; i < hist[a].n && hist[a].ev[i].t <= t; i++)
		since = hist[a].ev[i].in ? 0 : hist[a].ev[i].t;
	pthread_mutex_unlock(&hist_lock);
	return since;
}

static bool ever_removed(int a)
{
	pthread_mutex_lock(&hist_lock);
	bool removed = false;
	for (int i = 0; i < hist[a].n; i++)
		removed = removed || !hist[a].ev[i].in;
	pthread_mutex_unlock(&hist_lock);
	return removed;
}

static void print_history(int a, uint64_t from, uint64_t to)
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

static void *mover_main(void *unused)
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

struct rec {
	uint64_t t_connect;
	int addr;
	_Atomic bool closing;   /* set by the client before it closes the connection's last fd */
	_Atomic bool end_seen;  /* its end was judged */
};
static struct rec *recs;
static _Atomic unsigned next_id = 1;

static _Atomic long exchanges, connects, seen_dns_only, seen_max_age_only, seen_both, by_server, by_send,
	by_peek, op_close, op_rawclose, op_dup, op_dup2_other, op_dup2_pipe, op_share, op_decoy, gai_failures;
static _Atomic int sigpipes;
static _Atomic bool failing;

static __attribute__((noreturn, format(printf, 2, 3))) void stress_fail(int addr, const char *fmt, ...)
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

/* The end of connection id was seen by `where`: legitimate only as the file comment says. */
static void end_seen(unsigned id, const char *where)
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

/* ---- servers ---- */

static int listeners[ADDRS];
static _Atomic int live_handlers;

static bool recv_full(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

static void *handler_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct sockaddr_in local;
	socklen_t len = sizeof local;
	CHECK(getsockname(fd, (struct sockaddr *)&local, &len) == 0);
	int a = addr_index(&local);
	CHECK(a >= 0);
	unsigned seed = (unsigned)fd * 2654435761u ^ (unsigned)now_ms();
	char buf[9];
	if (recv_full(fd, buf, 8) && buf[0] == 'H') {
		buf[8] = '\0';
		unsigned id = (unsigned)atoi(buf + 1);
		CHECK(id > 0 && id < MAX_RECS);
		CHECKF(recs[id].addr == a, "connection %u says hello to address %d, the client says %d", id, a,
		       recs[id].addr);
		/* The hello is answered too: a request left unanswered would never make the connection idle
		 * (nor would an answer within the request's jiffy: see common.h's exchange). */
		sleep_ms(12);
		if (send(fd, "K-hello-", 8, MSG_NOSIGNAL) != 8) {
			if (!atomic_load(&recs[id].closing)) {
				atomic_fetch_add(&by_server, 1);
				end_seen(id, "server (send failed)");
			}
			goto done;
		}
		for (;;) {
			if (!recv_full(fd, buf, 8)) {
				if (!atomic_load(&recs[id].closing)) {
					atomic_fetch_add(&by_server, 1);
					end_seen(id, "server (EOF)");
				}
				break;
			}
			CHECK(buf[0] == 'Q');
			sleep_ms(rand_r(&seed) % 16);
			char resp[16];
			snprintf(resp, sizeof resp, "A%02u%05u", (unsigned)a % 100u, (unsigned)atoi(buf + 3) % 100000u);
			if (send(fd, resp, 8, MSG_NOSIGNAL) != 8) {
				if (!atomic_load(&recs[id].closing)) {
					atomic_fetch_add(&by_server, 1);
					end_seen(id, "server (send failed)");
				}
				break;
			}
		}
	}
done:
	close(fd);
	atomic_fetch_sub(&live_handlers, 1);
	return NULL;
}

static void *accept_main(void *unused)
{
	(void)unused;
	struct pollfd p[ADDRS];
	for (int i = 0; i < ADDRS; i++)
		p[i] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
	for (;;) {
		if (poll(p, ADDRS, 1000) <= 0)
			continue;
		for (int i = 0; i < ADDRS; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			int fd = accept4(listeners[i], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			atomic_fetch_add(&live_handlers, 1);
			pthread_attr_t attr;
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			pthread_attr_setstacksize(&attr, 64 << 10);
			pthread_t t;
			CHECK(pthread_create(&t, &attr, handler_main, (void *)(intptr_t)fd) == 0);
			pthread_attr_destroy(&attr);
		}
	}
	return NULL;
}

/* ---- clients ---- */

struct slot {
	int fd; /* -1: empty */
	unsigned id;
	uint64_t until;
	int decoy_peer; /* >= 0: fd is not a connection but one end of a socketpair, this the other */
};

static bool shared(const struct slot *s, int i)
{
	for (int j = 0; j < SLOTS; j++)
		if (j != i && s[j].fd >= 0 && s[j].decoy_peer < 0 && s[j].id == s[i].id)
			return true;
	return false;
}

/* ThreadSanitizer models fds and cannot see raw system calls: after a raw close, the next owner of
 * that number (on another thread) is reported as racing the last one. A TSan build makes these two
 * calls through libc, so the shim sees them; every other build makes them behind its back. */
#if defined(__SANITIZE_THREAD__)
#define RAW_CLOSE(fd) close(fd)
#define RAW_DUP3(from, to, flags) dup3(from, to, flags)
#else
#define RAW_CLOSE(fd) syscall(SYS_close, fd)
#define RAW_DUP3(from, to, flags) syscall(SYS_dup3, from, to, flags)
#endif

/* The slot lets go of its fd; the connection is closing if no other slot holds it. how: 0 close,
 * 1 the raw system call (behind the shim's back), 2 dup2 of a pipe over it, then close. */
static void release(struct slot *s, int i, int how)
{
	if (!shared(s, i))
		atomic_store(&recs[s[i].id].closing, true);
	int fd = s[i].fd;
	s[i].fd = -1;
	if (how == 1) {
		CHECK(RAW_CLOSE(fd) == 0);
		atomic_fetch_add(&op_rawclose, 1);
	} else if (how == 2) {
		int p[2];
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		CHECK(dup2(p[0], fd) == fd);
		CHECK(close(fd) == 0 && close(p[0]) == 0 && close(p[1]) == 0);
		atomic_fetch_add(&op_dup2_pipe, 1);
	} else {
		CHECK(close(fd) == 0);
		atomic_fetch_add(&op_close, 1);
	}
}

/* The connection of slot i ended (seen by the client): every slot that holds it lets go. */
static void ended(struct slot *s, int i, const char *where)
{
	unsigned id = s[i].id;
	end_seen(id, where);
	for (int j = 0; j < SLOTS; j++)
		if (s[j].fd >= 0 && s[j].decoy_peer < 0 && s[j].id == id)
			release(s, j, 0);
}

/* Reads the 8-byte answer to a request connection id sent whole: the connection ending first is a
 * request cut, which the shim must never do. */
static void await_answer(int fd, unsigned id, char resp[9])
{
	size_t got = 0;
	while (got < 8) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, 5000);
		if (pr < 0 && errno == EINTR)
			continue;
		CHECKF(pr == 1, "no answer on connection %u in 5 s", id);
		ssize_t m = recv(fd, resp + got, 8 - got, 0);
		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0) {
			struct rec *r = &recs[id];
			char text[INET_ADDRSTRLEN];
			addr_text(r->addr, text);
			stress_fail(r->addr, "connection %u to %s:%d was cut with a request outstanding (%s; connected "
					     "at +%llu ms, now +%llu ms)", id, text, PORT,
				    m == 0 ? "EOF" : strerror(errno), (unsigned long long)(r->t_connect - start_ms),
				    (unsigned long long)(now_ms() - start_ms));
		}
		got += (size_t)m;
	}
	resp[8] = '\0';
}

static void open_slot(struct slot *s, int i, unsigned *seed)
{
	char name[16], svc[8];
	snprintf(name, sizeof name, "n%u.test", rand_r(seed) % NAMES);
	snprintf(svc, sizeof svc, "%d", PORT);
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (getaddrinfo(name, svc, &hints, &res) != 0) {
		/* The hosts file is empty for a moment while it is rewritten. */
		atomic_fetch_add(&gai_failures, 1);
		sleep_ms(1);
		return;
	}
	int count = 0;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
		count++;
	struct addrinfo *pick = res;
	for (int k = (int)(rand_r(seed) % (unsigned)count); k > 0; k--)
		pick = pick->ai_next;
	unsigned id = atomic_fetch_add(&next_id, 1);
	CHECK(id < MAX_RECS);
	struct rec *r = &recs[id];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	r->t_connect = now_ms();
	r->addr = -1;
	int rc = connect(fd, pick->ai_addr, pick->ai_addrlen);
	CHECKF(rc == 0, "connect to a %s address", name);
	freeaddrinfo(res);
	struct sockaddr_in peer;
	socklen_t len = sizeof peer;
	CHECK(getpeername(fd, (struct sockaddr *)&peer, &len) == 0);
	r->addr = addr_index(&peer);
	CHECK(r->addr >= 0);
	atomic_fetch_add(&connects, 1);
	s[i] = (struct slot){ .fd = fd, .id = id, .until = now_ms() + 10 + rand_r(seed) % 1490, .decoy_peer = -1 };
	char hello[16];
	snprintf(hello, sizeof hello, "H%07u", id);
	if (send(fd, hello, 8, MSG_NOSIGNAL) != 8) {
		CHECKF(errno == EPIPE, "the hello of connection %u failed", id);
		atomic_fetch_add(&by_send, 1);
		ended(s, i, "client (hello failed with EPIPE)");
		return;
	}
	char ack[9];
	await_answer(fd, id, ack);
	CHECKF(strcmp(ack, "K-hello-") == 0, "connection %u: the hello was answered with \"%s\"", id, ack);
}

static void exchange_slot(struct slot *s, int i, unsigned *seed)
{
	int fd = s[i].fd;
	unsigned id = s[i].id;
	unsigned seq = rand_r(seed) % 100000;
	char q[16];
	snprintf(q, sizeof q, "Q%07u", seq);
	ssize_t n;
	struct iovec iov = { .iov_base = q, .iov_len = 8 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	switch (rand_r(seed) % 4) {
	case 0: n = send(fd, q, 8, MSG_NOSIGNAL); break;
	case 1: n = write(fd, q, 8); break; /* SIGPIPE if the kernel failed it */
	case 2: n = sendmsg(fd, &msg, MSG_NOSIGNAL); break;
	default: n = writev(fd, &iov, 1); break;
	}
	uint64_t t_sent = now_ms();
	if (n < 0) {
		CHECKF(errno == EPIPE, "a request on connection %u failed", id);
		atomic_fetch_add(&by_send, 1);
		ended(s, i, "client (send failed with EPIPE)");
		return;
	}
	CHECKF(n == 8, "a short send: %zd", n);
	/* A request let through long after the connection should have been draining: a missed drain
	 * (every request here starts a new exchange, which the send path fails on a draining socket). */
	struct rec *r = &recs[id];
	uint64_t out = out_since(r->addr, t_sent);
	if (out != 0 && out + MISSED_MS <= t_sent) {
		char text[INET_ADDRSTRLEN];
		addr_text(r->addr, text);
		print_history(r->addr, r->t_connect, t_sent);
		stress_fail(r->addr, "connection %u to %s:%d (connected at +%llu ms) sent a request at +%llu ms, its "
				     "address out of n%d.test's set since +%llu ms: never drained", id, text, PORT,
			    (unsigned long long)(r->t_connect - start_ms), (unsigned long long)(t_sent - start_ms),
			    r->addr / POOL, (unsigned long long)(out - start_ms));
	}
	CHECKF(t_sent - r->t_connect < (uint64_t)max_age_ms * 11 / 10 + MISSED_MS,
	       "connection %u sent a request at age %llu ms, max age %u ms: never drained", id,
	       (unsigned long long)(t_sent - r->t_connect), max_age_ms);
	char resp[9];
	await_answer(fd, id, resp);
	int a = atoi((char[3]){ resp[1], resp[2], 0 });
	CHECKF(resp[0] == 'A' && a == recs[id].addr && (unsigned)atoi(resp + 3) == seq,
	       "connection %u (address %d, request %u) got \"%s\"", id, recs[id].addr, seq, resp);
	atomic_fetch_add(&exchanges, 1);
}

/* Behind the shim's back (the raw system call), an untracked TCP connection (to this thread's decoy
 * listener, an address no name has) takes the number of the slot's connection: the shim's table still
 * says that number is the closed connection, which it will want to shut down at its max age or when
 * its address leaves. It must see the number is another socket now and leave it alone: the decoy
 * carries exchanges (so it looks idle between them) and must stay whole until the test closes it. */
static int decoy_listeners[THREADS];

static void decoy_over(struct slot *s, int i, int thread, unsigned *seed)
{
	char ip[INET_ADDRSTRLEN];
	snprintf(ip, sizeof ip, "127.0.9.%u", (unsigned char)(thread + 1));
	int c = connect_literal(ip, PORT);
	int peer = accept_one(decoy_listeners[thread]);
	if (!shared(s, i))
		atomic_store(&recs[s[i].id].closing, true);
	CHECK(RAW_DUP3(c, s[i].fd, O_CLOEXEC) == s[i].fd);
	CHECK(close(c) == 0);
	s[i].decoy_peer = peer;
	s[i].id = 0;
	s[i].until = now_ms() + 300 + rand_r(seed) % 1200;
	atomic_fetch_add(&op_decoy, 1);
}

static void decoy_check(struct slot *s, int i)
{
	char c = 'd', got = 0;
	ssize_t n = write(s[i].fd, &c, 1);
	CHECKF(n == 1, "a write on fd %d (a TCP connection that took a tracked connection's number behind the "
	       "shim's back) failed", s[i].fd);
	struct pollfd p = { .fd = s[i].decoy_peer, .events = POLLIN };
	CHECK(poll(&p, 1, 2000) == 1);
	n = recv(s[i].decoy_peer, &got, 1, 0);
	CHECKF(n == 1 && got == 'd', "the peer of fd %d (a TCP connection that took a tracked connection's number "
	       "behind the shim's back) got %zd bytes: the shim shut down a socket it never tracked", s[i].fd, n);
	sleep_ms(11);
	CHECK(send(s[i].decoy_peer, "e", 1, MSG_NOSIGNAL) == 1);
	p = (struct pollfd){ .fd = s[i].fd, .events = POLLIN };
	CHECK(poll(&p, 1, 2000) == 1);
	n = recv(s[i].fd, &got, 1, 0);
	CHECKF(n == 1 && got == 'e', "fd %d (a TCP connection that took a tracked connection's number behind the "
	       "shim's back) got %zd bytes: the shim shut down a socket it never tracked", s[i].fd, n);
}

static void *client_main(void *arg)
{
	int thread = (int)(uintptr_t)arg;
	unsigned seed = (unsigned)thread * 7919u + (unsigned)now_ms();
	struct slot s[SLOTS];
	for (int i = 0; i < SLOTS; i++)
		s[i].fd = s[i].decoy_peer = -1;
	while (now_ms() < end_ms) {
		int i = (int)(rand_r(&seed) % SLOTS);
		if (s[i].fd < 0) {
			open_slot(s, i, &seed);
			continue;
		}
		if (s[i].decoy_peer >= 0) {
			decoy_check(s, i);
			if (now_ms() >= s[i].until) {
				CHECK(close(s[i].fd) == 0 && close(s[i].decoy_peer) == 0);
				s[i].fd = s[i].decoy_peer = -1;
			} else {
				sleep_ms(rand_r(&seed) % 10);
			}
			continue;
		}
		int other = (i + 1 + (int)(rand_r(&seed) % (SLOTS - 1))) % SLOTS;
		if (s[other].decoy_peer >= 0)
			other = -1;
		if (now_ms() >= s[i].until) {
			/* Its end is near: whatever ended it is judged first, then it goes one way or another. */
			if (sock_state(s[i].fd) == SOCK_EOF) {
				atomic_fetch_add(&by_peek, 1);
				ended(s, i, "client (EOF before its close)");
				continue;
			}
			unsigned how = rand_r(&seed) % 5;
			if (how < 3) {
				release(s, i, (int)how);
			} else if (how == 3) {
				decoy_over(s, i, thread, &seed);
			} else if (other >= 0 && s[other].fd >= 0) {
				/* dup2 the other slot's connection over this one's fd */
				if (!shared(s, i))
					atomic_store(&recs[s[i].id].closing, true);
				CHECK(dup2(s[other].fd, s[i].fd) == s[i].fd);
				s[i].id = s[other].id;
				s[i].until = s[other].until;
				atomic_fetch_add(&op_dup2_other, 1);
				if (rand_r(&seed) % 2)
					release(s, other, 0);
			} else {
				release(s, i, 0);
			}
			continue;
		}
		unsigned op = rand_r(&seed) % 16;
		if (op < 10) {
			exchange_slot(s, i, &seed);
		} else if (op == 10) {
			int d = rand_r(&seed) % 2 ? dup(s[i].fd) : fcntl(s[i].fd, F_DUPFD_CLOEXEC, 64);
			CHECK(d >= 0);
			CHECK(close(s[i].fd) == 0);
			s[i].fd = d;
			atomic_fetch_add(&op_dup, 1);
		} else if (op == 11 && other >= 0 && s[other].fd < 0) {
			/* two slots, one connection */
			s[other] = s[i];
			s[other].fd = dup(s[i].fd);
			CHECK(s[other].fd >= 0);
			atomic_fetch_add(&op_share, 1);
		} else if (op == 12) {
			sleep_ms(rand_r(&seed) % 40); /* quiet: the background path may find it idle */
		} else if (op == 13) {
			if (sock_state(s[i].fd) == SOCK_EOF) {
				atomic_fetch_add(&by_peek, 1);
				ended(s, i, "client (EOF seen while peeking)");
			}
		} else {
			exchange_slot(s, i, &seed);
		}
	}
	for (int i = 0; i < SLOTS; i++) {
		if (s[i].fd >= 0 && s[i].decoy_peer >= 0) {
			CHECK(close(s[i].fd) == 0 && close(s[i].decoy_peer) == 0);
			s[i].fd = -1;
		} else if (s[i].fd >= 0) {
			release(s, i, 0);
		}
	}
	return NULL;
}

/* ---- after the run ---- */

struct log_tally {
	long dns, max_age, dropped, bad;
};

static void tally_line(const char *m, void *arg)
{
	struct log_tally *t = arg;
	long dropped;
	if (sscanf(m, "warn %ld log lines dropped", &dropped) == 1) {
		t->dropped += dropped;
		return;
	}
	if (strncmp(m, "info shut down ", 15) != 0)
		return;
	if (strstr(m, "older than DNSAWARE_MAX_AGE") != NULL) {
		t->max_age++;
		return;
	}
	const char *to = strstr(m, " to 127.0.");
	int k, i, port, name = -1;
	if (to == NULL || sscanf(to, " to 127.0.%d.%d:%d (n%d.test no longer resolves to it", &k, &i, &port, &name) != 4) {
		fprintf(stderr, "unexpected shutdown line: %s", m);
		t->bad++;
		return;
	}
	t->dns++;
	int a = (k - 1) * POOL + (i - 1);
	if (k < 1 || k > NAMES || i < 1 || i > POOL || port != PORT || name != k - 1 || !ever_removed(a)) {
		fprintf(stderr, "a DNS shutdown of an address that never left that name: %s", m);
		t->bad++;
	}
}

static unsigned parse_ms(const char *text)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);
	if (strcmp(end, "ms") == 0)
		return (unsigned)v;
	CHECKF(strcmp(end, "s") == 0 || *end == '\0', "cannot read the duration %s", text);
	return (unsigned)(v * 1000);
}

static void on_sigpipe(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigpipes, 1);
}

int main(int argc, char **argv)
{
	t_name = "stress";
	setvbuf(stdout, NULL, _IONBF, 0);
	unsigned seconds = argc > 1 ? (unsigned)atoi(argv[1]) : 60;
	CHECKF(seconds >= 2, "usage: %s SECONDS (at least 2)", argv[0]);
	const char *max_age = getenv("DNSAWARE_MAX_AGE");
	CHECKF(max_age != NULL, "run with DNSAWARE_MAX_AGE set");
	max_age_ms = parse_ms(max_age);
	const char *stats_path = getenv("DNSAWARE_STATS_FILE");
	if (stats_path != NULL)
		unlink(stats_path); /* a file from an earlier run must not pass for this one's */

	for (int k = 0; k < NAMES; k++) {
		for (int j = 0; j < POOL; j++) {
			int a = k * POOL + j;
			hist[a].initially_in = j < SET;
			if (j < SET)
				members[k][j] = a;
			else
				outq[k][j - SET] = a;
		}
	}
	start_ms = now_ms();
	short_failure_reports();
	private_network();
	char lines[1024];
	int n = 0;
	for (int k = 0; k < NAMES; k++)
		for (int j = 0; j < SET; j++)
			n += snprintf(lines + n, sizeof lines - (size_t)n, "127.0.%d.%d n%d.test\n", k + 1, j + 1, k);
	private_files(lines);
	watchdog_thread(seconds + 60, "the stress run");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigpipe;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGPIPE, &sa, NULL) == 0);
	recs = calloc(MAX_RECS, sizeof *recs);
	CHECK(recs != NULL);
	for (int a = 0; a < ADDRS; a++) {
		char text[INET_ADDRSTRLEN];
		addr_text(a, text);
		listeners[a] = listen_on(text, PORT, 512);
	}
	for (int t = 0; t < THREADS; t++) {
		char ip[INET_ADDRSTRLEN];
		snprintf(ip, sizeof ip, "127.0.9.%u", (unsigned char)(t + 1));
		decoy_listeners[t] = listen_on(ip, PORT, 16);
	}
	pthread_t acceptor;
	CHECK(pthread_create(&acceptor, NULL, accept_main, NULL) == 0);

	/* Warm-up: the shim's thread, wake-up fd and log file exist before the fds are counted. */
	unsigned id = atomic_fetch_add(&next_id, 1);
	recs[id].t_connect = now_ms();
	recs[id].addr = 0;
	int w = connect_named("n0.test", PORT);
	char hello[16];
	snprintf(hello, sizeof hello, "H%07u", id);
	send_all(w, hello, 8);
	char ack[9];
	await_answer(w, id, ack);
	CHECKF(wait_eof(w, max_age_ms * 3), "the warm-up connection was not recycled at its max age");
	atomic_store(&recs[id].closing, true);
	CHECK(close(w) == 0);
	CHECKF(wait_log_line(getpid(), "shut down", 2000), "no log line from the shim");
	sleep_ms(100);
	struct fdset before, after;
	fd_snapshot(&before);

	end_ms = now_ms() + seconds * 1000ull;
	pthread_t mover, clients[THREADS];
	CHECK(pthread_create(&mover, NULL, mover_main, NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&clients[i], NULL, client_main, (void *)(uintptr_t)i) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_join(clients[i], NULL) == 0);
	atomic_store(&stop_mover, true);
	CHECK(pthread_join(mover, NULL) == 0);
	uint64_t wait_end = now_ms() + 5000;
	while (atomic_load(&live_handlers) > 0) {
		CHECKF(now_ms() < wait_end, "%d server connections still open 5 s after the clients closed theirs",
		       atomic_load(&live_handlers));
		sleep_ms(10);
	}
	printf("%u s: %ld moves, %ld connects, %ld exchanges; ends seen: %ld stale only, %ld old only, %ld both "
	       "(by the server %ld, by a failed send %ld, by a peek %ld); ops: %ld close, %ld raw close, %ld dup, "
	       "%ld dup2 of another connection, %ld dup2 of a pipe, %ld raw dup3 of a decoy connection, %ld shared; "
	       "%ld getaddrinfo misses\n",
	       seconds, atomic_load(&moves), atomic_load(&connects), atomic_load(&exchanges),
	       atomic_load(&seen_dns_only), atomic_load(&seen_max_age_only), atomic_load(&seen_both),
	       atomic_load(&by_server), atomic_load(&by_send), atomic_load(&by_peek), atomic_load(&op_close),
	       atomic_load(&op_rawclose), atomic_load(&op_dup), atomic_load(&op_dup2_other),
	       atomic_load(&op_dup2_pipe), atomic_load(&op_decoy), atomic_load(&op_share), atomic_load(&gai_failures));
	CHECKF(atomic_load(&sigpipes) == 0, "%d SIGPIPEs: a send went into the kernel after the shim shut its "
	       "socket down", atomic_load(&sigpipes));

	/* No fd left behind (the stats file is open for a moment at each write: look again then). */
	int extra = 0;
	for (int attempt = 0; attempt < 40; attempt++) {
		fd_snapshot(&after);
		extra = fdset_extra(&before, &after, NULL);
		if (extra == 0)
			break;
		sleep_ms(50);
	}
	if (extra > 0) {
		fdset_extra(&before, &after, "fds open after the run that were not before it:");
		CHECKF(0, "%d fds leaked", extra);
	}

	/* The log: every DNS shutdown names an address that left that name. */
	struct log_tally tally = { 0 };
	sleep_ms(500); /* the last shutdowns' lines and the stats file's next write */
	for_log_lines(getpid(), tally_line, &tally);
	long seen = atomic_load(&seen_dns_only) + atomic_load(&seen_max_age_only) + atomic_load(&seen_both);
	printf("log: %ld DNS shutdowns, %ld max-age shutdowns, %ld lines dropped by the rate limit\n", tally.dns,
	       tally.max_age, tally.dropped);
	CHECKF(tally.bad == 0, "%ld log lines name shutdowns the test cannot account for", tally.bad);
	CHECKF(seen <= tally.dns + tally.max_age + tally.dropped, "the test saw %ld shutdowns, the log tells of %ld",
	       seen, tally.dns + tally.max_age + tally.dropped);

	/* The stats file counts at least what the test saw, reason by reason. */
	if (stats_path != NULL) {
		long long dns = stats_value("dnsaware_sockets_shutdown_total", "reason=\"dns\"");
		long long old = stats_value("dnsaware_sockets_shutdown_total", "reason=\"max_age\"");
		printf("stats file: %lld DNS shutdowns, %lld max-age shutdowns\n", dns, old);
		CHECKF(dns >= 0 && old >= 0, "no shutdown counts in %s", stats_path);
		CHECKF(dns >= atomic_load(&seen_dns_only), "the stats file counts %lld DNS shutdowns; the test saw %ld "
		       "connections end that only a DNS reason explains", dns, atomic_load(&seen_dns_only));
		CHECKF(old >= atomic_load(&seen_max_age_only), "the stats file counts %lld max-age shutdowns; the test "
		       "saw %ld connections end that only their age explains", old, atomic_load(&seen_max_age_only));
		CHECKF(dns + old >= seen, "the stats file counts %lld shutdowns; the test saw %ld", dns + old, seen);
	}

	/* The run did what it is for (scaled for short runs). */
	long floor_count = seconds >= 10 ? 20 : 2;
	CHECKF(atomic_load(&exchanges) >= 100 * (long)seconds, "only %ld exchanges", atomic_load(&exchanges));
	CHECKF(atomic_load(&seen_dns_only) + atomic_load(&seen_both) >= floor_count,
	       "only %ld connections ended for a DNS reason", atomic_load(&seen_dns_only) + atomic_load(&seen_both));
	CHECKF(atomic_load(&seen_max_age_only) + atomic_load(&seen_both) >= floor_count,
	       "only %ld connections ended at their max age", atomic_load(&seen_max_age_only) + atomic_load(&seen_both));
	CHECKF(atomic_load(&op_rawclose) >= floor_count && atomic_load(&op_dup2_other) >= floor_count &&
		       atomic_load(&op_dup2_pipe) >= floor_count && atomic_load(&op_decoy) >= floor_count,
	       "too few fd operations");
	drop_private_files();
	printf("PASS stress\n");
	return 0;
}
