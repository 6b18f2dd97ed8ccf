/* getaddrinfo latency (issue 15): how long one lookup of one name takes, whatever answers it
 * (glibc asking a DNS server, glibc asking nscd, the shim's cache).
 *
 *     gai_latency NAME EXPECTED_IPV4 [--lookups N] [--warmup N] [--warmup-max S]
 *                 [--stats-file PATH] [--settle S] [--samples PATH] [--signal-pid PID]
 *
 * getaddrinfo(NAME, "80", {AF_UNSPEC, SOCK_STREAM}) is called --warmup times (default 1,000), not
 * measured; with --stats-file (the shim's DNSAWARE_STATS_FILE, rewritten every
 * DNSAWARE_STATS_INTERVAL) the warm-up goes on until the file counts a cache hit
 * (dnsaware_cache_lookups_total{result="hit"} > 0) or --warmup-max seconds (default 2) have
 * passed since it began, whichever comes first. Then the program sleeps --settle seconds (default
 * 0.25; more than the stats interval, so that the file counts every warm-up lookup), reads the
 * file's counters, makes --lookups timed calls (default 20,000), sleeps --settle again and reads
 * the counters once more: their difference says how many of the timed lookups were cache hits.
 * The sleeps are made whether or not there is a stats file, so every case is run alike.
 * --signal-pid sends SIGUSR1 to PID at the end of the warm-up and at the end of the timed
 * lookups (dnsmasq then logs its query counters: the benchmark counts the queries in between).
 *
 * Each timed call is getaddrinfo alone, between two clock_gettime(CLOCK_MONOTONIC) reads
 * (freeaddrinfo and the answer's check are outside). Every answer must be a success that holds
 * EXPECTED_IPV4. --samples writes the timed calls' durations there (native uint64 nanoseconds, in
 * call order). Prints one JSON line on stdout: the lookups, the warm-up (lookups, seconds), p50,
 * p99, mean, min and max in ns (nearest rank), the timer's own p50 (two back-to-back clock reads),
 * the number of addrinfo entries in an answer, and the cache counters before and after (null
 * without a stats file; {"file":false} when the file was not there; "lookups":null when it has
 * no cache counters). Exit 0 ok, 1 on a failed or wrong lookup, 2 on bad arguments. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <time.h>

#define TIMER_SAMPLES 2001

struct counters {
	int file;    /* the stats file was there */
	int present; /* it has dnsaware_cache_lookups_total lines */
	double hit, total;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p of them at or below it. */
static uint64_t rank(const uint64_t *sorted, size_t n, double p)
{
	size_t k = (size_t)(p * (double)n + 0.999999);
	return sorted[k == 0 ? 0 : k - 1];
}

/* The shim's cache counters: dnsaware_cache_lookups_total{...,result="X",...} VALUE. */
static struct counters read_counters(const char *path)
{
	struct counters c = {0};
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return c;
	c.file = 1;
	char line[512];
	static const char metric[] = "dnsaware_cache_lookups_total{";
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, metric, sizeof metric - 1) != 0)
			continue;
		char *close = strchr(line, '}');
		char *result = strstr(line, "result=\"");
		if (close == NULL || result == NULL || result > close)
			continue;
		double v = strtod(close + 1, NULL);
		c.present = 1;
		c.total += v;
		if (strncmp(result + 8, "hit\"", 4) == 0)
			c.hit += v;
	}
	fclose(f);
	return c;
}

static void print_counters(const char *label, const char *path, struct counters c)
{
	if (path == NULL)
		printf("\"%s\":null", label);
	else if (!c.file)
		printf("\"%s\":{\"file\":false}", label);
	else if (!c.present)
		printf("\"%s\":{\"file\":true,\"lookups\":null}", label);
	else
		printf("\"%s\":{\"file\":true,\"lookups\":%.0f,\"hits\":%.0f}", label, c.total, c.hit);
}

/* One lookup; returns its duration, or exits on a failed or wrong answer. */
static uint64_t lookup(const char *name, struct in_addr expected, int *entries)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	uint64_t t0 = now_ns();
	int rc = getaddrinfo(name, "80", &hints, &res);
	uint64_t t1 = now_ns();
	if (rc != 0) {
		fprintf(stderr, "gai_latency: getaddrinfo(%s): %s\n", name, gai_strerror(rc));
		exit(1);
	}
	int n = 0, found = 0;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		n++;
		if (ai->ai_family == AF_INET &&
		    ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr == expected.s_addr)
			found = 1;
	}
	freeaddrinfo(res);
	if (!found) {
		fprintf(stderr, "gai_latency: getaddrinfo(%s): no %s among %d entries\n", name,
			inet_ntoa(expected), n);
		exit(1);
	}
	*entries = n;
	return t1 - t0;
}

static void usage(void)
{
	fprintf(stderr, "usage: gai_latency NAME EXPECTED_IPV4 [--lookups N] [--warmup N] "
			"[--warmup-max S] [--stats-file PATH] [--settle S] [--samples PATH]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	const char *name = argv[1];
	struct in_addr expected;
	if (inet_pton(AF_INET, argv[2], &expected) != 1)
		usage();
	long lookups = 20000, warmup = 1000;
	double warmup_max = 2.0, settle = 0.25;
	const char *stats = NULL, *samples_path = NULL;
	pid_t signal_pid = 0;
	for (int i = 3; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		const char *opt = argv[i], *val = argv[++i];
		if (strcmp(opt, "--lookups") == 0)
			lookups = atol(val);
		else if (strcmp(opt, "--warmup") == 0)
			warmup = atol(val);
		else if (strcmp(opt, "--warmup-max") == 0)
			warmup_max = atof(val);
		else if (strcmp(opt, "--settle") == 0)
			settle = atof(val);
		else if (strcmp(opt, "--stats-file") == 0)
			stats = val;
		else if (strcmp(opt, "--samples") == 0)
			samples_path = val;
		else if (strcmp(opt, "--signal-pid") == 0)
			signal_pid = (pid_t)atol(val);
		else
			usage();
	}
	if (lookups < 1 || warmup < 0 || warmup_max < 0 || settle < 0 || signal_pid < 0)
		usage();
	uint64_t *samples = malloc((size_t)lookups * sizeof *samples);
	uint64_t *timer = malloc(TIMER_SAMPLES * sizeof *timer);
	if (samples == NULL || timer == NULL) {
		perror("gai_latency: malloc");
		return 1;
	}

	int entries = 0;
	uint64_t w0 = now_ns(), last_check = 0;
	long warmed = 0;
	for (; warmed < warmup; warmed++)
		lookup(name, expected, &entries);
	/* Until the shim counts a hit (every 10 ms a look at the file), or warmup_max. */
	while (stats != NULL && now_ns() - w0 < (uint64_t)(warmup_max * 1e9)) {
		uint64_t t = now_ns();
		if (t - last_check >= 10000000u) {
			last_check = t;
			if (read_counters(stats).hit > 0)
				break;
		}
		lookup(name, expected, &entries);
		warmed++;
	}
	double warmup_s = (double)(now_ns() - w0) / 1e9;

	for (int i = 0; i < TIMER_SAMPLES; i++) {
		uint64_t t0 = now_ns();
		timer[i] = now_ns() - t0;
	}
	qsort(timer, TIMER_SAMPLES, sizeof *timer, cmp_u64);

	if (signal_pid > 0 && kill(signal_pid, SIGUSR1) != 0) {
		perror("gai_latency: kill");
		return 1;
	}
	sleep_s(settle);
	struct counters before = stats != NULL ? read_counters(stats) : (struct counters){0};
	for (long i = 0; i < lookups; i++)
		samples[i] = lookup(name, expected, &entries);
	if (signal_pid > 0 && kill(signal_pid, SIGUSR1) != 0) {
		perror("gai_latency: kill");
		return 1;
	}
	sleep_s(settle);
	struct counters after = stats != NULL ? read_counters(stats) : (struct counters){0};

	if (samples_path != NULL) {
		FILE *f = fopen(samples_path, "wb");
		if (f == NULL || fwrite(samples, sizeof *samples, (size_t)lookups, f) != (size_t)lookups ||
		    fclose(f) != 0) {
			perror("gai_latency: writing the samples");
			return 1;
		}
	}
	double sum = 0;
	for (long i = 0; i < lookups; i++)
		sum += (double)samples[i];
	qsort(samples, (size_t)lookups, sizeof *samples, cmp_u64);
	printf("{\"name\":\"%s\",\"lookups\":%ld,\"warmup_lookups\":%ld,\"warmup_s\":%.3f,"
	       "\"p50_ns\":%llu,\"p99_ns\":%llu,\"mean_ns\":%.1f,\"min_ns\":%llu,\"max_ns\":%llu,"
	       "\"timer_p50_ns\":%llu,\"entries\":%d,",
	       name, lookups, warmed, warmup_s,
	       (unsigned long long)rank(samples, (size_t)lookups, 0.50),
	       (unsigned long long)rank(samples, (size_t)lookups, 0.99), sum / (double)lookups,
	       (unsigned long long)samples[0], (unsigned long long)samples[lookups - 1],
	       (unsigned long long)rank(timer, TIMER_SAMPLES, 0.50), entries);
	print_counters("cache_before", stats, before);
	printf(",");
	print_counters("cache_after", stats, after);
	printf("}\n");
	free(samples);
	free(timer);
	return 0;
}
