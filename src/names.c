#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

static pthread_mutex_t names_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct name_entry *entries;
static unsigned unused_count;
static unsigned metrics_own_count; /* entries with series of their own */
static uint32_t metrics_round = 1;  /* the stats file's writes, for metrics_choose */
struct name_metrics names_other_metrics;
_Atomic unsigned names_count;

void names_lock(sigset_t *saved)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, saved);
	pthread_mutex_lock(&names_mutex);
}

void names_unlock(const sigset_t *saved)
{
	pthread_mutex_unlock(&names_mutex);
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

bool names_normalize(const char *host, char out[NAME_MAX_LEN + 1])
{
	size_t len = strnlen(host, NAME_MAX_LEN + 2);
	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)host[i]);
	out[len] = '\0';
	return true;
}

static struct name_entry *find(const char *host)
{
	for (struct name_entry *e = entries; e != NULL; e = e->next)
		if (strcmp(e->host, host) == 0)
			return e;
	return NULL;
}

/* A forgotten name's counts stay in the file, under name="_other" (counters never go down). */
static void fold_metrics(struct name_entry *e)
{
	if (!e->choice.own)
		return;
	name_metrics_add(&names_other_metrics, &e->metrics);
	e->metrics = (struct name_metrics){0};
	e->choice.own = false;
	metrics_own_count--;
}

static void unlink_and_free(struct name_entry *victim)
{
	for (struct name_entry **link = &entries; *link != NULL; link = &(*link)->next) {
		if (*link == victim) {
			*link = victim->next;
			fold_metrics(victim);
			free(victim);
			atomic_fetch_sub(&names_count, 1);
			unused_count--;
			return;
		}
	}
}

static void evict_oldest_unused(void)
{
	struct name_entry *oldest = NULL;
	for (struct name_entry *e = entries; e != NULL; e = e->next)
		if (e->live_sockets == 0 && !e->refresh_in_flight &&
		    (oldest == NULL || e->last_learned_ms < oldest->last_learned_ms))
			oldest = e;
	if (oldest != NULL)
		unlink_and_free(oldest);
}

struct name_entry *names_learn(const char *host, const struct ip_addr *addrs, unsigned n, uint64_t now_ms)
{
	struct name_entry *entry = find(host);
	if (entry == NULL) {
		if (unused_count >= NAMES_MAX_UNUSED)
			evict_oldest_unused();
		entry = calloc(1, sizeof *entry);
		if (entry == NULL)
			return NULL;
		strcpy(entry->host, host);
		entry->next = entries;
		entries = entry;
		unused_count++;
		atomic_fetch_add(&names_count, 1);
	}
	recordset_learn(&entry->records, addrs, n);
	entry->last_learned_ms = now_ms;
	entry->fresh_ms = now_ms;
	return entry;
}

/* Claims (one more live socket each) up to max names whose set, by is_member, holds addr. */
static unsigned claim_where(bool (*is_member)(const struct recordset *, const struct ip_addr *),
			    const struct ip_addr *addr, struct name_entry **out, unsigned max)
{
	unsigned found = 0;
	for (struct name_entry *e = entries; e != NULL && found < max; e = e->next) {
		if (!is_member(&e->records, addr))
			continue;
		if (e->live_sockets++ == 0)
			unused_count--;
		out[found++] = e;
	}
	return found;
}

unsigned names_claim_for_address(const struct ip_addr *addr, struct name_entry **out, unsigned max)
{
	return claim_where(recordset_contains, addr, out, max);
}

unsigned names_claim_departed(const struct ip_addr *addr, struct name_entry **out, unsigned max)
{
	return claim_where(recordset_was_member, addr, out, max);
}

struct steer_cooldowns names_failed_connects;

static void fill_plan(struct name_entry *e, const struct ip_addr *addr, bool departed, struct steer_plan *plan)
{
	plan->departed = departed;
	plan->balance_turn = e->balance_turn[addr->family == AF_INET6]++;
	strcpy(plan->host, e->host);
	plan->turn = e->steer_turn++;
	plan->count = 0;
	for (unsigned i = 0; i < e->records.count && plan->count < STEER_MAX_CANDIDATES; i++) {
		plan->conns[plan->count] = e->records.records[i].conns;
		plan->current[plan->count++] = e->records.records[i].addr;
	}
}

bool names_steer_plan(const struct ip_addr *addr, struct steer_plan *plan)
{
	for (struct name_entry *e = entries; e != NULL; e = e->next) {
		if (recordset_contains(&e->records, addr)) {
			fill_plan(e, addr, false, plan);
			return true;
		}
	}
	for (struct name_entry *e = entries; e != NULL; e = e->next) {
		if (e->records.count > 0 && recordset_was_member(&e->records, addr)) {
			fill_plan(e, addr, true, plan);
			return true;
		}
	}
	return false;
}

void names_count_socket(struct name_entry *const *entries, unsigned n, const struct ip_addr *peer, int delta)
{
	for (unsigned i = 0; i < n; i++)
		recordset_count_conn(&entries[i]->records, peer, delta);
}

void names_record_connect(struct name_entry *entry, enum connect_result r, uint64_t duration_ns, unsigned max_own)
{
	entry->choice.activity++;
	/* A free place at once, but not to a name that changed side lately (metrics_choose's rule). */
	if (!entry->choice.own && metrics_own_count < max_own && metrics_choice_settled(&entry->choice, metrics_round)) {
		entry->choice.own = true;
		entry->choice.changed_at = metrics_round;
		metrics_own_count++;
	}
	name_metrics_record(entry->choice.own ? &entry->metrics : &names_other_metrics, r, duration_ns);
}

void names_choose_metrics(unsigned max_own)
{
	/* Static: under the lock; the write at exit runs on a program thread's stack. 1024 names are
	 * the candidates (the list holds at most 4096 unused ones): first every name with series of
	 * its own (at most DNSAWARE_METRICS_NAMES, 256), so that each can be judged and the count of
	 * places stays true however far down the list new names push it; then the newest others. */
	static struct metrics_choice *choice[1024];
	static struct name_entry *entry[1024];
	static bool before[1024];
	unsigned n = 0;
	for (int own = 1; own >= 0; own--)
		for (struct name_entry *e = entries; e != NULL && n < 1024; e = e->next) {
			if (e->choice.own != (bool)own)
				continue;
			e->choice.activity += e->live_sockets;
			choice[n] = &e->choice;
			entry[n++] = e;
		}
	for (unsigned i = 0; i < n; i++)
		before[i] = choice[i]->own;
	metrics_choose(choice, n, max_own, metrics_round);
	for (unsigned i = 0; i < n; i++) {
		struct name_entry *e = entry[i];
		if (before[i] && !e->choice.own) {
			e->choice.own = true; /* fold_metrics takes it out of the count */
			fold_metrics(e);
			e->choice.changed_at = metrics_round;
		} else if (!before[i] && e->choice.own) {
			metrics_own_count++;
		}
		e->choice.activity = 0;
	}
	metrics_round++;
}

void names_record_connect_host(const char *host, enum connect_result r, uint64_t duration_ns, unsigned max_own)
{
	struct name_entry *e = find(host);
	if (e != NULL)
		names_record_connect(e, r, duration_ns, max_own);
}

void names_release(struct name_entry *entry)
{
	if (entry->live_sockets > 0 && --entry->live_sockets == 0) {
		unused_count++;
		entry->next_refresh_ms = 0;
	}
}

void names_forget_unused(uint64_t now_ms)
{
	struct name_entry **link = &entries;
	while (*link != NULL) {
		struct name_entry *e = *link;
		if (e->live_sockets == 0 && !e->refresh_in_flight && now_ms - e->last_learned_ms >= NAMES_UNUSED_KEEP_MS) {
			*link = e->next;
			fold_metrics(e);
			free(e);
			atomic_fetch_sub(&names_count, 1);
			unused_count--;
			continue;
		}
		link = &e->next;
	}
}

struct name_entry *names_first(void)
{
	return entries;
}

void names_prepare_fork(void)
{
	pthread_mutex_lock(&names_mutex);
}

void names_after_fork_parent(void)
{
	pthread_mutex_unlock(&names_mutex);
}

void names_after_fork_child(void)
{
	/* Unlocked, not initialised again: initialising a mutex that is locked is undefined
	 * (ThreadSanitizer reported the child's next lock as a double lock). The child's only thread
	 * is the one that locked it in names_prepare_fork. */
	pthread_mutex_unlock(&names_mutex);
}

void names_forget_parent_sockets(void)
{
	unused_count = 0;
	names_other_metrics = (struct name_metrics){0};
	for (struct name_entry *e = entries; e != NULL; e = e->next) {
		e->live_sockets = 0;
		e->refresh_in_flight = false;
		e->next_refresh_ms = 0;
		for (unsigned i = 0; i < e->records.count; i++)
			e->records.records[i].conns = 0; /* the parent's sockets are not the child's to balance */
		/* The child writes a file of its own: the parent's connects are the parent's. */
		e->metrics = (struct name_metrics){0};
		unused_count++;
	}
}
