#include "fork_keep.h"

#include <stdbool.h>
#include <stddef.h>

/* One row per fork generation, in static memory: a malloc in the fork child would write heap pages
 * the kernel must then copy for it, at every fork the program makes. A chain of forks deeper than
 * GENERATIONS, each tracking connections, reuses the oldest row: LeakSanitizer would then report
 * that generation's leftovers as lost, nothing else changes. */
#define GENERATIONS 8
#define PER_GENERATION 8

static void *kept[GENERATIONS][PER_GENERATION];
static unsigned depth; /* rows filled, this process's ancestors' included */
static unsigned used;  /* entries of the current row */
static bool row_open;

void fork_keep_begin(void)
{
	row_open = false;
}

void fork_keep(void *const *pointers, unsigned count)
{
	bool any = false;
	for (unsigned i = 0; i < count; i++)
		any = any || pointers[i] != NULL;
	if (!any)
		return;
	if (!row_open) {
		row_open = true;
		used = 0;
		depth++;
	}
	void **row = kept[(depth - 1) % GENERATIONS];
	for (unsigned i = 0; i < count && used < PER_GENERATION; i++)
		row[used++] = pointers[i];
}
