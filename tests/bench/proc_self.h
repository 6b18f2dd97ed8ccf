/* What /proc/self says of this process: its threads and the size of its fd table, and the shim's
 * thread (found by its name) with its CPU clock and wake-ups. Header-only, for the benchmarks'
 * helper programs and the preload tests (fd_table.c). */
#ifndef DNSAWARE_BENCH_PROC_SELF_H
#define DNSAWARE_BENCH_PROC_SELF_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The number of threads of this process (entries in /proc/self/task), or -1. */
__attribute__((unused))
static int task_count(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* FDSize in /proc/self/status: the slots of the fd table the kernel keeps for this process (it
 * copies them at every fork), or -1. */
__attribute__((unused)) static long fd_table_size(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (f == NULL)
		return -1;
	char line[256];
	long size = -1;
	while (size < 0 && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "FDSize:", 7) == 0)
			size = atol(line + 7);
	fclose(f);
	return size;
}

/* The thread named "dnsaware" (the shim's), or 0. */
__attribute__((unused)) static int dnsaware_thread(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int tid = 0;
	while (d != NULL && tid == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], comm[64] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "re");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof comm, f) != NULL && strncmp(comm, "dnsaware", 8) == 0)
			tid = atoi(e->d_name);
		fclose(f);
	}
	if (d != NULL)
		closedir(d);
	return tid;
}

/* A thread's CPU time so far, in ns, from its per-thread CPU clock (same process: the kernel's
 * MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)), or 0. */
__attribute__((unused)) static unsigned long long thread_cpu_ns(int tid)
{
	struct timespec ts;
	if (tid <= 0 || clock_gettime((clockid_t)(((unsigned)~tid) << 3) | 6, &ts) != 0)
		return 0;
	return (unsigned long long)ts.tv_sec * 1000000000u + (unsigned long long)ts.tv_nsec;
}

/* A thread's voluntary context switches so far (about its wake-ups), or -1. */
__attribute__((unused)) static long thread_wakeups(int tid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
	FILE *f = fopen(path, "re");
	long v = -1;
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return v;
}

#endif
