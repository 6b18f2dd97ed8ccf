/* Which of the program's fds are its DNS sockets, and the hooks' hand-over of their bytes to
 * dns_watch.c. Async-signal-safe: no lock, no allocation (design.md, "Programs that speak DNS
 * themselves"). */
#ifndef DNSAWARE_DNS_FD_H
#define DNSAWARE_DNS_FD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "tracked.h"

#define DNS_PORT 53

/* A DNS server's address: port 53, IPv4 or IPv6. The send hooks test it inline on every call that
 * names a destination, so it stays a few instructions. */
static inline bool dns_fd_is_server(const struct sockaddr *addr, socklen_t len)
{
	return addr != NULL && len >= sizeof(struct sockaddr_in) &&
	       (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
	       ((const struct sockaddr_in *)addr)->sin_port == htons(DNS_PORT); /* sin6_port is there too */
}

/* The pool index of fd's DNS socket, or -1. */
static inline int dns_fd_index(int fd)
{
	uintptr_t slot = fdtable_load(fd);
	return fdtable_is_dns(slot) ? fdtable_dns_index(slot) : -1;
}

/* A message's iov count as the recording takes it: none past IOV_MAX, which the kernel refuses
 * anyway (msg_iovlen is a size_t the program fills). */
static inline int dns_fd_msg_iovcnt(const struct msghdr *msg)
{
	return msg->msg_iovlen > 1024 ? 0 : (int)msg->msg_iovlen;
}

/* connect(fd, addr): a connect to port 53 marks fd as a DNS socket; a connect elsewhere ends it. */
void dns_fd_connect(int fd, const struct sockaddr *addr, socklen_t len);
/* A send on fd, to `to` (NULL: its connected peer): the pool index to record it in, marking fd if
 * `to` is a DNS server; -1 when it is no DNS socket (or learning is off). */
int dns_fd_for_send(int fd, const struct sockaddr *to, socklen_t tolen);

/* Around the real send of iov on DNS socket index: a datagram (all of iov) is recorded before it
 * leaves (its answer may be read by another thread before the call returns); a stream's bytes
 * after, as many as were sent. */
void dns_fd_before_send(int index, const struct iovec *iov, int iovcnt);
void dns_fd_after_send(int index, const struct iovec *iov, int iovcnt, ssize_t sent);

/* After a receive that returned got (> 0) bytes into iov (capacity: the iov's total), with the
 * call's flags and, for recvmsg, the message's msg_flags. */
void dns_fd_received(int index, const struct iovec *iov, int iovcnt, ssize_t got, int flags, int msg_flags);

#endif
