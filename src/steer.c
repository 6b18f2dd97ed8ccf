/* Connect steering's choices: cooldowns of failed addresses and the order of alternatives. */
#include "steer.h"

#include <string.h>

static int find_slot(const struct steer_cooldowns *c, const struct ip_addr *addr, uint16_t port)
{
	for (int i = 0; i < STEER_COOLDOWN_SLOTS; i++)
		if (c->slot[i].until_ms != 0 && c->slot[i].port == port && ip_addr_equal(&c->slot[i].addr, addr))
			return i;
	return -1;
}

void steer_mark_failed(struct steer_cooldowns *c, const struct ip_addr *addr, uint16_t port, uint64_t now_ms,
		       uint64_t cooldown_ms)
{
	int i = find_slot(c, addr, port);
	if (i < 0) {
		/* A free slot, else the one that recovers first. */
		i = 0;
		for (int j = 0; j < STEER_COOLDOWN_SLOTS; j++) {
			if (c->slot[j].until_ms == 0) {
				i = j;
				break;
			}
			if (c->slot[j].until_ms < c->slot[i].until_ms)
				i = j;
		}
	}
	c->slot[i].addr = *addr;
	c->slot[i].port = port;
	/* until_ms == 0 marks a free slot: a zero cooldown still needs a non-zero stamp. */
	c->slot[i].until_ms = now_ms + cooldown_ms > 0 ? now_ms + cooldown_ms : 1;
}

void steer_mark_healthy(struct steer_cooldowns *c, const struct ip_addr *addr, uint16_t port)
{
	int i = find_slot(c, addr, port);
	if (i >= 0)
		c->slot[i].until_ms = 0;
}

static uint64_t cooling_until(const struct steer_cooldowns *c, const struct ip_addr *addr, uint16_t port,
			      uint64_t now_ms)
{
	int i = find_slot(c, addr, port);
	return i >= 0 && c->slot[i].until_ms > now_ms ? c->slot[i].until_ms : 0;
}

bool steer_cooling(const struct steer_cooldowns *c, const struct ip_addr *addr, uint16_t port, uint64_t now_ms)
{
	return cooling_until(c, addr, port, now_ms) != 0;
}

static bool listed(const struct ip_addr *addr, const struct ip_addr *list, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (ip_addr_equal(addr, &list[i]))
			return true;
	return false;
}

unsigned steer_order(const struct ip_addr *candidates, unsigned n, uint8_t family, uint16_t port,
		     const struct steer_cooldowns *c, uint64_t now_ms, unsigned turn, const struct ip_addr *skip,
		     unsigned nskip, struct ip_addr *out, unsigned max, unsigned *healthy)
{
	struct ip_addr fine[STEER_MAX_CANDIDATES], cooling[STEER_MAX_CANDIDATES];
	uint64_t recovers[STEER_MAX_CANDIDATES];
	unsigned nfine = 0, ncooling = 0;

	for (unsigned i = 0; i < n; i++) {
		const struct ip_addr *a = &candidates[i];
		if (a->family != family || listed(a, skip, nskip) || listed(a, fine, nfine) ||
		    listed(a, cooling, ncooling))
			continue;
		uint64_t until = cooling_until(c, a, port, now_ms);
		if (until == 0 && nfine < STEER_MAX_CANDIDATES) {
			fine[nfine++] = *a;
		} else if (until != 0 && ncooling < STEER_MAX_CANDIDATES) {
			/* Insertion by recovery time: the soonest back is the best of the bad. */
			unsigned j = ncooling++;
			for (; j > 0 && recovers[j - 1] > until; j--) {
				cooling[j] = cooling[j - 1];
				recovers[j] = recovers[j - 1];
			}
			cooling[j] = *a;
			recovers[j] = until;
		}
	}

	unsigned written = 0;
	for (unsigned i = 0; i < nfine && written < max; i++)
		out[written++] = fine[(turn + i) % nfine];
	if (healthy != NULL)
		*healthy = written;
	for (unsigned i = 0; i < ncooling && written < max; i++)
		out[written++] = cooling[i];
	return written;
}
