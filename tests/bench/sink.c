/* The server end for the scale and resolver benchmarks: listens on every ADDR:PORT given,
 * accepts every connection and keeps it open, never reading or writing.
 *
 *     sink ADDR:PORT [ADDR:PORT ...]
 *
 * Raises RLIMIT_NOFILE (soft and hard) to fs.nr_open first (needs root beyond the hard limit).
 * Prints "ready" on stdout once every socket listens, then "accepted N" whenever asked by a line
 * on stdin; exits 0 when stdin closes or on SIGTERM. Run it without LD_PRELOAD. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_MAX 64

static void raise_nofile(void)
{
	long nr_open = 1048576;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");
	if (f != NULL) {
		if (fscanf(f, "%ld", &nr_open) != 1)
			nr_open = 1048576;
		fclose(f);
	}
	struct rlimit rl = {.rlim_cur = (rlim_t)nr_open, .rlim_max = (rlim_t)nr_open};
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc - 1 > LISTEN_MAX) {
		fprintf(stderr, "usage: sink ADDR:PORT [ADDR:PORT ...] (at most %d)\n", LISTEN_MAX);
		return 2;
	}
	raise_nofile();
	struct pollfd fds[LISTEN_MAX + 1];
	int n = 0;
	for (int i = 1; i < argc; i++) {
		char host[64];
		const char *colon = strrchr(argv[i], ':');
		if (colon == NULL || (size_t)(colon - argv[i]) >= sizeof host) {
			fprintf(stderr, "sink: bad ADDR:PORT %s\n", argv[i]);
			return 2;
		}
		memcpy(host, argv[i], (size_t)(colon - argv[i]));
		host[colon - argv[i]] = '\0';
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
			fprintf(stderr, "sink: bad address %s\n", host);
			return 2;
		}
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 65535) < 0) {
			fprintf(stderr, "sink: cannot listen on %s: %s\n", argv[i], strerror(errno));
			return 2;
		}
		fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
	}
	fds[n] = (struct pollfd){.fd = 0, .events = POLLIN};
	printf("ready\n");
	fflush(stdout);
	long accepted = 0;
	for (;;) {
		if (poll(fds, (nfds_t)n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (!(fds[i].revents & POLLIN))
				continue;
			for (;;) {
				int c = accept4(fds[i].fd, NULL, NULL, SOCK_CLOEXEC);
				if (c < 0) {
					if (errno == EMFILE || errno == ENFILE)
						fprintf(stderr, "sink: out of fds after %ld connections\n", accepted);
					break;
				}
				accepted++;
			}
		}
		if (fds[n].revents & (POLLIN | POLLHUP)) {
			char line[64];
			if (fgets(line, sizeof line, stdin) == NULL)
				return 0;
			printf("accepted %ld\n", accepted);
			fflush(stdout);
		}
	}
}
