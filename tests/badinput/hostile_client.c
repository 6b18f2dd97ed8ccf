/* The program of tests/badinput/hostile_dns.py: a client that keeps using a name while the shim's
 * own resolver talks to a hostile DNS server. It measures how long its own calls take.
 *
 *   badinput_hostile_client NAME LISTEN_ADDR PORT DURATION_MS
 *
 * It serves an echo listener on LISTEN_ADDR:PORT itself (the address NAME resolves to), then for
 * DURATION_MS:
 *   - keeps one connection (resolved once) and exchanges a line on it every 20 ms; an exchange
 *     that fails (the shim shut the socket down) is counted as "lost" and the connection is made
 *     again;
 *   - every 100 ms resolves NAME again (getaddrinfo), connects, exchanges a line and closes;
 *   - every 100 ms samples VmRSS and RssAnon from /proc/self/status.
 * getaddrinfo, connect and send are timed one by one. At the end it prints one JSON object:
 *   {"calls": {"getaddrinfo": {"n": N, "max_ms": X, "mean_ms": Y, "max_at_ms": T, "over_1ms": K},
 *              "connect": ..., "send": ...},
 *    "lost": N, "errors": N, "exchanges": N, "shim_thread_cpu_ms": N (-1: no such thread),
 *    "samples": [[t_ms, rss_kb, anon_kb], ...]}
 * Exit status 0, or 2 when it could not start. Bounded: alarm(DURATION + 20 s). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_SAMPLES 4096
#define EXCHANGE_WAIT_MS 2000

struct timing {
	const char *name;
	unsigned long n;
	double max_ms;
	double total_ms;
	double max_at_ms; /* when the largest began, from the start */
	unsigned long over_1ms;
};

static struct timing t_gai = {.name = "getaddrinfo"};
static struct timing t_connect = {.name = "connect"};
static struct timing t_send = {.name = "send"};
static double started_ms;
static unsigned long lost, errors, exchanges;
static long samples[MAX_SAMPLES][3];
static unsigned sample_count;
static int listener;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void account(struct timing *t, double started)
{
	double took = now_ms() - started;
	t->n++;
	t->total_ms += took;
	if (took > 1.0)
		t->over_1ms++;
	if (took > t->max_ms) {
		t->max_ms = took;
		t->max_at_ms = started - started_ms;
	}
}

/* Echo server: every accepted connection, each line back as it came. */
static void *serve(void *unused)
{
	(void)unused;
	struct pollfd fds[MAX_CONNS + 1];
	int n = 1;
	fds[0] = (struct pollfd){.fd = listener, .events = POLLIN};
	for (;;) {
		if (poll(fds, (nfds_t)n, -1) < 0)
			continue;
		for (int i = n - 1; i >= 1; i--) {
			if (!fds[i].revents)
				continue;
			char buf[512];
			ssize_t got = recv(fds[i].fd, buf, sizeof buf, 0);
			if (got <= 0 || send(fds[i].fd, buf, (size_t)got, MSG_NOSIGNAL) < 0) {
				close(fds[i].fd);
				fds[i] = fds[--n];
			}
		}
		if (fds[0].revents & POLLIN) {
			int fd = accept(listener, NULL, NULL);
			if (fd >= 0 && n <= MAX_CONNS)
				fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
			else if (fd >= 0)
				close(fd);
		}
	}
	return NULL;
}

static int resolve_and_connect(const char *name, const char *port)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	double t0 = now_ms();
	int rc = getaddrinfo(name, port, &hints, &res);
	account(&t_gai, t0);
	if (rc != 0) {
		errors++;
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	t0 = now_ms();
	rc = connect(fd, res->ai_addr, res->ai_addrlen);
	account(&t_connect, t0);
	freeaddrinfo(res);
	if (rc != 0) {
		errors++;
		close(fd);
		return -1;
	}
	return fd;
}

static bool exchange(int fd)
{
	static const char line[] = "ping\n";
	double t0 = now_ms();
	ssize_t sent = send(fd, line, sizeof line - 1, MSG_NOSIGNAL);
	account(&t_send, t0);
	if (sent != (ssize_t)(sizeof line - 1))
		return false;
	char buf[64];
	size_t got = 0;
	while (got < sizeof line - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, EXCHANGE_WAIT_MS) <= 0)
			return false;
		ssize_t n = recv(fd, buf + got, sizeof buf - got, 0);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	exchanges++;
	return true;
}

static void sample(double started)
{
	FILE *f = fopen("/proc/self/status", "r");
	long rss = -1, anon = -1;
	char line[256];
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		sscanf(line, "VmRSS: %ld kB", &rss);
		sscanf(line, "RssAnon: %ld kB", &anon);
	}
	fclose(f);
	if (sample_count < MAX_SAMPLES) {
		samples[sample_count][0] = (long)(now_ms() - started);
		samples[sample_count][1] = rss;
		samples[sample_count][2] = anon;
		sample_count++;
	}
}

/* CPU time (ms) of this process's thread named comm, or -1. */
static long thread_cpu_ms(const char *comm)
{
	long found = -1;
	DIR *tasks = opendir("/proc/self/task");
	if (tasks == NULL)
		return -1;
	for (struct dirent *d; found < 0 && (d = readdir(tasks)) != NULL;) {
		char path[300], name[64] = "", stat[1024];
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", d->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(name, sizeof name, f) != NULL)
			name[strcspn(name, "\n")] = '\0';
		fclose(f);
		if (strcmp(name, comm) != 0)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/stat", d->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		size_t n = fread(stat, 1, sizeof stat - 1, f);
		fclose(f);
		stat[n] = '\0';
		/* Fields 14 and 15 (utime, stime) follow the ")" that ends the command name. */
		char *after = strrchr(stat, ')');
		unsigned long utime = 0, stime = 0;
		if (after != NULL &&
		    sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
			found = (long)((utime + stime) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
	}
	closedir(tasks);
	return found;
}

static void print_timing(const struct timing *t, const char *sep)
{
	printf("\"%s\": {\"n\": %lu, \"max_ms\": %.3f, \"mean_ms\": %.3f, \"max_at_ms\": %.0f, \"over_1ms\": %lu}%s",
	       t->name, t->n, t->max_ms, t->n ? t->total_ms / (double)t->n : 0.0, t->max_at_ms, t->over_1ms, sep);
}

static void sleep_until(double when)
{
	double left = when - now_ms();
	if (left <= 0)
		return;
	struct timespec ts = {.tv_sec = (time_t)(left / 1000), .tv_nsec = (long)((left - (double)(long)(left / 1000) * 1000) * 1e6)};
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: badinput_hostile_client NAME LISTEN_ADDR PORT DURATION_MS\n");
		return 2;
	}
	const char *name = argv[1], *port = argv[3];
	double duration = atof(argv[4]);
	alarm((unsigned)(duration / 1000) + 20);

	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
	int one = 1;
	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
	    listen(listener, 64) != 0) {
		fprintf(stderr, "badinput_hostile_client: listener on %s:%s: %s\n", argv[2], port, strerror(errno));
		return 2;
	}
	pthread_t server;
	pthread_create(&server, NULL, serve, NULL);

	double started = now_ms();
	started_ms = started;
	int persistent = resolve_and_connect(name, port);
	if (persistent < 0) {
		fprintf(stderr, "badinput_hostile_client: cannot reach %s:%s\n", name, port);
		return 2;
	}
	double next_exchange = started, next_short = started, next_sample = started;
	while (now_ms() - started < duration) {
		double now = now_ms();
		if (now >= next_exchange) {
			if (!exchange(persistent)) {
				lost++;
				close(persistent);
				persistent = resolve_and_connect(name, port);
				if (persistent < 0)
					break;
			}
			next_exchange += 20;
		}
		if (now >= next_short) {
			int fd = resolve_and_connect(name, port);
			if (fd >= 0) {
				if (!exchange(fd))
					errors++;
				close(fd);
			}
			next_short += 100;
		}
		if (now >= next_sample) {
			sample(started);
			next_sample += 100;
		}
		double next = next_exchange < next_short ? next_exchange : next_short;
		sleep_until(next < next_sample ? next : next_sample);
	}
	printf("{\"calls\": {");
	print_timing(&t_gai, ", ");
	print_timing(&t_connect, ", ");
	print_timing(&t_send, "");
	printf("}, \"lost\": %lu, \"errors\": %lu, \"exchanges\": %lu, \"shim_thread_cpu_ms\": %ld, \"samples\": [",
	       lost, errors, exchanges, thread_cpu_ms("dnsaware"));
	for (unsigned i = 0; i < sample_count; i++)
		printf("%s[%ld, %ld, %ld]", i ? ", " : "", samples[i][0], samples[i][1], samples[i][2]);
	printf("]}\n");
	return 0;
}
