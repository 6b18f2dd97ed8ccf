/* Shared helpers of the preload integration tests (and, through tests/torture/torture.h, of the
 * torture tests): declarations, macros and small static inlines; the larger helpers' bodies are in
 * common.c, built into every program that includes this (preload_deps, tests/preload/meson.build).
 *
 * These programs never link against libdnsaware: meson runs them with LD_PRELOAD (and some also
 * without it). They observe the shim only from outside: return values and errno, what the peer of
 * a connection sees, the number of threads in /proc/self/task, and the log file's line format.
 *
 * t_name, the test's name, is set by each program's main and printed by a failing CHECK (in
 * common.c's helpers too). A program of one .c file gets its definition here. A program of several
 * .c files defines PRELOAD_SHARED_T_NAME before including this and defines t_name once (beside its
 * main): a CHECK failing in any of its files then names the test. */
#ifndef DNSAWARE_PRELOAD_COMMON_H
#define DNSAWARE_PRELOAD_COMMON_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* errno is set to this before every call whose errno is checked; a successful call must leave it. */
#define SENTINEL_ERRNO 4242

extern const char *t_name; /* the test (or subtest) name, for messages */
#ifndef PRELOAD_SHARED_T_NAME
const char *t_name = "?";
#endif

#define UNUSED_FN __attribute__((unused))

/* Prints file:line, the test's name, pid and the message, then this process's (and its parent's)
 * lines of the shim's log (DNSAWARE_LOG_FILE), and exits 1. */
__attribute__((noreturn, format(printf, 3, 4)))
void fail_at(const char *file, int line, const char *fmt, ...);

/* CHECK(expr): expr must hold; prints file:line, the expression and errno. */
#define CHECK(expr) \
	do { \
		if (!(expr)) { \
			int e_ = errno; \
			fail_at(__FILE__, __LINE__, "%s (errno %d: %s)", #expr, e_, strerror(e_)); \
		} \
	} while (0)

/* CHECKF(expr, fmt, ...): the same with an explanation. */
#define CHECKF(expr, ...) \
	do { \
		if (!(expr)) { \
			int e_ = errno; \
			char why_[768]; \
			snprintf(why_, sizeof why_, __VA_ARGS__); \
			fail_at(__FILE__, __LINE__, "%s: %s (errno %d: %s)", #expr, why_, e_, strerror(e_)); \
		} \
	} while (0)

/* Calls with a checked return value and errno. The call is evaluated once, errno is read right
 * after it (comma operators sequence them). */
static long long xr_ __attribute__((unused));
static int xe_ __attribute__((unused));
#define DO_CALL(call) (errno = SENTINEL_ERRNO, xr_ = (long long)(call), xe_ = errno, xr_)

static UNUSED_FN long long expect_val_(long long r, long long want, const char *call, const char *file, int line)
{
	if (r != want || xe_ != SENTINEL_ERRNO)
		fail_at(file, line, "%s: expected %lld with errno unchanged, got %lld errno %d (%s)", call, want, r,
			xe_, xe_ == SENTINEL_ERRNO ? "unchanged" : strerror(xe_));
	return r;
}
static UNUSED_FN long long expect_ok_(long long r, const char *call, const char *file, int line)
{
	if (r < 0 || xe_ != SENTINEL_ERRNO)
		fail_at(file, line, "%s: expected success with errno unchanged, got %lld errno %d (%s)", call, r, xe_,
			xe_ == SENTINEL_ERRNO ? "unchanged" : strerror(xe_));
	return r;
}
static UNUSED_FN void expect_err_(long long r, int want, const char *call, const char *file, int line)
{
	if (r != -1 || xe_ != want)
		fail_at(file, line, "%s: expected -1 errno %d (%s), got %lld errno %d (%s)", call, want, strerror(want), r,
			xe_, xe_ == SENTINEL_ERRNO ? "unchanged" : strerror(xe_));
}
/* The call returns exactly want, errno untouched. */
#define EXPECT_VAL(call, want) expect_val_(DO_CALL(call), (long long)(want), #call, __FILE__, __LINE__)
/* The call returns >= 0, errno untouched; evaluates to the return value. */
#define EXPECT_OK(call) expect_ok_(DO_CALL(call), #call, __FILE__, __LINE__)
/* The call returns -1 with errno want. */
#define EXPECT_ERR(call, want) expect_err_(DO_CALL(call), (want), #call, __FILE__, __LINE__)

/* ---- time ---- */

static inline uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* ---- watchdog: every program bounds its own run time ---- */

/* The handler: writes why (with the raw system call) and exits 3. */
void watchdog_fired(int sig);

/* alarm()-based: for programs that do not otherwise use SIGALRM. */
void watchdog(unsigned seconds);

/* ---- threads ---- */

/* Whether thread tid of this process is named name (the shim names its thread "dnsaware"). */
bool thread_named(pid_t tid, const char *name);

/* ThreadSanitizer (tools/test --sanitize=thread builds these programs with it) keeps a background
 * thread of its own in a process that has made a thread, but not in the fork child of a
 * threaded process, and nothing tells it apart from a thread of the program's. Under it, the
 * count is the main thread and the shim's (named "dnsaware"); tests that count threads start
 * none of their own. Other builds count every thread. */
#if defined(__SANITIZE_THREAD__)
#define SANITIZER_THREADS 1
#else
#define SANITIZER_THREADS 0
#endif

int thread_count(void);

/* Polls until the thread count is want or timeout_ms passes; returns the last count seen. */
int wait_thread_count(int want, unsigned timeout_ms);

/* The thread count stays want for the whole period; returns the first different count or want. */
int thread_count_stays(int want, unsigned period_ms);

/* ---- sockets ---- */

void make_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

/* A listening TCP socket on a loopback literal and an ephemeral port. */
/* A listener on ip:port (port 0: any; the same port on several addresses works). */
int listen_on(const char *ip, uint16_t port, int backlog);

int make_listener(const char *ip, uint16_t *port, int backlog);

/* Accepts one connection (waits up to 2 s). */
int accept_one(int lfd);

/* system(command) with the shim (and, in a sanitized build, the sanitizer runtime) left out of
 * LD_PRELOAD: ip is not under test, and its leaks at exit are not ours. Called while the program
 * has no thread of its own (setenv). */
int run_plain(const char *command);

/* A network namespace of the test's own (root), lo up, and then `then` (NULL: nothing) run as
 * by run_plain. */
void own_network(const char *then);

/* Reads the stats file the shim writes for pid (DNSAWARE_STATS_FILE with its %p expanded) into buf,
 * NUL-terminated; false when it does not exist or is empty. */
bool read_stats_file(pid_t pid, char *buf, size_t size);

/* Resolves name with the program's getaddrinfo (IPv4) and connects a new TCP socket to its first
 * address: a tracked connect when the shim is active. Returns -1 with errno when the connect
 * fails. */
int connect_name(const char *name, uint16_t port);

/* connect_name, which must succeed. */
static inline int connect_named(const char *name, uint16_t port)
{
	int fd = connect_name(name, port);
	CHECKF(fd >= 0, "connect to %s:%u: %s", name, port, strerror(errno));
	return fd;
}

/* Waits for pid up to timeout_ms (kills it then). True if it exited with status 0; says why not. */
bool wait_pid(pid_t pid, unsigned timeout_ms, const char *what);

/* Connects (through the hooked connect) to a literal address the program never resolved. */
int connect_literal(const char *ip, uint16_t port);

/* Connects fd with the raw system call: the shim cannot see it. */
void raw_connect(int fd, const char *ip, uint16_t port);

/* What a socket looks like to the program right now, without consuming anything. */
enum sock_state { SOCK_ALIVE = 0, SOCK_EOF = 1, SOCK_HAS_DATA = 2, SOCK_ERROR = 3 };

enum sock_state sock_state(int fd);

const char *sock_state_name(enum sock_state s);

/* Waits up to timeout_ms for fd to read EOF; true if it does. */
bool wait_eof(int fd, unsigned timeout_ms);

void send_all(int fd, const void *buf, size_t len);

void recv_exact(int fd, void *buf, size_t len);

/* One request/response exchange between the client end c and the server end s (both ends live in
 * this process). Ends with the last data inbound to the client. The server takes 12 ms to answer, as
 * any server beyond loopback does: the kernel stamps the last send and receipt in jiffies (up to
 * 10 ms), and a request and answer sharing one stamp leave the order unknown, which the shim
 * rightly never takes for idle. */
void exchange(int c, int s, const char *req, const char *resp);

/* ---- a private /etc/hosts (root: a mount namespace of the test's own) ---- */

/* The private hosts file's path: a mkstemp template until private_hosts makes the file. */
extern char hosts_path[sizeof "/tmp/dnsaware-test-hosts-XXXXXX"];

/* The private hosts file becomes localhost and then lines ("ADDRESS NAME\n..."), in one write. */
void write_hosts_lines(const char *lines);

/* addresses: one or more, separated by spaces; one hosts line each, in that order. */
void write_hosts(const char *name, const char *addresses);

void private_hosts(const char *name, const char *address);

void drop_private_hosts(void);

/* ---- the shim's log ---- */

/* This process's lines of DNSAWARE_LOG_FILE that hold every one of the needles (NULL-ended). */
int count_log_lines_with(const char *const *needles);

/* This process's lines of DNSAWARE_LOG_FILE that contain needle. */
static inline int count_log_lines(const char *needle)
{
	return count_log_lines_with((const char *const[]){needle, NULL});
}

/* Checks that every line of the log file has the form "dnsaware[PID]: LEVEL message" with a known
 * level, and returns how many of them carry one of the given pids. */
int check_log_format(const pid_t *pids, int npids);

#endif
