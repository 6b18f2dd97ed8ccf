#include "channel.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

#include "dns_sockets.h"
#include "fork_keep.h"
#include "log.h"
#include "real.h"
#include "runtime.h"

static ares_channel channel;

static ares_socket_t channel_socket(int domain, int type, int protocol, void *user)
{
	(void)protocol;
	(void)user;
	return dns_sockets_lend(domain, type);
}

static int channel_close(ares_socket_t fd, void *user)
{
	(void)user;
	dns_sockets_return(fd);
	return 0;
}

static int channel_connect(ares_socket_t fd, const struct sockaddr *addr, ares_socklen_t len, void *user)
{
	(void)user;
	if (shimfd_is_lost(fd)) {
		errno = EBADF;
		return -1;
	}
	return REAL(connect)(fd, addr, len);
}

static ares_ssize_t channel_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags, struct sockaddr *from,
				     ares_socklen_t *from_len, void *user)
{
	(void)user;
	if (shimfd_is_lost(fd)) {
		errno = EBADF;
		return -1;
	}
	return recvfrom(fd, buf, len, flags, from, from_len);
}

static ares_ssize_t channel_sendv(ares_socket_t fd, const struct iovec *iov, int iovcnt, void *user)
{
	(void)user;
	if (shimfd_is_lost(fd)) {
		errno = EBADF;
		return -1;
	}
	return REAL(writev)(fd, iov, iovcnt);
}

static const struct ares_socket_functions channel_functions = {
	.asocket = channel_socket,
	.aclose = channel_close,
	.aconnect = channel_connect,
	.arecvfrom = channel_recvfrom,
	.asendv = channel_sendv,
};

static void ares_library_init_all(void)
{
	ares_library_init(ARES_LIB_INIT_ALL);
}

/* The channel's sockets, one UDP and one TCP for each of its first servers. */
static void prepare_sockets(void)
{
	int families[DNS_SOCKETS_SERVERS];
	unsigned count = 0;
	struct ares_addr_port_node *servers = NULL;
	if (ares_get_servers_ports(channel, &servers) == ARES_SUCCESS)
		for (struct ares_addr_port_node *s = servers; s != NULL; s = s->next) {
			if (count == DNS_SOCKETS_SERVERS) {
				log_msg(LOG_DEBUG, "the background resolver asks the first %d name servers only",
					DNS_SOCKETS_SERVERS);
				break;
			}
			families[count++] = s->family;
		}
	ares_free_data(servers);
	dns_sockets_prepare(families, count);
}

void channel_library_init(void)
{
	static pthread_once_t library_once = PTHREAD_ONCE_INIT;
	pthread_once(&library_once, ares_library_init_all);
}

bool channel_open(void)
{
	channel_library_init();
	struct ares_options options = {.timeout = 2000, .tries = 2};
	int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	int rc = ares_init_options(&channel, &options, mask);
	if (rc != ARES_SUCCESS) {
		log_msg(LOG_ERROR, "cannot set up the resolver: %s", ares_strerror(rc));
		channel = NULL;
		return false;
	}
	ares_set_socket_functions(channel, &channel_functions, NULL);
	if (runtime_config.nameservers[0] != '\0') {
		rc = ares_set_servers_ports_csv(channel, runtime_config.nameservers);
		if (rc != ARES_SUCCESS)
			log_msg(LOG_WARN, "DNSAWARE_NAMESERVERS=%s is not a list of host[:port] (%s); using resolv.conf",
				runtime_config.nameservers, ares_strerror(rc));
	}
	prepare_sockets();
	return true;
}

void channel_getaddrinfo(const char *host, const struct ares_addrinfo_hints *hints, ares_addrinfo_callback callback,
			 void *arg)
{
	ares_getaddrinfo(channel, host, NULL, hints, callback, arg);
}

bool channel_hosts_file_names(ares_channel of, const char *host)
{
	static const int families[] = {AF_INET, AF_INET6};
	for (unsigned i = 0; i < sizeof families / sizeof families[0]; i++) {
		struct hostent *he = NULL;
		if (ares_gethostbyname_file(of, host, families[i], &he) == ARES_SUCCESS) {
			ares_free_hostent(he);
			return true;
		}
	}
	return false;
}

bool channel_in_hosts_file(const char *host)
{
	return channel_hosts_file_names(channel, host);
}

unsigned channel_pollfds(struct pollfd *fds)
{
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	unsigned n = 0;
	/* Unsigned, and not through ARES_GETSOCK_WRITABLE: for the last socket that macro shifts an
	 * int's 1 into its sign bit (1 << 31), undefined behaviour (found by UBSan). */
	unsigned bitmask = (unsigned)ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
	for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
		short events = 0;
		if (bitmask & (1u << i))
			events |= POLLIN;
		if (bitmask & (1u << (i + ARES_GETSOCK_MAXNUM)))
			events |= POLLOUT;
		if (events == 0)
			continue;
		fds[n++] = (struct pollfd){.fd = socks[i], .events = events};
	}
	return n;
}

uint64_t channel_timeout_ms(uint64_t timeout_ms)
{
	struct timeval max = {.tv_sec = (time_t)(timeout_ms / 1000), .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000};
	struct timeval tv;
	struct timeval *t = ares_timeout(channel, &max, &tv);
	uint64_t ares_ms = (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000;
	return ares_ms < timeout_ms ? ares_ms : timeout_ms;
}

void channel_process(const struct pollfd *fd)
{
	/* poll looks fds up again on every pass: a number the program closed and reused while we
	 * waited may report the program's file, which is never ours to read. c-ares is told about
	 * a lost socket at once (its read fails with EBADF: it drops the socket and asks again on
	 * a new one) rather than left to poll a program's file until its query times out. */
	if (shimfd_is_lost(fd->fd)) {
		if (fd->revents != 0)
			ares_process_fd(channel, fd->fd, ARES_SOCKET_BAD);
		return;
	}
	ares_socket_t r = fd->revents & (POLLIN | POLLERR | POLLHUP) ? fd->fd : ARES_SOCKET_BAD;
	ares_socket_t w = fd->revents & (POLLOUT | POLLERR) ? fd->fd : ARES_SOCKET_BAD;
	if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
		ares_process_fd(channel, r, w);
}

void channel_process_timeouts(void)
{
	ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

void channel_after_fork_child(void)
{
	void *const kept[] = {channel};
	fork_keep(kept, 1);
	channel = NULL;
	dns_sockets_after_fork_child();
}
