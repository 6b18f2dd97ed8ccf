#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdplace.h"
#include "real.h"
#include "runtime.h"
#include "tracked.h"

#define SHIMFD_MAX 64

/* Each slot is one word: 0 when free, SLOT_CLAIMING while being filled, else the fd the library made
 * (low 32 bits) with SLOT_FD, SLOT_LOST once the program closed it, and a generation counted up at
 * each claim. identity[] is the file the fd was (st_dev, st_ino): a program that closes fds with
 * the raw system call (closefrom, syscall(SYS_close_range)) passes no hook, and the number may be
 * the program's file by the time the library uses it again. Every use checks the identity first
 * (fstat: async-signal-safe), so the library never writes to, reads from or closes a number that
 * is no longer its own. A pipe's two ends share an inode no one else has; every socket has its own.
 * The identity is read between two loads of the slot's word: the same word (generation included)
 * means it was not refilled meanwhile. */
#define SLOT_FD ((uint64_t)1 << 32)
#define SLOT_LOST ((uint64_t)1 << 33)
#define SLOT_CLAIMING ((uint64_t)1 << 34)
#define SLOT_GENERATION ((uint64_t)1 << 35)
static _Atomic uint64_t slots[SHIMFD_MAX];
static _Atomic bool kept_on_fork[SHIMFD_MAX];
static struct {
	_Atomic dev_t dev;
	_Atomic ino_t ino;
} identity[SHIMFD_MAX];
static _Atomic uint64_t generation;

static int slot_fd(uint64_t word)
{
	return (word & SLOT_FD) ? (int)(uint32_t)word : -1;
}

/* The slot holding fd, and its word then; -1 when the library has no such fd. */
static int slot_of(int fd, uint64_t *word)
{
	for (int i = 0; i < SHIMFD_MAX; i++) {
		*word = atomic_load(&slots[i]);
		if (slot_fd(*word) == fd)
			return i;
	}
	return -1;
}

/* fd is the file (dev, ino) still. fstat: async-signal-safe. */
static bool is_file(int fd, dev_t dev, ino_t ino)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Slot i held fd with word w: true when fd is not the library's file any more (closed by the
 * program, through a hook or behind its back, or the slot has moved on); marked lost for good then,
 * and the table forgets the number. */
static bool check_lost(int i, int fd, uint64_t w)
{
	if (w & SLOT_LOST)
		return true;
	dev_t dev = atomic_load(&identity[i].dev);
	ino_t ino = atomic_load(&identity[i].ino);
	if (atomic_load(&slots[i]) != w)
		return true; /* released or lost meanwhile */
	if (is_file(fd, dev, ino))
		return false;
	if (atomic_compare_exchange_strong(&slots[i], &w, w | SLOT_LOST))
		fdtable_compare_exchange(fd, FDTABLE_SHIM, 0);
	return true;
}

/* Numbers looked at per system call when finding the program's fds. */
#define SCAN_CHUNK 128

/* The program's own fds are dense up to this number (-1: none): the highest open fd that is not the
 * library's, scanning up from 0 to the first run of SCAN_CHUNK free numbers (a lone high fd the
 * program dup2'd somewhere does not move the band: its numbers below stay free for the program).
 * poll() with no events and no wait reports POLLNVAL for a number that is not open: one system call
 * per SCAN_CHUNK numbers, no file touched. */
static int64_t program_dense_top(uint64_t limit)
{
	struct pollfd fds[SCAN_CHUNK];
	int64_t top = -1;
	for (uint64_t base = 0; base < limit && base < FDTABLE_MAX_FD; base += SCAN_CHUNK) {
		uint64_t n = limit - base < SCAN_CHUNK ? limit - base : SCAN_CHUNK;
		for (uint64_t i = 0; i < n; i++)
			fds[i] = (struct pollfd){.fd = (int)(base + i), .events = 0};
		if (poll(fds, (nfds_t)n, 0) < 0)
			break;
		bool any = false;
		for (uint64_t i = 0; i < n; i++) {
			if ((fds[i].revents & POLLNVAL) || fdtable_load((int)(base + i)) == FDTABLE_SHIM)
				continue;
			top = (int64_t)(base + i);
			any = true;
		}
		if (!any)
			break;
	}
	return top;
}

/* Moves a new fd of the library's into the band (fdplace.h). Only ever called where no program
 * thread of a single-threaded program can be making an fd: in a hook, whose caller is busy in it. */
static int place(int fd)
{
	struct rlimit limit;
	uint64_t cur = FDTABLE_MAX_FD;
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < cur)
		cur = limit.rlim_cur;
	int64_t low = fdplace_band_low(program_dense_top(cur), cur, FDTABLE_MAX_FD);
	if (low < 0 || fd >= low)
		return fd;
	int placed = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, (int)low);
	if (placed < 0)
		return fd;
	REAL(close)(fd);
	return placed;
}

int shimfd_adopt(int fd, bool keep_on_fork)
{
	if (fd < 0)
		return fd;
	fd = place(fd);
	struct stat st;
	if (fstat(fd, &st) != 0)
		return fd; /* cannot happen with an fd just made; untracked, it is simply never checked */
	for (int i = 0; i < SHIMFD_MAX; i++) {
		uint64_t expected = 0;
		if (atomic_compare_exchange_strong(&slots[i], &expected, SLOT_CLAIMING)) {
			atomic_store(&identity[i].dev, st.st_dev);
			atomic_store(&identity[i].ino, st.st_ino);
			atomic_store(&kept_on_fork[i], keep_on_fork);
			bool ok;
			fdtable_exchange(fd, FDTABLE_SHIM, &ok);
			uint64_t g = atomic_fetch_add(&generation, 1) + 1;
			atomic_store(&slots[i], g * SLOT_GENERATION | SLOT_FD | (uint32_t)fd);
			break;
		}
	}
	return fd;
}

bool shimfd_release(int fd)
{
	uint64_t w;
	int i = slot_of(fd, &w);
	if (i < 0)
		return true;
	bool was_lost = check_lost(i, fd, w);
	uint64_t now = atomic_load(&slots[i]); /* lost meanwhile, maybe: still this fd's slot */
	while (slot_fd(now) == fd && !atomic_compare_exchange_weak(&slots[i], &now, 0)) {
	}
	if (!was_lost && fdtable_load(fd) == FDTABLE_SHIM) {
		bool ok;
		fdtable_exchange(fd, 0, &ok);
	}
	return !was_lost;
}

void shimfd_lost(int fd)
{
	uint64_t w;
	int i = slot_of(fd, &w);
	if (i >= 0)
		atomic_compare_exchange_strong(&slots[i], &w, w | SLOT_LOST);
	bool ok;
	fdtable_exchange(fd, 0, &ok);
}

bool shimfd_is_lost(int fd)
{
	uint64_t w;
	int i = slot_of(fd, &w);
	return i >= 0 && check_lost(i, fd, w);
}

void shimfd_close_all(void)
{
	for (int i = 0; i < SHIMFD_MAX; i++) {
		uint64_t w = atomic_load(&slots[i]);
		int fd = slot_fd(w);
		if (fd < 0)
			continue;
		if (atomic_load(&kept_on_fork[i])) {
			/* The child's fd table starts empty: mark the kept fd again. */
			bool ok;
			if (!check_lost(i, fd, w))
				fdtable_exchange(fd, FDTABLE_SHIM, &ok);
			continue;
		}
		bool was_lost = check_lost(i, fd, w);
		atomic_store(&slots[i], 0);
		if (!was_lost)
			REAL(close)(fd);
	}
}

void shimfd_close_inherited(void)
{
	for (int i = 0; i < SHIMFD_MAX; i++) {
		uint64_t w = atomic_load(&slots[i]);
		int fd = slot_fd(w);
		if (fd < 0 || (w & SLOT_LOST) || atomic_load(&kept_on_fork[i]))
			continue;
		if (is_file(fd, atomic_load(&identity[i].dev), atomic_load(&identity[i].ino)))
			REAL(close)(fd);
	}
}
