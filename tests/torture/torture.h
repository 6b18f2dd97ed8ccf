/* Shared helpers of the torture tests (#8): the preload tests' helpers, plus a watchdog thread, a
 * private network and file namespace, /proc/self/fd snapshots, the shim's log and stats file, and a
 * helper process that serves DNS (UDP, with a delay or silence on demand) and echoes TCP.
 *
 * Like the preload tests, these programs never link against the library and observe it from
 * outside. Every program bounds its own run time; exit status 77 means a prerequisite is missing
 * (root, namespaces), and the message says which.
 *
 * The helpers are in torture.c and torture_helper.c (the helper process), built once and linked
 * into every program that includes this (tests/meson.build). Such a program is of several files,
 * so common.h's t_name is one for all of them (PRELOAD_SHARED_T_NAME): torture.c defines it, and
 * a CHECK failing in a helper names the test. */
#ifndef DNSAWARE_TORTURE_H
#define DNSAWARE_TORTURE_H

#if defined(DNSAWARE_PRELOAD_COMMON_H) && !defined(PRELOAD_SHARED_T_NAME)
#error "include torture.h before ../preload/common.h: the helpers need the program's own t_name"
#endif
#define PRELOAD_SHARED_T_NAME
#include "../preload/common.h"

#include <ctype.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* ---- skipping and the watchdog ---- */

__attribute__((noreturn)) void skip(const char *why);

/* A thread that ends the process (status 3, with a message) after seconds: it needs no signal, so
 * it works where the test itself uses SIGALRM and timers. Not inherited by fork children: they call
 * alarm() (common.h's watchdog()) for themselves. */
void watchdog_thread(unsigned seconds, const char *what);

/* ---- a network and file system of the test's own (root) ---- */

/* A network namespace with loopback up: 127.0.0.0/8 and every port are the test's alone. Before any
 * thread is made (namespaces belong to the thread that unshares). */
void private_network(void);

/* A mount namespace whose /etc/hosts (rewritten with set_hosts) holds hosts_lines, and whose /etc/resolv.conf names 127.0.0.1 (nothing listens there unless the test's
 * DNS helper does: glibc and c-ares fail fast instead of waiting on the real network). */
void private_files(const char *hosts_lines);

/* The private /etc/hosts becomes localhost and then lines, in one write (same inode: the bind mount
 * stays; a reader sees the file empty for a moment, never half written). */
void set_hosts(const char *lines);

void drop_private_files(void);

/* ---- /proc/self/fd ---- */

#define FDSET_MAX 4096

struct fdset {
	int n;
	int fds[FDSET_MAX];
};

void fd_link(int fd, char *out, size_t size);

/* The open fds of this process (the directory's own fd left out). */
void fd_snapshot(struct fdset *set);

bool fdset_has(const struct fdset *set, int fd);

/* Fds in now that are not in before; prints them (with what they are) under a heading. */
int fdset_extra(const struct fdset *before, const struct fdset *now, const char *heading);

/* Is libdnsaware mapped into this process (LD_PRELOAD reached it)? */
bool shim_loaded(void);

/* UDP sockets connected to the shim's DNS server (c-ares'), and pipes and eventfds above stderr (the
 * shim's wake-up fds; the programs that ask make none of their own). */
int resolver_fds(int *wake_fds);

/* ---- the shim's log and stats file ---- */

/* DNSAWARE_LOG_FILE, read once. */
const char *log_path(void);

/* A failed CHECK prints only its message, not every line of the log (common.h's dump_log): for
 * tests whose log runs to thousands of lines. The shim read its settings at start; this changes
 * only what this program's own helpers see (and its children's environment). */
void short_failure_reports(void);

/* Calls fn on each line of the log that this process wrote (pid given), with the message part. */
int for_log_lines(pid_t pid, void (*fn)(const char *message, void *arg), void *arg);

/* Lines of pid's that contain needle. */
int count_log_lines_of(pid_t pid, const char *needle);

/* Waits up to timeout_ms for a line of pid's containing needle. */
bool wait_log_line(pid_t pid, const char *needle, unsigned timeout_ms);

/* The last lines of pid's containing needle (all of pid's lines for ""), to stderr. */
void print_log_tail(pid_t pid, const char *needle, int max);

/* The sum of a stats-file metric's samples whose labels contain label ("" for all); -1 if the file
 * or the metric is missing. path: DNSAWARE_STATS_FILE (no %p in it). */
long long stats_value(const char *metric, const char *label);

/* ---- a request/response with a server in another process (the helper echoes after 12 ms) ---- */

/* Sends req and reads the echo back: true when it came back whole; false (errno set) when the send
 * failed or the connection ended first. */
bool echo_exchange(int fd, const char *req);

/* The IPv4 peer of a connected socket, as text. */
const char *peer_text(int fd, char buf[INET_ADDRSTRLEN]);

/* ---- the helper process: DNS (UDP) and TCP echo servers, controlled through shared memory ---- */

#define HELPER_NAMES 16
#define HELPER_LISTENERS 16
#define DNS_GLIBC_PORT 53    /* /etc/resolv.conf's 127.0.0.1: the program's own getaddrinfo */
#define DNS_SHIM_PORT 5353   /* DNSAWARE_NAMESERVERS=127.0.0.1:5353: the shim's c-ares */

struct helper_name {
	char name[64];
	_Atomic uint32_t addrs[4];        /* network order */
	_Atomic int count;
	_Atomic int shim_delay_ms;        /* answers on the shim's port come this late... */
	_Atomic int shim_drop;            /* ...or never */
	_Atomic unsigned shim_queries;    /* queries seen on the shim's port */
	_Atomic unsigned shim_answered;
	_Atomic unsigned glibc_queries;
};

struct helper_ctl {
	struct helper_name names[HELPER_NAMES];
	_Atomic int name_count;
	_Atomic int shim_pending;         /* shim queries received and not (yet) answered */
	char listen_ip[HELPER_LISTENERS][16];
	uint16_t listen_port[HELPER_LISTENERS];
	int listen_count;
	_Atomic int ready;
	_Atomic unsigned accepted;
};

extern struct helper_ctl *helper;

struct helper_name *helper_add_name(const char *name, const char *ip);

/* The name answers with ip alone from now on. */
void helper_move(struct helper_name *h, const char *ip);

void helper_listen(const char *ip, uint16_t port);

/* The control block, shared with the helper process (before helper_start: add names, listeners).
 * It lives in a memfd without FD_CLOEXEC: a program this one execs finds it again (helper_attach). */
extern int helper_fd;

void helper_init(void);

void helper_attach(int fd);

struct helper_name *helper_find(const char *name);

/* Waits up to timeout_ms for *counter to reach at least want. */
bool wait_counter(_Atomic unsigned *counter, unsigned want, unsigned timeout_ms);

/* Starts the helper process (in the test's network namespace; it dies with the test). */
void helper_start(void);


#endif
