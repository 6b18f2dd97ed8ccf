#include "learn.h"

#include <arpa/inet.h>
#include <string.h>

#include "log.h"
#include "lookup_key.h"
#include "names.h"
#include "runtime.h"

static bool is_numeric_host(const char *host)
{
	struct in_addr v4;
	struct in6_addr v6;
	char literal[INET6_ADDRSTRLEN + 1];
	if (inet_aton(host, &v4))
		return true;
	/* "fe80::1%eth0": the scope does not make it a name. */
	size_t len = strcspn(host, "%");
	if (len >= sizeof literal)
		return false;
	memcpy(literal, host, len);
	literal[len] = '\0';
	return inet_pton(AF_INET6, literal, &v6) == 1;
}

bool learn_selected(const char *host)
{
	return host != NULL && atomic_load_explicit(&runtime_active, memory_order_relaxed) && !is_numeric_host(host) &&
	       config_host_selected(&runtime_config, host);
}

bool learn_wanted(const char *host)
{
	return !runtime_inside && learn_selected(host);
}

/* The answers recorded lately, by hash of name and addresses: a word each, races only cost an
 * extra record. */
#define REPEAT_SLOTS 64
static _Atomic uint64_t repeat_hash[REPEAT_SLOTS];
static _Atomic uint64_t repeat_ms[REPEAT_SLOTS];

void learn_record_repeated(const char *host, const struct ip_addr *addrs, unsigned n, enum stats_learn_source source)
{
	uint64_t hash = lookup_hash_text(0, host);
	for (unsigned i = 0; i < n; i++)
		hash = lookup_hash_bytes(hash, &addrs[i], sizeof addrs[i]);
	unsigned slot = (unsigned)(hash % REPEAT_SLOTS);
	uint64_t now = runtime_now_ms();
	if (n > 0 && atomic_load_explicit(&repeat_hash[slot], memory_order_relaxed) == hash &&
	    now - atomic_load_explicit(&repeat_ms[slot], memory_order_relaxed) < LEARN_REPEAT_MS) {
		stats_count(&stats.names_learned[source], 1);
		return;
	}
	learn_record(host, addrs, n, source, LEARN_TTL_UNKNOWN);
	atomic_store_explicit(&repeat_ms[slot], now, memory_order_relaxed);
	atomic_store_explicit(&repeat_hash[slot], hash, memory_order_relaxed);
}

void learn_record(const char *host, const struct ip_addr *addrs, unsigned n, enum stats_learn_source source,
		  uint32_t ttl_seconds)
{
	char name[NAME_MAX_LEN + 1];
	if (n == 0 || !names_normalize(host, name))
		return;
	runtime_settle_fork();
	sigset_t saved;
	names_lock(&saved);
	struct name_entry *entry = names_learn(name, addrs, n, runtime_now_ms());
	if (entry != NULL && ttl_seconds != LEARN_TTL_UNKNOWN) {
		entry->learned_ttl_known = true;
		entry->learned_ttl_seconds = ttl_seconds;
	}
	names_unlock(&saved);
	if (entry == NULL)
		return;
	stats_count(&stats.names_learned[source], 1);
	if (log_enabled(LOG_DEBUG)) {
		char text[IP_ADDR_STRLEN];
		log_msg(LOG_DEBUG, "learned %s -> %s%s (%s)", name, ip_addr_format(&addrs[0], text),
			n > 1 ? " and more" : "", stats_learn_source_name(source));
	}
}
