/* The stress test's clients: every way a program may send on, let go of or swap a tracked
 * connection's fd, behind the shim's back too, each checked for what the shim must never do (cut a
 * request, shut down an fd it does not track, let a drain be missed). */
#include <sys/uio.h>

#include "stress.h"

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
void await_answer(int fd, unsigned id, char resp[9])
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
int decoy_listeners[THREADS];

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

void *client_main(void *arg)
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
