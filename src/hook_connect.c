/* connect: a TCP client socket whose destination came from a name becomes tracked; one whose
 * destination has left its name's record set is steered to a current address, and a blocking
 * connect that fails tries the name's other addresses (design.md, "Connect steering"). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "balance.h"
#include "connect_failures.h"
#include "dns_fd.h"
#include "dns_learn.h"
#include "log.h"
#include "names.h"
#include "real.h"
#include "resolver_thread.h"
#include "runtime.h"
#include "sockview.h"
#include "stats.h"
#include "stats_file.h"
#include "steer.h"
#include "tracked.h"

static struct tracked_socket *new_tracked(int fd, const struct ip_addr *peer, uint16_t port)
{
	struct tracked_socket *s = calloc(1, sizeof *s);
	if (s == NULL)
		return NULL;
	tracked_init(s);
	if (!sockview_record_identity(fd, s)) {
		free(s);
		return NULL;
	}
	s->peer = *peer;
	s->port = port;
	s->connected_at_ms = runtime_now_ms();
	return s;
}

/* was_current: the peer was in a name's set when the connect was planned. If an answer removed it
 * while the connect was on its way, the socket is still that name's to drain (the thread marks it
 * draining when it takes it over): left untracked, it would stay on the old address for good. */
static void track(int fd, const struct ip_addr *peer, uint16_t port, bool connecting, bool was_current,
		  uint64_t started_ns)
{
	/* Whatever this fd number meant before (a socket closed behind our back) is over. */
	tracked_detach(fd);
	if (resolver_thread_failed() || !sockview_is_tcp(fd))
		return;
	struct tracked_socket *s = new_tracked(fd, peer, port);
	if (s == NULL)
		return;
	/* Still connecting: the thread watches how it ends, since a failure here is the program's
	 * to see (SO_ERROR) and the shim's only to remember. */
	s->connecting = connecting;
	s->connect_started_ns = started_ns;
	sigset_t saved;
	names_lock(&saved);
	s->name_count = names_claim_for_address(peer, s->names, TRACKED_MAX_NAMES);
	if (s->name_count == 0 && was_current)
		s->name_count = names_claim_departed(peer, s->names, TRACKED_MAX_NAMES);
	if (s->name_count > 0 && !tracked_attach(fd, s)) {
		for (unsigned i = 0; i < s->name_count; i++)
			names_release(s->names[i]);
		s->name_count = 0;
	}
	if (s->name_count > 0) {
		names_count_socket(s->names, s->name_count, peer, +1);
		s->conns_counted = true;
	}
	names_unlock(&saved);
	if (s->name_count == 0) {
		free(s);
		return;
	}
	resolver_thread_adopt(s);
}

/* Where a connect goes, and what it tries next if that fails. */
struct connect_route {
	struct ip_addr first;
	bool redirected;
	bool departed;              /* redirected because first's name no longer resolves to peer */
	bool balanced;              /* redirected to the current address with the fewest sockets */
	uint32_t conns_asked, conns_first; /* their counts then (the debug line) */
	char host[NAME_MAX_LEN + 1];
	struct ip_addr others[STEER_MAX_CANDIDATES + 1];
	unsigned other_count;
};

static bool failover_error(int e)
{
	return e == ECONNREFUSED || e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH;
}

/* A different process starts its turns elsewhere: processes that make one connect each (a
 * command run per request) spread over the addresses too. */
static unsigned balance_turn_offset(void)
{
	static _Atomic unsigned offset;
	unsigned got = atomic_load_explicit(&offset, memory_order_relaxed);
	if (got == 0) {
		got = runtime_random() | 1u;
		atomic_store_explicit(&offset, got, memory_order_relaxed);
	}
	return got;
}

/* Balance (DNSAWARE_BALANCE=1): a connect to one of the name's current addresses goes to the one
 * of its family with the fewest of this process's tracked sockets (balance.h). True when that is
 * another address than peer: route->first is set. */
static bool choose_balanced(const struct steer_plan *plan, const struct ip_addr *peer, uint16_t port, uint64_t now,
			    struct connect_route *route)
{
	struct balance_candidate candidates[STEER_MAX_CANDIDATES];
	unsigned index[STEER_MAX_CANDIDATES], n = 0, asked = 0;
	for (unsigned i = 0; i < plan->count; i++) {
		if (plan->current[i].family != peer->family)
			continue;
		if (ip_addr_equal(&plan->current[i], peer))
			asked = n;
		candidates[n] = (struct balance_candidate){
			.conns = plan->conns[i],
			.cooling = steer_cooling(&names_failed_connects, &plan->current[i], port, now)};
		index[n++] = i;
	}
	int pick = balance_choose(candidates, n, plan->balance_turn + balance_turn_offset());
	if (pick < 0 || ip_addr_equal(&plan->current[index[pick]], peer))
		return false;
	route->first = plan->current[index[pick]];
	route->conns_asked = candidates[asked].conns;
	route->conns_first = candidates[pick].conns;
	return true;
}

/* The route of a connect to peer:port. False when no name produced peer, or when it left its
 * name's set and the name has no current address of its family: the connect goes as asked. */
static bool plan_route(const struct ip_addr *peer, uint16_t port, struct connect_route *route)
{
	struct steer_plan plan;
	sigset_t saved;
	bool routed = false;
	names_lock(&saved);
	if (!names_steer_plan(peer, &plan))
		goto done;
	uint64_t now = runtime_now_ms();
	strcpy(route->host, plan.host);
	route->departed = plan.departed;
	route->balanced = !plan.departed && runtime_config.balance && choose_balanced(&plan, peer, port, now, route);
	/* The others, for a failed blocking connect, in the name's order: without the address the
	 * connect goes to (balance's choice, or the program's). */
	struct ip_addr order[STEER_MAX_CANDIDATES];
	unsigned healthy = 0;
	unsigned n = steer_order(plan.current, plan.count, peer->family, port, &names_failed_connects, now,
				 plan.turn, route->balanced ? &route->first : peer, 1, order, STEER_MAX_CANDIDATES,
				 &healthy);
	if (route->balanced) {
		route->redirected = true;
		route->other_count = 0;
		for (unsigned i = 0; i < n; i++)
			route->others[route->other_count++] = order[i];
		routed = true;
		goto done;
	}
	route->redirected = plan.departed || (healthy > 0 && steer_cooling(&names_failed_connects, peer, port, now));
	if (plan.departed && n == 0)
		goto done;
	unsigned next = 0;
	route->first = *peer;
	if (route->redirected)
		route->first = order[next++];
	route->other_count = 0;
	for (; next < n; next++)
		route->others[route->other_count++] = order[next];
	/* A peer avoided for its cooldown is still the name's: the last one to try. */
	if (route->redirected && !plan.departed)
		route->others[route->other_count++] = *peer;
	routed = true;
done:
	names_unlock(&saved);
	return routed;
}

/* The program's sockaddr, same family and port, aimed at `to` (v4-mapped for an IPv6 socket). */
static bool aim(const struct sockaddr *addr, socklen_t len, const struct ip_addr *to, struct sockaddr_storage *out)
{
	if (len > sizeof *out)
		return false;
	memcpy(out, addr, len);
	if (addr->sa_family == AF_INET && to->family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memcpy(&((struct sockaddr_in *)out)->sin_addr, to->bytes, 4);
		return true;
	}
	if (addr->sa_family == AF_INET6 && len >= offsetof(struct sockaddr_in6, sin6_addr) + 16) {
		struct in6_addr *a6 = &((struct sockaddr_in6 *)out)->sin6_addr;
		if (to->family == AF_INET6) {
			memcpy(a6->s6_addr, to->bytes, 16);
		} else {
			memset(a6->s6_addr, 0, 10);
			a6->s6_addr[10] = 0xff;
			a6->s6_addr[11] = 0xff;
			memcpy(a6->s6_addr + 12, to->bytes, 4);
		}
		return true;
	}
	return false;
}

/* The candidates come from the peer's own family, so every one of them can be aimed at. */
static int connect_to(int fd, const struct sockaddr *addr, socklen_t len, const struct ip_addr *to)
{
	struct sockaddr_storage aimed;
	if (!aim(addr, len, to, &aimed)) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	return REAL(connect)(fd, (const struct sockaddr *)&aimed, len);
}

static uint64_t timeval_ms(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000 + (uint64_t)tv->tv_usec / 1000;
}

/* One attempt of a connect to an address of host ended: its name's metrics (issue 18). An attempt
 * still going on in the kernel is counted when it ends (connect_watch.c). */
static void record_attempt(const char *host, int rc, int e, uint64_t started_ns)
{
	if (rc != 0 && (e == EINPROGRESS || e == EINTR))
		return;
	sigset_t saved;
	names_lock(&saved);
	names_record_connect_host(host, rc == 0 ? CONNECT_OK : connect_result_of_errno(e), runtime_now_ns() - started_ns,
				  runtime_config.metrics_names);
	names_unlock(&saved);
	if (rc != 0)
		stats_file_at_exit_for_failures();
}

/* A blocking connect to route->first failed with first_errno: tries the name's other addresses,
 * all within the socket's send timeout if it has one (it bounds a blocking connect). Returns 0
 * with *reached set, or -1 with errno: the first error when every address failed. */
static int fail_over(int fd, const struct sockaddr *addr, socklen_t len, uint16_t port,
		     const struct connect_route *route, int first_errno, struct ip_addr *reached)
{
	struct timeval timeout = {0};
	socklen_t tlen = sizeof timeout;
	bool bounded = getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, &tlen) == 0 && timeval_ms(&timeout) > 0;
	uint64_t deadline = runtime_now_ms() + (bounded ? timeval_ms(&timeout) : 0);
	int result = -1, result_errno = first_errno;
	char from[IP_PEER_STRLEN], to[IP_PEER_STRLEN];

	for (unsigned i = 0; i < route->other_count; i++) {
		const struct ip_addr *next = &route->others[i];
		if (bounded) {
			uint64_t now = runtime_now_ms();
			if (now >= deadline)
				break;
			/* This attempt gets what is left of the program's timeout, then it is put back. */
			uint64_t left = deadline - now;
			struct timeval rest = { .tv_sec = (time_t)(left / 1000), .tv_usec = (suseconds_t)(left % 1000) * 1000 };
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &rest, sizeof rest);
		}
		uint64_t attempt_ns = runtime_now_ns();
		int rc = connect_to(fd, addr, len, next);
		int e = errno;
		record_attempt(route->host, rc, e, attempt_ns);
		if (bounded)
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
		if (rc == 0 || e == EINTR || e == EINPROGRESS) {
			/* Connected, or going on in the kernel (interrupted, or the timeout ran out). */
			*reached = *next;
			stats_count(&stats.connect_failovers, 1);
			result = rc;
			result_errno = e;
			log_msg(LOG_INFO, "connect fd %d to %s failed (%s); failed over to %s of %s", fd,
				ip_addr_format_peer(&route->first, port, from), strerror(first_errno),
				ip_addr_format_peer(next, port, to), route->host);
			if (rc == 0)
				connect_success_remember(next, port);
			break;
		}
		if (!failover_error(e))
			break;
		connect_failure_remember(next, port, route->host, false);
	}
	if (result != 0)
		errno = result_errno;
	return result;
}

/* connect called again on a socket the library tracks that is still connecting or connected: how
 * a program asks for a non-blocking connect's result (Ruby's connect_nonblock, Perl's
 * IO::Socket::IP: 0, the failure, EALREADY or EISCONN). The kernel ignores the address: it is no
 * new attempt, so it is neither routed (balance would aim it elsewhere and track the socket under
 * an address it never went to) nor counted (the thread's watch or close counts how the first
 * ended). A socket whose connect failed (back in CLOSE) may be connected anew: a new attempt. */
static bool connect_again(int fd)
{
	struct tracked_socket *s = fdtable_socket(fdtable_load(fd));
	if (s == NULL || sockview_identity(fd, s) == IDENTITY_DIFFERENT)
		return false;
	struct socket_view view;
	return sockview_read(fd, &view) && view.tcp_state != TCP_CLOSE;
}

__attribute__((visibility("default"))) int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct ip_addr peer;
	uint16_t port;
	runtime_init();
	if (!runtime_inside && atomic_load_explicit(&runtime_active, memory_order_relaxed)) {
		dns_fd_connect(fd, addr, len);
		dns_learn_pending();
	}
	if (runtime_inside || !atomic_load_explicit(&runtime_active, memory_order_relaxed) ||
	    atomic_load_explicit(&names_count, memory_order_relaxed) == 0 ||
	    !ip_addr_from_sockaddr(addr, len, &peer, &port))
		return REAL(connect)(fd, addr, len);

	runtime_settle_fork();
	int saved_errno = errno;
	runtime_inside = true;
	if (connect_again(fd)) {
		runtime_inside = false;
		errno = saved_errno;
		return REAL(connect)(fd, addr, len);
	}
	struct connect_route route;
	struct sockaddr_storage aimed;
	bool routed = plan_route(&peer, port, &route) && sockview_is_tcp(fd);
	if (routed && route.redirected && !aim(addr, len, &route.first, &aimed))
		routed = false; /* cannot be expressed in the program's sockaddr: as asked */
	if (routed && route.redirected && !route.balanced && !runtime_config.redirect) {
		/* Steering is off: a departed peer is connected as asked and not tracked, as before. */
		routed = !route.departed;
		route.redirected = false;
		route.first = peer;
	}
	struct ip_addr reached = routed ? route.first : peer;
	uint64_t started_ns = runtime_now_ns();
	int rc = routed && route.redirected ? REAL(connect)(fd, (const struct sockaddr *)&aimed, len)
					    : REAL(connect)(fd, addr, len);
	int connect_errno = rc == 0 ? saved_errno : errno;
	if (routed)
		record_attempt(route.host, rc, connect_errno, started_ns);
	if (routed && route.balanced) {
		char from[IP_PEER_STRLEN], to[IP_PEER_STRLEN];
		if (log_enabled(LOG_DEBUG))
			log_msg(LOG_DEBUG, "balanced connect fd %d from %s (%u sockets of %s there) to %s (%u)", fd,
				ip_addr_format_peer(&peer, port, from), route.conns_asked, route.host,
				ip_addr_format_peer(&route.first, port, to), route.conns_first);
	} else if (routed && route.redirected) {
		stats_count(&stats.connects_redirected, 1);
		char from[IP_PEER_STRLEN], to[IP_PEER_STRLEN];
		log_msg(LOG_INFO, "redirected connect fd %d from %s to %s (%s)", fd, ip_addr_format_peer(&peer, port, from),
			ip_addr_format_peer(&route.first, port, to),
			route.departed ? "the name no longer resolves to it" : "it refused a connection lately");
	}
	if (routed && rc != 0 && failover_error(connect_errno)) {
		int flags = REAL(fcntl)(fd, F_GETFL);
		bool failing_over =
			runtime_config.redirect && flags >= 0 && !(flags & O_NONBLOCK) && route.other_count > 0;
		/* Failing over logs its own line. */
		connect_failure_remember(&route.first, port, route.host, !failing_over);
		if (failing_over) {
			rc = fail_over(fd, addr, len, port, &route, connect_errno, &reached);
			connect_errno = rc == 0 ? saved_errno : errno;
		}
	} else if (routed && rc == 0) {
		connect_success_remember(&reached, port);
	}
	/* EINPROGRESS and EINTR: the connection goes on in the kernel, so it is the program's socket
	 * to that peer from now on. */
	if (rc == 0 || connect_errno == EINPROGRESS || connect_errno == EINTR)
		track(fd, &reached, port, rc != 0, routed, started_ns);
	runtime_inside = false;
	errno = connect_errno;
	return rc;
}
