/* Shared by the fd probes of issue #13 ("Leave no trace": lowest_fd.c, spawn_inherit.c,
 * fd_table.c): a program with tracked connections to names from a private /etc/hosts and to names
 * answered by the torture DNS helper (torture.h: the program's getaddrinfo asks it on
 * 127.0.0.1:53, the shim's c-ares on 127.0.0.1:5353, DNSAWARE_NAMESERVERS), all re-resolved at
 * DNSAWARE_TTL_FLOOR. Every refresh of every name makes the shim's c-ares read /etc/hosts and ask
 * the helper on a UDP socket of its own; with DNSAWARE_STATS_FILE and DNSAWARE_LOG_FILE set, every
 * path where the shim may make an fd runs again and again beside the program.
 *
 * The program itself makes no thread: the helper is a process (it dies with the test). Names are
 * hN.test (hosts file) and dN.test (DNS), each with three addresses 127.0.N.10/.11/.12 (the first
 * current) served by one echo listener on 0.0.0.0:PROBE_PORT in the private network namespace.
 * Root (namespaces); exit 77 otherwise. */
#ifndef DNSAWARE_FD_PROBE_H
#define DNSAWARE_FD_PROBE_H

#include "../torture/torture.h"

#define PROBE_PORT 8000
#define PROBE_NAMES 16
#define PROBE_ADDRESSES 3
#define PROBE_IP_MAX 32 /* room for any two numbers, whatever the compiler can prove */
/* Lines of other names after the probe's in /etc/hosts: c-ares reads the whole file at every
 * refresh, so a longer file keeps its fd open longer (as a real hosts file of some size would). */
#define PROBE_HOSTS_PADDING 120

struct probe_conn {
	char name[32];
	struct helper_name *dns; /* NULL: a hosts-file name */
	int at;                  /* which of the name's addresses is current */
	int fd;                  /* the tracked connection, -1 when closed */
};

static struct probe_conn probe_conns[PROBE_NAMES];
static int probe_count;
static unsigned probe_reconnects;

static UNUSED_FN void probe_address(int i, int at, char ip[PROBE_IP_MAX])
{
	snprintf(ip, PROBE_IP_MAX, "127.0.%d.%d", i + 1, 10 + at);
}

/* The private /etc/hosts: every hosts-file name at its current address (one write). */
static UNUSED_FN void probe_write_hosts(void)
{
	char lines[6144];
	int n = 0;
	for (int i = 0; i < probe_count; i++) {
		if (probe_conns[i].dns != NULL)
			continue;
		char ip[PROBE_IP_MAX];
		probe_address(i, probe_conns[i].at, ip);
		n += snprintf(lines + n, sizeof lines - (size_t)n, "%s %s\n", ip, probe_conns[i].name);
		CHECK(n < (int)sizeof lines);
	}
	for (int i = 0; i < PROBE_HOSTS_PADDING; i++) {
		n += snprintf(lines + n, sizeof lines - (size_t)n, "127.1.%d.%d other%d.test\n", i / 200, i % 200 + 1, i);
		CHECK(n < (int)sizeof lines);
	}
	set_hosts(lines);
}

/* Private network and files, hosts_names names in /etc/hosts and dns_names names served by the
 * DNS helper, the helper started. No connection yet. */
static UNUSED_FN void probe_setup(int hosts_names, int dns_names)
{
	CHECK(hosts_names + dns_names <= PROBE_NAMES);
	private_network();
	private_files("");
	helper_init();
	for (int i = 0; i < hosts_names + dns_names; i++) {
		struct probe_conn *c = &probe_conns[probe_count++];
		c->fd = -1;
		snprintf(c->name, sizeof c->name, "%c%d.test", i < hosts_names ? 'h' : 'd', i);
		if (i >= hosts_names) {
			char ip[PROBE_IP_MAX];
			probe_address(i, 0, ip);
			c->dns = helper_add_name(c->name, ip);
		}
	}
	probe_write_hosts();
	helper_listen("0.0.0.0", PROBE_PORT);
	helper_start();
}

/* A tracked connection to c's name, at its current address, with one exchange on it (so that the
 * last data movement is inbound: the shim can find it idle and shut it down after a move). */
static UNUSED_FN __attribute__((noinline)) void probe_connect(struct probe_conn *c)
{
	c->fd = connect_named(c->name, PROBE_PORT);
	char want[PROBE_IP_MAX], peer[INET_ADDRSTRLEN];
	probe_address((int)(c - probe_conns), c->at, want);
	CHECKF(strcmp(peer_text(c->fd, peer), want) == 0, "%s reached %s, expected %s", c->name, peer, want);
	CHECKF(echo_exchange(c->fd, "hello"), "the first exchange with %s failed", c->name);
}

static UNUSED_FN void probe_connect_all(void)
{
	for (int i = 0; i < probe_count; i++)
		probe_connect(&probe_conns[i]);
}

/* Every name moves to its next address (the hosts file is rewritten once, the helper answers the
 * new address from now on): the shim drains the connections to the old ones. */
static UNUSED_FN void probe_move_all(void)
{
	for (int i = 0; i < probe_count; i++) {
		struct probe_conn *c = &probe_conns[i];
		c->at = (c->at + 1) % PROBE_ADDRESSES;
		if (c->dns != NULL) {
			char ip[PROBE_IP_MAX];
			probe_address(i, c->at, ip);
			helper_move(c->dns, ip);
		}
	}
	probe_write_hosts();
}

/* The probes' command line: [SECONDS] [HOSTS_NAMES DNS_NAMES]. Sets the watchdog (the run time and
 * 30 s) and unbuffered output; failures print their message without the whole debug log. */
static UNUSED_FN void probe_args(int argc, char **argv, int *seconds, int *hosts_names, int *dns_names)
{
	*seconds = argc > 1 ? atoi(argv[1]) : *seconds;
	if (argc > 3) {
		*hosts_names = atoi(argv[2]);
		*dns_names = atoi(argv[3]);
	}
	CHECKF(*seconds > 0 && *seconds <= 120 && *hosts_names >= 0 && *dns_names >= 0 &&
		       *hosts_names + *dns_names <= PROBE_NAMES,
	       "usage: %s [SECONDS] [HOSTS_NAMES DNS_NAMES] (at most 120 s and %d names)", argv[0], PROBE_NAMES);
	watchdog((unsigned)*seconds + 30);
	setvbuf(stdout, NULL, _IONBF, 0);
	short_failure_reports();
}

/* Queries the shim's c-ares sent for the DNS names (the helper counts them). */
static UNUSED_FN unsigned probe_shim_queries(void)
{
	unsigned n = 0;
	for (int i = 0; i < probe_count; i++)
		if (probe_conns[i].dns != NULL)
			n += atomic_load(&probe_conns[i].dns->shim_queries);
	return n;
}

/* Waits (3 s at most) until the shim has asked the DNS helper for a name: its thread runs and
 * refreshes. Nothing to wait for without the shim, or without a DNS name. */
static UNUSED_FN void probe_wait_refresh(void)
{
	bool dns = false;
	for (int i = 0; i < probe_count; i++)
		dns = dns || probe_conns[i].dns != NULL;
	if (getenv("LD_PRELOAD") == NULL || !dns)
		return;
	for (uint64_t until = now_ms() + 3000; probe_shim_queries() == 0; sleep_ms(10))
		CHECKF(now_ms() < until, "the shim never asked the DNS helper");
}

/* Connections the shim shut down (EOF) are closed and made again to the name's current address.
 * Returns how many were; changed() (may be NULL) is told each fd closed and made. */
static UNUSED_FN int probe_reconnect_closed(void (*changed)(int fd, bool open))
{
	int n = 0;
	for (int i = 0; i < probe_count; i++) {
		struct probe_conn *c = &probe_conns[i];
		enum sock_state s = sock_state(c->fd);
		if (s == SOCK_ALIVE)
			continue;
		CHECKF(s == SOCK_EOF, "the connection to %.31s is %.20s", c->name, sock_state_name(s));
		CHECK(close(c->fd) == 0);
		if (changed != NULL)
			changed(c->fd, false);
		probe_connect(c);
		if (changed != NULL)
			changed(c->fd, true);
		n++;
	}
	probe_reconnects += (unsigned)n;
	return n;
}

/* The fds this process has now (torture.h's snapshot), each marked in own[] (size max). */
static UNUSED_FN void probe_mark_open_fds(bool *own, int max)
{
	struct fdset set;
	fd_snapshot(&set);
	for (int i = 0; i < set.n; i++)
		if (set.fds[i] < max)
			own[set.fds[i]] = true;
}

/* Counts by kind of what an fd was (readlink text up to its first '[' or newline: pipe and socket
 * inodes left out), the PROBE_KINDS first kinds seen, the rest as "(other)". */
#define PROBE_KINDS 16

struct probe_kind {
	char what[160];
	long long count;
};

static UNUSED_FN void probe_count_kind(struct probe_kind kinds[PROBE_KINDS], const char *link)
{
	char what[160];
	snprintf(what, sizeof what, "%.*s", (int)strcspn(link, "[\n"), link);
	int i = 0;
	while (i < PROBE_KINDS - 1 && kinds[i].count > 0 && strcmp(kinds[i].what, what) != 0)
		i++;
	if (kinds[i].count == 0)
		snprintf(kinds[i].what, sizeof kinds[i].what, "%s", i == PROBE_KINDS - 1 ? "(other)" : what);
	kinds[i].count++;
}

/* "  N <intro> <kind>" lines. */
static UNUSED_FN void probe_print_kinds(const struct probe_kind kinds[PROBE_KINDS], const char *intro)
{
	for (int i = 0; i < PROBE_KINDS && kinds[i].count > 0; i++)
		printf("  %lld %s %s\n", kinds[i].count, intro, kinds[i].what);
}

#endif
