#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "tracked.h"

typedef fdtable_slot fd_slot;

#define CHUNK_SIZE ((size_t)1 << FDTABLE_CHUNK_BITS)
#define CHUNK_MASK (CHUNK_SIZE - 1)

_Static_assert(offsetof(struct tracked_socket, state) == 0, "the send hooks read a slot's first word as its state");

struct fdtable_dns_gate fdtable_dns_gates[FDTABLE_DNS_SOCKETS] = {[0 ... FDTABLE_DNS_SOCKETS - 1] = {STATE_DNS_SOCKET}};

/* Chunks are mapped, never unmapped: a send racing a fork-child clear must not touch freed memory. */
_Atomic(fd_slot *) fdtable_chunks[FDTABLE_CHUNKS];

static fd_slot *chunk_for(unsigned index)
{
	fd_slot *chunk = atomic_load_explicit(&fdtable_chunks[index], memory_order_acquire);
	if (chunk != NULL)
		return chunk;
	void *mapped = mmap(NULL, CHUNK_SIZE * sizeof(fd_slot), PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mapped == MAP_FAILED)
		return NULL;
	fd_slot *expected = NULL;
	if (atomic_compare_exchange_strong_explicit(&fdtable_chunks[index], &expected, (fd_slot *)mapped,
						    memory_order_acq_rel, memory_order_acquire))
		return mapped;
	/* Another thread mapped it first. */
	munmap(mapped, CHUNK_SIZE * sizeof(fd_slot));
	return expected;
}

uintptr_t fdtable_exchange(int fd, uintptr_t value, bool *ok)
{
	*ok = false;
	if ((unsigned)fd >= (unsigned)FDTABLE_MAX_FD)
		return 0;
	fd_slot *slot;
	if (value == 0) {
		/* Clearing never maps: an absent chunk holds only zeros. */
		slot = fdtable_slot_of(fd);
		if (slot == NULL) {
			*ok = true;
			return 0;
		}
	} else {
		fd_slot *chunk = chunk_for((unsigned)fd >> FDTABLE_CHUNK_BITS);
		if (chunk == NULL)
			return 0;
		slot = &chunk[(unsigned)fd & CHUNK_MASK];
	}
	*ok = true;
	return atomic_exchange_explicit(slot, value, memory_order_acq_rel);
}

bool fdtable_compare_exchange(int fd, uintptr_t expected, uintptr_t value)
{
	fd_slot *slot = fdtable_slot_of(fd);
	return slot != NULL && atomic_compare_exchange_strong_explicit(slot, &expected, value, memory_order_acq_rel,
								       memory_order_acquire);
}

int fdtable_next_mapped(int from)
{
	if (from < 0)
		from = 0;
	for (unsigned index = (unsigned)from >> FDTABLE_CHUNK_BITS; index < FDTABLE_CHUNKS; index++) {
		if (atomic_load_explicit(&fdtable_chunks[index], memory_order_acquire) != NULL) {
			int first = (int)(index << FDTABLE_CHUNK_BITS);
			return first > from ? first : from;
		}
	}
	return FDTABLE_MAX_FD;
}

void fdtable_clear_all(void)
{
	for (unsigned i = 0; i < FDTABLE_CHUNKS; i++) {
		fd_slot *chunk = atomic_load_explicit(&fdtable_chunks[i], memory_order_acquire);
		if (chunk == NULL)
			continue;
		/* Only the slots in use: a fork child calls this, and every page it writes is a page the
		 * kernel must copy for it (copy-on-write), which the program pays for at every fork. */
		for (size_t j = 0; j < CHUNK_SIZE; j++)
			if (atomic_load_explicit(&chunk[j], memory_order_relaxed) != 0)
				atomic_store_explicit(&chunk[j], 0, memory_order_release);
	}
}
