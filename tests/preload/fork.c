/* fork: the child has no background thread until its own first tracked connect, then exactly
 * one; its connections work, and its thread does its job (shuts down the child's tracked idle
 * socket after max age). Also a grandchild, and a burst of forks while the parent's thread runs.
 *
 * Env: LD_PRELOAD, DNSAWARE_MAX_AGE=300ms, DNSAWARE_IDLE=50ms, DNSAWARE_LOG=debug,
 * DNSAWARE_LOG_FILE. Threads are counted in /proc/self/task; the test itself never starts one,
 * and every server end lives in the process that connects (accept on the inherited listener). */
#include "common.h"

#define SHUT_TIMEOUT_MS 5000

static uint16_t port, uport;
static int lfd, ulfd;

struct conn {
	int c, s;
};

static struct conn tracked(void)
{
	struct conn k;
	k.c = connect_named("localhost", port);
	k.s = accept_one(lfd);
	return k;
}


/* The life of a forked process (depth 1: child, 2: grandchild). */
static void child_life(int depth)
{
	alarm(15); /* alarms are not inherited */
	char name[32];
	snprintf(name, sizeof name, "%s", depth == 1 ? "child" : "grandchild");
	t_name = name;
	int n = thread_count();
	/* listeners of its own, so no other process accepts its connections */
	CHECK(close(lfd) == 0 && close(ulfd) == 0);
	lfd = make_listener("127.0.0.1", &port, 16);
	ulfd = make_listener("127.0.0.2", &uport, 16);
	CHECKF(n == 1, "%s has %d threads right after fork, expected 1", name, n);
	/* a while, past the parent's sockets' max age: still no thread of its own */
	n = thread_count_stays(1, 400);
	CHECKF(n == 1, "%s grew a thread without a tracked connect: %d threads", name, n);
	/* an untracked connect does not start one */
	int u = connect_literal("127.0.0.2", uport);
	int us = accept_one(ulfd);
	n = thread_count_stays(1, 100);
	CHECKF(n == 1, "%s: an untracked connect started a thread: %d threads", name, n);

	/* its own tracked connect: exactly one thread */
	struct conn k = tracked();
	n = wait_thread_count(2, 1000);
	CHECKF(n == 2, "%s after its own tracked connect: %d threads, expected 2", name, n);
	exchange(k.c, k.s, "child-request", "child-response");
	struct conn k2 = tracked();
	exchange(k2.c, k2.s, "again", "ok");
	n = thread_count_stays(2, 100);
	CHECKF(n == 2, "%s after a second tracked connect: %d threads, expected 2", name, n);

	if (depth == 1) {
		pid_t g = fork();
		CHECK(g >= 0);
		if (g == 0) {
			child_life(2);
			exit(0);
		}
		CHECKF(wait_pid(g, 12000, "grandchild"), "the grandchild failed");
	}

	/* the process's own thread works: its tracked idle socket is shut down */
	CHECKF(wait_eof(k.c, SHUT_TIMEOUT_MS), "%s: its tracked socket was not shut down within %d ms", name,
	       SHUT_TIMEOUT_MS);
	CHECKF(wait_eof(k.s, 1000), "%s: the peer did not see EOF", name);
	CHECKF(sock_state(u) == SOCK_ALIVE, "%s: its untracked socket was shut down", name);
	exchange(u, us, "still", "here");
	n = thread_count();
	CHECKF(n == 2, "%s at the end: %d threads, expected 2", name, n);
}

int main(void)
{
	t_name = "fork";
	watchdog(40);
	setvbuf(stdout, NULL, _IONBF, 0);
	CHECKF(thread_count() == 1, "threads at start: %d", thread_count());
	lfd = make_listener("127.0.0.1", &port, 128);
	ulfd = make_listener("127.0.0.2", &uport, 128);

	struct conn p = tracked();
	int n = wait_thread_count(2, 1000);
	CHECKF(n == 2, "parent after its first tracked connect: %d threads, expected 2", n);
	exchange(p.c, p.s, "parent-request", "parent-response");

	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		child_life(1);
		exit(0);
	}
	CHECKF(wait_pid(pid, 20000, "child"), "the child failed");
	printf("child and grandchild ok\n");

	/* a burst of forks while the parent's thread is busy with draining sockets: every child
	 * must be able to use the shim (no lock left held across fork) */
	enum { BURST = 16 };
	struct conn extra[BURST];
	for (int i = 0; i < BURST; i++)
		extra[i] = tracked();
	pid_t kids[BURST];
	for (int i = 0; i < BURST; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0) {
			alarm(10);
			t_name = "burst child";
			CHECK(thread_count() == 1);
			CHECK(close(lfd) == 0);
			lfd = make_listener("127.0.0.1", &port, 16);
			struct conn k = tracked();
			exchange(k.c, k.s, "burst", "ok");
			CHECK(send(extra[i].c, "x", 1, MSG_NOSIGNAL) == 1 || errno == EPIPE);
			CHECK(wait_thread_count(2, 1000) == 2);
			exit(0);
		}
		sleep_ms(15);
	}
	bool all = true;
	for (int i = 0; i < BURST; i++)
		all = wait_pid(kids[i], 10000, "burst child") && all;
	CHECKF(all, "a burst child failed");
	printf("fork burst ok\n");

	/* the parent still has exactly its one thread, and it still works */
	n = thread_count();
	CHECKF(n == 2, "parent at the end: %d threads, expected 2", n);
	CHECKF(wait_eof(p.c, SHUT_TIMEOUT_MS), "parent's tracked socket was not shut down");
	pid_t pids[2] = { getpid(), pid };
	int lines = check_log_format(pids, 2);
	CHECKF(lines > 0, "no log lines of the parent or the child");
	printf("fork: all checks passed\n");
	return 0;
}
