#include <stdatomic.h>
#include <unistd.h>

#include "real.h"
#include "runtime.h"
#include "tracked.h"

#define SHIMFD_MAX 64

/* Each slot holds an fd the library opened, or -1. lost[] says the program closed it behind us. */
static _Atomic int owned[SHIMFD_MAX] = {[0 ... SHIMFD_MAX - 1] = -1};
static _Atomic bool lost[SHIMFD_MAX];

static int slot_of(int fd)
{
	for (int i = 0; i < SHIMFD_MAX; i++)
		if (atomic_load(&owned[i]) == fd)
			return i;
	return -1;
}

bool shimfd_register(int fd)
{
	for (int i = 0; i < SHIMFD_MAX; i++) {
		int expected = -1;
		if (atomic_compare_exchange_strong(&owned[i], &expected, fd)) {
			atomic_store(&lost[i], false);
			bool ok;
			fdtable_exchange(fd, FDTABLE_SHIM, &ok);
			return true;
		}
	}
	return false;
}

bool shimfd_release(int fd)
{
	int i = slot_of(fd);
	if (i < 0)
		return true;
	bool was_lost = atomic_exchange(&lost[i], false);
	atomic_store(&owned[i], -1);
	if (!was_lost && fdtable_load(fd) == FDTABLE_SHIM) {
		bool ok;
		fdtable_exchange(fd, 0, &ok);
	}
	return !was_lost;
}

void shimfd_lost(int fd)
{
	int i = slot_of(fd);
	if (i >= 0)
		atomic_store(&lost[i], true);
	bool ok;
	fdtable_exchange(fd, 0, &ok);
}

bool shimfd_is_lost(int fd)
{
	int i = slot_of(fd);
	return i >= 0 && atomic_load(&lost[i]);
}

void shimfd_close_all(void)
{
	for (int i = 0; i < SHIMFD_MAX; i++) {
		int fd = atomic_exchange(&owned[i], -1);
		if (fd >= 0 && !atomic_exchange(&lost[i], false))
			REAL(close)(fd);
	}
}
