#include <fcntl.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

#include "real.h"
#include "runtime.h"
#include "tracked.h"

#define SHIMFD_MAX 64

/* Each slot holds an fd the library opened, or -1. lost[] says the program closed it behind us. */
static _Atomic int owned[SHIMFD_MAX] = {[0 ... SHIMFD_MAX - 1] = -1};
static _Atomic bool lost[SHIMFD_MAX];
static _Atomic bool kept_on_fork[SHIMFD_MAX];

static int slot_of(int fd)
{
	for (int i = 0; i < SHIMFD_MAX; i++)
		if (atomic_load(&owned[i]) == fd)
			return i;
	return -1;
}

/* Below this many fds under the soft limit is where the library's own fds go. */
#define HIGH_FD_MARGIN 64
#define HIGH_FD_LOWEST 100

static int high_fd_hint(void)
{
	struct rlimit limit;
	if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > FDTABLE_MAX_FD)
		return HIGH_FD_LOWEST;
	long hint = (long)limit.rlim_cur - HIGH_FD_MARGIN;
	return hint > HIGH_FD_LOWEST ? (int)hint : HIGH_FD_LOWEST;
}

int shimfd_adopt(int fd, bool keep_on_fork)
{
	if (fd < 0)
		return fd;
	int high = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, high_fd_hint());
	if (high >= 0) {
		REAL(close)(fd);
		fd = high;
	}
	for (int i = 0; i < SHIMFD_MAX; i++) {
		int expected = -1;
		if (atomic_compare_exchange_strong(&owned[i], &expected, fd)) {
			atomic_store(&lost[i], false);
			atomic_store(&kept_on_fork[i], keep_on_fork);
			bool ok;
			fdtable_exchange(fd, FDTABLE_SHIM, &ok);
			break;
		}
	}
	return fd;
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
		int fd = atomic_load(&owned[i]);
		if (fd < 0)
			continue;
		if (atomic_load(&kept_on_fork[i])) {
			/* The child's fd table starts empty: mark the kept fd again. */
			bool ok;
			if (!atomic_load(&lost[i]))
				fdtable_exchange(fd, FDTABLE_SHIM, &ok);
			continue;
		}
		atomic_store(&owned[i], -1);
		if (!atomic_exchange(&lost[i], false))
			REAL(close)(fd);
	}
}
