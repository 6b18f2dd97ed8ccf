/* What the benchmarks' helper programs share: die(), a tracked loopback connection (the program
 * resolves "localhost" with getaddrinfo (AF_INET), listens on 127.0.0.1 (ephemeral port) and
 * connects to the address the name gave, so under the shim the connection is tracked and the
 * background thread starts), and an idle thread (a control: the shim's thread makes a process
 * threaded, which glibc and the kernel charge for). */
#ifndef DNSAWARE_BENCH_HELPER_COMMON_H
#define DNSAWARE_BENCH_HELPER_COMMON_H

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* A connected pair: *client (tracked under the shim) and *server (the accepted end). */
static void tracked_pair(int *client, int *server)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		die("listen");
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[16];
	snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
	int rc = getaddrinfo("localhost", port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "getaddrinfo(localhost): %s\n", gai_strerror(rc));
		exit(1);
	}
	struct sockaddr_in *to = (struct sockaddr_in *)res->ai_addr;
	if (to->sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
		fprintf(stderr, "localhost does not resolve to 127.0.0.1 first\n");
		exit(1);
	}
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*client < 0 || connect(*client, res->ai_addr, res->ai_addrlen) < 0)
		die("connect");
	freeaddrinfo(res);
	*server = accept(lfd, NULL, NULL);
	if (*server < 0)
		die("accept");
}

__attribute__((unused)) static void *idle_thread(void *unused)
{
	(void)unused;
	for (;;)
		pause();
	return NULL;
}

#endif
