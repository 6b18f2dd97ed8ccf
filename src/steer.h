/* Connect steering's choices (design.md, "Connect steering"): which current address a connect
 * goes to instead of the one the program kept, and in which order a failed blocking connect
 * tries the others. Pure, unit-testable; the caller holds the names lock. */
#ifndef DNSAWARE_STEER_H
#define DNSAWARE_STEER_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

#define STEER_COOLDOWN_SLOTS 64
/* Most alternatives a connect considers (the name's current addresses of one family). */
#define STEER_MAX_CANDIDATES 16

/* Addresses (with port) whose connect failed lately: skipped while a healthy one exists. */
struct steer_cooldowns {
	struct {
		struct ip_addr addr;
		uint16_t port;
		uint64_t until_ms; /* 0: free slot */
	} slot[STEER_COOLDOWN_SLOTS];
};

/* Remembers a failed connect to addr:port until now + cooldown (the oldest entry makes room). */
void steer_mark_failed(struct steer_cooldowns *c, const struct ip_addr *addr, uint16_t port, uint64_t now_ms,
		       uint64_t cooldown_ms);
/* A connect to addr:port worked: it is healthy again at once. */
void steer_mark_healthy(struct steer_cooldowns *c, const struct ip_addr *addr, uint16_t port);
bool steer_cooling(const struct steer_cooldowns *c, const struct ip_addr *addr, uint16_t port, uint64_t now_ms);

/* Writes to out (at most max) the candidates of addr family `family` other than those in skip,
 * in the order to try them: healthy ones first, rotated by `turn` so that successive connects
 * spread over them, then the cooling ones, the soonest to recover first. *healthy gets how many
 * of the written ones are healthy. Returns how many were written. */
unsigned steer_order(const struct ip_addr *candidates, unsigned n, uint8_t family, uint16_t port,
		     const struct steer_cooldowns *c, uint64_t now_ms, unsigned turn, const struct ip_addr *skip,
		     unsigned nskip, struct ip_addr *out, unsigned max, unsigned *healthy);

#endif
