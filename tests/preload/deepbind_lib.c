/* The library tests/preload/deepbind.c loads with RTLD_DEEPBIND: it resolves a name and connects
 * with its own references to getaddrinfo and connect, which deep binding sends to libc. Built twice:
 * bound at load with full RELRO (-z now) and lazily. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((visibility("default"))) int deepbind_connect(const char *name, unsigned port)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	char service[16];
	snprintf(service, sizeof service, "%u", port);
	if (getaddrinfo(name, service, &hints, &res) != 0)
		return -1;
	int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* send: from the library's dependency (deepbind_dep.c), as deep binding gives it. */
__attribute__((visibility("default"))) ssize_t deepbind_send(int fd, const void *buf, size_t len)
{
	return send(fd, buf, len, MSG_NOSIGNAL);
}

/* The dependency's count of its send calls, read through the library's own reference. */
extern int deepbind_dep_send_calls;
__attribute__((visibility("default"))) int deepbind_dep_sends(void)
{
	return deepbind_dep_send_calls;
}
