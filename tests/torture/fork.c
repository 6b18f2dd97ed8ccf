/* fork, vfork, posix_spawn and exec from a program with tracked sockets and a running background
 * thread. Names come from a DNS helper process (torture.h): the program's getaddrinfo asks it on
 * 127.0.0.1:53 (the private /etc/resolv.conf), the shim's c-ares on 127.0.0.1:5353
 * (DNSAWARE_NAMESERVERS), where the test can make it answer late. A move of a name is the proof that
 * a process's shim works: its tracked connection to the old address is shut down ("no longer
 * resolves to it", in its own log lines).
 *
 * Usage: torture_fork SUBTEST, one of
 *   midquery  3 threads exchange on tracked connections while the shim's queries take 1.5 s each;
 *             6 forks (5 from the main thread, 1 from another) while a query is in flight. Each child
 *             starts with one thread and none of the shim's fds, gets its own thread at its first
 *             tracked connect (not before), resolves with it and sees its name move. The parent keeps
 *             its thread count, and its shim sees its own name move afterwards.
 *   vfork     30 vfork children, each closing every fd above 2 (a close loop, close_range, or dup2
 *             onto stdin first) through the hooks before exec: the hooks run in the parent's memory
 *             there, and must leave the parent's table alone. The parent's connections stay tracked,
 *             its shim keeps its fds (none added, none lost) and still works.
 *   spawn     posix_spawn, and fork + exec, of a child that inherits LD_PRELOAD and one of the
 *             parent's tracked connections (dup2'd onto fd 50): the shim is loaded there, none of the
 *             parent's shim fds came along, the inherited connection works, and the child's own
 *             tracked connection is shut down when its name moves. The parent's still are too.
 *   exec      the program execs itself while another thread exchanges on a tracked connection: the
 *             new image has the shim, one thread, none of the shim's old fds; a connection kept
 *             across exec works and is not tracked; the new image tracks its own.
 * Env: LD_PRELOAD, DNSAWARE_NAMESERVERS=127.0.0.1:5353, DNSAWARE_TTL_FLOOR=200ms,
 * DNSAWARE_STALE_AFTER=1, DNSAWARE_IDLE=50ms, DNSAWARE_LOG=info, DNSAWARE_LOG_FILE. Root. */
#include <spawn.h>

#include "torture.h"

extern char **environ;

enum { PORT = 8000, CHILDREN = 6, WORKERS = 3 };

static void setup(void)
{
	private_network();
	private_files(""); /* names come from the DNS helper */
	helper_init();
}

/* A tracked connection to name's first address, which must be ip; and one exchange on it. */
static int tracked_to(const char *name, const char *ip)
{
	int fd = connect_name(name, PORT);
	CHECKF(fd >= 0, "connect to %s", name);
	char peer[INET_ADDRSTRLEN];
	CHECKF(strcmp(peer_text(fd, peer), ip) == 0, "%s reached %s, expected %s", name, peer, ip);
	CHECKF(echo_exchange(fd, "hello"), "the first exchange with %s failed", name);
	return fd;
}

/* The name moves to to_ip: the tracked connection fd (to its old address) must be shut down by this
 * process's shim within 5 s, and say so in this process's log lines. */
static void expect_moved(struct helper_name *h, int fd, const char *to_ip)
{
	helper_move(h, to_ip);
	CHECKF(wait_eof(fd, 5000), "the connection to %s's old address was not shut down after it moved",
	       h->name);
	char needle[96];
	snprintf(needle, sizeof needle, "%s no longer resolves to it", h->name);
	CHECKF(wait_log_line(getpid(), needle, 2000), "no \"%s\" line from pid %d", needle, (int)getpid());
}

/* ---- midquery ---- */

static _Atomic bool workers_stop;
static _Atomic uint32_t worker_peer[WORKERS]; /* the address each worker is connected to */
static _Atomic long worker_exchanges;

static void *worker_main(void *arg)
{
	int w = (int)(intptr_t)arg;
	while (!atomic_load(&workers_stop)) {
		int fd = connect_name("p.test", PORT);
		CHECKF(fd >= 0, "worker %d: connect to p.test", w);
		struct sockaddr_in peer;
		socklen_t len = sizeof peer;
		CHECK(getpeername(fd, (struct sockaddr *)&peer, &len) == 0);
		atomic_store(&worker_peer[w], peer.sin_addr.s_addr);
		while (!atomic_load(&workers_stop)) {
			if (!echo_exchange(fd, "work")) {
				/* The shim ends a connection only between exchanges: a failed send (EPIPE). */
				CHECKF(errno == EPIPE, "worker %d: an exchange failed", w);
				break;
			}
			atomic_fetch_add(&worker_exchanges, 1);
			sleep_ms(20);
			if (sock_state(fd) == SOCK_EOF)
				break;
		}
		CHECK(close(fd) == 0);
	}
	return NULL;
}

static void child_life(int i)
{
	watchdog(20); /* alarm: a fork child has no watchdog thread */
	char name[32], ip1[32], ip2[32];
	snprintf(name, sizeof name, "c%d.test", i);
	snprintf(ip1, sizeof ip1, "127.0.%d.1", 10 + i);
	snprintf(ip2, sizeof ip2, "127.0.%d.2", 10 + i);
	static char who[32];
	snprintf(who, sizeof who, "child %d", i);
	t_name = who;
	int n = thread_count();
	CHECKF(n == 1, "%d threads right after fork", n);
	int wake_fds, udp = resolver_fds(&wake_fds);
	CHECKF(wake_fds == 0 && udp == 0, "the parent's resolver fds came along: %d wake-up fds, %d DNS sockets",
	       wake_fds, udp);
	n = thread_count_stays(1, 300);
	CHECKF(n == 1, "a thread started without a tracked connect: %d threads", n);
	struct helper_name *h = helper_find(name);
	int fd = tracked_to(name, ip1);
	n = wait_thread_count(2, 2000);
	CHECKF(n == 2, "%d threads after the first tracked connect, expected 2", n);
	CHECKF(wait_counter(&h->shim_answered, 1, 3000), "the child's shim never asked for %s", name);
	expect_moved(h, fd, ip2);
	CHECK(close(fd) == 0);
	fd = tracked_to(name, ip2);
	CHECK(close(fd) == 0);
	n = thread_count();
	CHECKF(n == 2, "%d threads at the end, expected 2", n);
}

static pid_t fork_child(int i)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		child_life(i);
		exit(0);
	}
	return pid;
}

static void *forking_thread(void *arg)
{
	return (void *)(intptr_t)fork_child((int)(intptr_t)arg);
}

static void t_midquery(void)
{
	setup();
	struct helper_name *p = helper_add_name("p.test", "127.0.2.1");
	helper_listen("127.0.2.1", PORT);
	helper_listen("127.0.2.2", PORT);
	for (int i = 0; i < CHILDREN; i++) {
		char name[32], ip[32];
		snprintf(name, sizeof name, "c%d.test", i);
		snprintf(ip, sizeof ip, "127.0.%d.1", 10 + i);
		helper_add_name(name, ip);
		helper_listen(ip, PORT);
		snprintf(ip, sizeof ip, "127.0.%d.2", 10 + i);
		helper_listen(ip, PORT);
	}
	helper_start();
	watchdog_thread(50, "fork while the resolver is mid-query");
	pthread_t workers[WORKERS];
	for (int w = 0; w < WORKERS; w++)
		CHECK(pthread_create(&workers[w], NULL, worker_main, (void *)(intptr_t)w) == 0);
	CHECKF(wait_counter(&p->shim_answered, 1, 3000), "the shim never asked for p.test");
	atomic_store(&p->shim_delay_ms, 1500);
	int threads = thread_count();
	pid_t kids[CHILDREN];
	for (int i = 0; i < CHILDREN; i++) {
		/* Right after a query went out (the first), else while one is in flight. */
		unsigned asked = atomic_load(&p->shim_queries);
		if (i == 0)
			CHECKF(wait_counter(&p->shim_queries, asked + 1, 5000), "no query for p.test");
		uint64_t end = now_ms() + 5000;
		while (atomic_load(&helper->shim_pending) == 0) {
			CHECKF(now_ms() < end, "no query in flight in 5 s");
			sleep_ms(1);
		}
		if (i < CHILDREN - 1) {
			kids[i] = fork_child(i);
		} else {
			pthread_t t;
			void *pid;
			CHECK(pthread_create(&t, NULL, forking_thread, (void *)(intptr_t)i) == 0);
			CHECK(pthread_join(t, &pid) == 0);
			kids[i] = (pid_t)(intptr_t)pid;
		}
		sleep_ms(80);
	}
	printf("%d children forked while the shim's query for p.test was in flight\n", CHILDREN);
	bool all = true;
	for (int i = 0; i < CHILDREN; i++)
		all = wait_pid(kids[i], 25000, "a child") && all;
	CHECKF(all, "a child failed");
	int n = thread_count();
	CHECKF(n == threads, "the parent has %d threads after the forks, %d before", n, threads);

	/* The parent's resolver survived the forks: it sees p.test move, and every worker follows. */
	atomic_store(&p->shim_delay_ms, 0);
	struct in_addr fresh;
	CHECK(inet_pton(AF_INET, "127.0.2.2", &fresh) == 1);
	helper_move(p, "127.0.2.2");
	uint64_t end = now_ms() + 10000;
	for (int w = 0; w < WORKERS; w++) {
		while (atomic_load(&worker_peer[w]) != fresh.s_addr) {
			CHECKF(now_ms() < end, "worker %d still on p.test's old address 10 s after the move", w);
			sleep_ms(10);
		}
	}
	CHECKF(wait_log_line(getpid(), "p.test no longer resolves to it", 2000), "no shutdown line for p.test");
	atomic_store(&workers_stop, true);
	for (int w = 0; w < WORKERS; w++)
		CHECK(pthread_join(workers[w], NULL) == 0);
	printf("%ld exchanges by the workers\n", atomic_load(&worker_exchanges));
}

/* ---- vfork ---- */

static void t_vfork(void)
{
	setup();
	struct helper_name *v = helper_add_name("v.test", "127.0.3.1");
	helper_listen("127.0.3.1", PORT);
	helper_listen("127.0.3.2", PORT);
	helper_listen("127.0.3.3", PORT);
	helper_start();
	watchdog_thread(30, "vfork children closing every fd");
	enum { K = 4, VFORKS = 30 };
	int conns[K];
	for (int k = 0; k < K; k++)
		conns[k] = tracked_to("v.test", "127.0.3.1");
	CHECKF(wait_counter(&v->shim_answered, 1, 3000), "the shim never asked for v.test");
	sleep_ms(100);
	struct fdset before, after;
	fd_snapshot(&before);
	for (int j = 0; j < VFORKS; j++) {
		int how = j % 3;
		pid_t pid = vfork();
		CHECK(pid >= 0);
		if (pid == 0) {
			/* What a child does between vfork and exec: only async-signal-safe calls. */
			if (how == 0) {
				for (int fd = 3; fd < 1024; fd++)
					close(fd);
			} else if (how == 1) {
				close_range(3, ~0U, 0);
			} else {
				dup2(conns[j % K], 0);
				close_range(3, ~0U, 0);
			}
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		int st;
		CHECK(waitpid(pid, &st, 0) == pid);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vfork child %d: status %d", j, st);
	}
	printf("%d vfork children closed every fd and exec'd\n", VFORKS);
	sleep_ms(600); /* the shim's thread wakes up (every 200 ms here) and renews what it thinks it lost */
	int extra = 0;
	for (int attempt = 0; attempt < 40; attempt++) {
		fd_snapshot(&after);
		extra = fdset_extra(&before, &after, NULL);
		if (extra == 0 && after.n == before.n)
			break;
		sleep_ms(50);
	}
	if (extra > 0 || after.n != before.n) {
		fdset_extra(&before, &after, "fds open now that were not before the vforks:");
		fdset_extra(&after, &before, "fds open before the vforks that are not now:");
		CHECKF(0, "the parent's fds changed across vfork children: %d before, %d now", before.n, after.n);
	}
	for (int k = 0; k < K; k++)
		CHECKF(echo_exchange(conns[k], "still"), "connection %d failed after the vforks", k);
	/* Still tracked by the parent's shim: shut down when v.test moves. */
	helper_move(v, "127.0.3.2");
	for (int k = 0; k < K; k++)
		CHECKF(wait_eof(conns[k], 5000), "connection %d (fd %d) was not shut down after the move: the vfork "
		       "children's closes untracked it", k, conns[k]);
	/* The line follows the shutdown: give the last one a moment. */
	int lines;
	for (int waited = 0; (lines = count_log_lines_of(getpid(), "v.test no longer resolves to it")) < K && waited < 2000;
	     waited += 20)
		sleep_ms(20);
	CHECKF(lines >= K, "%d shutdown lines for v.test, expected %d", lines, K);
	/* And the shim still takes new connections. (Not back to .1: an address back so soon would
	 * make the name look rotating, whose sockets absence does not drain.) */
	int fd = tracked_to("v.test", "127.0.3.2");
	helper_move(v, "127.0.3.3");
	CHECKF(wait_eof(fd, 5000), "a connection made after the vforks was not shut down after a move");
}

/* ---- spawn ---- */

/* The child of spawn: argv = [exe, "spawn-child", helper fd, name, inherited fd]. */
static void spawn_child(int argc, char **argv)
{
	CHECK(argc == 5);
	watchdog(15);
	t_name = "spawned child";
	helper_attach(atoi(argv[2]));
	const char *name = argv[3];
	int inherited = atoi(argv[4]);
	const char *preload = getenv("LD_PRELOAD");
	CHECKF(preload != NULL && strstr(preload, "libdnsaware") != NULL, "LD_PRELOAD did not come along: %s",
	       preload ? preload : "(unset)");
	CHECKF(shim_loaded(), "libdnsaware is not mapped");
	CHECKF(thread_count() == 1, "%d threads at start", thread_count());
	int wake_fds, udp = resolver_fds(&wake_fds);
	CHECKF(wake_fds == 0 && udp == 0, "the parent's resolver fds came along: %d wake-up fds, %d DNS sockets",
	       wake_fds, udp);
	char peer[INET_ADDRSTRLEN];
	CHECKF(strcmp(peer_text(inherited, peer), "127.0.4.1") == 0, "fd %d is connected to %s", inherited, peer);
	CHECKF(echo_exchange(inherited, "inherited"), "an exchange on the inherited connection failed");
	struct helper_name *h = helper_find(name);
	char ip1[32], ip2[32];
	snprintf(ip1, sizeof ip1, "%s.1", name[1] == '2' ? "127.0.5" : "127.0.7");
	snprintf(ip2, sizeof ip2, "%s.2", name[1] == '2' ? "127.0.5" : "127.0.7");
	int fd = tracked_to(name, ip1);
	CHECKF(wait_thread_count(2, 2000) == 2, "%d threads after a tracked connect", thread_count());
	CHECKF(wait_counter(&h->shim_answered, 1, 3000), "the child's shim never asked for %s", name);
	expect_moved(h, fd, ip2);
	CHECKF(sock_state(inherited) == SOCK_ALIVE, "the inherited connection was shut down");
	printf("spawned child %d (%s): all checks passed\n", (int)getpid(), name);
	exit(0);
}

static void t_spawn(void)
{
	setup();
	struct helper_name *s = helper_add_name("s.test", "127.0.4.1");
	helper_add_name("s2.test", "127.0.5.1");
	helper_add_name("s3.test", "127.0.7.1");
	const char *ips[] = { "127.0.4.1", "127.0.4.2", "127.0.5.1", "127.0.5.2", "127.0.7.1", "127.0.7.2" };
	for (int i = 0; i < 6; i++)
		helper_listen(ips[i], PORT);
	helper_start();
	watchdog_thread(30, "spawning children");
	int conns[2] = { tracked_to("s.test", "127.0.4.1"), tracked_to("s.test", "127.0.4.1") };
	CHECKF(wait_counter(&s->shim_answered, 1, 3000), "the shim never asked for s.test");
	char fdarg[16];
	snprintf(fdarg, sizeof fdarg, "%d", helper_fd);

	/* posix_spawn: the connection goes to fd 50 through the file actions (glibc's own calls). */
	posix_spawn_file_actions_t actions;
	CHECK(posix_spawn_file_actions_init(&actions) == 0);
	CHECK(posix_spawn_file_actions_adddup2(&actions, conns[0], 50) == 0);
	char *args[] = { "torture_fork", "spawn-child", fdarg, "s2.test", "50", NULL };
	pid_t pid;
	CHECK(posix_spawn(&pid, "/proc/self/exe", &actions, NULL, args, environ) == 0);
	CHECK(posix_spawn_file_actions_destroy(&actions) == 0);
	CHECKF(wait_pid(pid, 20000, "the posix_spawn child"), "the posix_spawn child failed");

	/* fork + exec */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(dup2(conns[1], 50) == 50);
		char *args2[] = { "torture_fork", "spawn-child", fdarg, "s3.test", "50", NULL };
		execv("/proc/self/exe", args2);
		_exit(127);
	}
	CHECKF(wait_pid(pid, 20000, "the fork + exec child"), "the fork + exec child failed");

	for (int k = 0; k < 2; k++)
		CHECKF(echo_exchange(conns[k], "parent"), "the parent's connection %d failed", k);
	helper_move(s, "127.0.4.2");
	for (int k = 0; k < 2; k++)
		CHECKF(wait_eof(conns[k], 5000), "the parent's connection %d was not shut down after the move", k);
}

/* ---- exec ---- */

static _Atomic bool exec_worker_stop;

static void *exec_worker(void *arg)
{
	int fd = (int)(intptr_t)arg;
	while (!atomic_load(&exec_worker_stop)) {
		if (!echo_exchange(fd, "busy"))
			break;
	}
	return NULL;
}

/* After the exec: argv = [exe, "exec-after", helper fd, kept fd, cloexec fd]. */
static void exec_after(int argc, char **argv)
{
	CHECK(argc == 5);
	watchdog(15);
	t_name = "exec (the new image)";
	helper_attach(atoi(argv[2]));
	int kept = atoi(argv[3]), gone = atoi(argv[4]);
	CHECKF(shim_loaded(), "libdnsaware is not mapped after exec");
	CHECKF(thread_count() == 1, "%d threads after exec", thread_count());
	int wake_fds, udp = resolver_fds(&wake_fds);
	CHECKF(wake_fds == 0 && udp == 0, "the old image's resolver fds survived exec: %d wake-up fds, %d DNS sockets",
	       wake_fds, udp);
	CHECKF(fcntl(gone, F_GETFD) < 0 && errno == EBADF, "fd %d (close-on-exec) is still open", gone);
	CHECKF(echo_exchange(kept, "kept"), "the connection kept across exec failed");
	struct helper_name *e = helper_find("e.test");
	unsigned answered = atomic_load(&e->shim_answered);
	int fd = tracked_to("e.test", "127.0.6.1");
	CHECKF(wait_thread_count(2, 2000) == 2, "%d threads after a tracked connect", thread_count());
	CHECKF(wait_counter(&e->shim_answered, answered + 1, 3000), "the new image's shim never asked for e.test");
	expect_moved(e, fd, "127.0.6.2");
	/* The connection from before exec is not the new image's to track. */
	sleep_ms(300);
	CHECKF(sock_state(kept) == SOCK_ALIVE, "the connection kept across exec was shut down");
	CHECKF(echo_exchange(kept, "kept"), "the connection kept across exec failed after the move");
	printf("PASS exec\n");
	exit(0);
}

static void t_exec(void)
{
	setup();
	struct helper_name *e = helper_add_name("e.test", "127.0.6.1");
	helper_listen("127.0.6.1", PORT);
	helper_listen("127.0.6.2", PORT);
	helper_start();
	watchdog_thread(30, "exec with a running thread");
	int kept = tracked_to("e.test", "127.0.6.1");
	CHECK(fcntl(kept, F_SETFD, 0) == 0);
	int busy = tracked_to("e.test", "127.0.6.1");
	CHECKF(wait_counter(&e->shim_answered, 1, 3000), "the shim never asked for e.test");
	pthread_t worker;
	CHECK(pthread_create(&worker, NULL, exec_worker, (void *)(intptr_t)busy) == 0);
	sleep_ms(100);
	char fdarg[16], keptarg[16], busyarg[16];
	snprintf(fdarg, sizeof fdarg, "%d", helper_fd);
	snprintf(keptarg, sizeof keptarg, "%d", kept);
	snprintf(busyarg, sizeof busyarg, "%d", busy);
	char *args[] = { "torture_fork", "exec-after", fdarg, keptarg, busyarg, NULL };
	execv("/proc/self/exe", args);
	CHECKF(0, "execv");
}

int main(int argc, char **argv)
{
	CHECK(argc >= 2);
	t_name = argv[1];
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(t_name, "spawn-child") == 0)
		spawn_child(argc, argv);
	else if (strcmp(t_name, "exec-after") == 0)
		exec_after(argc, argv);
	else if (strcmp(t_name, "midquery") == 0)
		t_midquery();
	else if (strcmp(t_name, "vfork") == 0)
		t_vfork();
	else if (strcmp(t_name, "spawn") == 0)
		t_spawn();
	else if (strcmp(t_name, "exec") == 0)
		t_exec();
	else
		fail_at(__FILE__, __LINE__, "unknown subtest %s", t_name);
	drop_private_files();
	printf("PASS %s\n", t_name);
	return 0;
}
