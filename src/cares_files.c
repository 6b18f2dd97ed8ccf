/* The files c-ares reads: /etc/resolv.conf and its kin when the channel is set up, /etc/hosts (and
 * HOSTALIASES) at every lookup. c-ares opens them with fopen(path, "r"), which is neither
 * close-on-exec nor safe on the background thread: a child the program spawned at that instant kept
 * the fd past exec, and a single-threaded program's next open() got the number after it.
 *
 * The library is linked with -Wl,--wrap=fopen, which sends c-ares' fopen calls (and only the
 * library's own) here:
 *  - on a program thread (the channel is set up inside the connect hook that starts the thread):
 *    the real fopen, with "e" added, so the fd is close-on-exec from the start;
 *  - on the background thread: the file's content in memory, as a FILE with no fd at all (no fd may
 *    be made on the thread). /etc/hosts, read at every lookup, is kept open ("pinned": opened by a
 *    program thread inside a hook, in the library's band of fds) and read with pread, no slower than
 *    c-ares' own read. Any other file, or /etc/hosts replaced by a new file or closed by the program,
 *    is read by the file helper (file_helper.h), 0.1-0.2 ms, and the next tracked connect pins
 *    /etc/hosts again. Speed matters: an answer read from an older /etc/hosts and applied after the
 *    program had learned the newer one looked like a rotating name, and nothing drained any more
 *    (torture-adopt-race, when every read went through the helper). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cares_files.h"
#include "file_helper.h"
#include "log.h"
#include "real.h"
#include "runtime.h"

/* The most c-ares is given of one file (a hosts file of blocklists can be megabytes). */
#define FILE_MAX (64u << 20)
#define CACHED_FILES 4
#define MODE_MAX 16
#define HOSTS_PATH "/etc/hosts"

FILE *__real_fopen(const char *path, const char *mode);
FILE *__wrap_fopen(const char *path, const char *mode);

/* One file's content, shared by the FILEs reading it. */
struct content {
	char *data;
	size_t length;
	unsigned readers;
	bool current; /* still the cache's copy */
};

/* A file changed this recently when it was read may change again with the same stat (timestamps
 * step by the kernel's coarse clock, a few ms, and a rewrite can keep the size): its copy is read
 * again next time. */
#define SETTLED_NS 2000000000LL

/* Owned by the background thread (every use is on it). */
static struct cached {
	char path[FILE_HELPER_PATH_MAX];
	struct stat seen;
	bool settled; /* unchanged for SETTLED_NS when it was read: the copy holds while stat agrees */
	struct content *content;
} cache[CACHED_FILES];
static unsigned next_slot;

struct reader {
	struct content *content;
	size_t offset;
};

static void free_if_unused(struct content *c)
{
	if (c->readers == 0 && !c->current) {
		free(c->data);
		free(c);
	}
}

static ssize_t reader_read(void *cookie, char *buf, size_t size)
{
	struct reader *r = cookie;
	size_t left = r->content->length - r->offset;
	size_t n = size < left ? size : left;
	memcpy(buf, r->content->data + r->offset, n);
	r->offset += n;
	return (ssize_t)n;
}

static int reader_close(void *cookie)
{
	struct reader *r = cookie;
	r->content->readers--;
	free_if_unused(r->content);
	free(r);
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static bool settled(const struct stat *st)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long changed_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	long long ctime_ns = (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
	if (ctime_ns > changed_ns)
		changed_ns = ctime_ns;
	return (long long)now.tv_sec * 1000000000LL + now.tv_nsec - changed_ns >= SETTLED_NS;
}

/* The pinned /etc/hosts: the thread's, and one a hook opened that the thread has not taken yet. */
static int pinned = -1;
static _Atomic int offered = -1;
static _Atomic bool pin_wanted = true;

void cares_files_pin(void)
{
	if (!atomic_load_explicit(&pin_wanted, memory_order_relaxed) || !atomic_exchange(&pin_wanted, false))
		return;
	int fd = REAL(open)(HOSTS_PATH, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return; /* no hosts file: the helper finds none either */
	fd = shimfd_adopt(fd, false);
	int untaken = atomic_exchange(&offered, fd);
	if (untaken >= 0 && shimfd_release(untaken))
		REAL(close)(untaken);
}

void cares_files_after_fork_child(void)
{
	pinned = -1; /* closed with the library's other fds */
	atomic_store(&offered, -1);
	atomic_store(&pin_wanted, true);
}

/* The pinned fd, if it is still the file at st (and the library's); -1 otherwise (pinned again at
 * the next tracked connect). */
static int pinned_for(const struct stat *st)
{
	int fresh = atomic_exchange(&offered, -1);
	if (fresh >= 0) {
		if (pinned >= 0 && shimfd_release(pinned))
			REAL(close)(pinned);
		pinned = fresh;
	}
	struct stat pst;
	if (pinned >= 0 && !shimfd_is_lost(pinned) && fstat(pinned, &pst) == 0 && pst.st_dev == st->st_dev &&
	    pst.st_ino == st->st_ino)
		return pinned;
	if (!atomic_exchange(&pin_wanted, true))
		log_msg(LOG_DEBUG, "%s is a new file (or was closed): read by the file helper until the next tracked "
				   "connect opens it for the thread", HOSTS_PATH);
	return -1;
}

/* The pinned file, read now with pread (it may change between reads, size included). */
static struct content *read_pinned(int fd, const struct stat *st)
{
	struct content *c = calloc(1, sizeof *c);
	size_t size = (size_t)st->st_size + 4096;
	if (c == NULL || size > FILE_MAX || (c->data = malloc(size + 1)) == NULL) {
		errno = c == NULL || size <= FILE_MAX ? ENOMEM : EFBIG;
		free(c);
		return NULL;
	}
	while (c->length < size) {
		ssize_t n = pread(fd, c->data + c->length, size - c->length, (off_t)c->length);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		c->length += (size_t)n;
	}
	c->data[c->length] = '\0';
	return c; /* not current: freed by its reader's close */
}

/* The cached copy of path, read again if the file changed; NULL with errno. */
static struct content *current_content(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return NULL;
	if (strcmp(path, HOSTS_PATH) == 0 && S_ISREG(st.st_mode)) {
		int fd = pinned_for(&st);
		if (fd >= 0)
			return read_pinned(fd, &st);
	}
	if (strlen(path) >= sizeof cache[0].path) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	struct cached *slot = NULL;
	for (unsigned i = 0; i < CACHED_FILES && slot == NULL; i++)
		if (cache[i].content != NULL && strcmp(cache[i].path, path) == 0)
			slot = &cache[i];
	if (slot != NULL && slot->settled && same_file(&slot->seen, &st))
		return slot->content;
	struct content *fresh = calloc(1, sizeof *fresh);
	if (fresh == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	int error = file_helper_read(path, FILE_MAX, &fresh->data, &fresh->length);
	if (error != 0) {
		free(fresh);
		errno = error;
		return NULL;
	}
	if (slot == NULL) {
		slot = &cache[next_slot];
		next_slot = (next_slot + 1) % CACHED_FILES;
	}
	if (slot->content != NULL) {
		slot->content->current = false; /* freed now, or by its last reader */
		free_if_unused(slot->content);
	}
	strcpy(slot->path, path);
	slot->seen = st;
	slot->settled = settled(&st);
	fresh->current = true;
	slot->content = fresh;
	return fresh;
}

static FILE *open_in_memory(const char *path)
{
	struct content *c = current_content(path);
	if (c == NULL)
		return NULL;
	struct reader *r = malloc(sizeof *r);
	if (r == NULL) {
		free_if_unused(c); /* a copy of the kept-open file, which no one else holds */
		errno = ENOMEM;
		return NULL;
	}
	*r = (struct reader){.content = c};
	c->readers++;
	FILE *f = fopencookie(r, "r", (cookie_io_functions_t){.read = reader_read, .close = reader_close});
	if (f == NULL) {
		int e = errno;
		reader_close(r);
		errno = e;
	}
	return f;
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
	if (runtime_on_thread) {
		if (mode[0] != 'r' || strchr(mode, '+') != NULL) {
			errno = EACCES; /* c-ares only reads */
			return NULL;
		}
		return open_in_memory(path);
	}
	char cloexec[MODE_MAX];
	if (strchr(mode, 'e') == NULL && strlen(mode) + 2 <= sizeof cloexec) {
		strcpy(cloexec, mode);
		strcat(cloexec, "e");
		mode = cloexec;
	}
	return __real_fopen(path, mode);
}
