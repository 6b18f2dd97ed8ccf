/* A small real program for the bad-input tests: it resolves a name (from /etc/hosts: localhost,
 * or the name given), connects to a listener of its own, exchanges a line, prints the reply and
 * exits with a known status. Under the shim its connection is tracked (the background thread
 * starts), so every setting the shim reads is exercised the way a program would.
 *
 *   badinput_helper exchange [NAME]   one exchange; prints "reply: echo: hello"; exit 3
 *   badinput_helper observe  [NAME]   three exchanges over 1.2 s, then what the shim did:
 *       "socket recycled: yes|no", "dnsaware thread: yes|no", "preloaded: yes|no",
 *       "at_secure: N", "ids: ruid=R euid=E"; exit 3
 *
 *   badinput_helper timeconnect [NAME]  as exchange, then "connect_us: N", how long its connect took
 *       (the process has two threads, so the kernel shares its fd table, as most programs do)
 *   badinput_helper with VAR=VALUE... -- MODE [NAME]   the same, with those variables set
 *
 * Exit status 3 is the program's own (so a crash or an error, 1 or 2, is told apart). Bounded in
 * time: the listener and every wait stop after a few seconds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <link.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EXIT_PROGRAM 3
#define WAIT_MS 5000

static int listener;
static long connect_us; /* how long the (first, tracked) connect took */

static void die(const char *what)
{
	fprintf(stderr, "badinput_helper: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Echoes lines back, prefixed, until the peer closes: one connection at a time. */
static void *serve(void *unused)
{
	(void)unused;
	for (;;) {
		int fd = accept(listener, NULL, NULL);
		if (fd < 0)
			return NULL;
		char buf[256];
		for (;;) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (poll(&p, 1, WAIT_MS) <= 0)
				break;
			ssize_t n = recv(fd, buf, sizeof buf, 0);
			if (n <= 0)
				break;
			char out[300];
			int k = snprintf(out, sizeof out, "echo: %.*s", (int)n, buf);
			if (send(fd, out, (size_t)k, MSG_NOSIGNAL) < 0)
				break;
		}
		close(fd);
	}
}

/* One request line and its reply; false when the connection is gone (shut down, reset). */
static bool exchange(int fd, const char *line, char *reply, size_t size)
{
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0)
		return false;
	size_t got = 0;
	while (got == 0 || reply[got - 1] != '\n') {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, WAIT_MS) <= 0)
			return false;
		ssize_t n = recv(fd, reply + got, size - 1 - got, 0);
		if (n <= 0)
			return false;
		got += (size_t)n;
		if (got == size - 1)
			break;
	}
	reply[got] = '\0';
	return true;
}

static int connect_to(const char *name, unsigned short port)
{
	char service[16];
	snprintf(service, sizeof service, "%u", port);
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	int rc = getaddrinfo(name, service, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "badinput_helper: getaddrinfo %s: %s\n", name, gai_strerror(rc));
		exit(2);
	}
	int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (connect(fd, res->ai_addr, res->ai_addrlen) != 0)
		die("connect");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	connect_us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
	freeaddrinfo(res);
	return fd;
}

static bool thread_named(const char *wanted)
{
	DIR *tasks = opendir("/proc/self/task");
	bool found = false;
	if (tasks == NULL)
		return false;
	for (struct dirent *d; !found && (d = readdir(tasks)) != NULL;) {
		if (d->d_name[0] == '.')
			continue;
		char path[300], comm[64] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", d->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof comm, f) != NULL)
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		found = strcmp(comm, wanted) == 0;
	}
	closedir(tasks);
	return found;
}

static int find_shim(struct dl_phdr_info *info, size_t size, void *found)
{
	(void)size;
	if (info->dlpi_name != NULL && strstr(info->dlpi_name, "libdnsaware") != NULL)
		*(bool *)found = true;
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* "with VAR=VALUE... -- MODE [NAME]": runs itself again with those variables added, so that only
 * this program's own exec carries them (not setpriv's, nor env's: under /etc/ld.so.preload every
 * program loads the shim and would act on them). A setuid copy stays AT_SECURE across the exec. */
static int exec_with(int argc, char **argv)
{
	extern char **environ;
	int i = 2;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strchr(argv[i], '=') == NULL || putenv(argv[i]) != 0) {
			fprintf(stderr, "badinput_helper: with: bad setting %s\n", argv[i]);
			return 2;
		}
	if (i >= argc) {
		fprintf(stderr, "usage: badinput_helper with VAR=VALUE... -- MODE [NAME]\n");
		return 2;
	}
	argv[i] = argv[0];
	execve("/proc/self/exe", argv + i, environ);
	die("execve");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "with") == 0)
		return exec_with(argc, argv);
	const char *mode = argc > 1 ? argv[1] : "exchange";
	const char *name = argc > 2 ? argv[2] : "localhost";
	bool observe = strcmp(mode, "observe") == 0;
	bool timeconnect = strcmp(mode, "timeconnect") == 0;
	if (!observe && !timeconnect && strcmp(mode, "exchange") != 0) {
		fprintf(stderr, "usage: badinput_helper exchange|observe|timeconnect [NAME]\n");
		return 2;
	}
	alarm(20); /* whatever happens, never hang a test */

	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 8) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
		die("listener");
	pthread_t server;
	if (pthread_create(&server, NULL, serve, NULL) != 0)
		die("pthread_create");

	int fd = connect_to(name, ntohs(addr.sin_port));
	char reply[256];
	if (!exchange(fd, "hello\n", reply, sizeof reply)) {
		fprintf(stderr, "badinput_helper: the first exchange failed\n");
		return 2;
	}
	printf("reply: %s", reply);
	if (timeconnect)
		printf("connect_us: %ld\n", connect_us);
	if (observe) {
		/* Long enough for DNSAWARE_MAX_AGE=200ms and DNSAWARE_IDLE=20ms to recycle the socket.
		 * On loopback a request and its answer carry the same kernel timestamp, so the shim
		 * cannot call the first exchange finished until a second one goes through its send hook
		 * (docs/how-it-works.md): the third finds the socket shut down. */
		sleep_ms(800);
		bool open = exchange(fd, "again\n", reply, sizeof reply);
		sleep_ms(400);
		open = open && exchange(fd, "and again\n", reply, sizeof reply);
		bool preloaded = false;
		dl_iterate_phdr(find_shim, &preloaded);
		printf("socket recycled: %s\n", open ? "no" : "yes");
		printf("dnsaware thread: %s\n", thread_named("dnsaware") ? "yes" : "no");
		printf("preloaded: %s\n", preloaded ? "yes" : "no");
		printf("at_secure: %lu\n", getauxval(AT_SECURE));
		printf("ids: ruid=%d euid=%d\n", (int)getuid(), (int)geteuid());
	}
	fflush(stdout);
	/* Let the background thread start (a tracked connect starts it) before exiting. */
	sleep_ms(50);
	close(fd);
	return EXIT_PROGRAM;
}
