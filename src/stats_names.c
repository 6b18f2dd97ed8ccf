#include "stats_names.h"

#include <string.h>

#include "names.h"

static uint64_t sockets_of(const struct name_entry *e)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < e->records.count; i++)
		total += e->records.records[i].conns;
	return total;
}

static void fill(struct stats_name_sockets *n, const struct name_entry *e, uint64_t total)
{
	memset(n, 0, sizeof *n);
	memcpy(n->name, e->host, strnlen(e->host, sizeof n->name - 1));
	n->total = total;
	for (unsigned i = 0; i < e->records.count; i++) {
		const struct record *r = &e->records.records[i];
		if (n->count < STATS_NAME_ADDRS_MAX) {
			ip_addr_format(&r->addr, n->address[n->count]);
			n->sockets[n->count++] = r->conns;
		} else {
			n->other_addresses += r->conns;
			n->has_other_addresses = true;
		}
	}
}

void stats_names_collect(struct stats_names *out)
{
	out->count = 0;
	out->other = 0;
	out->has_other = false;
	for (const struct name_entry *e = names_first(); e != NULL; e = e->next) {
		if (e->live_sockets == 0)
			continue;
		uint64_t total = sockets_of(e);
		/* Its place among the busiest so far; the one pushed out of the last place, if any,
		 * goes to _other. */
		unsigned at = out->count;
		while (at > 0 && out->name[at - 1].total < total)
			at--;
		if (at == STATS_NAMES_MAX) {
			out->other += total;
			out->has_other = true;
			continue;
		}
		if (out->count == STATS_NAMES_MAX) {
			out->other += out->name[STATS_NAMES_MAX - 1].total;
			out->has_other = true;
			out->count--;
		}
		memmove(&out->name[at + 1], &out->name[at], (out->count - at) * sizeof out->name[0]);
		fill(&out->name[at], e, total);
		out->count++;
	}
}
