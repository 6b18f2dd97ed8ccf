/* DNSAWARE_STATS_FILE: a process that never makes a tracked connection writes no file; one that
 * does writes it every interval and at exit, atomically, at a path whose %p is its pid, and
 * the counts match what happened (a move: one address removed, one DNS shutdown at an idle
 * boundary), and a child the mover forks after it counts its own, from 0. Runs the work in a
 * child so the parent can read the file after the child's exit.
 * The name comes from a private /etc/hosts (root). Env: DNSAWARE_STATS_FILE=DIR/s-%p.prom. */
#include <dirent.h>

#include "common.h"

static char stats_dir[256];

/* Does text hold the sample NAME{pid="PID"[,LABELS]} VALUE? */
static bool has(const char *text, pid_t pid, const char *name, const char *labels, const char *value)
{
	char needle[256];
	snprintf(needle, sizeof needle, "\n%s{pid=\"%d\"%s%s} %s\n", name, (int)pid, labels[0] ? "," : "", labels,
		 value);
	return strstr(text, needle) != NULL;
}

static int files_in_dir(const char *part)
{
	int count = 0;
	DIR *d = opendir(stats_dir);
	CHECK(d != NULL);
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (strstr(e->d_name, part) != NULL)
			count++;
	closedir(d);
	return count;
}

static void quiet_child(void)
{
	/* Resolves, connects to a literal nobody named, never to a resolved name: nothing watched. */
	struct addrinfo *res = NULL;
	CHECK(getaddrinfo("stats.test", "80", NULL, &res) == 0);
	freeaddrinfo(res);
	sleep_ms(400);
	CHECKF(thread_count() == 1, "a thread started in a process with no tracked connection");
	exit(0);
}

static void moving_child(void)
{
	uint16_t port;
	int listener = make_listener("127.0.0.10", &port, 1);
	int c = connect_named("stats.test", port);
	int s = accept_one(listener);
	exchange(c, s, "request", "response");
	char text[8192];
	/* The periodic write shows the tracked socket. */
	bool seen = false;
	for (int waited = 0; waited < 3000 && !seen; waited += 50) {
		sleep_ms(50);
		seen = read_stats_file(getpid(), text, sizeof text) && has(text, getpid(), "dnsaware_tracked_sockets", "", "1");
	}
	CHECKF(seen, "no stats file showing 1 tracked socket within 3 s");
	write_hosts("stats.test", "127.0.0.11");
	CHECKF(wait_eof(c, 8000), "the connection was not shut down after the move");
	close(c);
	close(s);
	close(listener);
	/* A child forked now counts its own: one tracked connect, nothing removed, nothing shut. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		t_name = "stats grandchild";
		int l11 = listen_on("127.0.0.11", port, 1);
		int gc = connect_named("stats.test", port);
		int gs = accept_one(l11);
		close(gc);
		close(gs);
		close(l11);
		exit(0);
	}
	CHECKF(wait_pid(pid, 10000, "the mover's child"), "the mover's child failed");
	CHECKF(read_stats_file(pid, text, sizeof text), "no stats file for the mover's child (pid %d)", (int)pid);
	bool own = has(text, pid, "dnsaware_addresses_removed_total", "", "0") &&
		   has(text, pid, "dnsaware_sockets_shutdown_total", "reason=\"dns\",path=\"idle\"", "0");
	if (!own)
		printf("%s", text);
	CHECKF(own, "the mover's fork child's file repeats its parent's counts (above)");
	exit(0); /* the at-exit write has the final counts */
}

static pid_t run_child(void (*body)(void))
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		body();
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status 0x%x)", status);
	return pid;
}

int main(void)
{
	t_name = "stats";
	watchdog(40);
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *pattern = getenv("DNSAWARE_STATS_FILE");
	CHECK(pattern != NULL && strstr(pattern, "/s-%p.prom") != NULL);
	snprintf(stats_dir, sizeof stats_dir, "%.*s", (int)(strstr(pattern, "/s-%p.prom") - pattern), pattern);
	private_hosts("stats.test", "127.0.0.10");

	char text[8192];
	pid_t quiet = run_child(quiet_child);
	CHECKF(!read_stats_file(quiet, text, sizeof text), "a process with no tracked connection wrote a stats file");

	pid_t mover = run_child(moving_child);
	CHECKF(read_stats_file(mover, text, sizeof text), "no stats file for pid %d after its exit", (int)mover);
	printf("%s", text);
	CHECKF(has(text, mover, "dnsaware_addresses_removed_total", "", "1"), "expected 1 address removed");
	CHECKF(has(text, mover, "dnsaware_sockets_shutdown_total", "reason=\"dns\",path=\"idle\"", "1"),
	       "expected one DNS shutdown at an idle boundary");
	CHECKF(has(text, mover, "dnsaware_resolutions_total", "result=\"error\"", "0"), "expected no DNS error");
	CHECKF(!has(text, mover, "dnsaware_resolutions_total", "result=\"ok\"", "0"), "expected re-resolutions");
	CHECKF(files_in_dir(".tmp") == 0, "a temporary stats file was left behind");
	CHECKF(!read_stats_file(getpid(), text, sizeof text), "the parent, which tracked nothing, wrote a file");
	drop_private_hosts();
	printf("PASS stats\n");
	return 0;
}
