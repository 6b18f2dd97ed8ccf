/* The background thread's work per wake-up does not grow with the number of healthy tracked
 * connections (issue #7). Counted, not timed: dnsaware_thread_socket_visits_total (tracked sockets
 * the thread looked at) over dnsaware_thread_wakeups_total, from the stats file.
 *
 * Three children, run side by side, each holding idle connections to healthy.test (a listener of
 * its own on 127.0.0.40) while the name re-resolves every DNSAWARE_TTL_FLOOR (1 s):
 *   steady-50, steady-2000   N healthy connections, nothing changes;
 *   drain-2000               the same 2000, and 20 connections to moving.test, whose address
 *                            leaves the hosts file: those 20 drain and the program closes them
 *                            at EOF, as a pool does; the 2000 stay. The run lasts past the 2 s
 *                            in which closed sockets wait to be freed, so freeing them is
 *                            counted too (it must not walk the healthy ones either).
 * A child reads its own periodic stats file once its connections are made and sends those counts
 * to the parent (the baseline: the connects' nudges of the thread are left out); the parent reads
 * the file written at the child's exit and judges the difference.
 *
 * Root (a private /etc/hosts). Exits 77 (skip) when RLIMIT_NOFILE cannot reach the descriptors
 * 2000 connections need (both ends live in the child). Env: DNSAWARE_STATS_FILE=DIR/w-%p.prom,
 * DNSAWARE_STATS_INTERVAL short, DNSAWARE_TTL_FLOOR=1s. */
#include <sys/resource.h>

#include "common.h"

enum {
	FEW = 50,
	MANY = 2000,
	MOVING = 20,
	STEADY_MS = 3000,
	/* The fds a child needs besides its connections' two ends: stdio, listeners, pipe, the
	 * shim's own (wake-up pipe, c-ares, log), files opened along the way. */
	FD_MARGIN = 64,
};

#define HEALTHY_LINE "127.0.0.40 healthy.test\n"
#define MOVING_BEFORE "127.0.0.41 moving.test\n"
#define MOVING_AFTER "127.0.0.42 moving.test\n"

struct counts {
	uint64_t wakeups, visits;
};

struct run {
	const char *label;
	unsigned healthy, moving;
	pid_t pid;
	int from_child; /* the baseline comes up this pipe */
	struct counts baseline, at_exit;
};

/* The value of the sample NAME{pid="PID"[,LABELS]}; false when text lacks it. */
static bool sample(const char *text, pid_t pid, const char *name, const char *labels, uint64_t *value)
{
	char needle[256];
	snprintf(needle, sizeof needle, "\n%s{pid=\"%d\"%s%s} ", name, (int)pid, labels[0] ? "," : "", labels);
	const char *at = strstr(text, needle);
	unsigned long long v;
	if (at == NULL || sscanf(at + strlen(needle), "%llu", &v) != 1)
		return false;
	*value = v;
	return true;
}

static uint64_t must_sample(const char *text, pid_t pid, const char *name, const char *labels)
{
	uint64_t value = 0;
	CHECKF(sample(text, pid, name, labels, &value), "the stats file of pid %d has no %s{%s}", (int)pid, name,
	       labels);
	return value;
}

static struct counts thread_counts(const char *text, pid_t pid)
{
	return (struct counts){
		.wakeups = must_sample(text, pid, "dnsaware_thread_wakeups_total", ""),
		.visits = must_sample(text, pid, "dnsaware_thread_socket_visits_total", ""),
	};
}

/* count connections to name's first address: client ends in clients, server ends in servers. */
static void connect_many(const char *name, uint16_t port, int listener, unsigned count, int *clients, int *servers)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
	char service[16];
	snprintf(service, sizeof service, "%u", port);
	int rc = getaddrinfo(name, service, &hints, &res);
	CHECKF(rc == 0 && res != NULL, "getaddrinfo(%s): %s", name, gai_strerror(rc));
	/* A pool resolves once and connects many times: every connect is tracked all the same. */
	for (unsigned i = 0; i < count; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(clients[i] >= 0);
		CHECKF(connect(clients[i], res->ai_addr, res->ai_addrlen) == 0, "connect %u to %s", i, name);
		servers[i] = accept_one(listener);
	}
	freeaddrinfo(res);
}

static void child(struct run *r, int to_parent)
{
	watchdog(20);
	uint16_t healthy_port, moving_port = 0;
	int healthy_listener = make_listener("127.0.0.40", &healthy_port, 4096);
	int *clients = calloc(r->healthy + r->moving, sizeof *clients);
	int *servers = calloc(r->healthy + r->moving, sizeof *servers);
	CHECK(clients != NULL && servers != NULL);
	connect_many("healthy.test", healthy_port, healthy_listener, r->healthy, clients, servers);
	if (r->moving > 0) {
		int moving_listener = make_listener("127.0.0.41", &moving_port, 64);
		connect_many("moving.test", moving_port, moving_listener, r->moving, clients + r->healthy,
			     servers + r->healthy);
	}

	/* The baseline: the first periodic file that shows every connection tracked. */
	char text[8192];
	char want[24];
	snprintf(want, sizeof want, "%u", r->healthy + r->moving);
	uint64_t tracked = 0;
	for (uint64_t end = now_ms() + 3000; now_ms() < end; sleep_ms(20))
		if (read_stats_file(getpid(), text, sizeof text) &&
		    sample(text, getpid(), "dnsaware_tracked_sockets", "", &tracked) && tracked == r->healthy + r->moving)
			break;
	CHECKF(tracked == r->healthy + r->moving, "no stats file showing %s tracked sockets within 3 s", want);
	struct counts baseline = thread_counts(text, getpid());
	CHECK(write(to_parent, &baseline, sizeof baseline) == (ssize_t)sizeof baseline);

	if (r->moving == 0) {
		sleep_ms(STEADY_MS);
	} else {
		sleep_ms(500);
		write_hosts_lines(HEALTHY_LINE MOVING_AFTER);
		/* Two answers without .41 (DNSAWARE_STALE_AFTER), then the shutdowns, spread. */
		uint64_t end = now_ms() + 8000;
		for (unsigned i = r->healthy; i < r->healthy + r->moving; i++) {
			uint64_t now = now_ms();
			CHECKF(wait_eof(clients[i], now < end ? (unsigned)(end - now) : 0),
			       "moving connection %u was not shut down within 8 s of the move", i - r->healthy);
			close(clients[i]);
			close(servers[i]);
		}
		sleep_ms(2500); /* the closed sockets are freed, and the thread settles back */
	}
	for (unsigned i = 0; i < r->healthy; i++) {
		enum sock_state state = sock_state(clients[i]);
		CHECKF(state == SOCK_ALIVE, "healthy connection %u is %s", i, sock_state_name(state));
	}
	exit(0); /* the at-exit write has the final counts */
}

static void start(struct run *r)
{
	int pipe_fds[2];
	CHECK(pipe2(pipe_fds, O_CLOEXEC) == 0);
	r->pid = fork();
	CHECK(r->pid >= 0);
	if (r->pid == 0) {
		close(pipe_fds[0]);
		t_name = r->label;
		child(r, pipe_fds[1]);
	}
	close(pipe_fds[1]);
	r->from_child = pipe_fds[0];
}

static void finish(struct run *r)
{
	ssize_t n = read(r->from_child, &r->baseline, sizeof r->baseline);
	close(r->from_child);
	int status;
	CHECK(waitpid(r->pid, &status, 0) == r->pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child failed (status 0x%x)", r->label, status);
	CHECKF(n == (ssize_t)sizeof r->baseline, "%s: no baseline from the child", r->label);
	char text[8192];
	CHECKF(read_stats_file(r->pid, text, sizeof text), "%s: no stats file for pid %d after its exit", r->label,
	       (int)r->pid);
	r->at_exit = thread_counts(text, r->pid);
	if (r->moving > 0) {
		CHECKF(must_sample(text, r->pid, "dnsaware_addresses_removed_total", "") == 1,
		       "%s: expected the one address of moving.test removed", r->label);
		uint64_t shut = 0;
		for (const char *const *path = (const char *const[]){"idle", "send", "deadline", NULL}; *path; path++) {
			char labels[64];
			snprintf(labels, sizeof labels, "reason=\"dns\",path=\"%s\"", *path);
			shut += must_sample(text, r->pid, "dnsaware_sockets_shutdown_total", labels);
		}
		CHECKF(shut == r->moving, "%s: expected %u DNS shutdowns, the file says %llu", r->label, r->moving,
		       (unsigned long long)shut);
	}
}

/* Over the idle period (after the connects): wake-ups, visits, and visits per wake-up. */
static uint64_t idle_wakeups(const struct run *r)
{
	return r->at_exit.wakeups - r->baseline.wakeups;
}

static uint64_t idle_visits(const struct run *r)
{
	return r->at_exit.visits - r->baseline.visits;
}

static double per_wakeup(const struct run *r)
{
	return (double)idle_visits(r) / (double)idle_wakeups(r);
}

static void report(const struct run *r)
{
	printf("%-12s %5u healthy + %2u moving: idle period %4llu wake-ups, %6llu visits, %.2f visits/wake-up"
	       " (whole run %llu wake-ups, %llu visits)\n",
	       r->label, r->healthy, r->moving, (unsigned long long)idle_wakeups(r), (unsigned long long)idle_visits(r),
	       per_wakeup(r), (unsigned long long)r->at_exit.wakeups, (unsigned long long)r->at_exit.visits);
	/* A thread that hardly ran would make any ratio look good. */
	CHECKF(idle_wakeups(r) >= 5, "%s: only %llu wake-ups in the idle period", r->label,
	       (unsigned long long)idle_wakeups(r));
}

/* Both ends of every connection live in the child; false when the limit cannot be raised enough. */
static bool enough_descriptors(rlim_t needed)
{
	struct rlimit limit;
	CHECK(getrlimit(RLIMIT_NOFILE, &limit) == 0);
	if (limit.rlim_cur >= needed)
		return true;
	if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
		printf("SKIP: RLIMIT_NOFILE hard limit %llu < %llu descriptors needed\n",
		       (unsigned long long)limit.rlim_max, (unsigned long long)needed);
		return false;
	}
	limit.rlim_cur = needed;
	if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
		printf("SKIP: cannot raise RLIMIT_NOFILE to %llu: %s\n", (unsigned long long)needed, strerror(errno));
		return false;
	}
	return true;
}

int main(void)
{
	t_name = "thread-work";
	watchdog(25);
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *pattern = getenv("DNSAWARE_STATS_FILE");
	CHECK(pattern != NULL && strstr(pattern, "/w-%p.prom") != NULL);
	if (!enough_descriptors(2 * (MANY + MOVING) + FD_MARGIN))
		return 77;
	private_hosts("healthy.test", "127.0.0.40");
	write_hosts_lines(HEALTHY_LINE MOVING_BEFORE);

	struct run runs[] = {
		{.label = "steady-50", .healthy = FEW},
		{.label = "steady-2000", .healthy = MANY},
		{.label = "drain-2000", .healthy = MANY, .moving = MOVING},
	};
	struct run *few = &runs[0], *many = &runs[1], *drain = &runs[2];
	for (unsigned i = 0; i < sizeof runs / sizeof runs[0]; i++)
		start(&runs[i]);
	for (unsigned i = 0; i < sizeof runs / sizeof runs[0]; i++)
		finish(&runs[i]);
	for (unsigned i = 0; i < sizeof runs / sizeof runs[0]; i++)
		report(&runs[i]);

	/* Healthy sockets are not looked at on a wake-up: only connecting, draining and closed ones. */
	CHECKF(per_wakeup(few) <= 2.0, "%.2f visits per wake-up with %u healthy sockets", per_wakeup(few), FEW);
	CHECKF(per_wakeup(many) <= 2.0, "%.2f visits per wake-up with %u healthy sockets", per_wakeup(many), MANY);
	CHECKF(per_wakeup(many) <= per_wakeup(few) + 1.0,
	       "visits per wake-up grew with the healthy sockets: %.2f with %u, %.2f with %u", per_wakeup(few), FEW,
	       per_wakeup(many), MANY);
	/* A move walks the whole list once to find its sockets (drain_removed), then looks at the
	 * draining ones only: far from every socket on every wake-up. */
	CHECKF(idle_visits(drain) * 10 < (uint64_t)MANY * idle_wakeups(drain),
	       "%llu visits in %llu wake-ups during a drain beside %u healthy sockets: the thread walks them",
	       (unsigned long long)idle_visits(drain), (unsigned long long)idle_wakeups(drain), MANY);
	drop_private_hosts();
	printf("PASS thread-work\n");
	return 0;
}
