/* File work the background thread needs (the stats file, the log file when its fd is gone, the files
 * c-ares reads) done without ever taking a number in the program's fd table: in a child that shares
 * the library's memory and has an fd table of its own (clone(CLONE_VM | CLONE_VFORK), like glibc's
 * posix_spawn; no exit signal, so the program's SIGCHLD handler and wait() never see it; reaped by
 * the thread at once). A single-threaded program relies on getting the lowest free number from
 * open(); a file the thread opened itself, however briefly, would take it (docs/how-it-works.md,
 * "Where the shim's fds live").
 *
 * The steps (open, write, rename...) are plain system calls, the same whether run in the child or,
 * for a program thread inside the library (the stats file's last write at exit), directly. */
#ifndef DNSAWARE_FILE_HELPER_H
#define DNSAWARE_FILE_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* Temporary names tried when replacing a file (another one on EEXIST: a planted name). */
#define FILE_HELPER_TMP_TRIES 8
/* A configured path, expanded (%p), with a temporary suffix. */
#define FILE_HELPER_PATH_MAX (CONFIG_PATH_MAX + 96)

/* Replacing a file whole: the text goes to the first temporary name (tmp_prefix and 8 hex digits of
 * one of suffix[]) that can be created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW: never through a
 * symlink, never over a file), which is then renamed over path. Nothing is left behind on any
 * error. */
struct file_replace {
	const char *path;
	char tmp_prefix[FILE_HELPER_PATH_MAX - 9];
	uint32_t suffix[FILE_HELPER_TMP_TRIES];
	const char *text;
	size_t length;
	mode_t mode;
	/* Out: 0, or the errno of the step that failed ("creating", "writing", "renaming"). */
	int error;
	const char *step;
};

/* Runs the replacement in the helper child, or here when direct (a program thread inside the
 * library). False when no child could be made (error set: the system refused clone). */
bool file_helper_replace(struct file_replace *job, bool direct);

/* Appends text to path (created 0600 if missing; a symlink is followed, as /dev/stderr is one).
 * Returns 0 or an errno. */
int file_helper_append(const char *path, const char *text, size_t length);

/* Reads a regular file whole (at most max bytes) into a new malloc'd buffer. Returns 0 or an errno
 * (EFBIG past max, EINVAL when not a regular file). */
int file_helper_read(const char *path, size_t max, char **data, size_t *length);

#endif
