/* The number of threads of this process (entries in /proc/self/task), or -1. */
#ifndef DNSAWARE_BENCH_TASK_COUNT_H
#define DNSAWARE_BENCH_TASK_COUNT_H

#include <dirent.h>

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

#endif
