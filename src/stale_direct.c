#include "stale_direct.h"

#include <ares.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "answer.h"
#include "channel.h"
#include "real.h"
#include "runtime.h"

static ares_socket_t direct_socket(int domain, int type, int protocol, void *user)
{
	(void)user;
	return REAL(socket)(domain, type | SOCK_CLOEXEC, protocol);
}

static int direct_close(ares_socket_t fd, void *user)
{
	(void)user;
	return REAL(close)(fd);
}

static int direct_connect(ares_socket_t fd, const struct sockaddr *addr, ares_socklen_t len, void *user)
{
	(void)user;
	return REAL(connect)(fd, addr, len);
}

static ares_ssize_t direct_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags, struct sockaddr *from,
				    ares_socklen_t *from_len, void *user)
{
	(void)user;
	return REAL(recvfrom)(fd, buf, len, flags, from, from_len);
}

static ares_ssize_t direct_sendv(ares_socket_t fd, const struct iovec *iov, int iovcnt, void *user)
{
	(void)user;
	return REAL(writev)(fd, iov, iovcnt);
}

static const struct ares_socket_functions direct_functions = {
	.asocket = direct_socket,
	.aclose = direct_close,
	.aconnect = direct_connect,
	.arecvfrom = direct_recvfrom,
	.asendv = direct_sendv,
};

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *result)
{
	(void)timeouts;
	struct stale_direct_answer *out = arg;
	if (status == ARES_EDESTRUCTION)
		return;
	out->done = true;
	out->status = status;
	if (status == ARES_SUCCESS && result != NULL) {
		struct answer answer;
		answer_collect(result, NULL, &answer);
		for (unsigned i = 0; i < answer.count && out->count < sizeof out->addrs / sizeof out->addrs[0]; i++)
			out->addrs[out->count++] = answer.addrs[i];
		out->ttl_seconds = answer.ttl_seconds;
	}
	if (result != NULL)
		ares_freeaddrinfo(result);
}

/* Runs the channel until the answer or the deadline. */
static void drive(ares_channel channel, const struct stale_direct_answer *out, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t now = runtime_now_ms();
		if (out->done || now >= deadline_ms)
			return;
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd fds[ARES_GETSOCK_MAXNUM];
		nfds_t n = 0;
		unsigned bitmask = (unsigned)ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
		for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short events = (short)((bitmask & (1u << i) ? POLLIN : 0) |
					       (bitmask & (1u << (i + ARES_GETSOCK_MAXNUM)) ? POLLOUT : 0));
			if (events != 0)
				fds[n++] = (struct pollfd){.fd = socks[i], .events = events};
		}
		if (n == 0)
			return; /* nothing in flight: c-ares answered or gave up */
		uint64_t left = deadline_ms - now;
		struct timeval max = {.tv_sec = (time_t)(left / 1000), .tv_usec = (suseconds_t)(left % 1000) * 1000};
		struct timeval tv;
		struct timeval *t = ares_timeout(channel, &max, &tv);
		int wait_ms = (int)(t->tv_sec * 1000 + t->tv_usec / 1000);
		if (poll(fds, n, wait_ms > 0 ? wait_ms : 1) > 0) {
			for (nfds_t i = 0; i < n; i++)
				if (fds[i].revents != 0)
					ares_process_fd(channel,
							fds[i].revents & (POLLIN | POLLERR | POLLHUP) ? fds[i].fd : ARES_SOCKET_BAD,
							fds[i].revents & (POLLOUT | POLLERR) ? fds[i].fd : ARES_SOCKET_BAD);
		}
		ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
}

void stale_direct_query(const char *node, int family, uint64_t deadline_ms, struct stale_direct_answer *out)
{
	int saved_errno = errno;
	ares_channel channel = NULL;
	*out = (struct stale_direct_answer){0};
	channel_library_init();
	uint64_t now = runtime_now_ms();
	struct ares_options options = {.timeout = (int)(deadline_ms > now ? deadline_ms - now : 1), .tries = 1};
	if (ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS)
		goto done;
	/* resolv.conf's servers, as the program's resolver: never DNSAWARE_NAMESERVERS. */
	ares_set_socket_functions(channel, &direct_functions, NULL);
	struct ares_addrinfo_hints hints = {.ai_family = family, .ai_socktype = SOCK_STREAM, .ai_flags = ARES_AI_NOSORT};
	ares_getaddrinfo(channel, node, NULL, &hints, on_answer, out);
	drive(channel, out, deadline_ms);
	if (out->done && out->status == ARES_SUCCESS)
		out->in_hosts = channel_hosts_file_names(channel, node);
	ares_destroy(channel);
done:
	errno = saved_errno;
}
