#include "stale_store.h"

#include <sched.h>
#include <stddef.h>
#include <string.h>

/* Spins before a lookup does without the store (it then asks the resolver as without the library). */
#define LOCK_TRIES 2000

uint64_t stale_store_size(unsigned count)
{
	return sizeof(struct stale_store_header) + (uint64_t)count * sizeof(struct stale_slot);
}

bool stale_store_attach(struct stale_store *store, void *block, unsigned count)
{
	struct stale_store_header *header = block;
	static const struct stale_store_header zero;
	struct stale_store_header expected = {.slot_count = count, .slot_size = sizeof(struct stale_slot)};
	memcpy(expected.magic, STALE_STORE_MAGIC, sizeof STALE_STORE_MAGIC);
	/* Two processes making the same new file write the same header. */
	if (memcmp(header, &zero, sizeof zero) == 0)
		memcpy(header, &expected, sizeof expected);
	if (memcmp(header, &expected, sizeof expected) != 0)
		return false;
	store->header = header;
	store->slots = (struct stale_slot *)(header + 1);
	store->count = count;
	return true;
}

static bool slot_lock(struct stale_slot *slot, uint64_t now_ms)
{
	for (unsigned tries = 0; tries < LOCK_TRIES; tries++) {
		uint64_t seen = atomic_load_explicit(&slot->lock, memory_order_relaxed);
		if ((seen == 0 || seen < now_ms) &&
		    atomic_compare_exchange_weak_explicit(&slot->lock, &seen, now_ms + STALE_STORE_LOCK_MS,
							  memory_order_acquire, memory_order_relaxed))
			return true;
		sched_yield();
	}
	return false;
}

static void slot_unlock(struct stale_slot *slot)
{
	atomic_store_explicit(&slot->lock, 0, memory_order_release);
}

/* The key's slot, locked; NULL when it has none. With make, a slot for it is taken (an unused
 * one, else the one kept longest ago) and reset; but not when a slot of the neighbourhood could
 * not be locked: that one may be the key's, and a key never has two slots (a forget would leave
 * the other behind). */
static struct stale_slot *lock_slot(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms,
				    bool make)
{
	if (store == NULL || store->count == 0)
		return NULL;
	uint64_t hash = lookup_key_hash(key);
	struct stale_slot *victim = NULL;
	uint64_t victim_stored = UINT64_MAX;
	bool unseen = false;
	for (unsigned i = 0; i < STALE_STORE_PROBES && i < store->count; i++) {
		struct stale_slot *slot = &store->slots[(hash + i) % store->count];
		if (!slot_lock(slot, now_ms)) {
			unseen = true;
			continue;
		}
		if (slot->used && slot->key_hash == hash && lookup_key_equal(&slot->key, key)) {
			if (victim != NULL)
				slot_unlock(victim);
			return slot;
		}
		uint64_t stored = slot->used ? slot->state.stored_ms : 0;
		if (make && (victim == NULL || stored < victim_stored)) {
			if (victim != NULL)
				slot_unlock(victim);
			victim = slot;
			victim_stored = stored;
		} else {
			slot_unlock(slot);
		}
	}
	if (victim != NULL && unseen) {
		slot_unlock(victim);
		victim = NULL;
	}
	if (victim == NULL)
		return NULL;
	victim->used = true;
	victim->key_hash = hash;
	victim->key = *key;
	memset(&victim->state, 0, sizeof victim->state);
	memset(&victim->answer, 0, sizeof victim->answer);
	return victim;
}

bool stale_store_find(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms,
		      struct stale_record *out)
{
	struct stale_slot *slot = lock_slot(store, key, now_ms, false);
	if (slot == NULL)
		return false;
	out->state = slot->state;
	out->answer = slot->answer;
	slot_unlock(slot);
	return true;
}

static bool same_addresses(const struct gai_copy *a, const struct gai_copy *b)
{
	struct ip_addr left[GAI_COPY_ADDRS_MAX], right[GAI_COPY_ADDRS_MAX];
	unsigned nl = gai_copy_addresses(a, left, GAI_COPY_ADDRS_MAX);
	unsigned nr = gai_copy_addresses(b, right, GAI_COPY_ADDRS_MAX);
	if (nl != nr)
		return false;
	for (unsigned i = 0; i < nl; i++) {
		bool found = false;
		for (unsigned j = 0; j < nr && !found; j++)
			found = ip_addr_equal(&left[i], &right[j]);
		if (!found)
			return false;
	}
	return true;
}

bool stale_store_put(struct stale_store *store, const struct lookup_key *key, const struct gai_copy *answer,
		     uint64_t now_ms, uint64_t dns_order, uint64_t *served)
{
	*served = 0;
	struct stale_slot *slot = lock_slot(store, key, now_ms, true);
	if (slot == NULL)
		return false;
	bool was_failing = slot->state.failing_since_ms != 0;
	*served = slot->state.served_stale;
	if (!same_addresses(&slot->answer, answer)) {
		slot->state.dns_confirmed = false;
		slot->state.confirmed_until_ms = 0;
	}
	slot->answer = *answer;
	slot->state.dns_order = dns_order;
	slot->state.stored_ms = now_ms;
	slot->state.failing_since_ms = 0;
	slot->state.retry_at_ms = 0;
	slot->state.served_stale = 0;
	slot_unlock(slot);
	return was_failing;
}

void stale_store_forget(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms)
{
	struct stale_slot *slot = lock_slot(store, key, now_ms, false);
	if (slot == NULL)
		return;
	slot->used = false;
	slot_unlock(slot);
}

bool stale_store_note_stale(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms,
			    uint64_t retry_every_ms)
{
	struct stale_slot *slot = lock_slot(store, key, now_ms, false);
	if (slot == NULL)
		return false;
	bool started = slot->state.failing_since_ms == 0;
	if (started) {
		slot->state.failing_since_ms = now_ms;
		slot->state.retry_at_ms = now_ms + retry_every_ms;
		slot->state.confirmed_until_ms = 0;
	}
	slot->state.served_stale++;
	slot_unlock(slot);
	return started;
}

bool stale_store_claim_retry(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms,
			     uint64_t retry_every_ms)
{
	struct stale_slot *slot = lock_slot(store, key, now_ms, false);
	if (slot == NULL)
		return false;
	bool claimed = slot->state.failing_since_ms != 0 && now_ms >= slot->state.retry_at_ms;
	if (claimed)
		slot->state.retry_at_ms = now_ms + retry_every_ms;
	slot_unlock(slot);
	return claimed;
}

bool stale_store_claim_refresh(struct stale_store *store, const struct lookup_key *key, uint64_t now_ms,
			       uint64_t hold_ms)
{
	struct stale_slot *slot = lock_slot(store, key, now_ms, false);
	if (slot == NULL)
		return false;
	bool claimed = now_ms >= slot->state.refresh_claimed_until_ms;
	if (claimed)
		slot->state.refresh_claimed_until_ms = now_ms + hold_ms;
	slot_unlock(slot);
	return claimed;
}

static bool holds(const struct ip_addr *set, unsigned n, const struct ip_addr *addr)
{
	for (unsigned i = 0; i < n; i++)
		if (ip_addr_equal(&set[i], addr))
			return true;
	return false;
}

bool stale_answer_matches(const struct lookup_key *key, const struct gai_copy *answer, const struct ip_addr *addrs,
			  unsigned n)
{
	struct ip_addr kept[GAI_COPY_ADDRS_MAX];
	unsigned kept_count = gai_copy_addresses(answer, kept, GAI_COPY_ADDRS_MAX);
	bool compare_v4 = false, compare_v6 = false;
	for (unsigned i = 0; i < kept_count; i++) {
		compare_v4 |= kept[i].family == AF_INET;
		compare_v6 |= kept[i].family == AF_INET6;
		if (!holds(addrs, n, &kept[i]))
			return false;
	}
	if (key->kind == LOOKUP_GETADDRINFO && key->family == AF_UNSPEC && !(key->flags & AI_ADDRCONFIG))
		compare_v4 = compare_v6 = true;
	for (unsigned i = 0; i < n; i++) {
		bool compared = addrs[i].family == AF_INET ? compare_v4 : compare_v6;
		if (compared && !holds(kept, kept_count, &addrs[i]))
			return false;
	}
	return kept_count > 0;
}

struct stale_confirm_result stale_store_confirm(struct stale_store *store, const char *name, int family,
						const struct ip_addr *addrs, unsigned n, bool in_hosts, bool recover,
						uint64_t until_ms, uint64_t now_ms)
{
	struct stale_confirm_result result = {0};
	for (unsigned i = 0; store != NULL && i < store->count; i++) {
		struct stale_slot *slot = &store->slots[i];
		if (!slot_lock(slot, now_ms))
			continue;
		if (slot->used && lookup_key_same_name(&slot->key, name) &&
		    (family == AF_UNSPEC || slot->key.family == family)) {
			result.slots++;
			struct stale_slot_state *state = &slot->state;
			if (recover && state->failing_since_ms != 0) {
				result.recovered++;
				result.served += state->served_stale;
				state->failing_since_ms = 0;
				state->retry_at_ms = 0;
				state->served_stale = 0;
			}
			state->refresh_claimed_until_ms = 0;
			state->from_hosts = in_hosts;
			if (!in_hosts && state->failing_since_ms == 0 &&
			    stale_answer_matches(&slot->key, &slot->answer, addrs, n)) {
				state->dns_confirmed = true;
				state->confirmed_ms = now_ms;
				state->confirmed_until_ms = until_ms;
				if (recover)
					state->stored_ms = now_ms;
			} else {
				state->dns_confirmed = state->dns_confirmed && !in_hosts;
				state->confirmed_until_ms = 0;
			}
		}
		slot_unlock(slot);
	}
	return result;
}

uint64_t stale_answer_order(const struct ip_addr *addrs, unsigned n)
{
	static const uint8_t families[] = {AF_INET, AF_INET6};
	uint64_t hash = lookup_hash_text(0, "order");
	bool several = false;
	for (unsigned f = 0; f < sizeof families; f++) {
		unsigned seen = 0;
		for (unsigned i = 0; i < n; i++)
			if (addrs[i].family == families[f]) {
				hash = lookup_hash_bytes(hash, &addrs[i], sizeof addrs[i]);
				seen++;
			}
		several |= seen > 1;
		hash = lookup_hash_bytes(hash, &seen, sizeof seen);
	}
	if (!several)
		return STALE_ORDER_NONE;
	return hash > STALE_ORDER_NONE ? hash : hash + 2;
}
