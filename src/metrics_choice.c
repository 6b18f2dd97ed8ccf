#include "metrics_choice.h"

#include <stddef.h>

bool metrics_choice_settled(const struct metrics_choice *c, uint32_t round)
{
	return c->changed_at == 0 || round - c->changed_at >= METRICS_CHOICE_STABLE_ROUNDS;
}

/* The busiest settled name without series of its own, or NULL. */
static struct metrics_choice *busiest_outside(struct metrics_choice *const *names, unsigned n, uint32_t round)
{
	struct metrics_choice *best = NULL;
	for (unsigned i = 0; i < n; i++) {
		struct metrics_choice *c = names[i];
		if (!c->own && c->activity > 0 && metrics_choice_settled(c, round) && (best == NULL || c->activity > best->activity))
			best = c;
	}
	return best;
}

/* The least busy settled name with series of its own, or NULL. */
static struct metrics_choice *quietest_inside(struct metrics_choice *const *names, unsigned n, uint32_t round)
{
	struct metrics_choice *worst = NULL;
	for (unsigned i = 0; i < n; i++) {
		struct metrics_choice *c = names[i];
		if (c->own && metrics_choice_settled(c, round) && (worst == NULL || c->activity < worst->activity))
			worst = c;
	}
	return worst;
}

static void set(struct metrics_choice *c, bool own, uint32_t round)
{
	c->own = own;
	c->changed_at = round;
}

unsigned metrics_choose(struct metrics_choice *const *names, unsigned n, unsigned max_own, uint32_t round)
{
	unsigned own = 0, changed = 0;
	for (unsigned i = 0; i < n; i++)
		own += names[i]->own;
	while (own < max_own) {
		struct metrics_choice *in = busiest_outside(names, n, round);
		if (in == NULL)
			break;
		set(in, true, round);
		own++;
		changed++;
	}
	for (unsigned swaps = 0; swaps < METRICS_CHOICE_SWAPS; swaps++) {
		struct metrics_choice *in = busiest_outside(names, n, round);
		struct metrics_choice *out = quietest_inside(names, n, round);
		if (in == NULL || out == NULL ||
		    in->activity <= METRICS_CHOICE_FACTOR * out->activity + METRICS_CHOICE_MARGIN)
			break;
		set(out, false, round);
		set(in, true, round);
		changed += 2;
	}
	return changed;
}
