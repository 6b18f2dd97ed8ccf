#include "balance.h"

int balance_choose(const struct balance_candidate *c, unsigned n, unsigned turn)
{
	bool any_healthy = false;
	for (unsigned i = 0; i < n; i++)
		any_healthy = any_healthy || !c[i].cooling;
	uint32_t fewest = UINT32_MAX;
	unsigned tied = 0;
	for (unsigned i = 0; i < n; i++) {
		if (any_healthy && c[i].cooling)
			continue;
		if (c[i].conns < fewest) {
			fewest = c[i].conns;
			tied = 1;
		} else if (c[i].conns == fewest) {
			tied++;
		}
	}
	if (tied == 0)
		return -1;
	unsigned pick = turn % tied;
	for (unsigned i = 0; i < n; i++) {
		if ((any_healthy && c[i].cooling) || c[i].conns != fewest)
			continue;
		if (pick-- == 0)
			return (int)i;
	}
	return -1;
}

uint32_t balance_fair_share(uint32_t conns, uint32_t addrs)
{
	return addrs == 0 ? 0 : conns / addrs + (conns % addrs != 0);
}

uint32_t balance_excess(uint32_t conns, uint32_t share)
{
	return conns > share ? conns - share : 0;
}
