/* The sockets the background thread's c-ares channel talks to its name servers on. They are made by
 * a program thread inside a hook (the connect that starts the thread, or a later connect after the
 * program closed some of them), placed in the library's band of fds (fdplace.h), and lent to c-ares
 * for each burst of queries: a closed one is disconnected and kept, never closed, so the thread never
 * makes an fd of its own (runtime.h, runtime_on_thread). A disconnected socket takes a new random
 * source port at its next connect, as a new one would.
 *
 * c-ares 1.18 holds at most one UDP and one TCP socket per server; one of each per server is kept,
 * for the first DNS_SOCKETS_SERVERS servers. */
#ifndef DNSAWARE_DNS_SOCKETS_H
#define DNSAWARE_DNS_SOCKETS_H

#include <stdbool.h>

#define DNS_SOCKETS_SERVERS 4

/* On a program thread: one UDP and one TCP socket of each family for each server (families[i], up
 * to DNS_SOCKETS_SERVERS of them), replacing none already there. */
void dns_sockets_prepare(const int *families, unsigned count);

/* On a program thread, inside a tracked connect: makes again the sockets the program closed (a
 * daemon that closes every fd, by any means: each kept socket's identity is checked, one fstat). */
void dns_sockets_refill(void);

/* On the thread, for c-ares: a socket of that domain and type, or -1 with errno EMFILE (none left:
 * the program closed it; c-ares then tries another server, and the next tracked connect makes it
 * again). */
int dns_sockets_lend(int domain, int type);

/* On the thread: c-ares closed fd. It is disconnected and kept for the next lend (or forgotten,
 * never closed, if the program closed it meanwhile). */
void dns_sockets_return(int fd);

/* Fork child: the parent's sockets were closed (runtime.h, shimfd_close_all); none is kept. */
void dns_sockets_after_fork_child(void);

#endif
