/* The send hooks' hot path, for callgrind (instruction counts) and wall-clock runs.
 *
 *     hotpath devnull N     write(2) of one byte to /dev/null, N times (an untracked fd)
 *     hotpath send N        send(2) of one byte on a tracked, healthy loopback TCP socket, N times
 *     hotpath write N       write(2) of one byte on that tracked socket, N times
 *     hotpath read N        read(2) of one byte from /dev/zero, N times (an untracked fd: the
 *                           receive hooks' fast path)
 *     hotpath recv N        recv(2) with MSG_DONTWAIT on an empty untracked datagram socket, N times
 *                           (each call fails with EAGAIN)
 *     hotpath devnull-tracked N   like devnull, in a process that made a tracked connection first
 *                           (under the shim its background thread runs: the process is threaded)
 *
 * With --thread as a third argument the program also starts one idle thread of its own before the
 * loop: glibc's cancellable syscall wrappers (write, send, ...) take a longer path in a process
 * with more than one thread, so this baseline tells the hook's own cost from that of the shim's
 * thread merely existing.
 *
 * The tracked socket: the program resolves "localhost" with getaddrinfo (AF_INET), listens on
 * 127.0.0.1 (ephemeral port) and connects to the address the name gave; under the shim that
 * connection is tracked. The receiving end is drained every DRAIN_EVERY sends with a raw
 * recvfrom syscall (no libc wrapper, no hook), so the sender never blocks and the drain costs the
 * same with and without the shim. Set-up is identical for every N: callgrind's count for 2N
 * minus the count for N is N calls of the loop body.
 *
 * Prints one line on stderr: "hotpath MODE N threads=T" (T = entries in /proc/self/task after
 * the connect: 2 under the shim means the connection is tracked and its thread runs). Exit 0 ok,
 * 1 on any failure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DRAIN_EVERY 16

#include "proc_self.h"
#include "helper_common.h"

static char sink[1 << 16];

static void drain(int fd)
{
	while (syscall(SYS_recvfrom, fd, sink, sizeof sink, MSG_DONTWAIT, NULL, NULL) > 0)
		;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--thread") != 0)) {
		fprintf(stderr, "usage: hotpath devnull|devnull-tracked|read|recv|send|write N [--thread]\n");
		return 2;
	}
	const char *mode = argv[1];
	long count = atol(argv[2]);
	char byte = 'x';
	if (argc == 4) {
		pthread_t t;
		if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
			die("pthread_create");
	}
	if (strcmp(mode, "devnull") == 0 || strcmp(mode, "devnull-tracked") == 0) {
		int client = -1, server = -1;
		if (strcmp(mode, "devnull-tracked") == 0)
			tracked_pair(&client, &server);
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			die("/dev/null");
		fprintf(stderr, "hotpath %s %ld threads=%d\n", mode, count, task_count());
		for (long i = 0; i < count; i++)
			if (write(fd, &byte, 1) != 1)
				die("write");
		return 0;
	}
	if (strcmp(mode, "read") == 0 || strcmp(mode, "recv") == 0) {
		bool use_read = strcmp(mode, "read") == 0;
		int fd = use_read ? open("/dev/zero", O_RDONLY | O_CLOEXEC) : socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die(use_read ? "/dev/zero" : "socket");
		fprintf(stderr, "hotpath %s %ld threads=%d\n", mode, count, task_count());
		for (long i = 0; i < count; i++) {
			ssize_t n = use_read ? read(fd, &byte, 1) : recv(fd, &byte, 1, MSG_DONTWAIT);
			if (use_read ? n != 1 : n != -1)
				die(mode);
		}
		return 0;
	}
	int use_send = strcmp(mode, "send") == 0;
	if (!use_send && strcmp(mode, "write") != 0) {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	int client, server;
	tracked_pair(&client, &server);
	fprintf(stderr, "hotpath %s %ld threads=%d\n", mode, count, task_count());
	for (long i = 0; i < count; i++) {
		ssize_t n = use_send ? send(client, &byte, 1, 0) : write(client, &byte, 1);
		if (n != 1)
			die(use_send ? "send" : "write");
		if ((i & (DRAIN_EVERY - 1)) == DRAIN_EVERY - 1)
			drain(server);
	}
	return 0;
}
