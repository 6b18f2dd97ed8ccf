/* The world of the stale-answer tests (stale.c): a network and mount namespace of the test's own
 * (root), where glibc's resolver and the shim's c-ares both ask a DNS server of the test's on
 * 127.0.0.153:53 (a private /etc/resolv.conf, "options timeout:1 attempts:2"; a private
 * /etc/nsswitch.conf, "hosts: files dns"; a private /etc/hosts naming only HOSTS_NAME).
 *
 * The server is a forked process (the programs under test make no thread of their own): its mode
 * and its query count live in a memfd that the test's processes map, passed on through exec
 * (STALE_TEST_DNS_FD), so that any of them switches the mode at run time:
 *   answer   NAME is a CNAME of CANON, which has A 127.0.0.10 127.0.0.11 and AAAA fd00::10 fd00::11;
 *            HOSTS_NAME has A 127.0.0.20 (as /etc/hosts first says); RR_NAME has A 192.0.2.10
 *            and 192.0.2.11, in turn first (a round-robin server; outside the network's own
 *            198.51.100.0/24, so glibc's sort keeps the DNS order); every record TTL 1; any
 *            other name NXDOMAIN
 *   silent   no answer at all
 *   servfail SERVFAIL to every query
 *   nxdomain NXDOMAIN to every query
 *
 * Every lookup of the tests' runs in a child process (run_child: this program again, exec'd with
 * the environment a subtest wants), because the shim reads its settings when it is loaded.
 * Answers are compared as text (describe_ai, describe_he): every field the program can see. */
#ifndef DNSAWARE_STALE_ENV_H
#define DNSAWARE_STALE_ENV_H

#include <ctype.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "common.h"

#define DNS_IP "127.0.0.153"
#define NAME "svc.baddays.test"
#define CANON "real.baddays.test"
#define HOSTS_NAME "h.baddays.test"
#define RR_NAME "rr.baddays.test"

enum dns_mode { DNS_ANSWER, DNS_SILENT, DNS_SERVFAIL, DNS_NXDOMAIN };
static const char *const dns_mode_names[] = {"answer", "silent", "servfail", "nxdomain"};

struct dns_state {
	_Atomic int mode;
	_Atomic unsigned turn; /* RR_NAME's answers so far */
	_Atomic unsigned queries; /* every query received, answered or not */
};
static struct dns_state *dns;

static UNUSED_FN void dns_set(enum dns_mode mode)
{
	atomic_store(&dns->mode, (int)mode);
}

static UNUSED_FN enum dns_mode dns_mode_named(const char *name)
{
	for (unsigned i = 0; i < sizeof dns_mode_names / sizeof dns_mode_names[0]; i++)
		if (strcmp(name, dns_mode_names[i]) == 0)
			return (enum dns_mode)i;
	fail_at(__FILE__, __LINE__, "no server mode %s", name);
}

static size_t put_u16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

static size_t put_rr(uint8_t *p, const uint8_t owner[2], unsigned type, const void *data, unsigned len)
{
	memcpy(p, owner, 2);
	size_t n = 2 + put_u16(p + 2, type);
	n += put_u16(p + n, 1);
	n += put_u16(p + n, 0);
	n += put_u16(p + n, 1); /* TTL 1 */
	n += put_u16(p + n, len);
	memcpy(p + n, data, len);
	return n + len;
}

/* The answer to query q in out; its length, 0 to stay silent. */
static size_t dns_answer(const uint8_t *q, size_t len, uint8_t *out)
{
	char qname[256];
	size_t at = 12, k = 0;
	if (len < 12)
		return 0;
	while (at < len && q[at] != 0) {
		unsigned label = q[at];
		if (at + 1 + label >= len || k + label + 2 > sizeof qname)
			return 0;
		if (k > 0)
			qname[k++] = '.';
		for (unsigned i = 0; i < label; i++)
			qname[k++] = (char)tolower(q[at + 1 + i]);
		at += 1 + label;
	}
	qname[k] = '\0';
	if (at + 5 > len)
		return 0;
	atomic_fetch_add(&dns->queries, 1);
	int mode = atomic_load(&dns->mode);
	if (mode == DNS_SILENT)
		return 0;
	unsigned qtype = (unsigned)q[at + 1] << 8 | q[at + 2];
	size_t n = at + 5;
	memcpy(out, q, n); /* the header and the question */
	bool svc = strcmp(qname, NAME) == 0, hosts = strcmp(qname, HOSTS_NAME) == 0;
	bool rr = strcmp(qname, RR_NAME) == 0;
	bool known = svc || hosts || rr || strcmp(qname, CANON) == 0;
	unsigned rcode = mode == DNS_SERVFAIL ? 2 : mode == DNS_NXDOMAIN || !known ? 3 : 0;
	out[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
	out[3] = (uint8_t)(0x80 | rcode);         /* RA */
	put_u16(out + 6, 0);
	put_u16(out + 8, 0);
	put_u16(out + 10, 0);
	if (rcode != 0)
		return n;
	unsigned answers = 0;
	uint8_t owner[2] = {0xc0, 12};
	if (svc) {
		uint8_t target[] = "\4real\7baddays\4test";
		n += put_rr(out + n, owner, 5, target, sizeof target);
		size_t target_at = n - sizeof target;
		owner[0] = (uint8_t)(0xc0 | target_at >> 8);
		owner[1] = (uint8_t)target_at;
		answers++;
	}
	if (rr) {
		/* Each A query gets the other order. */
		unsigned first = atomic_fetch_add(&dns->turn, 1) % 2;
		for (unsigned i = 0; i < 2 && qtype == 1; i++) {
			uint8_t a[4] = {192, 0, 2, (uint8_t)(10 + (first + i) % 2)};
			n += put_rr(out + n, owner, 1, a, 4);
			answers++;
		}
		put_u16(out + 6, answers);
		return n;
	}
	for (int i = 0; i < (hosts ? 1 : 2); i++) {
		uint8_t a[16];
		char text[32];
		if (qtype == 1) {
			snprintf(text, sizeof text, "127.0.0.%d", (hosts ? 20 : 10) + i);
			inet_pton(AF_INET, text, a);
			n += put_rr(out + n, owner, 1, a, 4);
			answers++;
		} else if (qtype == 28 && !hosts) {
			snprintf(text, sizeof text, "fd00::%d", 10 + i);
			inet_pton(AF_INET6, text, a);
			n += put_rr(out + n, owner, 28, a, 16);
			answers++;
		}
	}
	put_u16(out + 6, answers);
	return n;
}

static UNUSED_FN void dns_attach(int fd)
{
	dns = mmap(NULL, sizeof *dns, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(dns != MAP_FAILED);
}

/* The server process, bound before this returns; killed when this process dies. */
static UNUSED_FN pid_t dns_start(void)
{
	int mfd = memfd_create("stale-dns-state", 0); /* not close-on-exec: the children map it */
	CHECK(mfd >= 0 && ftruncate(mfd, sizeof *dns) == 0);
	dns_attach(mfd);
	char text[16];
	snprintf(text, sizeof text, "%d", mfd);
	CHECK(setenv("STALE_TEST_DNS_FD", text, 1) == 0);
	struct sockaddr_storage ss;
	socklen_t sslen;
	make_addr(DNS_IP, 53, &ss, &sslen);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&ss, sslen) == 0);
	pid_t parent = getpid(), pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		for (;;) {
			uint8_t q[512], a[1024];
			struct sockaddr_storage from;
			socklen_t flen = sizeof from;
			ssize_t got = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
			size_t n = got > 0 ? dns_answer(q, (size_t)got, a) : 0;
			if (n > 0)
				sendto(fd, a, n, 0, (struct sockaddr *)&from, flen);
		}
	}
	close(fd);
	return pid;
}

/* ---- the namespaces and the files ---- */

static char resolv_path[] = "/tmp/dnsaware-test-resolv-XXXXXX";
static char nsswitch_path[] = "/tmp/dnsaware-test-nsswitch-XXXXXX";

static void bind_file(char *path_template, const char *text, const char *over)
{
	int fd = mkstemp(path_template);
	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) && close(fd) == 0);
	CHECK(chmod(path_template, 0644) == 0);
	CHECKF(mount(path_template, over, NULL, MS_BIND, NULL) == 0, "bind %s over %s", path_template, over);
}

static void remove_files(void)
{
	unlink(resolv_path);
	unlink(nsswitch_path);
	unlink(hosts_path);
}

/* Network and mount namespaces of the test's own, the files above bound over /etc's. */
static UNUSED_FN void private_resolver(void)
{
	/* An address and a route outside 127/8: glibc sorts RR_NAME's addresses like a remote
	 * service's (RFC 6724 rule 9 does not apply across subnets), keeping the DNS order. */
	own_network("ip addr add 198.51.100.1/24 dev lo && ip route add default dev lo src 198.51.100.1");
	private_hosts(HOSTS_NAME, "127.0.0.20"); /* the mount namespace too */
	chmod(hosts_path, 0644);
	bind_file(resolv_path, "nameserver " DNS_IP "\noptions timeout:1 attempts:2\n", "/etc/resolv.conf");
	if (access("/etc/nsswitch.conf", F_OK) == 0)
		bind_file(nsswitch_path, "passwd: files\ngroup: files\nhosts: files dns\nservices: files\n",
			  "/etc/nsswitch.conf");
	atexit(remove_files);
	CHECK(setenv("STALE_TEST_HOSTS", hosts_path, 1) == 0);
}

/* A child: the server's state and the hosts file its parent made. */
static UNUSED_FN void child_attach(void)
{
	const char *fd = getenv("STALE_TEST_DNS_FD"), *hosts = getenv("STALE_TEST_HOSTS");
	CHECKF(fd != NULL && hosts != NULL && strlen(hosts) < sizeof hosts_path, "run by the test itself only");
	dns_attach(atoi(fd));
	strcpy(hosts_path, hosts);
}

/* The directories fresh_dir made, emptied and removed at exit. */
static char made_dirs[16][64];
static int made_dir_count;

static void remove_dirs(void)
{
	for (int i = 0; i < made_dir_count; i++) {
		DIR *d = opendir(made_dirs[i]);
		struct dirent *e;
		while (d != NULL && (e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		if (d != NULL)
			closedir(d);
		rmdir(made_dirs[i]);
	}
}

/* A new directory for the store of answers (mode 0700, as mkdtemp makes it). */
static UNUSED_FN const char *fresh_dir(void)
{
	CHECK(made_dir_count < 16);
	char *out = made_dirs[made_dir_count];
	snprintf(out, 64, "/tmp/dnsaware-test-state-XXXXXX");
	CHECK(mkdtemp(out) != NULL);
	if (made_dir_count++ == 0)
		atexit(remove_dirs);
	return out;
}

/* The names in dir (one line each). */
static UNUSED_FN int dir_entries(const char *dir, char *names, size_t size)
{
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	int n = 0;
	size_t used = 0;
	names[0] = '\0';
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.') {
			n++;
			used += (size_t)snprintf(names + used, used < size ? size - used : 0, "%s\n", e->d_name);
		}
	closedir(d);
	return n;
}

/* ---- children ---- */

/* The threads of process pid (every one: the stale tests run without TSan's own). */
/* A thread's name (comm), "" when it is gone. */
static void thread_comm(pid_t pid, const char *tid, char *comm, size_t size)
{
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task/%s/comm", (int)pid, tid);
	comm[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	if (fgets(comm, (int)size, f) == NULL)
		comm[0] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	fclose(f);
}

/* Process pid's threads. Under ThreadSanitizer (common.h, SANITIZER_THREADS), whose background
 * thread carries the program's name like its main thread: the main thread and the threads named
 * otherwise (the shim's "dnsaware", the control's "stale-nap"). */
static UNUSED_FN unsigned threads_of(pid_t pid)
{
	char path[64], main_comm[32], tid_main[16];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	snprintf(tid_main, sizeof tid_main, "%d", (int)pid);
	thread_comm(pid, tid_main, main_comm, sizeof main_comm);
	DIR *d = opendir(path);
	if (d == NULL)
		return 0;
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char comm[32];
		thread_comm(pid, e->d_name, comm, sizeof comm);
		n += SANITIZER_THREADS == 0 || strcmp(e->d_name, tid_main) == 0 || strcmp(comm, main_comm) != 0;
	}
	closedir(d);
	return n;
}

struct child_run {
	const char *env[6]; /* "VAR=value" sets, "VAR" unsets; NULL ends */
	char out[4096];     /* what the child wrote to STALE_TEST_OUT */
	unsigned max_threads; /* the most threads it had at once, watched all along */
};

/* Runs this program as `PROGRAM child ARGS...` (args NULL-terminated); true if it exited 0. */
static UNUSED_FN bool run_child(struct child_run *run, const char *const *args)
{
	/* A store of its own unless the subtest gives one. */
	char state[96] = "";
	bool has_state = false;
	for (int i = 0; i < 6 && run->env[i] != NULL; i++)
		has_state |= strncmp(run->env[i], "DNSAWARE_STATE_DIR", 18) == 0;
	if (!has_state)
		snprintf(state, sizeof state, "%s", fresh_dir());
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (state[0] != '\0')
			setenv("DNSAWARE_STATE_DIR", state, 1);
		for (int i = 0; i < 6 && run->env[i] != NULL; i++) {
			const char *eq = strchr(run->env[i], '=');
			if (eq == NULL) {
				unsetenv(run->env[i]);
			} else {
				char var[64];
				snprintf(var, sizeof var, "%.*s", (int)(eq - run->env[i]), run->env[i]);
				setenv(var, eq + 1, 1);
			}
		}
		char fd[16];
		snprintf(fd, sizeof fd, "%d", p[1]);
		setenv("STALE_TEST_OUT", fd, 1);
		fcntl(p[1], F_SETFD, 0);
		const char *argv[16] = {"preload_stale", "child"};
		for (int i = 0; args[i] != NULL && i < 13; i++)
			argv[i + 2] = args[i];
		execv("/proc/self/exe", (char **)argv);
		_exit(127);
	}
	close(p[1]);
	run->max_threads = 0;
	uint64_t end = now_ms() + 40000;
	int st = 0;
	for (;;) {
		unsigned n = threads_of(pid);
		run->max_threads = n > run->max_threads ? n : run->max_threads;
		pid_t r = waitpid(pid, &st, WNOHANG);
		CHECK(r >= 0);
		if (r == pid)
			break;
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		sleep_ms(2);
	}
	ssize_t got = read(p[0], run->out, sizeof run->out - 1);
	run->out[got > 0 ? got : 0] = '\0';
	close(p[0]);
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		fprintf(stderr, "child %s %s (pid %d) failed: %s %d\n", args[0], args[1] != NULL ? args[1] : "", (int)pid,
			WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* In a child: text for the parent (run_child's out). */
static UNUSED_FN void child_report(const char *text)
{
	const char *fd = getenv("STALE_TEST_OUT");
	CHECK(fd != NULL && write(atoi(fd), text, strlen(text)) == (ssize_t)strlen(text));
}

/* ---- answers ---- */

/* CHECKF for messages holding whole answers: printed in full, then the failure. */
#define CHECKL(expr, ...) \
	do { \
		if (!(expr)) { \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
			fail_at(__FILE__, __LINE__, "%s", #expr); \
		} \
	} while (0)

/* A getaddrinfo list, every field of every entry. */
static UNUSED_FN void describe_ai(const struct addrinfo *list, char *out, size_t size)
{
	int n = snprintf(out, size, "canonname %s", list != NULL && list->ai_canonname ? list->ai_canonname : "-");
	for (const struct addrinfo *ai = list; ai != NULL && n < (int)size; ai = ai->ai_next) {
		char ip[INET6_ADDRSTRLEN] = "?";
		unsigned port = 0;
		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
			inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
			port = ntohs(sin->sin_port);
		} else if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ai->ai_addr;
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
			port = ntohs(sin6->sin6_port);
		}
		n += snprintf(out + n, size - (size_t)n, " | %s port %u family %d socktype %d protocol %d flags %#x addrlen %u%s",
			      ip, port, ai->ai_family, ai->ai_socktype, ai->ai_protocol, (unsigned)ai->ai_flags,
			      (unsigned)ai->ai_addrlen, ai != list && ai->ai_canonname != NULL ? " canonname!" : "");
	}
	CHECK(n < (int)size);
}

/* The hostent, and errno and the h_errno value (h_errno, or the _r forms' *h_errnop) the call left. */
static UNUSED_FN void describe_he(const struct hostent *he, int err, int h, char *out, size_t size)
{
	int n = snprintf(out, size, "errno %d h_errno %d", err, h);
	if (he == NULL) {
		snprintf(out + n, size - (size_t)n, " no hostent");
		return;
	}
	n += snprintf(out + n, size - (size_t)n, " name %s aliases", he->h_name);
	for (char **a = he->h_aliases; *a != NULL; a++)
		n += snprintf(out + n, size - (size_t)n, " %s", *a);
	n += snprintf(out + n, size - (size_t)n, " type %d length %d addresses", he->h_addrtype, he->h_length);
	for (char **p = he->h_addr_list; *p != NULL; p++) {
		char ip[INET6_ADDRSTRLEN] = "?";
		inet_ntop(he->h_addrtype, *p, ip, sizeof ip);
		n += snprintf(out + n, size - (size_t)n, " %s", ip);
	}
	CHECK(n < (int)size);
}

#endif
