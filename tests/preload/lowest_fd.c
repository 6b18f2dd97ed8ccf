/* Issue #13, "a single-threaded program gets the wrong fd number": a program with no thread of its
 * own may rely on open() returning the lowest free fd (POSIX says it does). It must keep getting
 * it with the shim, whose background thread must never hold a low number, not even for a moment.
 *
 * The program makes tracked connections to names from a private /etc/hosts and to names answered
 * by the DNS helper (fd_probe.h), all re-resolved at DNSAWARE_TTL_FLOOR, with DNSAWARE_STATS_FILE
 * and DNSAWARE_LOG_FILE + DNSAWARE_LOG=debug set. It then loops open("/dev/null") / close for the
 * given time, checking each number against the lowest one the program itself does not hold (it
 * knows its own fds: what it had at start, before the shim did anything, plus what it opened; it
 * assumes nothing of the shim's). At a third and at two thirds of the run every name moves, so the
 * shim's drain runs too and the program reconnects (through getaddrinfo and the connect hook).
 * Prints the mismatches and the pairs; fails on any mismatch.
 *
 *     lowest_fd [SECONDS] [HOSTS_NAMES DNS_NAMES]     (default 10 s, 4 and 4 names)
 *
 * Run without LD_PRELOAD (lowest-fd-noshim) it is the control: no mismatch; nothing drains there,
 * so at each move the program ends its connections itself and reconnects as well. Env:
 * DNSAWARE_NAMESERVERS=127.0.0.1:5353, a short DNSAWARE_TTL_FLOOR. Root (namespaces). */
#include "fd_probe.h"

#define OWN_MAX 1024

static bool own[OWN_MAX]; /* the program's own fds */
static int lowest = -1;    /* the lowest number not in own[], -1: to be found again */

static void own_changed(int fd, bool open)
{
	CHECK(fd >= 0 && fd < OWN_MAX);
	own[fd] = open;
	lowest = -1;
}

static int lowest_free(void)
{
	if (lowest < 0) {
		lowest = 0;
		while (lowest < OWN_MAX && own[lowest])
			lowest++;
		CHECK(lowest < OWN_MAX);
	}
	return lowest;
}

/* What held the number the program expected, when it is still open a moment later. */
static struct probe_kind kinds[PROBE_KINDS];

static void tally(int fd)
{
	char link[128];
	fd_link(fd, link, sizeof link);
	probe_count_kind(kinds, link[0] != '\0' ? link : "(closed again when looked at)");
}

int main(int argc, char **argv)
{
	int seconds = 10, hosts_names = 4, dns_names = 4;
	probe_args(argc, argv, &seconds, &hosts_names, &dns_names);
	bool shim = getenv("LD_PRELOAD") != NULL;
	t_name = shim ? "lowest-fd" : "lowest-fd-noshim";

	/* What the program had at exec (0, 1, 2 and what the test harness passed): its own. The shim
	 * has made nothing yet: it does nothing before the first tracked connect. */
	probe_mark_open_fds(own, OWN_MAX);
	probe_setup(hosts_names, dns_names);
	own_changed(helper_fd, true);
	for (int i = 0; i < probe_count; i++) {
		probe_connect(&probe_conns[i]);
		own_changed(probe_conns[i].fd, true);
	}
	probe_wait_refresh();
	int owned = 0;
	for (int fd = 0; fd < OWN_MAX; fd++)
		owned += own[fd];
	printf("%d names (%d in /etc/hosts, %d from DNS), %d fds of the program's own, the lowest free %d\n",
	       probe_count, hosts_names, dns_names, owned, lowest_free());

	unsigned queries_before = probe_shim_queries();
	long long pairs = 0, mismatches = 0;
	uint64_t start = now_ms(), end = start + (uint64_t)seconds * 1000, next_check = start;
	int moves = 0;
	for (uint64_t now = start; now < end;) {
		for (int i = 0; i < 256; i++) {
			int want = lowest_free();
			int fd = open("/dev/null", O_RDONLY);
			CHECK(fd >= 0);
			pairs++;
			if (fd != want) {
				if (mismatches == 0)
					printf("first mismatch after %.3f s: open returned %d, expected %d\n",
					       (double)(now_ms() - start) / 1000, fd, want);
				tally(want);
				mismatches++;
			}
			CHECK(close(fd) == 0);
		}
		now = now_ms();
		if (now >= next_check) {
			next_check = now + 20;
			if (moves < 2 && now >= start + (uint64_t)(moves + 1) * (end - start) / 3) {
				probe_move_all();
				/* Without the shim nothing drains: the control ends its connections itself,
				 * so that its reconnects (getaddrinfo, connect) are checked too. */
				for (int i = 0; i < probe_count && !shim; i++)
					CHECK(shutdown(probe_conns[i].fd, SHUT_RDWR) == 0);
				moves++;
			}
			probe_reconnect_closed(own_changed);
		}
	}
	unsigned queries = probe_shim_queries() - queries_before;

	printf("%lld pairs of open(\"/dev/null\")/close in %d s, %lld mismatches\n", pairs, seconds, mismatches);
	probe_print_kinds(kinds, "times the expected fd was");
	printf("%d moves, %u reconnects, %u queries of the shim to the DNS helper meanwhile\n", moves, probe_reconnects,
	       queries);
	CHECKF(probe_reconnects >= (unsigned)probe_count && (!shim || dns_names == 0 || queries > 0),
	       "the connections did not follow the moves (%u reconnects for %d names, %u queries of the shim): "
	       "the probe did not exercise %s",
	       probe_reconnects, probe_count, queries, shim ? "the shim" : "the reconnects");
	CHECKF(mismatches == 0, "%lld of %lld opens did not return the lowest free fd", mismatches, pairs);
	drop_private_files();
	printf("PASS %s\n", t_name);
	return 0;
}
