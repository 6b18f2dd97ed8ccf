#include "dns_sockets.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "real.h"
#include "runtime.h"

#define SLOTS (2 * DNS_SOCKETS_SERVERS)
/* A slot's state: EMPTY (no socket), the fd (kept, free to lend), or the fd with LENT (c-ares has
 * it). Made EMPTY -> fd only by a program thread (prepare, refill), which also fills `spare`; every
 * other change by the background thread. */
#define EMPTY ((int64_t)-1)
#define LENT ((int64_t)1 << 40)
/* Datagrams still queued on a returned UDP socket (late answers) are read away, at most this many. */
#define DRAIN_MAX 64

static struct slot {
	int family; /* 0: unused; set before the thread starts, then read only */
	int type;
	_Atomic int64_t state;
	/* A socket made while c-ares still holds the slot's lost one (the program closed every fd
	 * during a query): it takes the lost one's place when c-ares lets go of it. */
	_Atomic int64_t spare;
} slots[SLOTS];

static int64_t fd_of(int64_t state)
{
	return state & (LENT - 1);
}

/* On a program thread: a new socket for the slot, into *where if that is still EMPTY. */
static void fill(struct slot *slot, _Atomic int64_t *where)
{
	if (slot->family == 0 || atomic_load(where) != EMPTY)
		return;
	/* Non-blocking: c-ares configures no socket it did not make itself (no O_NONBLOCK, whatever
	 * ares_set_socket_functions is given), and reads a UDP socket until EAGAIN. A blocking one would
	 * hold the thread in recvfrom for good after a reply c-ares drops (wrong ID, garbage) or one that
	 * sends the query to TCP (truncated), with no timeout ever run again. */
	int fd = REAL(socket)(slot->family, slot->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return; /* an IPv6 server where IPv6 is off, say: c-ares finds no socket for it */
	fd = shimfd_adopt(fd, false);
	int64_t expected = EMPTY;
	if (!atomic_compare_exchange_strong(where, &expected, (int64_t)fd) && shimfd_release(fd))
		REAL(close)(fd); /* another connect filled it first */
}

void dns_sockets_prepare(const int *families, unsigned count)
{
	for (unsigned i = 0; i < count && i < DNS_SOCKETS_SERVERS; i++) {
		struct slot *udp = &slots[2 * i], *tcp = &slots[2 * i + 1];
		*udp = (struct slot){.family = families[i], .type = SOCK_DGRAM, .state = EMPTY, .spare = EMPTY};
		*tcp = (struct slot){.family = families[i], .type = SOCK_STREAM, .state = EMPTY, .spare = EMPTY};
		fill(udp, &udp->state);
		fill(tcp, &tcp->state);
	}
}

/* The program closed the slot's fd (a daemon closing every fd, say): the number is its now. The
 * spare, if a connect made one meanwhile, takes its place. */
static void forget_lost(struct slot *slot, int64_t state)
{
	if (atomic_compare_exchange_strong(&slot->state, &state, EMPTY))
		shimfd_release((int)fd_of(state)); /* lost: releases the slot, closes nothing */
	int64_t spare = atomic_exchange(&slot->spare, EMPTY);
	int64_t expected = EMPTY;
	if (spare != EMPTY && !atomic_compare_exchange_strong(&slot->state, &expected, spare))
		atomic_store(&slot->spare, spare); /* a connect filled the slot first: still spare */
}

void dns_sockets_refill(void)
{
	for (unsigned i = 0; i < SLOTS; i++) {
		struct slot *slot = &slots[i];
		if (slot->family == 0)
			continue;
		int64_t state = atomic_load(&slot->state);
		if (state != EMPTY && shimfd_is_lost((int)fd_of(state))) {
			if (state & LENT)
				fill(slot, &slot->spare); /* c-ares lets go of the lost one at its next use */
			else
				forget_lost(slot, state);
		}
		fill(slot, &slot->state);
	}
}

int dns_sockets_lend(int domain, int type)
{
	for (unsigned i = 0; i < SLOTS; i++) {
		struct slot *slot = &slots[i];
		if (slot->family != domain || slot->type != type)
			continue;
		int64_t state = atomic_load(&slot->state);
		if (state == EMPTY || (state & LENT))
			continue;
		if (shimfd_is_lost((int)state)) {
			forget_lost(slot, state);
			continue;
		}
		if (atomic_compare_exchange_strong(&slot->state, &state, state | LENT))
			return (int)state;
	}
	errno = EMFILE;
	return -1;
}

/* Back to the state of a new socket: unconnected (a TCP connection is reset; the source port is
 * given up), nothing queued, no pending error. */
static void disconnect(int fd, int type)
{
	struct sockaddr unspecified = {.sa_family = AF_UNSPEC};
	REAL(connect)(fd, &unspecified, sizeof unspecified);
	if (type == SOCK_DGRAM) {
		char datagram[512];
		for (int i = 0; i < DRAIN_MAX && recv(fd, datagram, sizeof datagram, MSG_DONTWAIT) >= 0; i++) {
		}
	}
	int error;
	socklen_t length = sizeof error;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
}

void dns_sockets_return(int fd)
{
	for (unsigned i = 0; i < SLOTS; i++) {
		struct slot *slot = &slots[i];
		int64_t state = atomic_load(&slot->state);
		if (state != ((int64_t)fd | LENT))
			continue;
		if (shimfd_is_lost(fd)) {
			forget_lost(slot, state);
			return;
		}
		int saved_errno = errno;
		disconnect(fd, slot->type);
		errno = saved_errno;
		atomic_store(&slot->state, (int64_t)fd);
		return;
	}
}

void dns_sockets_after_fork_child(void)
{
	for (unsigned i = 0; i < SLOTS; i++)
		slots[i] = (struct slot){.state = EMPTY, .spare = EMPTY};
}
