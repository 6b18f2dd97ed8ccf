#include "file_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child runs on a stack of its own, in the library's memory, while the thread that made it
 * waits (CLONE_VFORK): one child at a time, so one stack, made on first use. */
#define STACK_SIZE (64 * 1024)
#define GUARD_SIZE 4096

/* The child shares the thread's memory and its thread-local storage (errno) while that thread
 * waits, as posix_spawn's child does. It makes raw system calls only: a sanitizer's interceptors
 * (which keep per-thread state) and anything that takes a lock are never run in it. */
#define CHILD_CODE __attribute__((no_sanitize("address", "thread", "undefined")))

enum job_kind { JOB_REPLACE, JOB_APPEND, JOB_READ };

struct job {
	enum job_kind kind;
	struct file_replace *replace;
	/* JOB_APPEND, JOB_READ */
	const char *path;
	const char *text;
	char *buffer;
	size_t length;   /* in: the text's length, or the buffer's size; out: bytes read */
	int error;       /* out */
};

CHILD_CODE static long sys_open(const char *path, int flags, mode_t mode)
{
	return syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

/* Returns 0 or the errno. */
CHILD_CODE static int write_all(long fd, const char *text, size_t length)
{
	while (length > 0) {
		long n = syscall(SYS_write, fd, text, length);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		text += n;
		length -= (size_t)n;
	}
	return 0;
}

/* prefix and 8 hex digits of suffix, into name (FILE_HELPER_PATH_MAX bytes). Written out by hand:
 * the child calls no libc function a sanitizer intercepts (the optimize attribute keeps the compiler
 * from turning the loop into a call to memcpy). */
CHILD_CODE __attribute__((optimize("no-tree-loop-distribute-patterns"))) static void tmp_name(
	const char *prefix, uint32_t suffix, char *name)
{
	size_t i = 0;
	for (; prefix[i] != '\0' && i < FILE_HELPER_PATH_MAX - 9; i++)
		name[i] = prefix[i];
	for (int shift = 28; shift >= 0; shift -= 4)
		name[i++] = "0123456789abcdef"[(suffix >> shift) & 0xf];
	name[i] = '\0';
}

CHILD_CODE static void replace(struct file_replace *job)
{
	job->error = EEXIST;
	job->step = "creating";
	long fd = -1;
	char tmp[FILE_HELPER_PATH_MAX];
	for (unsigned i = 0; i < FILE_HELPER_TMP_TRIES && fd < 0; i++) {
		tmp_name(job->tmp_prefix, job->suffix[i], tmp);
		fd = sys_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, job->mode);
		if (fd < 0 && errno != EEXIST) {
			job->error = errno;
			return;
		}
	}
	if (fd < 0)
		return; /* every name taken: EEXIST */
	job->step = "writing";
	job->error = write_all(fd, job->text, job->length);
	if (syscall(SYS_close, fd) != 0 && job->error == 0 && errno != EINTR)
		job->error = errno;
	if (job->error == 0) {
		job->step = "renaming";
		if (syscall(SYS_rename, tmp, job->path) == 0)
			return;
		job->error = errno;
	}
	syscall(SYS_unlink, tmp); /* ours: made with O_EXCL; unlink never follows a symlink */
}

CHILD_CODE static void append(struct job *job)
{
	/* Non-blocking: a FIFO with no reader must not hold the thread (the line is lost instead). */
	long fd = sys_open(job->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0) {
		job->error = errno;
		return;
	}
	job->error = write_all(fd, job->text, job->length);
	syscall(SYS_close, fd);
}

CHILD_CODE static void read_whole(struct job *job)
{
	/* Non-blocking: a FIFO where a file was expected must not hold the thread. */
	long fd = sys_open(job->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
	if (fd < 0) {
		job->error = errno;
		return;
	}
	struct stat st;
	size_t got = 0;
	if (syscall(SYS_fstat, fd, &st) != 0)
		job->error = errno;
	else if (!S_ISREG(st.st_mode))
		job->error = EINVAL;
	while (job->error == 0 && got < job->length) {
		long n = syscall(SYS_read, fd, job->buffer + got, job->length - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			job->error = errno;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	job->length = got;
	syscall(SYS_close, fd);
}

CHILD_CODE static int child_main(void *arg)
{
	/* The child's fd table is a copy of the program's: let go of the program's files at once, so
	 * none of them stays open a moment longer than the program wants. */
	syscall(SYS_close_range, 0, ~0U, 0);
	struct job *job = arg;
	switch (job->kind) {
	case JOB_REPLACE:
		replace(job->replace);
		break;
	case JOB_APPEND:
		append(job);
		break;
	case JOB_READ:
		read_whole(job);
		break;
	}
	return 0;
}

static char *stack_top(void)
{
	static char *top;
	if (top == NULL) {
		char *mapped = mmap(NULL, STACK_SIZE + GUARD_SIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (mapped == MAP_FAILED)
			return NULL;
		mprotect(mapped, GUARD_SIZE, PROT_NONE);
		top = mapped + STACK_SIZE + GUARD_SIZE;
	}
	return top;
}

/* Runs the job in the child; false (errno set) when the system would not make one. */
static bool run_in_child(struct job *job)
{
	char *top = stack_top();
	if (top == NULL)
		return false;
	/* Exit signal 0: the program's SIGCHLD handler never runs for it, and its wait() and
	 * waitpid(-1) do not see it (only __WCLONE or __WALL do). */
	pid_t pid = clone(child_main, top, CLONE_VM | CLONE_VFORK, job);
	if (pid < 0)
		return false;
	while (waitpid(pid, NULL, __WCLONE) < 0 && errno == EINTR) {
	}
	return true;
}

bool file_helper_replace(struct file_replace *job, bool direct)
{
	if (direct) {
		replace(job);
		return true;
	}
	struct job child = {.kind = JOB_REPLACE, .replace = job};
	if (run_in_child(&child))
		return true;
	job->error = errno;
	job->step = "starting the file helper";
	return false;
}

int file_helper_append(const char *path, const char *text, size_t length)
{
	struct job job = {.kind = JOB_APPEND, .path = path, .text = text, .length = length};
	return run_in_child(&job) ? job.error : errno;
}

int file_helper_read(const char *path, size_t max, char **data, size_t *length)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return EINVAL;
	/* Room for a file that grew since the stat; read again, larger, if it filled that. */
	size_t size = (size_t)st.st_size + 4096;
	for (int attempt = 0; attempt < 3; attempt++) {
		if (size > max)
			size = max;
		char *buffer = malloc(size + 1);
		if (buffer == NULL)
			return ENOMEM;
		struct job job = {.kind = JOB_READ, .path = path, .buffer = buffer, .length = size};
		int error = run_in_child(&job) ? job.error : errno;
		if (error == 0 && job.length == size && size < max) {
			free(buffer);
			size *= 2;
			continue;
		}
		if (error == 0 && job.length == size) {
			free(buffer);
			return EFBIG;
		}
		if (error != 0) {
			free(buffer);
			return error;
		}
		buffer[job.length] = '\0';
		*data = buffer;
		*length = job.length;
		return 0;
	}
	return EFBIG;
}
