/* Busy connections that follow a DNS move, for the busy benchmark (tools/bench busy). Runs under
 * the shim.
 *
 *     busyconns (--busy RATE | --stream) [--settle SECONDS] NAME PORT COUNT
 *
 * getaddrinfo(NAME) (AF_INET), then COUNT blocking TCP connects to PORT on the first address it
 * gave (made non-blocking once connected; SO_LINGER 0, so closes leave no TIME_WAIT behind).
 * --busy RATE: each connection sends a 64-byte request every 1/RATE s (the connections' phases
 *   spread evenly over the period) and reads its 200-byte answer (answerer answer); a request
 *   falling due while the previous answer is still awaited is skipped and counted (late).
 * --stream: the connections only read (answerer stream).
 * One epoll loop for every connection and stdin. A connection that reads EOF or gets an error is
 * closed and replaced at once by a new one, after a fresh getaddrinfo(NAME): that is how it
 * follows the move. Counted apart: eof_reads (EOF read while no answer was awaited: the shim's
 * idle path), eof_awaiting (EOF while an answer was awaited), read_errors, send_failures (send
 * failing with EPIPE or ECONNRESET: the shim's send path), send_errors (any other send error),
 * connect_failures (retried after 100 ms).
 *
 * Prints JSON lines on stdout:
 *   {"event": "ready", "tid", "addr"} once every connection is open and --settle seconds (default
 *     1) passed; tid: the thread named "dnsaware" (the shim's), or 0; addr: where NAME went.
 * then reads commands on stdin, one a line (the connections keep running meanwhile):
 *   measure SECONDS -> after SECONDS, {"event": "measure", "tid", "wall_ns", "cpu_ns", "wakeups",
 *                      the counters above, "reconnects", "requests", "answered", "late",
 *                      "bytes_in", "last_reconnect_ms" (from the window's start, -1: none),
 *                      "addrs": {ADDR: open connections to it, ...} at the end}
 *                      cpu_ns: the dnsaware thread's per-thread CPU clock over the window;
 *                      wakeups: its voluntary context switches.
 *   quit            -> exits 0 (atexit handlers run: the shim writes its stats file).
 * Exit 1 on any failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proc_self.h"

#define REQUEST_BYTES 64
#define ANSWER_BYTES 200
#define ADDRS_MAX 8
#define RETRY_NS 100000000ull
#define STDIN_TAG UINT64_MAX

struct conn {
	int fd;             /* -1: to be reconnected at retry_at */
	int addr;           /* index in addrs[] */
	int awaiting;       /* a request went out, its answer is not whole yet */
	int got;            /* bytes of that answer read */
	uint64_t next_send; /* ns, CLOCK_MONOTONIC */
	uint64_t retry_at;
};

struct counts {
	long eof_reads, eof_awaiting, read_errors, send_failures, send_errors, connect_failures;
	long reconnects, requests, answered, late;
	long long bytes_in;
};

static const char *name;
static int port, ep;
static char addrs[ADDRS_MAX][INET_ADDRSTRLEN];
static int addr_count;
static struct counts c;
static uint64_t last_reconnect_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int addr_index(const char *text)
{
	for (int i = 0; i < addr_count; i++)
		if (strcmp(addrs[i], text) == 0)
			return i;
	if (addr_count == ADDRS_MAX) {
		fprintf(stderr, "busyconns: more than %d addresses\n", ADDRS_MAX);
		exit(1);
	}
	snprintf(addrs[addr_count], sizeof addrs[0], "%s", text);
	return addr_count++;
}

/* A new connection for slot k (index as the epoll data): fresh getaddrinfo, blocking connect. */
static int open_conn(struct conn *k, uint64_t index)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(name, NULL, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "busyconns: getaddrinfo(%s): %s\n", name, gai_strerror(rc));
		return -1;
	}
	struct sockaddr_in to = *(struct sockaddr_in *)res->ai_addr;
	freeaddrinfo(res);
	to.sin_port = htons((uint16_t)port);
	char text[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &to.sin_addr, text, sizeof text);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct linger lin = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
	if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
		fprintf(stderr, "busyconns: connect to %s:%d: %s\n", text, port, strerror(errno));
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = index};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		perror("busyconns: epoll_ctl");
		exit(1);
	}
	k->fd = fd;
	k->addr = addr_index(text);
	k->awaiting = 0;
	k->got = 0;
	return 0;
}

static void reconnect(struct conn *k, uint64_t index, uint64_t now)
{
	if (k->fd >= 0) {
		close(k->fd);
		k->fd = -1;
	}
	if (open_conn(k, index) != 0) {
		c.connect_failures++;
		k->retry_at = now + RETRY_NS;
		return;
	}
	c.reconnects++;
	last_reconnect_ns = now_ns();
	if (k->next_send < now)
		k->next_send = now; /* keeps its phase when the gap is not over yet */
}

static void on_readable(struct conn *k, uint64_t index, uint64_t now)
{
	char buf[8192];
	for (;;) {
		ssize_t n = read(k->fd, buf, sizeof buf);
		if (n > 0) {
			c.bytes_in += n;
			if (k->awaiting) {
				k->got += (int)n;
				if (k->got >= ANSWER_BYTES) {
					c.answered++;
					k->awaiting = 0;
				}
			}
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == 0 && k->awaiting)
			c.eof_awaiting++;
		else if (n == 0)
			c.eof_reads++;
		else
			c.read_errors++;
		reconnect(k, index, now);
		return;
	}
}

static void send_request(struct conn *k, uint64_t index, uint64_t now)
{
	static const char request[REQUEST_BYTES] = {'Q'};
	if (k->awaiting) {
		c.late++;
		return;
	}
	ssize_t n = send(k->fd, request, sizeof request, MSG_NOSIGNAL);
	if (n == (ssize_t)sizeof request) {
		c.requests++;
		k->awaiting = 1;
		k->got = 0;
		return;
	}
	if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
		c.send_failures++;
	else
		c.send_errors++;
	reconnect(k, index, now);
}

static void print_measure(int tid, uint64_t wall, unsigned long long cpu, long wakeups, const struct counts *a,
			  long long last_ms, const struct conn *conns, long count)
{
	printf("{\"event\": \"measure\", \"tid\": %d, \"wall_ns\": %llu, \"cpu_ns\": %llu, \"wakeups\": %ld, "
	       "\"eof_reads\": %ld, \"eof_awaiting\": %ld, \"read_errors\": %ld, \"send_failures\": %ld, "
	       "\"send_errors\": %ld, \"connect_failures\": %ld, \"reconnects\": %ld, \"requests\": %ld, "
	       "\"answered\": %ld, \"late\": %ld, \"bytes_in\": %lld, \"last_reconnect_ms\": %lld, \"addrs\": {",
	       tid, (unsigned long long)wall, cpu, wakeups, c.eof_reads - a->eof_reads, c.eof_awaiting - a->eof_awaiting,
	       c.read_errors - a->read_errors, c.send_failures - a->send_failures, c.send_errors - a->send_errors,
	       c.connect_failures - a->connect_failures, c.reconnects - a->reconnects, c.requests - a->requests,
	       c.answered - a->answered, c.late - a->late, c.bytes_in - a->bytes_in, last_ms);
	for (int i = 0; i < addr_count; i++) {
		long open = 0;
		for (long j = 0; j < count; j++)
			open += conns[j].fd >= 0 && conns[j].addr == i;
		printf("%s\"%s\": %ld", i ? ", " : "", addrs[i], open);
	}
	printf("}}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	double rate = 0, settle = 1.0;
	int stream = 0, i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--busy") == 0 && i + 1 < argc)
			rate = atof(argv[++i]);
		else if (strcmp(argv[i], "--stream") == 0)
			stream = 1;
		else if (strcmp(argv[i], "--settle") == 0 && i + 1 < argc)
			settle = atof(argv[++i]);
		else
			break;
	}
	if (argc - i != 3 || (stream == (rate > 0))) {
		fprintf(stderr, "usage: busyconns (--busy RATE | --stream) [--settle SECONDS] NAME PORT COUNT\n");
		return 2;
	}
	name = argv[i];
	port = atoi(argv[i + 1]);
	long count = atol(argv[i + 2]);
	uint64_t period = stream ? 0 : (uint64_t)(1e9 / rate);
	struct conn *conns = calloc((size_t)count, sizeof *conns);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (conns == NULL || count <= 0 || ep < 0) {
		perror("busyconns: setup");
		return 1;
	}
	uint64_t start = now_ns();
	for (long j = 0; j < count; j++) {
		if (open_conn(&conns[j], (uint64_t)j) != 0)
			return 1;
		conns[j].next_send = start + period * (uint64_t)j / (uint64_t)count;
	}
	struct epoll_event sev = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev) != 0) {
		perror("busyconns: epoll_ctl stdin");
		return 1;
	}
	int ready = 0, tid = 0, measuring = 0;
	uint64_t ready_at = now_ns() + (uint64_t)(settle * 1e9), window_start = 0, window_end = 0;
	unsigned long long cpu0 = 0;
	long wake0 = 0;
	struct counts at_start = {0};
	char in[256];
	size_t in_len = 0;
	struct epoll_event evs[256];
	for (;;) {
		uint64_t now = now_ns(), due = UINT64_MAX;
		for (long j = 0; j < count; j++) {
			struct conn *k = &conns[j];
			if (k->fd < 0 && k->retry_at <= now)
				reconnect(k, (uint64_t)j, now);
			if (k->fd >= 0 && !stream && k->next_send <= now) {
				send_request(k, (uint64_t)j, now);
				k->next_send += period;
				if (k->next_send <= now)
					k->next_send = now + period;
			}
			uint64_t t = k->fd < 0 ? k->retry_at : stream ? UINT64_MAX : k->next_send;
			if (t < due)
				due = t;
		}
		if (!ready && now >= ready_at) {
			ready = 1;
			tid = dnsaware_thread();
			printf("{\"event\": \"ready\", \"tid\": %d, \"addr\": \"%s\"}\n", tid, addrs[conns[0].addr]);
			fflush(stdout);
		}
		if (measuring && now >= window_end) {
			measuring = 0;
			long long last_ms = last_reconnect_ns >= window_start
						    ? (long long)((last_reconnect_ns - window_start) / 1000000u)
						    : -1;
			print_measure(tid, now - window_start, thread_cpu_ns(tid) - cpu0, thread_wakeups(tid) - wake0,
				      &at_start, last_ms, conns, count);
		}
		if (!ready && ready_at < due)
			due = ready_at;
		if (measuring && window_end < due)
			due = window_end;
		int timeout = due == UINT64_MAX ? -1 : due <= now ? 0 : (int)((due - now + 999999) / 1000000);
		int n = epoll_wait(ep, evs, 256, timeout);
		if (n < 0 && errno != EINTR) {
			perror("busyconns: epoll_wait");
			return 1;
		}
		now = now_ns();
		for (int e = 0; e < n; e++) {
			uint64_t index = evs[e].data.u64;
			if (index != STDIN_TAG) {
				if (conns[index].fd >= 0)
					on_readable(&conns[index], index, now);
				continue;
			}
			ssize_t r = read(0, in + in_len, sizeof in - 1 - in_len);
			if (r <= 0)
				return 0;
			in_len += (size_t)r;
			in[in_len] = '\0';
			char *nl;
			while ((nl = strchr(in, '\n')) != NULL) {
				*nl = '\0';
				double seconds;
				if (strncmp(in, "quit", 4) == 0)
					return 0;
				if (sscanf(in, "measure %lf", &seconds) != 1 || !ready || measuring) {
					fprintf(stderr, "busyconns: unexpected command %s\n", in);
					return 2;
				}
				tid = dnsaware_thread();
				cpu0 = thread_cpu_ns(tid);
				wake0 = thread_wakeups(tid);
				at_start = c;
				window_start = now_ns();
				window_end = window_start + (uint64_t)(seconds * 1e9);
				measuring = 1;
				in_len -= (size_t)(nl + 1 - in);
				memmove(in, nl + 1, in_len + 1);
			}
			if (in_len == sizeof in - 1)
				in_len = 0; /* a line too long: dropped */
		}
	}
}
