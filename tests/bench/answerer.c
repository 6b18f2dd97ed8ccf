/* The server end for the busy benchmark (tools/bench busy): listens on every ADDR:PORT given and
 * serves every connection it accepts in one of two modes.
 *
 *     answerer answer|stream ADDR:PORT [ADDR:PORT ...]
 *
 * answer: reads requests and answers each at once with a fixed 200-byte answer (a request is
 *         whatever one read returns: the client sends 64 bytes and waits for the answer, so reads
 *         and requests line up).
 * stream: writes 1 KB to every connection every 10 ms, forever, and never reads (a closed
 *         connection is noticed by EPOLLRDHUP or a failed write).
 * One thread, epoll, non-blocking sockets; a write that would block is dropped and counted.
 * Prints "ready" on stdout once every socket listens; then, for each line on stdin,
 * "accepted A open O answers N dropped D"; exits 0 when stdin closes. Run it without LD_PRELOAD. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define LISTEN_MAX 16
#define ANSWER_BYTES 200
#define STREAM_BYTES 1024
#define STREAM_EVERY_NS 10000000L
#define CONNS_MAX 65536

/* epoll data: a tag in the top bits, the fd below. */
#define TAG_LISTEN (1ull << 32)
#define TAG_CONN (2ull << 32)
#define TAG_TIMER (3ull << 32)
#define TAG_STDIN (4ull << 32)

static int conns[CONNS_MAX]; /* the open connections (stream mode writes to all of them) */
static long open_count, accepted, answers, dropped;
static int ep;

static void forget(int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	for (long i = 0; i < open_count; i++)
		if (conns[i] == fd) {
			conns[i] = conns[--open_count];
			break;
		}
}

static int listen_on(const char *spec)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || (size_t)(colon - spec) >= sizeof host) {
		fprintf(stderr, "answerer: bad ADDR:PORT %s\n", spec);
		exit(2);
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "answerer: bad address %s\n", host);
		exit(2);
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
		fprintf(stderr, "answerer: cannot listen on %s: %s\n", spec, strerror(errno));
		exit(2);
	}
	return fd;
}

static void add(int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		perror("answerer: epoll_ctl");
		exit(1);
	}
}

static void accept_all(int lfd, int stream)
{
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0)
			return;
		accepted++;
		if (open_count == CONNS_MAX) {
			close(c);
			continue;
		}
		conns[open_count++] = c;
		add(c, stream ? EPOLLRDHUP : EPOLLIN | EPOLLRDHUP, TAG_CONN | (uint32_t)c);
	}
}

static void answer(int fd)
{
	static const char reply[ANSWER_BYTES] = {'A'};
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			forget(fd);
			return;
		}
		if (n < 0)
			return;
		if (send(fd, reply, sizeof reply, MSG_NOSIGNAL) == (ssize_t)sizeof reply)
			answers++;
		else
			dropped++;
	}
}

static void stream_tick(void)
{
	static const char chunk[STREAM_BYTES] = {'S'};
	for (long i = 0; i < open_count;) {
		int fd = conns[i];
		ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN) {
			forget(fd); /* conns[i] is another connection now */
			continue;
		}
		if (n != (ssize_t)sizeof chunk)
			dropped++;
		i++;
	}
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc - 2 > LISTEN_MAX || (strcmp(argv[1], "answer") != 0 && strcmp(argv[1], "stream") != 0)) {
		fprintf(stderr, "usage: answerer answer|stream ADDR:PORT [ADDR:PORT ...] (at most %d)\n", LISTEN_MAX);
		return 2;
	}
	int stream = strcmp(argv[1], "stream") == 0;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("answerer: epoll_create1");
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		int fd = listen_on(argv[i]);
		add(fd, EPOLLIN, TAG_LISTEN | (uint32_t)fd);
	}
	if (stream) {
		int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		struct itimerspec every = {.it_interval = {0, STREAM_EVERY_NS}, .it_value = {0, STREAM_EVERY_NS}};
		if (tfd < 0 || timerfd_settime(tfd, 0, &every, NULL) < 0) {
			perror("answerer: timerfd");
			return 1;
		}
		add(tfd, EPOLLIN, TAG_TIMER | (uint32_t)tfd);
	}
	add(0, EPOLLIN, TAG_STDIN);
	printf("ready\n");
	fflush(stdout);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("answerer: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64 & ~0xffffffffull;
			int fd = (int)(uint32_t)evs[i].data.u64;
			if (tag == TAG_LISTEN) {
				accept_all(fd, stream);
			} else if (tag == TAG_TIMER) {
				uint64_t expirations;
				if (read(fd, &expirations, sizeof expirations) == (ssize_t)sizeof expirations)
					stream_tick();
			} else if (tag == TAG_CONN) {
				if (!stream)
					answer(fd);
				else
					forget(fd); /* stream mode waits only for the close */
			} else {
				char line[64];
				ssize_t r = read(0, line, sizeof line);
				if (r <= 0)
					return 0;
				printf("accepted %ld open %ld answers %ld dropped %ld\n", accepted, open_count, answers,
				       dropped);
				fflush(stdout);
			}
		}
	}
}
