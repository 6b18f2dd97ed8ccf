/* What /proc/self says of this process: its threads and the size of its fd table. Header-only,
 * for the benchmarks' helper programs and the preload tests (fd_table.c). */
#ifndef DNSAWARE_BENCH_PROC_SELF_H
#define DNSAWARE_BENCH_PROC_SELF_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#endif
