/* Many idle tracked connections in one process, for the scale and resolver benchmarks.
 *
 *     conns [--settle SECONDS] GROUP [GROUP ...]
 *     GROUP = NAME:PORT[,PORT...]:COUNT
 *
 * Raises RLIMIT_NOFILE (soft and hard, root) to what the connections need. For each group:
 * getaddrinfo(NAME) (AF_INET), then COUNT blocking TCP connects to the first address it gave,
 * spread over the ports in turn (one port allows about 28,000 connections to one address: the
 * ephemeral port range). Every socket gets SO_LINGER 0 so the exit leaves no TIME_WAIT behind.
 * The connections stay open and idle: nothing is ever sent.
 *
 * Prints JSON lines on stdout:
 *   {"event": "ready", "rss_before_kb", "rss_after_kb", "connect_s", "threads", "tid",
 *    "thread_cpu_ns", "addrs": [...]}
 *     rss_before_kb: VmRSS before the first getaddrinfo (the fd arrays already touched);
 *     rss_after_kb: VmRSS once every connection is open and --settle seconds (default 1) passed;
 *     anon_before_kb, anon_after_kb: the same for RssAnon (anonymous memory only: without the
 *     file pages of shared libraries, which vary from run to run).
 *     tid: the thread named "dnsaware" (the shim's), or 0; thread_cpu_ns: its CPU time so far.
 * then reads commands on stdin, one a line:
 *   measure SECONDS  -> {"event": "measure", "wall_ns", "cpu_ns", "ticks", "wakeups", "eof": [..]}
 *                       the dnsaware thread's CPU time (its per-thread CPU clock, in ns, and
 *                       utime+stime from /proc/self/task/TID/stat, in clock ticks) and its
 *                       voluntary context switches (~ wake-ups) over SECONDS of wall time; then,
 *                       per group, how many of its connections read EOF (shut down).
 *   quit             -> exits 0 (atexit handlers run: the shim writes its stats file).
 * Exit 1 on any failure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proc_self.h"

#define GROUPS_MAX 8
#define PORTS_MAX 16

struct group {
	char name[256];
	int ports[PORTS_MAX];
	int port_count;
	long count;
	int *fds;
	char addr[INET_ADDRSTRLEN];
};

static void die(const char *what)
{
	fprintf(stderr, "conns: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A field of /proc/self/status, in kB ("VmRSS", "RssAnon"). */
static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	size_t len = strlen(field);
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, field, len) == 0 && line[len] == ':' && sscanf(line + len + 1, "%ld", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
}

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;
	if (clock_gettime(clock, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long thread_ticks(int tid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	/* After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
	long utime, stime;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) != 2)
		return -1;
	return utime + stime;
}

static void raise_nofile(long needed)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if ((long)rl.rlim_cur >= needed)
		return;
	struct rlimit want = {.rlim_cur = (rlim_t)needed, .rlim_max = rl.rlim_max};
	if ((long)want.rlim_max < needed)
		want.rlim_max = (rlim_t)needed;
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	/* Beyond the hard limit needs CAP_SYS_RESOURCE: take what the hard limit allows. */
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || (long)rl.rlim_max < needed) {
		fprintf(stderr, "conns: RLIMIT_NOFILE: %ld fds needed, the hard limit is %ld and cannot be raised "
				"(needs CAP_SYS_RESOURCE)\n", needed, (long)rl.rlim_max);
		exit(1);
	}
}

static void parse_group(const char *arg, struct group *g)
{
	const char *c1 = strchr(arg, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (c1 == NULL || c2 == NULL || (size_t)(c1 - arg) >= sizeof g->name) {
		fprintf(stderr, "conns: bad group %s (NAME:PORT[,PORT...]:COUNT)\n", arg);
		exit(2);
	}
	memcpy(g->name, arg, (size_t)(c1 - arg));
	g->name[c1 - arg] = '\0';
	g->port_count = 0;
	for (const char *p = c1 + 1; p < c2 && g->port_count < PORTS_MAX;) {
		g->ports[g->port_count++] = atoi(p);
		const char *comma = strchr(p, ',');
		if (comma == NULL || comma > c2)
			break;
		p = comma + 1;
	}
	g->count = atol(c2 + 1);
	if (g->port_count == 0 || g->count <= 0) {
		fprintf(stderr, "conns: bad group %s\n", arg);
		exit(2);
	}
}

static void open_group(struct group *g)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(g->name, NULL, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "conns: getaddrinfo(%s): %s\n", g->name, gai_strerror(rc));
		exit(1);
	}
	struct sockaddr_in to = *(struct sockaddr_in *)res->ai_addr;
	freeaddrinfo(res);
	inet_ntop(AF_INET, &to.sin_addr, g->addr, sizeof g->addr);
	struct linger lin = {.l_onoff = 1, .l_linger = 0};
	for (long i = 0; i < g->count; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket");
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
		to.sin_port = htons((uint16_t)g->ports[i % g->port_count]);
		if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
			fprintf(stderr, "conns: connect #%ld to %s (%s:%d): %s\n", i, g->name, g->addr,
				g->ports[i % g->port_count], strerror(errno));
			exit(1);
		}
		g->fds[i] = fd;
	}
}

static long count_eof(const struct group *g)
{
	long n = 0;
	char byte;
	for (long i = 0; i < g->count; i++)
		if (recv(g->fds[i], &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
			n++;
	return n;
}

int main(int argc, char **argv)
{
	struct group groups[GROUPS_MAX];
	int group_count = 0;
	double settle = 1.0;
	long total = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--settle") == 0 && i + 1 < argc) {
			settle = atof(argv[++i]);
			continue;
		}
		if (group_count == GROUPS_MAX) {
			fprintf(stderr, "conns: at most %d groups\n", GROUPS_MAX);
			return 2;
		}
		parse_group(argv[i], &groups[group_count]);
		total += groups[group_count].count;
		group_count++;
	}
	if (group_count == 0) {
		fprintf(stderr, "usage: conns [--settle SECONDS] NAME:PORT[,PORT...]:COUNT ...\n");
		return 2;
	}
	raise_nofile(total + 16);
	for (int i = 0; i < group_count; i++) {
		groups[i].fds = calloc((size_t)groups[i].count, sizeof(int));
		if (groups[i].fds == NULL)
			die("calloc");
		memset(groups[i].fds, 0xff, (size_t)groups[i].count * sizeof(int)); /* touch the pages */
	}
	long rss_before = status_kb("VmRSS"), anon_before = status_kb("RssAnon");
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	for (int i = 0; i < group_count; i++)
		open_group(&groups[i]);
	uint64_t t1 = now_ns(CLOCK_MONOTONIC);
	struct timespec pause = {.tv_sec = (time_t)settle, .tv_nsec = (long)((settle - (long)settle) * 1e9)};
	nanosleep(&pause, NULL);
	long rss_after = status_kb("VmRSS"), anon_after = status_kb("RssAnon");
	int tid = dnsaware_thread();
	printf("{\"event\": \"ready\", \"rss_before_kb\": %ld, \"rss_after_kb\": %ld, \"anon_before_kb\": %ld, "
	       "\"anon_after_kb\": %ld, \"connect_s\": %.3f, \"threads\": %d, \"tid\": %d, \"thread_cpu_ns\": %llu, "
	       "\"addrs\": [",
	       rss_before, rss_after, anon_before, anon_after, (double)(t1 - t0) / 1e9, task_count(), tid,
	       thread_cpu_ns(tid));
	for (int i = 0; i < group_count; i++)
		printf("%s\"%s\"", i ? ", " : "", groups[i].addr);
	printf("]}\n");
	fflush(stdout);

	char line[128];
	while (fgets(line, sizeof line, stdin) != NULL) {
		double seconds;
		if (strncmp(line, "quit", 4) == 0)
			return 0;
		if (sscanf(line, "measure %lf", &seconds) != 1) {
			fprintf(stderr, "conns: unknown command %s", line);
			return 2;
		}
		tid = dnsaware_thread();
		long ticks0 = tid ? thread_ticks(tid) : 0, wake0 = tid ? thread_wakeups(tid) : 0;
		uint64_t cpu0 = thread_cpu_ns(tid), w0 = now_ns(CLOCK_MONOTONIC);
		struct timespec span = {.tv_sec = (time_t)seconds, .tv_nsec = (long)((seconds - (long)seconds) * 1e9)};
		while (nanosleep(&span, &span) != 0 && errno == EINTR)
			;
		uint64_t cpu1 = thread_cpu_ns(tid), w1 = now_ns(CLOCK_MONOTONIC);
		long ticks1 = tid ? thread_ticks(tid) : 0, wake1 = tid ? thread_wakeups(tid) : 0;
		printf("{\"event\": \"measure\", \"tid\": %d, \"wall_ns\": %llu, \"cpu_ns\": %llu, \"ticks\": %ld, "
		       "\"wakeups\": %ld, \"eof\": [",
		       tid, (unsigned long long)(w1 - w0), (unsigned long long)(cpu1 - cpu0), ticks1 - ticks0,
		       wake1 - wake0);
		for (int i = 0; i < group_count; i++)
			printf("%s%ld", i ? ", " : "", count_eof(&groups[i]));
		printf("]}\n");
		fflush(stdout);
	}
	return 0;
}
