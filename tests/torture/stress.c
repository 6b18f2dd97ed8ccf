/* 16 threads send on, close, raw-close, dup, dup2 over and reconnect tracked sockets while their
 * names move every 100 ms, for a given time (argv[1], seconds; 60 in the registered test).
 *
 * Four names n0..n3.test, each with a pool of 8 addresses (127.0.K.1-8, K = name + 1) of which 3
 * are in its set at a time, in a private /etc/hosts (mount namespace; a network namespace of its own
 * makes every address and port the test's). Every 100 ms one name moves: its oldest address leaves,
 * the address that has been out longest comes back (so an address stays 1.2 s in, 2 s out). The test
 * keeps each address's history (out from just before the file is rewritten, in from just after).
 *
 * Servers (one listener per address, a thread per connection) learn each connection's id from a
 * hello, answer each 8-byte request after 0-15 ms with the address they are and the request's number,
 * and report any end of a connection the client did not close itself. The clients report a failed
 * send (EPIPE) and an end seen while peeking. Each connection's end is judged once, by whoever saw it
 * first: it is legitimate only if
 *   - the connection's address was out of its name's set at some point from LAG_MS before its connect
 *     to when the end was seen (the shim's view lags the file by the time its thread takes between
 *     reading the hosts file and applying the answer), or
 *   - it was at least 0.9 x DNSAWARE_MAX_AGE old (the max age has a ±10 % jitter).
 * A request sent whole whose answer never came (the connection ended under it) is a failure, and so
 * is a SIGPIPE (the shim fails a send on a socket it shuts down with EPIPE, before the kernel sees it).
 * So is a missed drain: a request let through on a connection whose address has been out of its set
 * for MISSED_MS, or that is that much past its max age (every request here starts a new exchange,
 * which the send path fails on a draining socket).
 *
 * The fd operations: close, close by the raw system call (the shim's table keeps the number, which
 * anything may reuse), dup and fcntl(F_DUPFD_CLOEXEC) then close of the old fd, dup2 of another
 * slot's connection over a connection's fd, dup2 of a pipe over it, two slots sharing a connection,
 * and the raw dup3 of a decoy over it: an untracked TCP connection (to an address no name has) that
 * takes the tracked connection's number behind the shim's back, carries exchanges of its own, and
 * must never be shut down, though the shim will want to drain the connection it replaced.
 *
 * Afterwards: no fd the shim opened is left over (/proc/self/fd before and after); every "shut down"
 * log line for a DNS reason names an address that did leave that name; the stats file's shutdown
 * counts cover what the test saw, reason by reason.
 *
 * Here: main() and the checks after the run. The names' history and the judging of each end are in
 * stress_history.c, the servers in stress_servers.c, the clients in stress_clients.c (stress.h).
 *
 * Env: LD_PRELOAD, DNSAWARE_TTL_FLOOR=1ms (the least accepted), DNSAWARE_MAX_AGE, DNSAWARE_IDLE,
 * DNSAWARE_LOG=info, DNSAWARE_LOG_FILE, DNSAWARE_STATS_FILE, DNSAWARE_STATS_INTERVAL. Root. */
#include "stress.h"

unsigned max_age_ms;
uint64_t start_ms, end_ms;

static _Atomic int sigpipes;

/* ---- after the run ---- */

struct log_tally {
	long dns, max_age, dropped, bad;
};

static void tally_line(const char *m, void *arg)
{
	struct log_tally *t = arg;
	long dropped;
	if (sscanf(m, "warn %ld log lines dropped", &dropped) == 1) {
		t->dropped += dropped;
		return;
	}
	if (strncmp(m, "info shut down ", 15) != 0)
		return;
	if (strstr(m, "older than DNSAWARE_MAX_AGE") != NULL) {
		t->max_age++;
		return;
	}
	const char *to = strstr(m, " to 127.0.");
	int k, i, port, name = -1;
	if (to == NULL || sscanf(to, " to 127.0.%d.%d:%d (n%d.test no longer resolves to it", &k, &i, &port, &name) != 4) {
		fprintf(stderr, "unexpected shutdown line: %s", m);
		t->bad++;
		return;
	}
	t->dns++;
	int a = (k - 1) * POOL + (i - 1);
	if (k < 1 || k > NAMES || i < 1 || i > POOL || port != PORT || name != k - 1 || !ever_removed(a)) {
		fprintf(stderr, "a DNS shutdown of an address that never left that name: %s", m);
		t->bad++;
	}
}

static unsigned parse_ms(const char *text)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);
	if (strcmp(end, "ms") == 0)
		return (unsigned)v;
	CHECKF(strcmp(end, "s") == 0 || *end == '\0', "cannot read the duration %s", text);
	return (unsigned)(v * 1000);
}

static void on_sigpipe(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigpipes, 1);
}

int main(int argc, char **argv)
{
	t_name = "stress";
	setvbuf(stdout, NULL, _IONBF, 0);
	unsigned seconds = argc > 1 ? (unsigned)atoi(argv[1]) : 60;
	CHECKF(seconds >= 2, "usage: %s SECONDS (at least 2)", argv[0]);
	const char *max_age = getenv("DNSAWARE_MAX_AGE");
	CHECKF(max_age != NULL, "run with DNSAWARE_MAX_AGE set");
	max_age_ms = parse_ms(max_age);
	const char *stats_path = getenv("DNSAWARE_STATS_FILE");
	if (stats_path != NULL)
		unlink(stats_path); /* a file from an earlier run must not pass for this one's */

	for (int k = 0; k < NAMES; k++) {
		for (int j = 0; j < POOL; j++) {
			int a = k * POOL + j;
			hist[a].initially_in = j < SET;
			if (j < SET)
				members[k][j] = a;
			else
				outq[k][j - SET] = a;
		}
	}
	start_ms = now_ms();
	short_failure_reports();
	private_network();
	char lines[1024];
	int n = 0;
	for (int k = 0; k < NAMES; k++)
		for (int j = 0; j < SET; j++)
			n += snprintf(lines + n, sizeof lines - (size_t)n, "127.0.%d.%d n%d.test\n", k + 1, j + 1, k);
	private_files(lines);
	watchdog_thread(seconds + 60, "the stress run");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigpipe;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGPIPE, &sa, NULL) == 0);
	recs = calloc(MAX_RECS, sizeof *recs);
	CHECK(recs != NULL);
	for (int a = 0; a < ADDRS; a++) {
		char text[INET_ADDRSTRLEN];
		addr_text(a, text);
		listeners[a] = listen_on(text, PORT, 512);
	}
	for (int t = 0; t < THREADS; t++) {
		char ip[INET_ADDRSTRLEN];
		snprintf(ip, sizeof ip, "127.0.9.%u", (unsigned char)(t + 1));
		decoy_listeners[t] = listen_on(ip, PORT, 16);
	}
	pthread_t acceptor;
	CHECK(pthread_create(&acceptor, NULL, accept_main, NULL) == 0);

	/* Warm-up: the shim's thread, wake-up fd and log file exist before the fds are counted. */
	unsigned id = atomic_fetch_add(&next_id, 1);
	recs[id].t_connect = now_ms();
	recs[id].addr = 0;
	int w = connect_named("n0.test", PORT);
	char hello[16];
	snprintf(hello, sizeof hello, "H%07u", id);
	send_all(w, hello, 8);
	char ack[9];
	await_answer(w, id, ack);
	CHECKF(wait_eof(w, max_age_ms * 3), "the warm-up connection was not recycled at its max age");
	atomic_store(&recs[id].closing, true);
	CHECK(close(w) == 0);
	CHECKF(wait_log_line(getpid(), "shut down", 2000), "no log line from the shim");
	sleep_ms(100);
	struct fdset before, after;
	fd_snapshot(&before);

	end_ms = now_ms() + seconds * 1000ull;
	pthread_t mover, clients[THREADS];
	CHECK(pthread_create(&mover, NULL, mover_main, NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&clients[i], NULL, client_main, (void *)(uintptr_t)i) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_join(clients[i], NULL) == 0);
	atomic_store(&stop_mover, true);
	CHECK(pthread_join(mover, NULL) == 0);
	uint64_t wait_end = now_ms() + 5000;
	while (atomic_load(&live_handlers) > 0) {
		CHECKF(now_ms() < wait_end, "%d server connections still open 5 s after the clients closed theirs",
		       atomic_load(&live_handlers));
		sleep_ms(10);
	}
	printf("%u s: %ld moves, %ld connects, %ld exchanges; ends seen: %ld stale only, %ld old only, %ld both "
	       "(by the server %ld, by a failed send %ld, by a peek %ld); ops: %ld close, %ld raw close, %ld dup, "
	       "%ld dup2 of another connection, %ld dup2 of a pipe, %ld raw dup3 of a decoy connection, %ld shared; "
	       "%ld getaddrinfo misses\n",
	       seconds, atomic_load(&moves), atomic_load(&connects), atomic_load(&exchanges),
	       atomic_load(&seen_dns_only), atomic_load(&seen_max_age_only), atomic_load(&seen_both),
	       atomic_load(&by_server), atomic_load(&by_send), atomic_load(&by_peek), atomic_load(&op_close),
	       atomic_load(&op_rawclose), atomic_load(&op_dup), atomic_load(&op_dup2_other),
	       atomic_load(&op_dup2_pipe), atomic_load(&op_decoy), atomic_load(&op_share), atomic_load(&gai_failures));
	CHECKF(atomic_load(&sigpipes) == 0, "%d SIGPIPEs: a send went into the kernel after the shim shut its "
	       "socket down", atomic_load(&sigpipes));

	/* No fd left behind (the stats file is open for a moment at each write: look again then). */
	int extra = 0;
	for (int attempt = 0; attempt < 40; attempt++) {
		fd_snapshot(&after);
		extra = fdset_extra(&before, &after, NULL);
		if (extra == 0)
			break;
		sleep_ms(50);
	}
	if (extra > 0) {
		fdset_extra(&before, &after, "fds open after the run that were not before it:");
		CHECKF(0, "%d fds leaked", extra);
	}

	/* The log: every DNS shutdown names an address that left that name. */
	struct log_tally tally = { 0 };
	sleep_ms(500); /* the last shutdowns' lines and the stats file's next write */
	for_log_lines(getpid(), tally_line, &tally);
	long seen = atomic_load(&seen_dns_only) + atomic_load(&seen_max_age_only) + atomic_load(&seen_both);
	printf("log: %ld DNS shutdowns, %ld max-age shutdowns, %ld lines dropped by the rate limit\n", tally.dns,
	       tally.max_age, tally.dropped);
	CHECKF(tally.bad == 0, "%ld log lines name shutdowns the test cannot account for", tally.bad);
	CHECKF(seen <= tally.dns + tally.max_age + tally.dropped, "the test saw %ld shutdowns, the log tells of %ld",
	       seen, tally.dns + tally.max_age + tally.dropped);

	/* The stats file counts at least what the test saw, reason by reason. */
	if (stats_path != NULL) {
		long long dns = stats_value("dnsaware_sockets_shutdown_total", "reason=\"dns\"");
		long long old = stats_value("dnsaware_sockets_shutdown_total", "reason=\"max_age\"");
		printf("stats file: %lld DNS shutdowns, %lld max-age shutdowns\n", dns, old);
		CHECKF(dns >= 0 && old >= 0, "no shutdown counts in %s", stats_path);
		CHECKF(dns >= atomic_load(&seen_dns_only), "the stats file counts %lld DNS shutdowns; the test saw %ld "
		       "connections end that only a DNS reason explains", dns, atomic_load(&seen_dns_only));
		CHECKF(old >= atomic_load(&seen_max_age_only), "the stats file counts %lld max-age shutdowns; the test "
		       "saw %ld connections end that only their age explains", old, atomic_load(&seen_max_age_only));
		CHECKF(dns + old >= seen, "the stats file counts %lld shutdowns; the test saw %ld", dns + old, seen);
	}

	/* The run did what it is for (scaled for short runs). */
	long floor_count = seconds >= 10 ? 20 : 2;
	CHECKF(atomic_load(&exchanges) >= 100 * (long)seconds, "only %ld exchanges", atomic_load(&exchanges));
	CHECKF(atomic_load(&seen_dns_only) + atomic_load(&seen_both) >= floor_count,
	       "only %ld connections ended for a DNS reason", atomic_load(&seen_dns_only) + atomic_load(&seen_both));
	CHECKF(atomic_load(&seen_max_age_only) + atomic_load(&seen_both) >= floor_count,
	       "only %ld connections ended at their max age", atomic_load(&seen_max_age_only) + atomic_load(&seen_both));
	CHECKF(atomic_load(&op_rawclose) >= floor_count && atomic_load(&op_dup2_other) >= floor_count &&
		       atomic_load(&op_dup2_pipe) >= floor_count && atomic_load(&op_decoy) >= floor_count,
	       "too few fd operations");
	drop_private_files();
	printf("PASS stress\n");
	return 0;
}
