#include "refresh.h"

#include <ares.h>
#include <stdio.h>
#include <string.h>

#include "answer.h"
#include "balance_growth.h"
#include "channel.h"
#include "log.h"
#include "names.h"
#include "runtime.h"
#include "schedule.h"
#include "stale_refresh.h"
#include "stats.h"
#include "thread_lists.h"

#define FORGET_NAMES_EVERY_MS 60000

static uint64_t next_forget_ms;
static bool schedule_changed;

void refresh_schedule_first(struct name_entry *entry, uint64_t now)
{
	if (entry->next_refresh_ms != 0 || entry->refresh_in_flight)
		return;
	/* The first guess, until a refresh's answer gave its own TTL: a name whose sockets all went
	 * and came back keeps that. */
	if (!entry->interval_answered)
		entry->interval_ms = entry->learned_ttl_known ? schedule_ttl_ms(entry->learned_ttl_seconds,
										 runtime_config.ttl_floor_ms,
										 runtime_config.ttl_ceiling_ms)
							      : runtime_config.ttl_floor_ms;
	entry->next_refresh_ms = schedule_first_refresh_ms(entry->fresh_ms, entry->interval_ms, now, runtime_random());
}

bool refresh_take_schedule_changed(void)
{
	bool changed = schedule_changed;
	schedule_changed = false;
	return changed;
}

static void format_list(const struct ip_addr *addrs, unsigned n, char *list, size_t size)
{
	size_t used = 0;
	list[0] = '\0';
	for (unsigned i = 0; i < n && used < size - IP_ADDR_STRLEN - 2; i++) {
		char text[IP_ADDR_STRLEN];
		used += (size_t)snprintf(list + used, size - used, "%s%s", i ? "," : "", ip_addr_format(&addrs[i], text));
	}
}

/* "re-resolved H: OLD -> NEW (ttl N s)": the set before the answer and the answer. An answer longer
 * than a record set holds says so on the same line, not on a line of its own per refresh. */
static void log_answer(const struct name_entry *entry, const struct ip_addr *before, unsigned before_count,
		       const struct answer *answer, const struct recordset_change *change)
{
	enum log_level level = change->removed_count > 0 || change->became_rotating ? LOG_INFO : LOG_DEBUG;
	if (!log_enabled(level))
		return;
	char old_list[160], new_list[160];
	format_list(before, before_count, old_list, sizeof old_list);
	format_list(answer->addrs, answer->count, new_list, sizeof new_list);
	char kept[80] = "";
	if (answer->truncated)
		snprintf(kept, sizeof kept, "; kept %u of a longer answer, the current ones first", (unsigned)ANSWER_MAX);
	log_msg(level, "re-resolved %s: %s -> %s (ttl %us%s)", entry->host, old_list, new_list, answer->ttl_seconds,
		kept);
	for (unsigned i = 0; i < change->removed_count; i++) {
		char text[IP_ADDR_STRLEN];
		log_msg(LOG_INFO, "removed %s from %s", ip_addr_format(&change->removed[i], text), entry->host);
	}
	if (change->became_rotating)
		log_msg(LOG_INFO, "%s answers with rotating subsets: absence no longer drains its sockets", entry->host);
}

/* An answer for entry, whose refresh_in_flight the caller set: the record set, the next refresh,
 * drains. */
static void take_answer(struct name_entry *entry, int status, const struct ares_addrinfo *result)
{
	uint64_t now = runtime_now_ms();
	struct answer answer;
	struct recordset_change change = {0};
	struct ip_addr before[16];
	unsigned before_count = 0;
	unsigned failures_before = 0;

	schedule_changed = true;
	sigset_t saved;
	names_lock(&saved);
	/* refresh_in_flight stays set until the end: a program thread's names_learn may evict an
	 * unused entry whenever the lock is free, but never one in flight (entry is used unlocked). */
	if (status == ARES_EDESTRUCTION) {
		entry->refresh_in_flight = false;
		names_unlock(&saved);
		return;
	}
	entry->fresh_ms = now;
	/* Under the lock: a long answer is read keeping the addresses the set holds (answer.h). */
	answer_collect(status == ARES_SUCCESS ? result : NULL, &entry->records, &answer);
	failures_before = entry->records.failures;
	for (unsigned i = 0; i < entry->records.count && before_count < 16; i++)
		before[before_count++] = entry->records.records[i].addr;
	if (answer.count > 0) {
		stats_count(&stats.resolutions_ok, 1);
		recordset_apply_answer(&entry->records, answer.addrs, answer.count, runtime_config.stale_after, &change);
		stats_count(&stats.addresses_removed, change.removed_count);
		entry->interval_ms = answer_interval_ms(&answer, runtime_config.ttl_floor_ms, runtime_config.ttl_ceiling_ms);
		entry->interval_answered = true;
		entry->next_refresh_ms = now + schedule_jitter(entry->interval_ms, runtime_random());
	} else {
		stats_count(&stats.resolutions_error, 1);
		recordset_apply_failure(&entry->records);
		uint64_t delay = schedule_backoff_ms(entry->records.failures, runtime_config.ttl_floor_ms,
						     runtime_config.ttl_ceiling_ms);
		entry->next_refresh_ms = now + schedule_jitter(delay, runtime_random());
		log_msg(LOG_INFO, "re-resolving %s failed (%s); keeping %u known addresses, retry in %llums", entry->host,
			status == ARES_SUCCESS ? "empty answer" : ares_strerror(status), entry->records.count,
			(unsigned long long)delay);
	}
	if (entry->live_sockets == 0)
		entry->next_refresh_ms = 0;
	names_unlock(&saved);
	if (answer.count > 0) {
		if (failures_before > 0)
			log_msg(LOG_INFO, "re-resolving %s works again after %u failures", entry->host, failures_before);
		log_answer(entry, before, before_count, &answer, &change);
	}
	names_lock(&saved);
	if (change.removed_count > 0)
		thread_lists_drain_removed(entry, now);
	if (change.added_count > 0 && runtime_config.balance)
		balance_growth_recycle(entry, now);
	entry->refresh_in_flight = false;
	names_unlock(&saved);
}

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *result)
{
	(void)timeouts;
	struct name_entry *entry = arg;
	if (status != ARES_EDESTRUCTION)
		stale_refresh_apply(entry->host, AF_UNSPEC, status, result);
	take_answer(entry, status, result);
	if (result != NULL)
		ares_freeaddrinfo(result);
}

void refresh_take_lookup_answer(const char *name, const struct ares_addrinfo *result)
{
	struct name_entry *entry = NULL;
	sigset_t saved;
	names_lock(&saved);
	for (struct name_entry *e = names_first(); e != NULL && entry == NULL; e = e->next)
		if (e->live_sockets > 0 && !e->refresh_in_flight && strcmp(e->host, name) == 0)
			entry = e;
	/* In flight: not forgotten meanwhile (names_forget_unused). */
	if (entry != NULL)
		entry->refresh_in_flight = true;
	names_unlock(&saved);
	if (entry != NULL)
		take_answer(entry, ARES_SUCCESS, result);
}

struct due_name {
	struct name_entry *entry;
	char host[NAME_MAX_LEN + 1];
};

void refresh_start_due(uint64_t now, uint64_t *wake_at)
{
	struct due_name due[32];
	unsigned count = 0;
	sigset_t saved;
	names_lock(&saved);
	if (now >= next_forget_ms) {
		names_forget_unused(now);
		next_forget_ms = now + FORGET_NAMES_EVERY_MS;
	}
	for (struct name_entry *e = names_first(); e != NULL; e = e->next) {
		if (e->live_sockets == 0 || e->refresh_in_flight || e->next_refresh_ms == 0)
			continue;
		if (e->next_refresh_ms > now || count == sizeof due / sizeof due[0]) {
			if (e->next_refresh_ms < *wake_at)
				*wake_at = e->next_refresh_ms;
			continue;
		}
		e->refresh_in_flight = true;
		due[count].entry = e;
		strcpy(due[count].host, e->host);
		count++;
	}
	names_unlock(&saved);
	for (unsigned i = 0; i < count; i++) {
		/* NOSORT: the order is of no use here, and c-ares's RFC 6724 sort opens, connects and
		 * closes a UDP socket per address, itself, without O_CLOEXEC: 4,000 system calls and
		 * 6 ms of CPU for an answer of 1,000 addresses (tests/badinput/hostile_dns.py). */
		struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
						    .ai_flags = ARES_AI_NOSORT};
		log_msg(LOG_DEBUG, "re-resolving %s", due[i].host);
		channel_getaddrinfo(due[i].host, &hints, on_answer, due[i].entry);
	}
}
