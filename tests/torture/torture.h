/* Shared helpers of the torture tests (#8): the preload tests' helpers, plus a watchdog thread, a
 * private network and file namespace, /proc/self/fd snapshots, the shim's log and stats file, and a
 * helper process that serves DNS (UDP, with a delay or silence on demand) and echoes TCP.
 *
 * Like the preload tests, these programs never link against the library and observe it from
 * outside. Every program bounds its own run time; exit status 77 means a prerequisite is missing
 * (root, namespaces), and the message says which. */
#ifndef DNSAWARE_TORTURE_H
#define DNSAWARE_TORTURE_H

#include "../preload/common.h"

#include <ctype.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* ---- skipping and the watchdog ---- */

static UNUSED_FN __attribute__((noreturn)) void skip(const char *why)
{
	printf("SKIP %s: %s\n", t_name, why);
	exit(77);
}

static unsigned watchdog_seconds;
static const char *watchdog_what = "the test";

static void *watchdog_main(void *unused)
{
	(void)unused;
	sleep_ms(watchdog_seconds * 1000);
	char msg[256];
	int n = snprintf(msg, sizeof msg, "[%s pid %d] FAILED: watchdog expired after %u s: %s did not finish "
			 "(deadlock or hang)\n", t_name, (int)getpid(), watchdog_seconds, watchdog_what);
	/* Raw system calls: a deadlocked shim must not be needed to say so. */
	syscall(SYS_write, 2, msg, (size_t)n);
	syscall(SYS_exit_group, 3);
	return NULL;
}

/* A thread that ends the process (status 3, with a message) after seconds: it needs no signal, so
 * it works where the test itself uses SIGALRM and timers. Not inherited by fork children: they call
 * alarm() (common.h's watchdog()) for themselves. */
static UNUSED_FN void watchdog_thread(unsigned seconds, const char *what)
{
	watchdog_seconds = seconds;
	watchdog_what = what;
	pthread_t t;
	CHECK(pthread_create(&t, NULL, watchdog_main, NULL) == 0);
	CHECK(pthread_detach(t) == 0);
}

/* ---- a network and file system of the test's own (root) ---- */

/* A network namespace with loopback up: 127.0.0.0/8 and every port are the test's alone. Before any
 * thread is made (namespaces belong to the thread that unshares). */
static UNUSED_FN void private_network(void)
{
	if (geteuid() != 0)
		skip("needs root for a private network namespace (unshare(CLONE_NEWNET))");
	if (unshare(CLONE_NEWNET) != 0)
		skip("unshare(CLONE_NEWNET) failed: no network namespaces here");
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
	CHECK(close(s) == 0);
}

static char resolv_path[] = "/tmp/dnsaware-torture-resolv-XXXXXX";

/* A mount namespace whose /etc/hosts (rewritten with set_hosts) holds hosts_lines, and whose /etc/resolv.conf names 127.0.0.1 (nothing listens there unless the test's
 * DNS helper does: glibc and c-ares fail fast instead of waiting on the real network). */
static UNUSED_FN void private_files(const char *hosts_lines)
{
	if (geteuid() != 0)
		skip("needs root for a private mount namespace (unshare(CLONE_NEWNS))");
	if (unshare(CLONE_NEWNS) != 0)
		skip("unshare(CLONE_NEWNS) failed: no mount namespaces here");
	CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	int fd = mkstemp(hosts_path);
	CHECK(fd >= 0);
	CHECK(close(fd) == 0);
	fd = mkstemp(resolv_path);
	CHECK(fd >= 0);
	static const char resolv[] = "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n";
	CHECK(write(fd, resolv, sizeof resolv - 1) == (ssize_t)(sizeof resolv - 1));
	CHECK(close(fd) == 0);
	write_hosts_lines(hosts_lines);
	CHECK(mount(hosts_path, "/etc/hosts", NULL, MS_BIND, NULL) == 0);
	CHECK(mount(resolv_path, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0);
	/* The bind mounts hold the files; the names can go now (nothing is left behind on failure).
	 * The hosts file is rewritten through /etc/hosts (set_hosts). */
	unlink(resolv_path);
	unlink(hosts_path);
}

/* The private /etc/hosts becomes localhost and then lines, in one write (same inode: the bind mount
 * stays; a reader sees the file empty for a moment, never half written). */
static UNUSED_FN void set_hosts(const char *lines)
{
	char text[8192];
	int n = snprintf(text, sizeof text, "127.0.0.1 localhost\n%s", lines);
	CHECK(n < (int)sizeof text);
	int fd = open("/etc/hosts", O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(write(fd, text, (size_t)n) == n);
	CHECK(close(fd) == 0);
}

static UNUSED_FN void drop_private_files(void)
{
	umount("/etc/hosts");
	umount("/etc/resolv.conf");
}

/* ---- /proc/self/fd ---- */

#define FDSET_MAX 4096

struct fdset {
	int n;
	int fds[FDSET_MAX];
};

static UNUSED_FN void fd_link(int fd, char *out, size_t size)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, out, size - 1);
	out[n < 0 ? 0 : n] = '\0';
}

/* The open fds of this process (the directory's own fd left out). */
static UNUSED_FN void fd_snapshot(struct fdset *set)
{
	int dfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	DIR *d = fdopendir(dfd);
	CHECK(d != NULL);
	set->n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd != dfd && set->n < FDSET_MAX)
			set->fds[set->n++] = fd;
	}
	closedir(d);
}

static UNUSED_FN bool fdset_has(const struct fdset *set, int fd)
{
	for (int i = 0; i < set->n; i++)
		if (set->fds[i] == fd)
			return true;
	return false;
}

/* Fds in now that are not in before; prints them (with what they are) under a heading. */
static UNUSED_FN int fdset_extra(const struct fdset *before, const struct fdset *now, const char *heading)
{
	int extra = 0;
	for (int i = 0; i < now->n; i++) {
		if (fdset_has(before, now->fds[i]))
			continue;
		char link[256];
		fd_link(now->fds[i], link, sizeof link);
		if (extra++ == 0 && heading != NULL)
			fprintf(stderr, "%s\n", heading);
		if (heading != NULL)
			fprintf(stderr, "  fd %d -> %s\n", now->fds[i], link);
	}
	return extra;
}

/* Is libdnsaware mapped into this process (LD_PRELOAD reached it)? */
static UNUSED_FN bool shim_loaded(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	CHECK(f != NULL);
	char line[512];
	bool found = false;
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, "libdnsaware") != NULL;
	fclose(f);
	return found;
}

/* UDP sockets connected to the shim's DNS server (c-ares'), and pipes and eventfds above stderr (the
 * shim's wake-up fds; the programs that ask make none of their own). */
static UNUSED_FN int resolver_fds(int *wake_fds)
{
	struct fdset set;
	fd_snapshot(&set);
	int udp = 0;
	*wake_fds = 0;
	for (int i = 0; i < set.n; i++) {
		char link[256];
		fd_link(set.fds[i], link, sizeof link);
		if (set.fds[i] > 2 && (strstr(link, "eventfd") != NULL || strncmp(link, "pipe:", 5) == 0))
			(*wake_fds)++;
		if (strncmp(link, "socket:", 7) != 0)
			continue;
		int type = 0;
		socklen_t len = sizeof type;
		struct sockaddr_in peer;
		socklen_t plen = sizeof peer;
		if (getsockopt(set.fds[i], SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM &&
		    getpeername(set.fds[i], (struct sockaddr *)&peer, &plen) == 0 && peer.sin_family == AF_INET &&
		    ntohs(peer.sin_port) == 5353)
			udp++;
	}
	return udp;
}

/* ---- the shim's log and stats file ---- */

/* DNSAWARE_LOG_FILE, read once. */
static UNUSED_FN const char *log_path(void)
{
	static const char *path;
	static bool read;
	if (!read) {
		path = getenv("DNSAWARE_LOG_FILE");
		read = true;
	}
	return path;
}

/* A failed CHECK prints only its message, not every line of the log (common.h's dump_log): for
 * tests whose log runs to thousands of lines. The shim read its settings at start; this changes
 * only what this program's own helpers see (and its children's environment). */
static UNUSED_FN void short_failure_reports(void)
{
	log_path();
	unsetenv("DNSAWARE_LOG_FILE");
}

/* Calls fn on each line of the log that this process wrote (pid given), with the message part. */
static UNUSED_FN int for_log_lines(pid_t pid, void (*fn)(const char *message, void *arg), void *arg)
{
	const char *path = log_path();
	CHECK(path != NULL);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	char prefix[32], line[1024];
	snprintf(prefix, sizeof prefix, "dnsaware[%d]: ", (int)pid);
	size_t plen = strlen(prefix);
	int count = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, prefix, plen) != 0)
			continue;
		count++;
		if (fn != NULL)
			fn(line + plen, arg);
	}
	fclose(f);
	return count;
}

/* Lines of pid's that contain needle. */
static UNUSED_FN int count_log_lines_of(pid_t pid, const char *needle)
{
	const char *path = log_path();
	CHECK(path != NULL);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	char prefix[32], line[1024];
	snprintf(prefix, sizeof prefix, "dnsaware[%d]: ", (int)pid);
	int count = 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, needle) != NULL)
			count++;
	fclose(f);
	return count;
}

/* Waits up to timeout_ms for a line of pid's containing needle. */
static UNUSED_FN bool wait_log_line(pid_t pid, const char *needle, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	while (count_log_lines_of(pid, needle) == 0) {
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
	return true;
}

/* The last lines of pid's containing needle (all of pid's lines for ""), to stderr. */
static UNUSED_FN void print_log_tail(pid_t pid, const char *needle, int max)
{
	const char *path = log_path();
	if (path == NULL)
		return;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	enum { KEEP = 64 };
	static char ring[KEEP][512];
	if (max > KEEP)
		max = KEEP;
	char prefix[32], line[1024];
	snprintf(prefix, sizeof prefix, "dnsaware[%d]: ", (int)pid);
	long n = 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, needle) != NULL)
			snprintf(ring[n++ % KEEP], sizeof ring[0], "%.500s", line);
	fclose(f);
	fprintf(stderr, "---- the last %d of %ld shim log lines of pid %d with \"%s\" ----\n", n < max ? (int)n : max, n,
		(int)pid, needle);
	for (long i = n < max ? 0 : n - max; i < n; i++)
		fputs(ring[i % KEEP], stderr);
	fprintf(stderr, "---- end ----\n");
}

/* The sum of a stats-file metric's samples whose labels contain label ("" for all); -1 if the file
 * or the metric is missing. path: DNSAWARE_STATS_FILE (no %p in it). */
static UNUSED_FN long long stats_value(const char *metric, const char *label)
{
	const char *path = getenv("DNSAWARE_STATS_FILE");
	if (path == NULL)
		return -1;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	char line[512];
	long long sum = -1;
	size_t mlen = strlen(metric);
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, metric, mlen) != 0 || (line[mlen] != '{' && line[mlen] != ' '))
			continue;
		if (strstr(line, label) == NULL)
			continue;
		const char *value = strrchr(line, ' ');
		if (value == NULL)
			continue;
		sum = (sum < 0 ? 0 : sum) + atoll(value + 1);
	}
	fclose(f);
	return sum;
}

/* ---- a request/response with a server in another process (the helper echoes after 12 ms) ---- */

/* Sends req and reads the echo back: true when it came back whole; false (errno set) when the send
 * failed or the connection ended first. */
static UNUSED_FN bool echo_exchange(int fd, const char *req)
{
	size_t len = strlen(req);
	char buf[256];
	CHECK(len < sizeof buf);
	ssize_t n = send(fd, req, len, MSG_NOSIGNAL);
	if (n != (ssize_t)len)
		return false;
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		CHECKF(poll(&p, 1, 3000) == 1, "no answer from the echo server in 3 s");
		n = recv(fd, buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return false;
		}
		got += (size_t)n;
	}
	CHECKF(memcmp(buf, req, len) == 0, "the echo of \"%s\" came back as \"%.*s\"", req, (int)len, buf);
	return true;
}

/* The IPv4 peer of a connected socket, as text. */
static UNUSED_FN const char *peer_text(int fd, char buf[INET_ADDRSTRLEN])
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	if (getpeername(fd, (struct sockaddr *)&a, &len) != 0)
		return "(none)";
	return inet_ntop(AF_INET, &a.sin_addr, buf, INET_ADDRSTRLEN);
}

/* ---- the helper process: DNS (UDP) and TCP echo servers, controlled through shared memory ---- */

#define HELPER_NAMES 16
#define HELPER_LISTENERS 16
#define DNS_GLIBC_PORT 53    /* /etc/resolv.conf's 127.0.0.1: the program's own getaddrinfo */
#define DNS_SHIM_PORT 5353   /* DNSAWARE_NAMESERVERS=127.0.0.1:5353: the shim's c-ares */

struct helper_name {
	char name[64];
	_Atomic uint32_t addrs[4];        /* network order */
	_Atomic int count;
	_Atomic int shim_delay_ms;        /* answers on the shim's port come this late... */
	_Atomic int shim_drop;            /* ...or never */
	_Atomic unsigned shim_queries;    /* queries seen on the shim's port */
	_Atomic unsigned shim_answered;
	_Atomic unsigned glibc_queries;
};

struct helper_ctl {
	struct helper_name names[HELPER_NAMES];
	_Atomic int name_count;
	_Atomic int shim_pending;         /* shim queries received and not (yet) answered */
	char listen_ip[HELPER_LISTENERS][16];
	uint16_t listen_port[HELPER_LISTENERS];
	int listen_count;
	_Atomic int ready;
	_Atomic unsigned accepted;
};

static struct helper_ctl *helper;
static pid_t helper_pid;

static UNUSED_FN struct helper_name *helper_add_name(const char *name, const char *ip)
{
	int i = atomic_load(&helper->name_count);
	CHECK(i < HELPER_NAMES);
	struct helper_name *h = &helper->names[i];
	snprintf(h->name, sizeof h->name, "%s", name);
	struct in_addr a;
	CHECK(inet_pton(AF_INET, ip, &a) == 1);
	atomic_store(&h->addrs[0], a.s_addr);
	atomic_store(&h->count, 1);
	atomic_store(&helper->name_count, i + 1);
	return h;
}

/* The name answers with ip alone from now on. */
static UNUSED_FN void helper_move(struct helper_name *h, const char *ip)
{
	struct in_addr a;
	CHECK(inet_pton(AF_INET, ip, &a) == 1);
	atomic_store(&h->addrs[0], a.s_addr);
	atomic_store(&h->count, 1);
}

static UNUSED_FN void helper_listen(const char *ip, uint16_t port)
{
	CHECK(helper->listen_count < HELPER_LISTENERS);
	snprintf(helper->listen_ip[helper->listen_count], 16, "%s", ip);
	helper->listen_port[helper->listen_count++] = port;
}

/* A DNS answer to query (len bytes) in out; 0 when the query is not one to answer. */
static size_t dns_answer(const unsigned char *q, size_t len, unsigned char *out, size_t size,
			 struct helper_name **which)
{
	*which = NULL;
	if (len < 17 || size < 512)
		return 0;
	size_t off = 12;
	char name[256];
	size_t nlen = 0;
	while (off < len && q[off] != 0) {
		size_t l = q[off];
		if ((l & 0xc0) != 0 || off + 1 + l >= len || nlen + l + 1 >= sizeof name)
			return 0;
		if (nlen > 0)
			name[nlen++] = '.';
		for (size_t i = 0; i < l; i++)
			name[nlen++] = (char)tolower(q[off + 1 + i]);
		off += 1 + l;
	}
	name[nlen] = '\0';
	if (off + 5 > len)
		return 0;
	size_t qend = off + 5;
	unsigned qtype = (unsigned)(q[off + 1] << 8 | q[off + 2]);
	for (int i = 0; i < atomic_load(&helper->name_count); i++)
		if (strcmp(helper->names[i].name, name) == 0)
			*which = &helper->names[i];
	memcpy(out, q, qend);
	out[2] = (unsigned char)(0x80 | (q[2] & 0x01)); /* QR, RD copied */
	out[3] = 0x80;                                  /* RA, NOERROR */
	out[4] = 0;
	out[5] = 1;
	memset(out + 6, 0, 6);
	size_t n = qend;
	if (*which == NULL) {
		out[3] |= 3; /* NXDOMAIN */
		return n;
	}
	if (qtype != 1)
		return n; /* AAAA and the rest: no data */
	int count = atomic_load(&(*which)->count);
	for (int i = 0; i < count && i < 4; i++) {
		/* A, IN, TTL 0 (the shim re-resolves at DNSAWARE_TTL_FLOOR), 4 bytes */
		static const unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4 };
		memcpy(out + n, rr, sizeof rr);
		uint32_t a = atomic_load(&(*which)->addrs[i]);
		memcpy(out + n + sizeof rr, &a, 4);
		n += sizeof rr + 4;
	}
	out[7] = (unsigned char)count;
	return n;
}

struct pending_answer {
	uint64_t due;
	struct sockaddr_in to;
	size_t len;
	unsigned char data[512];
	struct helper_name *name;
	bool used;
};

struct echo_conn {
	int fd;
	uint64_t due;
	size_t len;
	char buf[512];
};

static __attribute__((noreturn)) void helper_main(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(0);
	int udp[2];
	uint16_t ports[2] = { DNS_GLIBC_PORT, DNS_SHIM_PORT };
	for (int i = 0; i < 2; i++) {
		udp[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_storage ss;
		socklen_t len;
		make_addr("127.0.0.1", ports[i], &ss, &len);
		CHECK(udp[i] >= 0 && bind(udp[i], (struct sockaddr *)&ss, len) == 0);
	}
	int listeners[HELPER_LISTENERS];
	for (int i = 0; i < helper->listen_count; i++)
		listeners[i] = listen_on(helper->listen_ip[i], helper->listen_port[i], 128);
	enum { CONNS = 256, PENDING = 128 };
	static struct echo_conn conns[CONNS];
	static struct pending_answer pending[PENDING];
	int nconns = 0;
	atomic_store(&helper->ready, 1);
	for (;;) {
		struct pollfd p[2 + HELPER_LISTENERS + CONNS];
		int np = 0;
		for (int i = 0; i < 2; i++)
			p[np++] = (struct pollfd){ .fd = udp[i], .events = POLLIN };
		for (int i = 0; i < helper->listen_count; i++)
			p[np++] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
		int first_conn = np;
		for (int i = 0; i < nconns; i++)
			p[np++] = (struct pollfd){ .fd = conns[i].fd, .events = conns[i].len == 0 ? POLLIN : 0 };
		uint64_t now = now_ms(), next = now + 1000;
		for (int i = 0; i < PENDING; i++)
			if (pending[i].used && pending[i].due < next)
				next = pending[i].due;
		for (int i = 0; i < nconns; i++)
			if (conns[i].len > 0 && conns[i].due < next)
				next = conns[i].due;
		poll(p, (nfds_t)np, next > now ? (int)(next - now) : 0);
		now = now_ms();
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			unsigned char q[512], a[512];
			struct sockaddr_in from;
			socklen_t flen = sizeof from;
			ssize_t n = recvfrom(udp[i], q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
			if (n <= 0)
				continue;
			struct helper_name *h;
			size_t alen = dns_answer(q, (size_t)n, a, sizeof a, &h);
			if (alen == 0)
				continue;
			int delay = 0;
			if (i == 1 && h != NULL) {
				atomic_fetch_add(&h->shim_queries, 1);
				if (atomic_load(&h->shim_drop)) {
					atomic_fetch_add(&helper->shim_pending, 1);
					continue;
				}
				delay = atomic_load(&h->shim_delay_ms);
			} else if (h != NULL) {
				atomic_fetch_add(&h->glibc_queries, 1);
			}
			if (delay == 0) {
				sendto(udp[i], a, alen, 0, (struct sockaddr *)&from, flen);
				if (i == 1 && h != NULL)
					atomic_fetch_add(&h->shim_answered, 1);
				continue;
			}
			for (int k = 0; k < PENDING; k++) {
				if (pending[k].used)
					continue;
				pending[k] = (struct pending_answer){ .due = now + (uint64_t)delay, .to = from, .len = alen,
								       .name = h, .used = true };
				memcpy(pending[k].data, a, alen);
				atomic_fetch_add(&helper->shim_pending, 1);
				break;
			}
		}
		for (int k = 0; k < PENDING; k++) {
			if (!pending[k].used || pending[k].due > now)
				continue;
			/* Answers the set of now, not of when asked (the move is what the test waits for). */
			struct pending_answer *pa = &pending[k];
			unsigned char fresh[512];
			struct helper_name *h;
			size_t alen = dns_answer(pa->data, pa->len, fresh, sizeof fresh, &h);
			sendto(udp[1], fresh, alen ? alen : pa->len, 0, (struct sockaddr *)&pa->to, sizeof pa->to);
			pa->used = false;
			atomic_fetch_sub(&helper->shim_pending, 1);
			if (h != NULL)
				atomic_fetch_add(&h->shim_answered, 1);
		}
		for (int i = 0; i < helper->listen_count; i++) {
			if (!(p[2 + i].revents & POLLIN))
				continue;
			int c = accept4(listeners[i], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (c < 0)
				continue;
			atomic_fetch_add(&helper->accepted, 1);
			if (nconns == CONNS) {
				close(c);
				continue;
			}
			conns[nconns++] = (struct echo_conn){ .fd = c };
		}
		for (int i = first_conn; i < np; i++) {
			struct echo_conn *c = &conns[i - first_conn];
			if (c->len > 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = recv(c->fd, c->buf, sizeof c->buf, 0);
			if (n > 0) {
				c->len = (size_t)n;
				c->due = now + 12; /* a real server takes time (see common.h's exchange) */
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(c->fd);
				c->fd = -1;
			}
		}
		for (int i = 0; i < nconns; i++) {
			struct echo_conn *c = &conns[i];
			if (c->fd >= 0 && c->len > 0 && c->due <= now) {
				if (send(c->fd, c->buf, c->len, MSG_NOSIGNAL) != (ssize_t)c->len) {
					close(c->fd);
					c->fd = -1;
				}
				c->len = 0;
			}
		}
		int kept = 0;
		for (int i = 0; i < nconns; i++)
			if (conns[i].fd >= 0)
				conns[kept++] = conns[i];
		nconns = kept;
	}
}

/* The control block, shared with the helper process (before helper_start: add names, listeners).
 * It lives in a memfd without FD_CLOEXEC: a program this one execs finds it again (helper_attach). */
static int helper_fd = -1;

static UNUSED_FN void helper_init(void)
{
	helper_fd = memfd_create("dnsaware-torture-helper", 0);
	CHECK(helper_fd >= 0);
	CHECK(ftruncate(helper_fd, sizeof *helper) == 0);
	helper = mmap(NULL, sizeof *helper, PROT_READ | PROT_WRITE, MAP_SHARED, helper_fd, 0);
	CHECK(helper != MAP_FAILED);
}

static UNUSED_FN void helper_attach(int fd)
{
	helper_fd = fd;
	helper = mmap(NULL, sizeof *helper, PROT_READ | PROT_WRITE, MAP_SHARED, helper_fd, 0);
	CHECK(helper != MAP_FAILED);
}

static UNUSED_FN struct helper_name *helper_find(const char *name)
{
	for (int i = 0; i < atomic_load(&helper->name_count); i++)
		if (strcmp(helper->names[i].name, name) == 0)
			return &helper->names[i];
	fail_at(__FILE__, __LINE__, "the helper has no name %s", name);
}

/* Waits up to timeout_ms for *counter to reach at least want. */
static UNUSED_FN bool wait_counter(_Atomic unsigned *counter, unsigned want, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	while (atomic_load(counter) < want) {
		if (now_ms() >= end)
			return false;
		sleep_ms(2);
	}
	return true;
}

/* Starts the helper process (in the test's network namespace; it dies with the test). */
static UNUSED_FN void helper_start(void)
{
	helper_pid = fork();
	CHECK(helper_pid >= 0);
	if (helper_pid == 0) {
		t_name = "dns/echo helper";
		helper_main();
	}
	uint64_t end = now_ms() + 3000;
	while (!atomic_load(&helper->ready)) {
		CHECKF(now_ms() < end, "the helper process did not start");
		sleep_ms(2);
	}
}


#endif
