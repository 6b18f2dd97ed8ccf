/* The background thread's c-ares channel, given the real libc calls so the library never tracks
 * itself, and driven with ares_getsock + poll + ares_process_fd. */
#ifndef DNSAWARE_CHANNEL_H
#define DNSAWARE_CHANNEL_H

#include <ares.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

/* At most this many of the channel's sockets are polled at once. */
#define CHANNEL_POLL_MAX ARES_GETSOCK_MAXNUM

/* Sets the channel up (resolv.conf, DNSAWARE_NAMESERVERS) and its sockets (dns_sockets.h). Called by
 * the program thread whose connect starts the background thread, inside the hook: the files c-ares
 * reads and the sockets it will use are made there, never on the thread. False, logged, when it
 * cannot be. */
bool channel_open(void);

/* c-ares' library set-up, once per process whichever channel needs it first (its counter is not
 * safe to bump from two threads at once). */
void channel_library_init(void);

/* Starts resolving host; callback gets the answer (possibly before this returns). */
void channel_getaddrinfo(const char *host, const struct ares_addrinfo_hints *hints, ares_addrinfo_callback callback,
			 void *arg);

/* Whether /etc/hosts (as c-ares reads it, HOSTALIASES included) names host: its answers are not
 * DNS's. The background thread only. */
bool channel_in_hosts_file(const char *host);
/* The same with another channel (a lookup's own, stale_direct.c). */
bool channel_hosts_file_names(ares_channel of, const char *host);

/* The channel's sockets to poll, into fds (at most CHANNEL_POLL_MAX); returns how many. */
unsigned channel_pollfds(struct pollfd *fds);

/* timeout_ms, or less when a query needs attention (a retry or a timeout) sooner. */
uint64_t channel_timeout_ms(uint64_t timeout_ms);

/* After poll: lets c-ares read and write the socket fd reports ready. */
void channel_process(const struct pollfd *fd);

/* After every wait: runs c-ares' timeouts and retries. */
void channel_process_timeouts(void);

/* Fork child: the parent's channel is kept, unused (fork_keep.h); the child opens its own. */
void channel_after_fork_child(void);

#endif
