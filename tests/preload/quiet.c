/* The background thread sleeps when nothing is due: a process holding an idle, healthy tracked
 * socket wakes it only for the refreshes (one per TTL floor for an /etc/hosts name), and once the
 * last socket is closed and freed, not at all. Measured as the thread's context switches. */
#include "common.h"

/* The thread of this process other than the main one (there is exactly one more; under
 * ThreadSanitizer, whose own thread is there too, the one named "dnsaware"). */
static pid_t background_tid(void)
{
	for (int tries = 0; tries < 100; tries++) {
		DIR *d = opendir("/proc/self/task");
		CHECK(d != NULL);
		pid_t tid = 0;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			pid_t t = atoi(e->d_name);
			if (e->d_name[0] != '.' && t != getpid() && (SANITIZER_THREADS == 0 || thread_named(t, "dnsaware")))
				tid = t;
		}
		closedir(d);
		if (tid != 0)
			return tid;
		sleep_ms(10);
	}
	CHECKF(false, "no background thread found");
	return 0;
}

static long context_switches(pid_t tid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	long total = 0, value;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &value) == 1 ||
		    sscanf(line, "nonvoluntary_ctxt_switches: %ld", &value) == 1)
			total += value;
	fclose(f);
	return total;
}

static long switches_over(pid_t tid, unsigned ms)
{
	long before = context_switches(tid);
	sleep_ms(ms);
	return context_switches(tid) - before;
}

int main(void)
{
	t_name = "quiet";
	unlink(getenv("DNSAWARE_LOG_FILE"));
	watchdog(30);
	setvbuf(stdout, NULL, _IONBF, 0);
	uint16_t port;
	int lfd = make_listener("127.0.0.1", &port, 16);
	int c = connect_named("localhost", port);
	int s = accept_one(lfd);
	exchange(c, s, "request", "response");
	CHECKF(wait_thread_count(2, 1000) == 2, "no background thread after a tracked connect");
	pid_t tid = background_tid();

	/* DNSAWARE_TTL_FLOOR=1s: about 3 refreshes in 3 s, each a handful of wake-ups. A thread that
	 * polled every few tens of ms would switch a hundred times. */
	sleep_ms(300);
	long busy = switches_over(tid, 3000);
	int refreshes = count_log_lines("re-resolved localhost");
	printf("idle tracked socket: %ld context switches in 3 s, %d refreshes in 3.3 s\n", busy, refreshes);
	CHECKF(refreshes >= 2, "localhost was re-resolved %d times in 3.3 s with DNSAWARE_TTL_FLOOR=1s", refreshes);
	CHECKF(busy <= 30, "the background thread woke %ld times in 3 s with nothing to do but refresh", busy);

	/* The last socket closes: its name is no longer refreshed; after the 2 s grace the socket is
	 * freed and the thread has nothing left to wake for. */
	close(c);
	close(s);
	sleep_ms(3000);
	long after = switches_over(tid, 3000);
	printf("no tracked socket: %ld context switches in 3 s\n", after);
	CHECKF(after <= 2, "the background thread woke %ld times in 3 s with no socket", after);
	close(lfd);
	printf("PASS quiet\n");
	return 0;
}
