/* The cost of fork and vfork in a process with a tracked connection (issue #13): the kernel copies
 * a process's fd table at every fork (and vfork), and the table is as large as the highest fd ever
 * open, the shim's included.
 *
 *     forkrate fork|vfork SECONDS [--thread] [--hold-fd N]
 *
 * Works in a child it forks first: a table inherited across exec keeps its size (256 slots under
 * a test runner with many fds), a fork child's is sized for the fds there are (64 here). Makes a
 * tracked connection first (helper_common.h: "localhost", so under the shim the background
 * thread starts and makes its fds), waits 300 ms with or without the shim (the thread settles),
 * then for SECONDS calls fork() or vfork(), the child calling _exit(0) at once, and waitpid(),
 * after 50 unmeasured rounds. Prints one JSON line on stdout: the mode, the calls, the time, the
 * calls per second, FDSize (/proc/self/status), the highest open fd, the threads (2 under the shim:
 * the connection is tracked) and RLIMIT_NOFILE's soft limit. Exit 0 ok, 1 on any failure.
 *
 * The controls, run without the shim, tell the parts of the shim's cost apart: --thread starts one
 * idle thread of the program's own (as the shim's; a fork in a threaded process costs more), and
 * --hold-fd N holds /dev/null at fd N or the first free one above (N: where the shim's highest fd
 * was), so the table is as large as with the shim; neither runs the shim's fork handlers.
 * --memory MB touches MB of heap first, as a program that holds data does: fork copies the page
 * table of every page a process touched. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "proc_self.h"
#include "helper_common.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One fork or vfork whose child exits at once, and its reaping. */
static void one(int use_vfork)
{
	pid_t pid = use_vfork ? vfork() : fork();
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		die(use_vfork ? "vfork" : "fork");
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("waitpid");
}

static int highest_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		die("/proc/self/fd");
	int max = -1;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.' && atoi(e->d_name) > max && atoi(e->d_name) != dirfd(d))
			max = atoi(e->d_name);
	closedir(d);
	return max;
}

int main(int argc, char **argv)
{
	int thread = 0, hold = -1, memory_mb = 0, bad = argc < 3;
	for (int i = 3; i < argc && !bad; i++) {
		if (strcmp(argv[i], "--thread") == 0)
			thread = 1;
		else if (strcmp(argv[i], "--memory") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0)
			memory_mb = atoi(argv[++i]);
		else if (strcmp(argv[i], "--hold-fd") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0)
			hold = atoi(argv[++i]);
		else
			bad = 1;
	}
	if (bad || (strcmp(argv[1], "fork") != 0 && strcmp(argv[1], "vfork") != 0) || atof(argv[2]) <= 0) {
		fprintf(stderr, "usage: forkrate fork|vfork SECONDS [--thread] [--hold-fd N] [--memory MB]\n");
		return 2;
	}
	int use_vfork = strcmp(argv[1], "vfork") == 0;
	double seconds = atof(argv[2]);
	pid_t worker = fork();
	if (worker < 0)
		die("fork");
	if (worker > 0) {
		int status;
		if (waitpid(worker, &status, 0) != worker)
			die("waitpid");
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	int client, server;
	tracked_pair(&client, &server);
	if (hold > 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null < 0 || fcntl(null, F_DUPFD_CLOEXEC, hold) < hold)
			die("--hold-fd");
	}
	/* A program's heap: every page touched, so every fork copies its page table. */
	if (memory_mb > 0) {
		size_t size = (size_t)memory_mb << 20;
		char *heap = malloc(size);
		if (heap == NULL)
			die("--memory");
		for (size_t i = 0; i < size; i += 4096)
			heap[i] = (char)i;
	}
	pthread_t t;
	if (thread && pthread_create(&t, NULL, idle_thread, NULL) != 0)
		die("pthread_create");
	usleep(300 * 1000);
	for (int i = 0; i < 50; i++)
		one(use_vfork);
	long calls = 0;
	double start = now_s(), end = start + seconds, now;
	do {
		one(use_vfork);
		calls++;
	} while ((now = now_s()) < end);
	struct rlimit limit;
	if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
		die("getrlimit");
	printf("{\"mode\": \"%s\", \"calls\": %ld, \"seconds\": %.6f, \"per_s\": %.1f, \"fdsize\": %ld, "
	       "\"highest_fd\": %d, \"threads\": %d, \"nofile\": %llu}\n",
	       argv[1], calls, now - start, (double)calls / (now - start), fd_table_size(), highest_fd(), task_count(),
	       (unsigned long long)limit.rlim_cur);
	return 0;
}
