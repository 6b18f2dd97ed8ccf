/* The program's lookups of names it asked for before (design.md, "The resolver's bad days"): the
 * kept answer when the resolver fails (RFC 8767), the response timer, and the cache. Called by the
 * lookup hooks (hook_resolve.c) with the real call wrapped in a lookup_call; what the hooks
 * return is the real call's result or the kept answer, laid out as the real call lays it out. */
#ifndef DNSAWARE_STALE_LOOKUP_H
#define DNSAWARE_STALE_LOOKUP_H

#include <stdbool.h>

#include "gai_copy.h"
#include "lookup_key.h"

enum lookup_outcome {
	LOOKUP_GOOD,      /* an answer */
	LOOKUP_TEMPORARY, /* EAI_AGAIN, TRY_AGAIN: the resolver failed or timed out */
	LOOKUP_NEGATIVE,  /* the name or its addresses do not exist: authoritative */
	LOOKUP_OTHER,     /* anything else (a buffer too small, no memory, a bad argument) */
};

/* One call of the program's, as the flow needs it. */
struct lookup_call {
	struct lookup_key key;
	const char *node; /* as the program gave it */
	/* Runs the real call, leaving its result where the program will find it. */
	enum lookup_outcome (*ask)(struct lookup_call *call);
	/* The real call's answer, kept. False: it cannot be (too large). */
	bool (*keep)(struct lookup_call *call, struct gai_copy *out);
	/* Puts a kept answer where the program will find it, as the real call would. False when it
	 * cannot (no memory, a buffer too small: then the real call is made, or its result stands). */
	bool (*serve)(struct lookup_call *call, const struct gai_copy *answer);
	/* Out: the result in place is a kept answer (the real call was not made, or failed). */
	bool served_kept;
};

/* Runs call: the real call, or a kept answer in its place. Returns with the program's result in
 * place (the hook returns it as the real call would) and errno as the call found it when a kept
 * answer was served. */
void stale_lookup_run(struct lookup_call *call);

#endif
