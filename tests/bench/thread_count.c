/* How many threads a process has (entries in /proc/self/task) after:
 *
 *     thread_count none       nothing at all
 *     thread_count resolve    getaddrinfo("localhost"), no connect
 *     thread_count connect    getaddrinfo("localhost") and a TCP connect to the address it gave
 *                             (a listener of its own on 127.0.0.1): the control, under the shim
 *                             this connection is tracked and the background thread starts
 *
 * Prints "threads=N" on stdout. Exit 0 ok, 1 on a failure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proc_self.h"

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "none";
	if (strcmp(mode, "none") != 0 && strcmp(mode, "resolve") != 0 && strcmp(mode, "connect") != 0) {
		fprintf(stderr, "usage: thread_count none|resolve|connect\n");
		return 2;
	}
	if (strcmp(mode, "none") != 0) {
		int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof sa;
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4) < 0 ||
		    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
			perror("listen");
			return 1;
		}
		char port[16];
		snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
		struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
		struct addrinfo *res = NULL;
		int rc = getaddrinfo("localhost", port, &hints, &res);
		if (rc != 0) {
			fprintf(stderr, "getaddrinfo(localhost): %s\n", gai_strerror(rc));
			return 1;
		}
		if (strcmp(mode, "connect") == 0) {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
				perror("connect");
				return 1;
			}
		}
		freeaddrinfo(res);
	}
	printf("threads=%d\n", task_count());
	return 0;
}
