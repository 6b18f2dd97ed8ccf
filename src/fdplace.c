#include "fdplace.h"

/* The kernel's first table is the one embedded in files_struct (NR_OPEN_DEFAULT = BITS_PER_LONG);
 * past it, alloc_fdtable rounds to 1024 bytes of pointers times a power of two. */
#define TABLE_FIRST 64
#define TABLE_STEP 128

uint64_t fdplace_table_size(uint64_t highest_fd)
{
	if (highest_fd < TABLE_FIRST)
		return TABLE_FIRST;
	uint64_t steps = highest_fd / TABLE_STEP + 1;
	uint64_t power = 1;
	while (power < steps && power <= UINT64_MAX / 2 / TABLE_STEP)
		power <<= 1;
	return power * TABLE_STEP;
}

int64_t fdplace_band_low(int64_t dense_top, uint64_t limit, uint64_t max_fd)
{
	if (dense_top < -1)
		dense_top = -1;
	uint64_t top = fdplace_table_size((uint64_t)(dense_top + 1) + FDPLACE_GAP + FDPLACE_BAND - 1);
	if (top > limit)
		top = limit;
	if (top > max_fd)
		top = max_fd;
	/* A band squeezed by the limit still stays above the program's fds. */
	uint64_t lowest = (uint64_t)(dense_top + 1);
	if (top <= lowest)
		return -1;
	uint64_t low = top >= FDPLACE_BAND ? top - FDPLACE_BAND : 0;
	if (low < lowest)
		low = lowest;
	return (int64_t)low;
}
