#include "stale_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "real.h"
#include "runtime.h"

enum map_state { STORE_UNMAPPED, STORE_MAPPING, STORE_MAPPED, STORE_UNAVAILABLE };

static _Atomic int map_state;
static struct stale_store store;
static uint64_t context;

uint64_t stale_file_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t stale_file_context(void)
{
	return context;
}

/* Reads a short file whole (its first line), through the real calls. */
static bool read_line(const char *path, char *out, size_t size)
{
	int fd = REAL(open)(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, out, size - 1);
	REAL(close)(fd);
	if (n <= 0)
		return false;
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return true;
}

static unsigned long long ns_inode(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* A directory of ours alone: made if missing, refused unless it is a real directory owned by this
 * user that no one else may write to or read. */
static bool private_dir(const char *dir, const char **why)
{
	struct stat st;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		*why = strerror(errno);
		return false;
	}
	if (lstat(dir, &st) != 0) {
		*why = strerror(errno);
		return false;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		*why = "it is not a directory of this user's alone (mode 0700)";
		return false;
	}
	return true;
}

static bool default_dir(char *out, size_t size)
{
	if (geteuid() == 0)
		return snprintf(out, size, "/run/dnsaware") < (int)size;
	const char *runtime_dir = getauxval(AT_SECURE) ? NULL : getenv("XDG_RUNTIME_DIR");
	if (runtime_dir != NULL && runtime_dir[0] == '/')
		return snprintf(out, size, "%s/dnsaware", runtime_dir) < (int)size;
	return snprintf(out, size, "/tmp/dnsaware-%u", (unsigned)geteuid()) < (int)size;
}

/* The file's name: the boot (its clock), the network and mount namespaces (what the resolver
 * sees: another container's /etc/resolv.conf, another network's DNS server) and the layout (the
 * slot's size and STALE_STORE_LAYOUT: what its fields mean). */
static bool file_path(const char *dir, char *out, size_t size)
{
	char boot[64] = "";
	if (!read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot))
		return false;
	boot[8] = '\0';
	return snprintf(out, size, "%s/answers-%s-%llu-%llu-%zu-%d", dir, boot, ns_inode("/proc/self/ns/net"),
			ns_inode("/proc/self/ns/mnt"), sizeof(struct stale_slot), STALE_STORE_LAYOUT) < (int)size;
}

static void *map_file(const char *path, uint64_t size, const char **why)
{
	void *block = NULL;
	struct stat st;
	int fd = REAL(open)(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		*why = strerror(errno);
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		*why = "it is not a file of this user's alone (mode 0600)";
		goto done;
	}
	/* A new file, or one a concurrent first user is sizing: both size it the same. */
	if ((uint64_t)st.st_size != size && st.st_size != 0) {
		*why = "it has another size";
		goto done;
	}
	/* Its blocks reserved (a no-op once they are): a store on a full tmpfs would otherwise kill
	 * the program with SIGBUS at its first write. fallocate, never glibc's posix_fallocate,
	 * whose fallback writes over the file another process is writing through its mapping; a
	 * file system without it gets the size alone. */
	if (fallocate(fd, 0, 0, (off_t)size) != 0 &&
	    (errno != EOPNOTSUPP || ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) != 0))) {
		*why = strerror(errno);
		goto done;
	}
	block = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (block == MAP_FAILED) {
		block = NULL;
		*why = strerror(errno);
	}
done:
	REAL(close)(fd);
	return block;
}

static bool map_store(void)
{
	uint64_t size = stale_store_size(STALE_STORE_SLOTS);
	const char *configured = runtime_config.state_dir;
	char dir[CONFIG_PATH_MAX], path[CONFIG_PATH_MAX + 96];
	const char *why = NULL;
	void *block = NULL;
	bool shared = strcmp(configured, "off") != 0 && !getauxval(AT_SECURE);
	if (shared) {
		if (configured[0] != '\0')
			snprintf(dir, sizeof dir, "%s", configured);
		else if (!default_dir(dir, sizeof dir))
			why = "the path is too long";
		if (why == NULL && private_dir(dir, &why)) {
			if (!file_path(dir, path, sizeof path))
				why = "the boot id cannot be read";
			else
				block = map_file(path, size, &why);
		}
		if (block != NULL && !stale_store_attach(&store, block, STALE_STORE_SLOTS)) {
			munmap(block, size);
			block = NULL;
			why = "it holds something else";
		}
		if (block == NULL)
			log_msg(LOG_WARN, "cannot keep answers in %s (%s); this process keeps its own", configured[0] ? configured : dir,
				why);
	}
	if (block == NULL) {
		/* Shared with the children fork makes, like the file. */
		block = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (block == MAP_FAILED)
			return false;
		stale_store_attach(&store, block, STALE_STORE_SLOTS);
	}
	return true;
}

struct stale_store *stale_file_store(void)
{
	int state = atomic_load_explicit(&map_state, memory_order_acquire);
	if (state == STORE_MAPPED)
		return &store;
	if (state != STORE_UNMAPPED)
		return NULL; /* failed, or another thread is mapping it: this lookup goes without */
	if (!atomic_compare_exchange_strong(&map_state, &state, STORE_MAPPING))
		return NULL;
	context = lookup_hash_text(lookup_hash_text(lookup_hash_text(0, getenv("LOCALDOMAIN")), getenv("RES_OPTIONS")),
				   getenv("HOSTALIASES"));
	bool ok = map_store();
	atomic_store_explicit(&map_state, ok ? STORE_MAPPED : STORE_UNAVAILABLE, memory_order_release);
	return ok ? &store : NULL;
}

struct stale_store *stale_file_mapped(void)
{
	return atomic_load_explicit(&map_state, memory_order_acquire) == STORE_MAPPED ? &store : NULL;
}
