/* Metrics: the counters and their Prometheus text exposition (format 0.0.4). */
#include "stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct stats stats;

void stats_after_fork_child(void)
{
	/* runtime_settle_fork, under the names lock: the child's connects, resolutions and log
	 * lines settle the fork before they count anything. */
	memset(&stats, 0, sizeof stats);
}

static const char *const reason_names[STATS_REASONS] = {"dns", "max_age", "balance"};
static const char *const path_names[STATS_PATHS] = {"idle", "send", "deadline"};
static const char *const learn_source_names[STATS_LEARN_SOURCES] = {"getaddrinfo", "gethostbyname", "dns"};

const char *stats_learn_source_name(enum stats_learn_source source)
{
	return learn_source_names[source];
}

const char *stats_path_name(enum stats_path path)
{
	return path_names[path];
}

struct text {
	char *buf;
	size_t size, used;
	bool overflow;
};

static void put(struct text *t, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *format, ...)
{
	if (t->overflow)
		return;
	va_list args;
	va_start(args, format);
	int n = vsnprintf(t->buf + t->used, t->size - t->used, format, args);
	va_end(args);
	if (n < 0 || (size_t)n >= t->size - t->used)
		t->overflow = true;
	else
		t->used += (size_t)n;
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t get(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* A family with one sample, labelled with the pid only. */
static void single(struct text *t, const char *name, const char *type, const char *help, long pid,
		   const _Atomic uint64_t *value)
{
	family(t, name, type, help);
	put(t, "%s{pid=\"%ld\"} %llu\n", name, pid, (unsigned long long)get(value));
}

/* A label value as the exposition format wants it: backslash, double quote and newline escaped. */
static void put_label_value(struct text *t, const char *value)
{
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			put(t, "\\%c", *p);
		else if (*p == '\n')
			put(t, "\\n");
		else
			put(t, "%c", *p);
	}
}

static void name_sample(struct text *t, long pid, const char *name, const char *address, uint64_t sockets)
{
	put(t, "dnsaware_name_sockets{pid=\"%ld\",name=\"", pid);
	put_label_value(t, name);
	put(t, "\",address=\"%s\"} %llu\n", address, (unsigned long long)sockets);
}

static void name_sockets(struct text *t, const struct stats_names *names, long pid)
{
	family(t, "dnsaware_name_sockets", "gauge",
	       "This process's tracked connections per current address of a name (DNSAWARE_METRICS_NAMES names; "
	       "the rest under name=\"_other\").");
	if (names == NULL)
		return;
	for (unsigned i = 0; i < names->count; i++) {
		const struct stats_name_sockets *n = &names->name[i];
		for (unsigned a = 0; a < n->count; a++)
			name_sample(t, pid, n->name, n->address[a], n->sockets[a]);
		if (n->has_other_addresses)
			name_sample(t, pid, n->name, "_other", n->other_addresses);
	}
	if (names->has_other)
		name_sample(t, pid, "_other", "_other", names->other);
}

static void connects_of(struct text *t, long pid, const char *name, const struct name_metrics *m)
{
	for (unsigned r = 0; r < CONNECT_RESULTS; r++) {
		put(t, "dnsaware_connects_total{pid=\"%ld\",name=\"", pid);
		put_label_value(t, name);
		put(t, "\",result=\"%s\"} %llu\n", connect_result_name(r), (unsigned long long)m->results[r]);
	}
}

static void histogram_of(struct text *t, long pid, const char *name, const struct name_metrics *m)
{
	for (unsigned i = 0; i <= NAME_METRICS_BUCKETS; i++) {
		put(t, "dnsaware_connect_duration_seconds_bucket{pid=\"%ld\",name=\"", pid);
		put_label_value(t, name);
		put(t, "\",le=\"%s\"} %llu\n", i < NAME_METRICS_BUCKETS ? name_metrics_bucket_le[i] : "+Inf",
		    (unsigned long long)name_metrics_cumulative(m, i));
	}
	put(t, "dnsaware_connect_duration_seconds_sum{pid=\"%ld\",name=\"", pid);
	put_label_value(t, name);
	put(t, "\"} %llu.%09llu\n", (unsigned long long)(m->duration_sum_ns / 1000000000u),
	    (unsigned long long)(m->duration_sum_ns % 1000000000u));
	put(t, "dnsaware_connect_duration_seconds_count{pid=\"%ld\",name=\"", pid);
	put_label_value(t, name);
	put(t, "\"} %llu\n", (unsigned long long)m->duration_count);
}

static void name_connects(struct text *t, const struct stats_names *names, long pid)
{
	family(t, "dnsaware_connects_total", "counter",
	       "Connects to a name's addresses, by result (ok, refused, timeout, unreachable, error).");
	for (unsigned i = 0; names != NULL && i < names->count; i++)
		connects_of(t, pid, names->name[i].name, &names->name[i].metrics);
	if (names != NULL && names->has_other)
		connects_of(t, pid, "_other", &names->other_metrics);
	family(t, "dnsaware_connect_duration_seconds", "histogram",
	       "Time from a connect call to the established connection, by name (ok connects).");
	for (unsigned i = 0; names != NULL && i < names->count; i++)
		histogram_of(t, pid, names->name[i].name, &names->name[i].metrics);
	if (names != NULL && names->has_other)
		histogram_of(t, pid, "_other", &names->other_metrics);
}

int stats_format(const struct stats *s, const struct stats_names *names, long pid, char *buf, size_t size)
{
	struct text t = {buf, size, 0, size == 0};

	single(&t, "dnsaware_tracked_sockets", "gauge", "TCP connections to resolved names being watched.", pid,
	       &s->tracked_sockets);
	single(&t, "dnsaware_watched_names", "gauge", "Names re-resolved because connections to them are watched.",
	       pid, &s->watched_names);
	family(&t, "dnsaware_resolutions_total", "counter", "Background re-resolutions, by result.");
	put(&t, "dnsaware_resolutions_total{pid=\"%ld\",result=\"ok\"} %llu\n", pid,
	    (unsigned long long)get(&s->resolutions_ok));
	put(&t, "dnsaware_resolutions_total{pid=\"%ld\",result=\"error\"} %llu\n", pid,
	    (unsigned long long)get(&s->resolutions_error));
	single(&t, "dnsaware_addresses_removed_total", "counter",
	       "Addresses that left a name's record set (absent from DNSAWARE_STALE_AFTER answers).", pid,
	       &s->addresses_removed);
	family(&t, "dnsaware_sockets_shutdown_total", "counter",
	       "Connections shut down, by reason (dns, max_age, balance) and path (idle, send, deadline).");
	for (int r = 0; r < STATS_REASONS; r++)
		for (int p = 0; p < STATS_PATHS; p++)
			put(&t, "dnsaware_sockets_shutdown_total{pid=\"%ld\",reason=\"%s\",path=\"%s\"} %llu\n", pid,
			    reason_names[r], path_names[p], (unsigned long long)get(&s->shutdowns[r][p]));
	single(&t, "dnsaware_connects_redirected_total", "counter",
	       "Connects steered from an address that left its name's set, or one cooling down, to a current one.",
	       pid, &s->connects_redirected);
	single(&t, "dnsaware_connect_failovers_total", "counter",
	       "Blocking connects that failed and reached another address of the name.", pid, &s->connect_failovers);
	family(&t, "dnsaware_names_learned_total", "counter",
	       "Answers the program got that fed a name's record, by source (getaddrinfo, gethostbyname, or dns: "
	       "a DNS answer it read itself).");
	for (int i = 0; i < STATS_LEARN_SOURCES; i++)
		put(&t, "dnsaware_names_learned_total{pid=\"%ld\",source=\"%s\"} %llu\n", pid, learn_source_names[i],
		    (unsigned long long)get(&s->names_learned[i]));
	single(&t, "dnsaware_stale_answers_total", "counter",
	       "Lookups answered with the last good answer because the resolver failed or did not answer in "
	       "DNSAWARE_RESOLVE_TIMEOUT.",
	       pid, &s->stale_answers);
	family(&t, "dnsaware_cache_lookups_total", "counter",
	       "Lookups of names the program asked for before, with DNSAWARE_CACHE=1: answered from the cache (hit) or "
	       "not (miss).");
	put(&t, "dnsaware_cache_lookups_total{pid=\"%ld\",result=\"hit\"} %llu\n", pid,
	    (unsigned long long)get(&s->cache_hits));
	put(&t, "dnsaware_cache_lookups_total{pid=\"%ld\",result=\"miss\"} %llu\n", pid,
	    (unsigned long long)get(&s->cache_misses));
	single(&t, "dnsaware_thread_wakeups_total", "counter",
	       "Times the background thread woke up and looked for work.", pid, &s->thread_wakeups);
	single(&t, "dnsaware_thread_socket_visits_total", "counter",
	       "Tracked connections the background thread looked at, summed over its walks (adopting new ones not "
	       "counted).",
	       pid, &s->thread_socket_visits);
	name_sockets(&t, names, pid);
	name_connects(&t, names, pid);
	return t.overflow ? -1 : (int)t.used;
}

bool stats_expand_path(const char *pattern, long pid, char *out, size_t size)
{
	size_t used = 0;
	for (const char *p = pattern; *p != '\0'; p++) {
		char number[24];
		const char *piece = number;
		size_t length;
		if (p[0] == '%' && p[1] == 'p') {
			snprintf(number, sizeof number, "%ld", pid);
			length = strlen(number);
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			piece = "%";
			length = 1;
			p++;
		} else {
			piece = p;
			length = 1;
		}
		if (used + length >= size)
			return false;
		memcpy(out + used, piece, length);
		used += length;
	}
	if (used >= size)
		return false;
	out[used] = '\0';
	return true;
}
