/* The metrics of design.md ("Metrics contract"): counters kept with atomics (never a lock on the
 * fast path), and their Prometheus text form. Pure, unit-testable; the file is written by
 * stats_file.c. */
#ifndef DNSAWARE_STATS_H
#define DNSAWARE_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "name_metrics.h"

enum stats_reason { STATS_REASON_DNS, STATS_REASON_MAX_AGE, STATS_REASON_BALANCE, STATS_REASONS };
enum stats_learn_source { STATS_LEARN_GETADDRINFO, STATS_LEARN_GETHOSTBYNAME, STATS_LEARN_DNS, STATS_LEARN_SOURCES };
enum stats_path { STATS_PATH_IDLE, STATS_PATH_SEND, STATS_PATH_DEADLINE, STATS_PATHS };

struct stats {
	_Atomic uint64_t tracked_sockets; /* gauges, set by the background thread */
	_Atomic uint64_t watched_names;
	_Atomic uint64_t resolutions_ok;
	_Atomic uint64_t resolutions_error;
	_Atomic uint64_t addresses_removed;
	_Atomic uint64_t shutdowns[STATS_REASONS][STATS_PATHS];
	_Atomic uint64_t connects_redirected;
	_Atomic uint64_t connect_failovers;
	/* Answers the program got that fed a name's record, by where they were seen. */
	_Atomic uint64_t names_learned[STATS_LEARN_SOURCES];
	/* The program's lookups answered with a kept answer when the resolver failed or was too slow. */
	_Atomic uint64_t stale_answers;
	/* DNSAWARE_CACHE=1: the program's lookups of selected names, answered from the cache or not. */
	_Atomic uint64_t cache_hits;
	_Atomic uint64_t cache_misses;
	/* The background thread's own work, so its cost per wake-up can be watched (and tested):
	 * loop iterations, and tracked sockets looked at by its walks (adoption not counted). */
	_Atomic uint64_t thread_wakeups;
	_Atomic uint64_t thread_socket_visits;
};

extern struct stats stats;

/* A fork child's first use of the library: its counters start at 0. Each process writes a file of
 * its own (pid label), and a collector sums them: the parent's counts are the parent's file's. */
void stats_after_fork_child(void);

/* The per-name families (issue 18): dnsaware_name_sockets{name,address},
 * dnsaware_connects_total{name,result} and dnsaware_connect_duration_seconds{name}, for the names
 * with series of their own (names.h, metrics_own: at most DNSAWARE_METRICS_NAMES); the rest under
 * name="_other". stats_names.c takes them from the names under their lock. A name's addresses
 * beyond STATS_NAME_ADDRS_MAX are summed under its address="_other". */
#define STATS_NAME_ADDRS_MAX 16
struct stats_name_sockets {
	char name[256];
	unsigned count;
	char address[STATS_NAME_ADDRS_MAX][46];
	uint32_t sockets[STATS_NAME_ADDRS_MAX];
	uint64_t other_addresses; /* sockets to its addresses beyond the first STATS_NAME_ADDRS_MAX */
	bool has_other_addresses;
	uint64_t total;
	struct name_metrics metrics;
};
struct stats_names {
	unsigned count, capacity;
	uint64_t other; /* sockets of the names without series of their own */
	bool has_other;
	struct name_metrics other_metrics;
	struct stats_name_sockets name[]; /* capacity of them */
};
/* The text one name of them takes at most (its sockets, connects and histogram). */
#define STATS_NAME_TEXT_MAX (256 * 24 + STATS_NAME_ADDRS_MAX * 400 + 4096)

static inline void stats_count(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* The exposition text (every family with # HELP and # TYPE; names may be NULL: no per-name sample). Every sample carries pid="PID":
 * node_exporter's textfile collector merges a directory of files, one per process, and
 * samples with the same name and labels from two files would collide. Returns its length, or
 * -1 when it does not fit in size bytes. */
int stats_format(const struct stats *s, const struct stats_names *names, long pid, char *buf, size_t size);

/* "idle", "send", "deadline": the path label, also the log's word for it. */
const char *stats_path_name(enum stats_path path);

/* "getaddrinfo", "gethostbyname", "dns": the source label, also the log's word for it. */
const char *stats_learn_source_name(enum stats_learn_source source);

/* The stats file's path: "%p" becomes pid, "%%" a single "%". False when it does not fit. */
bool stats_expand_path(const char *pattern, long pid, char *out, size_t size);

#endif
