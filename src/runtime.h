/* State shared by the hooks, the log and the background thread. */
#ifndef DNSAWARE_RUNTIME_H
#define DNSAWARE_RUNTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <unistd.h>

#include "config.h"

extern struct config runtime_config;
/* Set once the configuration is loaded and the library is not disabled. */
extern _Atomic bool runtime_active;

/* Loads the configuration on first use (the constructor, or an earlier hook). */
void runtime_init(void);

/* Per thread: set inside the library's own work (the background thread, a hook's call into libc)
 * so that the hooks pass straight through instead of tracking the library itself. */
extern __thread bool runtime_inside __attribute__((tls_model("initial-exec")));

/* Set on the library's background thread, which never makes an fd in the program's table: a
 * single-threaded program relies on open() returning the lowest free number, and a number the
 * thread held for an instant would be taken from it. */
extern __thread bool runtime_on_thread __attribute__((tls_model("initial-exec")));

/* The process whose memory this is: set at load and when a fork child settles. A vfork child runs
 * in its parent's memory with an fd table of its own until it execs: its closes and dups (a close
 * loop before exec, say) must not change the parent's fd table, nor mark the parent's own fds lost,
 * nor its sends act on the parent's draining sockets. A fork child that has not settled is treated
 * the same way: its tables are still the parent's. getpid() is a system call (async-signal-safe):
 * the hooks ask only when the table would change. */
extern _Atomic pid_t runtime_pid;
static inline bool runtime_in_vfork_child(void)
{
	return getpid() != atomic_load_explicit(&runtime_pid, memory_order_relaxed);
}

/* A fork child's reset of the parent's state (thread, fd table, sockets, the log's lock), done when
 * the child first needs the library (it connects, resolves or logs) rather than in the atfork
 * handler, which every fork pays for. One atomic load when there is nothing to do. */
void runtime_settle_fork(void);
/* A fork child that has not settled: it watches nothing of its own. */
bool runtime_fork_pending(void);

uint64_t runtime_now_ms(void);
/* CLOCK_MONOTONIC in ns (a connect's time). Async-signal-safe. */
uint64_t runtime_now_ns(void);
uint32_t runtime_random(void);

/* The library's own fds (wake-up pipe, c-ares sockets, log file): marked in the fd table so a
 * program that closes every fd does not leave the library writing to a reused number. */
/* Takes one of the library's new fds, made by a program thread inside a hook: moves it into the
 * band (fdplace.h: above the program's fds, within the fd table they need), marks it, and returns
 * the fd to use. keep_on_fork: the fork child keeps it (the log file) or closes it. */
int shimfd_adopt(int fd, bool keep_on_fork);
/* The library closes its own fd: returns false if the program already closed that number (or it
 * is another file now: see shimfd.c). */
bool shimfd_release(int fd);
/* The program closed (or dup2'd over) one of the library's fds. Async-signal-safe. */
void shimfd_lost(int fd);
/* Closed by the program, through a hook or behind the library's back: never to be used again. */
bool shimfd_is_lost(int fd);
/* Fork child, after the fd table was cleared: close the library's inherited fds, except those
 * kept on fork, which are marked again. */
void shimfd_close_all(void);
/* Fork child, in the atfork handler: closes the library's inherited fds (those its own and not kept
 * on fork) without writing a byte of the library's memory (runtime_settle_fork forgets them later:
 * closed, they read as lost). */
void shimfd_close_inherited(void);

#endif
