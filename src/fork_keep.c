#include "fork_keep.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct kept {
	struct kept *older;
	unsigned count;
	void *pointers[];
};
static struct kept *kept;

void fork_keep(void *const *pointers, unsigned count)
{
	bool any = false;
	for (unsigned i = 0; i < count; i++)
		any = any || pointers[i] != NULL;
	if (!any)
		return;
	/* glibc's fork leaves malloc usable in the child. Without memory, they are simply lost. */
	struct kept *k = malloc(sizeof *k + count * sizeof k->pointers[0]);
	if (k == NULL)
		return;
	k->older = kept;
	k->count = count;
	memcpy(k->pointers, pointers, count * sizeof k->pointers[0]);
	kept = k;
}
