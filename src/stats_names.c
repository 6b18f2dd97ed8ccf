#include "stats_names.h"

#include <stdlib.h>
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
	n->metrics = e->metrics;
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

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct stats_name_sockets *)a)->name, ((const struct stats_name_sockets *)b)->name);
}

static bool any(const struct name_metrics *m)
{
	for (unsigned i = 0; i < CONNECT_RESULTS; i++)
		if (m->results[i] != 0)
			return true;
	return false;
}

void stats_names_collect(struct stats_names *out)
{
	out->count = 0;
	out->other = 0;
	out->other_metrics = names_other_metrics;
	out->has_other = any(&names_other_metrics);
	for (const struct name_entry *e = names_first(); e != NULL; e = e->next) {
		uint64_t total = sockets_of(e);
		if (e->choice.own && out->count < out->capacity) {
			fill(&out->name[out->count++], e, total);
		} else if (total > 0) {
			out->other += total;
			out->has_other = true;
		}
	}
	qsort(out->name, out->count, sizeof out->name[0], by_name);
}
