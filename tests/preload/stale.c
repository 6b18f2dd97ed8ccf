/* The resolver's bad days (issue 15, design.md): the program's lookups of a name it resolved before
 * get the name's last good answer when the resolver fails, after at most DNSAWARE_RESOLVE_TIMEOUT
 * (1800 ms, the default), and at once while it keeps failing; never in place of NXDOMAIN; shared
 * by the user's processes through DNSAWARE_STATE_DIR; and, with DNSAWARE_CACHE=1, from the kept
 * answer while the library's own query confirms it.
 *
 * Each subtest runs as root in network and mount namespaces of its own where glibc's resolver
 * asks the test's DNS server, switched at run time between answering, silence, SERVFAIL and
 * NXDOMAIN (stale_env.h). The lookups are made by children (this program exec'd again with the
 * settings a subtest wants), each beside a control that shows what the test would see if the
 * shim did not do its part.
 *
 * Usage: preload_stale SUBTEST (getaddrinfo-stale, servfail, nxdomain, hostent, no-thread, shared,
 * state-dir-unsafe, signal, signal-thread, cache); `preload_stale child OP ...` is a child. */
#include <dlfcn.h>
#include <pthread.h>
#include <sys/time.h>

#include "stale_env.h"

#define TIMER_MS 1800 /* DNSAWARE_RESOLVE_TIMEOUT's default */
#define SLOW_MIN (TIMER_MS - 100)
#define SLOW_MAX (TIMER_MS + 800)
#define FAST_MS 50
#define PORT "8080"

/* ---- what the program gets ---- */

struct gai_result {
	int rc, err; /* getaddrinfo's value, and errno after it (SENTINEL_ERRNO before) */
	unsigned ms;
	char text[2048]; /* the list, every field of every entry */
};

/* getaddrinfo(name, "8080", any family, AI_CANONNAME), timed; the list freed by freeaddrinfo. */
static struct gai_result timed_gai(const char *name)
{
	struct gai_result r;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_flags = AI_CANONNAME}, *res = NULL;
	uint64_t start = now_ms();
	errno = SENTINEL_ERRNO;
	r.rc = getaddrinfo(name, PORT, &hints, &res);
	r.err = errno;
	r.ms = (unsigned)(now_ms() - start);
	describe_ai(r.rc == 0 ? res : NULL, r.text, sizeof r.text);
	if (r.rc == 0)
		freeaddrinfo(res);
	return r;
}

/* A good answer, and a second lookup (the kept answer, confirmed by the library's query) the same. */
static struct gai_result healthy(const char *name)
{
	dns_set(DNS_ANSWER);
	struct gai_result good = timed_gai(name), again = timed_gai(name);
	CHECKL(good.rc == 0 && again.rc == 0, "healthy lookups of %s: %d, %d (%s)", name, good.rc, again.rc,
	       gai_strerror(good.rc != 0 ? good.rc : again.rc));
	CHECKL(strcmp(good.text, again.text) == 0, "the second healthy lookup gave\n  %s\nnot\n  %s", again.text, good.text);
	return good;
}

/* r is the kept answer good, served within [min_ms, max_ms], errno as it was. */
static void expect_served(const char *what, const struct gai_result *r, const char *good, unsigned min_ms,
			  unsigned max_ms)
{
	CHECKL(r->rc == 0, "%s: getaddrinfo returned %d (%s), not the kept answer", what, r->rc, gai_strerror(r->rc));
	CHECKL(strcmp(r->text, good) == 0, "%s: got\n  %s\nnot the good answer\n  %s", what, r->text, good);
	CHECKL(r->err == SENTINEL_ERRNO, "%s: errno changed to %d (%s)", what, r->err, strerror(r->err));
	CHECKL(r->ms >= min_ms && r->ms <= max_ms, "%s: took %u ms, not %u to %u", what, r->ms, min_ms, max_ms);
}

static int stale_lines(void)
{
	return count_log_lines_with((const char *const[]){" info ", "stale", NULL});
}

/* ---- children: getaddrinfo ---- */

/* Healthy, then the server in mode: the kept answer after the timer (at once for SERVFAIL) and
 * at once afterwards, the server not asked again; or (control) EAI_AGAIN. */
static void c_gai(enum dns_mode mode, bool stale)
{
	struct gai_result good = healthy(NAME);
	dns_set(mode);
	unsigned asked = atomic_load(&dns->queries);
	struct gai_result r = timed_gai(NAME);
	if (!stale) {
		CHECKL(r.rc == EAI_AGAIN, "control: the lookup returned %d (%s) after %u ms, not EAI_AGAIN", r.rc,
		       gai_strerror(r.rc), r.ms);
		printf("control: EAI_AGAIN after %u ms\n", r.ms);
		return;
	}
	expect_served("the first lookup the server fails", &r, good.text, mode == DNS_SILENT ? SLOW_MIN : 0,
		      mode == DNS_SILENT ? SLOW_MAX : 1000);
	printf("served stale after %u ms\n", r.ms);
	CHECKL(atomic_load(&dns->queries) > asked, "the server was not asked before the stale answer");
	asked = atomic_load(&dns->queries);
	for (int i = 0; i < 5; i++) {
		r = timed_gai(NAME);
		expect_served("a lookup while failing", &r, good.text, 0, FAST_MS);
	}
	CHECKL(atomic_load(&dns->queries) == asked, "%u queries while failing: the resolver is retried every 30 s",
	       atomic_load(&dns->queries) - asked);
	CHECKL(stale_lines() == 1, "%d info lines about stale answers, not 1", stale_lines());
}

/* NXDOMAIN after good answers is the program's answer, and forgets the kept one. */
static void c_nxdomain(void)
{
	healthy(NAME);
	dns_set(DNS_NXDOMAIN);
	struct gai_result r = timed_gai(NAME);
	CHECKL(r.rc == EAI_NONAME, "NXDOMAIN: getaddrinfo returned %d (%s), not EAI_NONAME", r.rc, gai_strerror(r.rc));
	dns_set(DNS_SILENT);
	r = timed_gai(NAME);
	CHECKL(r.rc == EAI_AGAIN, "silent after NXDOMAIN: getaddrinfo returned %d (%s), not EAI_AGAIN: %s", r.rc,
	       gai_strerror(r.rc), r.text);
	if (getenv("DNSAWARE_DISABLE") == NULL)
		CHECKL(stale_lines() == 0, "a stale answer was served");
}

/* ---- children: gethostbyname* ---- */

enum he_call { HE_PLAIN, HE_2, HE_R, HE_2_R };
static const char *const he_names[] = {"gethostbyname", "gethostbyname2(AF_INET6)", "gethostbyname_r",
				       "gethostbyname2_r(AF_INET6)"};
#define H_SENTINEL 4343 /* h_errno before each call */

/* glibc's own functions, past the shim (libc's symbols, as passthrough_resolvers.c takes them). */
static struct {
	struct hostent *(*plain)(const char *);
	struct hostent *(*two)(const char *, int);
	int (*r)(const char *, struct hostent *, char *, size_t, struct hostent **, int *);
	int (*two_r)(const char *, int, struct hostent *, char *, size_t, struct hostent **, int *);
} libc_he;

static void load_libc_he(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	CHECK(libc != NULL);
	CHECK((*(void **)&libc_he.plain = dlsym(libc, "gethostbyname")) != NULL);
	CHECK((*(void **)&libc_he.two = dlsym(libc, "gethostbyname2")) != NULL);
	CHECK((*(void **)&libc_he.r = dlsym(libc, "gethostbyname_r")) != NULL);
	CHECK((*(void **)&libc_he.two_r = dlsym(libc, "gethostbyname2_r")) != NULL);
	CHECK((void *)libc_he.plain != (void *)gethostbyname || getenv("DNSAWARE_DISABLE") != NULL);
}

/* One call of the family (glibc's own with real) into a buffer of size bytes that ends where a page
 * no one may touch begins (0: a large one), described (describe_he); its value in *rc, its time in
 * *ms. */
static void he_lookup(enum he_call call, bool real, size_t size, char *out, size_t out_size, int *rc, unsigned *ms)
{
	static char *area;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (area == NULL) {
		area = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(area != MAP_FAILED && mprotect(area + 3 * page, page, PROT_NONE) == 0);
	}
	char *buf = area + 3 * page - (size != 0 ? size : 3 * page);
	size = size != 0 ? size : 3 * page;
	struct hostent he, *res = (struct hostent *)area;
	int h = H_SENTINEL;
	*rc = 0;
	h_errno = H_SENTINEL;
	uint64_t start = now_ms();
	errno = SENTINEL_ERRNO;
	if (call == HE_PLAIN)
		res = (real ? libc_he.plain : gethostbyname)(NAME);
	else if (call == HE_2)
		res = (real ? libc_he.two : gethostbyname2)(NAME, AF_INET6);
	else if (call == HE_R)
		*rc = (real ? libc_he.r : gethostbyname_r)(NAME, &he, buf, size, &res, &h);
	else
		*rc = (real ? libc_he.two_r : gethostbyname2_r)(NAME, AF_INET6, &he, buf, size, &res, &h);
	int e = errno;
	*ms = (unsigned)(now_ms() - start);
	CHECKL(call < HE_R || res == (*rc == 0 ? &he : NULL), "%s: returned %d, result %p", he_names[call], *rc, (void *)res);
	describe_he(res, e, call < HE_R ? h_errno : h, out, out_size);
}

/* The call must give what glibc's gave (want: its description, errno and h_errno included). */
static void expect_he(enum he_call call, const char *want, const char *when, unsigned min_ms, unsigned max_ms)
{
	char got[1024];
	int rc;
	unsigned ms;
	he_lookup(call, false, 0, got, sizeof got, &rc, &ms);
	CHECKL(rc == 0 && strcmp(got, want) == 0, "%s, %s:\n  %s\nglibc's:\n  %s", he_names[call], when, got, want);
	CHECKL(ms >= min_ms && ms <= max_ms, "%s, %s: took %u ms, not %u to %u", he_names[call], when, ms, min_ms, max_ms);
}

/* gethostbyname_r or gethostbyname2_r into buffers of every size from 0 up: too small gives ERANGE
 * as glibc's (no result, h_errno NETDB_INTERNAL, errno ERANGE) and writes nothing past the buffer;
 * then want. real: glibc's own calls (the control). */
static void probe_buffers(enum he_call call, bool real, const char *want)
{
	char text[1024], too_small[64];
	snprintf(too_small, sizeof too_small, "errno %d h_errno %d no hostent", ERANGE, NETDB_INTERNAL);
	size_t size;
	int rc = ERANGE;
	unsigned ms;
	for (size = 1; size <= 4096; size++) {
		he_lookup(call, real, size, text, sizeof text, &rc, &ms);
		if (rc == 0)
			break;
		CHECKL(rc == ERANGE && strcmp(text, too_small) == 0, "%s, buffer of %zu bytes: returned %d, %s: not %s",
		       he_names[call], size, rc, text, too_small);
	}
	CHECKL(rc == 0 && strcmp(text, want) == 0, "%s, buffer of %zu bytes: %s, not %s", he_names[call], size, text, want);
	printf("%s%s: ERANGE up to %zu bytes\n", real ? "glibc's " : "", he_names[call], size - 1);
}

/* Each call as glibc's gives it, healthy (twice: the second is the kept answer), then with the
 * server in mode: after the timer when silent (each call keeps answers of its own), then at once. */
static void c_hostent(enum dns_mode mode)
{
	static const enum he_call order[] = {HE_PLAIN, HE_R, HE_2_R, HE_2};
	char want[4][1024];
	unsigned ms;
	int rc;
	load_libc_he();
	dns_set(DNS_ANSWER);
	for (int i = 0; i < 4; i++) {
		he_lookup(order[i], true, 0, want[i], sizeof want[i], &rc, &ms);
		CHECKL(rc == 0 && strstr(want[i], i < 2 ? " aliases " NAME " " : " fd00::10"), "%s", want[i]);
		printf("glibc's %s: %s\n", he_names[order[i]], want[i]);
		expect_he(order[i], want[i], "healthy", 0, 1000);
		expect_he(order[i], want[i], "healthy again", 0, 1000);
	}
	probe_buffers(HE_R, true, want[1]);
	probe_buffers(HE_2_R, true, want[2]);
	dns_set(mode);
	for (int i = 0; i < 4; i++) {
		bool silent = mode == DNS_SILENT;
		expect_he(order[i], want[i], dns_mode_names[mode], silent ? SLOW_MIN : 0, silent ? SLOW_MAX : 1000);
		expect_he(order[i], want[i], "failing", 0, FAST_MS);
	}
	probe_buffers(HE_R, false, want[1]);
	probe_buffers(HE_2_R, false, want[2]);
	CHECKL(stale_lines() == 4, "%d info lines about stale answers, not 4 (one per call and family)", stale_lines());
}

/* ---- children: threads, fds, processes ---- */

/* This process's fds and what each is. */
static void list_fds(char *out, size_t size)
{
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char target[256] = "";
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		CHECK(readlinkat(dirfd(d), e->d_name, target, sizeof target - 1) >= 0);
		n += (size_t)snprintf(out + n, n < size ? size - n : 0, "%s -> %s\n", e->d_name, target);
	}
	closedir(d);
	CHECK(n < size);
}

/* One thread all along (the parent watches too), and the same fds after the lookups, the stale
 * one's on the timer included (DNSAWARE_LOG_FILE unset: the log is stderr, no file opens). */
static void c_no_thread(void)
{
	char before[4096], after[4096];
	list_fds(before, sizeof before);
	CHECK(threads_of(getpid()) == 1);
	struct gai_result good = healthy(NAME);
	CHECKL(threads_of(getpid()) == 1, "%u threads after the good lookups", threads_of(getpid()));
	dns_set(DNS_SILENT);
	struct gai_result r = timed_gai(NAME);
	expect_served("the stale lookup", &r, good.text, SLOW_MIN, SLOW_MAX);
	r = timed_gai(NAME);
	expect_served("the next lookup", &r, good.text, 0, FAST_MS);
	CHECKL(threads_of(getpid()) == 1, "%u threads after the stale lookups", threads_of(getpid()));
	list_fds(after, sizeof after);
	CHECKL(strcmp(before, after) == 0, "fds before the lookups:\n%safter:\n%s", before, after);
}

static void *nap(void *unused)
{
	pthread_setname_np(pthread_self(), "stale-nap");
	sleep_ms(300);
	return unused;
}

/* The control: a thread of the program's is seen by the parent's watch. */
static void c_threads(void)
{
	pthread_t t;
	CHECK(pthread_create(&t, NULL, nap, NULL) == 0 && pthread_join(t, NULL) == 0);
}

/* One lookup in a new process: ok (any answer), slow (the kept one after the timer), fast (at
 * once) or again (EAI_AGAIN); the answer goes to the parent. */
static void c_once(const char *expect)
{
	struct gai_result r = timed_gai(NAME);
	child_report(r.text);
	printf("%s: %d (%s) after %u ms\n", expect, r.rc, gai_strerror(r.rc), r.ms);
	if (strcmp(expect, "again") == 0)
		CHECKL(r.rc == EAI_AGAIN, "got %d (%s), not EAI_AGAIN: %s", r.rc, gai_strerror(r.rc), r.text);
	else if (strcmp(expect, "ok") == 0)
		CHECKL(r.rc == 0, "got %d (%s)", r.rc, gai_strerror(r.rc));
	else
		expect_served(expect, &r, r.text, strcmp(expect, "slow") == 0 ? SLOW_MIN : 0,
			      strcmp(expect, "slow") == 0 ? SLOW_MAX : FAST_MS);
}

/* DNSAWARE_STATE_DIR is dir, which the shim must refuse: one warning, nothing made in it, stale
 * answers all the same (from the process's own store). */
static void c_unsafe(const char *dir)
{
	c_gai(DNS_SILENT, true);
	int warned = count_log_lines_with((const char *const[]){" warn ", dir, "keeps its own", NULL});
	CHECKL(warned == 1, "%d warnings naming %s that the process keeps its own answers, not 1", warned, dir);
	char names[512];
	CHECKL(dir_entries(dir, names, sizeof names) == 0, "the shim made files in %s:\n%s", dir, names);
}

/* ---- children: signals ---- */

static volatile sig_atomic_t ticks;

static void on_tick(int sig)
{
	(void)sig;
	int saved = errno;
	close(-1); /* sets errno, as a handler's calls do */
	ticks++;
	errno = saved;
}

/* A stale-served lookup on the timer through a SIGALRM every millisecond (no SA_RESTART): the
 * kept answer after the timer, neither early nor late, errno as it was. thread: the shim's thread
 * runs (a tracked connection), and the lookup waits for its query; else on a channel of its own. */
static void c_signal(bool thread)
{
	struct gai_result good = healthy(NAME);
	int lfd = -1, c = -1, s = -1;
	if (thread) {
		lfd = listen_on("127.0.0.10", 8080, 8);
		c = connect_literal("127.0.0.10", 8080);
		s = accept_one(lfd);
		CHECKL(wait_thread_count(2, 3000) == 2, "the shim's thread did not start at the tracked connect");
		struct gai_result again = timed_gai(NAME);
		expect_served("a healthy lookup beside the thread", &again, good.text, 0, 1000);
	}
	dns_set(DNS_SILENT);
	struct sigaction sa = {.sa_handler = on_tick};
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	struct itimerval every_ms = {.it_interval = {0, 1000}, .it_value = {0, 1000}}, off = {0};
	CHECK(setitimer(ITIMER_REAL, &every_ms, NULL) == 0);
	struct gai_result r = timed_gai(NAME);
	CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
	watchdog(30);
	printf("%d signals during the lookup\n", (int)ticks);
	expect_served("the stale lookup through signals", &r, good.text, SLOW_MIN, SLOW_MAX);
	CHECKL(ticks > 300, "only %d signals during the lookup", (int)ticks);
	if (thread) {
		close(c);
		close(s);
		close(lfd);
	}
}

/* ---- children: the cache ---- */

/* The stats file's value of the series ending in tail ("result=\"hit\"}"), once at least min, waiting
 * up to 3 s for it. */
static unsigned long long stats_value(const char *tail, unsigned long long min)
{
	char text[16384];
	unsigned long long v = 0;
	uint64_t end = now_ms() + 3000;
	do {
		const char *at = read_stats_file(getpid(), text, sizeof text) ? strstr(text, tail) : NULL;
		v = at != NULL ? strtoull(at + strlen(tail), NULL, 10) : 0;
		if (at != NULL && v >= min)
			break;
		sleep_ms(50);
	} while (now_ms() < end);
	return v;
}

#define HITS "dnsaware_cache_lookups_total{pid=\"%d\",result=\"hit\"}"

/* N lookups once the library's query has confirmed the kept answer: the server hardly asked
 * (cache), or asked at least once per lookup (control, DNSAWARE_CACHE=0). A name in /etc/hosts is
 * never a hit: a change of the file is seen by the next lookup. */
static void c_cache(bool cache)
{
	enum { N = 200 };
	int lfd = listen_on("127.0.0.10", 8080, 8);
	struct gai_result good = healthy(NAME);
	int c = connect_literal("127.0.0.10", 8080), s = accept_one(lfd);
	CHECKL(wait_thread_count(2, 3000) == 2, "the shim's thread did not start at the tracked connect");
	sleep_ms(500); /* the thread's query of the name confirms the kept answer */
	unsigned asked = atomic_load(&dns->queries);
	for (int i = 0; i < N; i++) {
		struct gai_result r = timed_gai(NAME);
		CHECKL(r.rc == 0 && strcmp(r.text, good.text) == 0, "lookup %d: %d %s", i, r.rc, r.text);
	}
	asked = atomic_load(&dns->queries) - asked;
	printf("%u queries for %d lookups\n", asked, N);
	if (!cache) {
		CHECKL(asked >= N, "control: only %u queries for %d lookups", asked, N);
		return;
	}
	CHECKL(asked <= 8, "%u queries at the server for %d lookups of a cached name", asked, N);
	char tail[96];
	snprintf(tail, sizeof tail, HITS " ", (int)getpid());
	unsigned long long hits = stats_value(tail, N);
	CHECKL(hits >= N, "the stats file counts %llu cache hits, not %d", hits, N);
	for (int i = 0; i < 5; i++) {
		char ip[32], first[64];
		snprintf(ip, sizeof ip, "127.0.0.%d", 21 + i % 2);
		write_hosts(HOSTS_NAME, ip);
		for (int k = 0; k < 2; k++) {
			struct gai_result r = timed_gai(HOSTS_NAME);
			const char *entry = strstr(r.text, " | ");
			snprintf(first, sizeof first, " | %s port", ip);
			CHECKL(r.rc == 0 && entry != NULL && strncmp(entry, first, strlen(first)) == 0,
			       "%s after /etc/hosts said %s: %d %s", HOSTS_NAME, ip, r.rc, r.text);
			sleep_ms(300); /* the library's query of the name answered */
		}
	}
	sleep_ms(400); /* a few rewrites of the stats file */
	unsigned long long after = stats_value(tail, 0);
	CHECKL(after == hits, "%llu cache hits during the lookups of a name in /etc/hosts", after - hits);
	close(c);
	close(s);
	close(lfd);
}

/* ---- the child's side ---- */

/* A round-robin name looked up N times: how often each address came first. The DNS server gives the
 * two in turn, and glibc keeps that order: the library must not freeze it (its kept answer stands
 * for the real call only while the DNS keeps the order the real call saw). */
static void c_round_robin(void)
{
	unsigned first10 = 0, first11 = 0;
	for (int i = 0; i < 40; i++) {
		struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
		int rc = getaddrinfo(RR_NAME, "80", &hints, &res);
		CHECKL(rc == 0, "lookup %d of %s: %s", i, RR_NAME, gai_strerror(rc));
		const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
		unsigned last = ntohl(sin->sin_addr.s_addr) & 0xff;
		first10 += last == 10;
		first11 += last == 11;
		freeaddrinfo(res);
	}
	CHECKL(first10 >= 10 && first11 >= 10,
	       "the first address of 40 lookups: 192.0.2.10 %u times, 192.0.2.11 %u times (the DNS gave each first "
	       "in turn)", first10, first11);
	printf("round-robin: 192.0.2.10 first %u times, 192.0.2.11 %u times\n", first10, first11);
}

static void child(int argc, char **argv)
{
	const char *op = argv[0], *arg = argc > 1 ? argv[1] : "";
	if (strcmp(op, "gai") == 0 && argc == 3)
		c_gai(dns_mode_named(arg), strcmp(argv[2], "stale") == 0);
	else if (strcmp(op, "nxdomain") == 0)
		c_nxdomain();
	else if (strcmp(op, "hostent") == 0)
		c_hostent(dns_mode_named(arg));
	else if (strcmp(op, "no-thread") == 0)
		c_no_thread();
	else if (strcmp(op, "threads") == 0)
		c_threads();
	else if (strcmp(op, "once") == 0)
		c_once(arg);
	else if (strcmp(op, "unsafe") == 0)
		c_unsafe(arg);
	else if (strcmp(op, "signal") == 0)
		c_signal(strcmp(arg, "thread") == 0);
	else if (strcmp(op, "cache") == 0)
		c_cache(strcmp(arg, "hits") == 0);
	else if (strcmp(op, "round-robin") == 0)
		c_round_robin();
	else
		fail_at(__FILE__, __LINE__, "no child op %s", op);
}

/* ---- the subtests ---- */

#define CHILD(run, ...) run_child((run), (const char *const[]){__VA_ARGS__, NULL})

static void expect_child(struct child_run *run, const char *const *args)
{
	dns_set(DNS_ANSWER);
	CHECKL(run_child(run, args), "the child %s %s failed", args[0], args[1] != NULL ? args[1] : "");
}
#define EXPECT_CHILD(run, ...) expect_child((run), (const char *const[]){__VA_ARGS__, NULL})

static void t_shared(void)
{
	char dir[64], good[4096], names[512];
	snprintf(dir, sizeof dir, "DNSAWARE_STATE_DIR=%s", fresh_dir());
	struct child_run run = {.env = {dir}};
	EXPECT_CHILD(&run, "once", "ok");
	snprintf(good, sizeof good, "%s", run.out);
	dns_set(DNS_SILENT);
	CHECKL(CHILD(&run, "once", "slow"), "a new process did not get the kept answer of the one before it");
	CHECKL(strcmp(run.out, good) == 0, "the second process got\n  %s\nnot\n  %s", run.out, good);
	CHECKL(CHILD(&run, "once", "fast"), "a third process did not get the kept answer at once");
	CHECKL(strcmp(run.out, good) == 0, "the third process got\n  %s\nnot\n  %s", run.out, good);
	int files = dir_entries(dir + strlen("DNSAWARE_STATE_DIR="), names, sizeof names);
	CHECKL(files == 1 && strncmp(names, "answers-", 8) == 0, "the state directory holds:\n%s", names);
	/* off: a store for the process and its fork children only */
	struct child_run off = {.env = {"DNSAWARE_STATE_DIR=off"}};
	EXPECT_CHILD(&off, "once", "ok");
	dns_set(DNS_SILENT);
	CHECKL(CHILD(&off, "once", "again"), "with DNSAWARE_STATE_DIR=off, a new process got an earlier one's answer");
}

static void t_unsafe(void)
{
	char dir[64], env[96];
	snprintf(dir, sizeof dir, "%s", fresh_dir());
	CHECK(chmod(dir, 0777) == 0);
	snprintf(env, sizeof env, "DNSAWARE_STATE_DIR=%s", dir);
	struct child_run open_to_all = {.env = {env}};
	EXPECT_CHILD(&open_to_all, "unsafe", dir);
	snprintf(dir, sizeof dir, "%s", fresh_dir());
	CHECK(chown(dir, 65534, 65534) == 0);
	snprintf(env, sizeof env, "DNSAWARE_STATE_DIR=%s", dir);
	struct child_run others = {.env = {env}};
	EXPECT_CHILD(&others, "unsafe", dir);
}

int main(int argc, char **argv)
{
	CHECKL(argc >= 2, "usage: %s SUBTEST", argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "child") == 0) {
		CHECKL(argc >= 3, "usage: %s child OP [ARG...]", argv[0]);
		t_name = argv[2];
		watchdog(30);
		child_attach();
		child(argc - 2, argv + 2);
		return 0;
	}
	const char *t = t_name = argv[1];
	watchdog(90);
	private_resolver();
	pid_t server = dns_start();
	struct child_run plain = {.env = {NULL}};
	if (strcmp(t, "getaddrinfo-stale") == 0 || strcmp(t, "servfail") == 0) {
		const char *mode = strcmp(t, "servfail") == 0 ? "servfail" : "silent";
		EXPECT_CHILD(&plain, "gai", mode, "stale");
		struct child_run control = {.env = {"DNSAWARE_STALE_MAX=0"}};
		EXPECT_CHILD(&control, "gai", mode, "again");
	} else if (strcmp(t, "nxdomain") == 0) {
		EXPECT_CHILD(&plain, "nxdomain");
		struct child_run control = {.env = {"DNSAWARE_DISABLE=1"}};
		EXPECT_CHILD(&control, "nxdomain");
	} else if (strcmp(t, "hostent") == 0) {
		EXPECT_CHILD(&plain, "hostent", "silent");
		EXPECT_CHILD(&plain, "hostent", "servfail");
	} else if (strcmp(t, "no-thread") == 0) {
		EXPECT_CHILD(&plain, "no-thread");
		CHECKL(plain.max_threads == 1, "the looking-up process had %u threads at one time", plain.max_threads);
		EXPECT_CHILD(&plain, "threads");
		/* (ThreadSanitizer's own thread is not counted: threads_of.) */
		CHECKL(plain.max_threads >= 2, "control: the watch saw %u threads, not 2", plain.max_threads);
	} else if (strcmp(t, "shared") == 0) {
		t_shared();
	} else if (strcmp(t, "state-dir-unsafe") == 0) {
		t_unsafe();
	} else if (strcmp(t, "signal") == 0 || strcmp(t, "signal-thread") == 0) {
		EXPECT_CHILD(&plain, "signal", strcmp(t, "signal") == 0 ? "main" : "thread");
	} else if (strcmp(t, "round-robin") == 0) {
		EXPECT_CHILD(&plain, "round-robin");
		struct child_run control = {.env = {"DNSAWARE_DISABLE=1"}};
		EXPECT_CHILD(&control, "round-robin");
	} else if (strcmp(t, "cache") == 0) {
		EXPECT_CHILD(&plain, "cache", "hits");
		struct child_run control = {.env = {"DNSAWARE_CACHE=0"}};
		EXPECT_CHILD(&control, "cache", "control");
	} else {
		fail_at(__FILE__, __LINE__, "no subtest %s", t);
	}
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	printf("%s: ok\n", t);
	return 0;
}
