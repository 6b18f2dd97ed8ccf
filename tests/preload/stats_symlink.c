/* Issue #13, the stats file's temporary file: the shim writes DNSAWARE_STATS_FILE to a temporary
 * file it creates itself (O_CREAT|O_EXCL|O_NOFOLLOW, a random name `PATH.tmpPID.XXXXXXXX`), then
 * renames it over PATH. Whatever is planted in the directory is never followed nor written, and
 * nothing is left behind, also when the rename fails.
 *
 * The work is done by a child (a tracked connection to "localhost", exchanges, a few stats
 * intervals, then exit: the at-exit write) that waits on a pipe until the parent, which knows its
 * pid, has prepared the directory of DNSAWARE_STATS_FILE=DIR/s-%p.prom:
 *
 *   symlink  symlinks to a victim file (known content) at the old temporary name, DIR/s-PID.prom
 *            .tmpPID, and at a few DIR/s-PID.prom.tmpPID.XXXXXXXX names. After the child's exit:
 *            the victim is untouched, every symlink is still there and still points at it,
 *            DIR/s-PID.prom is a regular file holding the child's dnsaware_tracked_sockets sample,
 *            and the directory holds nothing else (no temporary file).
 *   dir      DIR/s-PID.prom is a directory (every rename fails): the child is unharmed (its
 *            exchanges work, it exits 0), the directory is still empty, nothing else is left in
 *            DIR, and the child's log has exactly one "warn cannot write DNSAWARE_STATS_FILE" line.
 *
 * Env: DNSAWARE_STATS_FILE=DIR/s-%p.prom (DIR made anew), a short DNSAWARE_STATS_INTERVAL,
 * DNSAWARE_LOG_FILE. No root needed. */
#include <sys/stat.h>

#include "../torture/torture.h"

static char dir[256];
static const char victim_text[] = "precious: not the shim's to write\n";
static const char *const planted_hex[] = { "00000000", "0badf00d", "12345678", "ffffffff" };
enum { PLANTED = sizeof planted_hex / sizeof planted_hex[0] };

static void path_of(char *out, size_t size, pid_t pid, const char *suffix)
{
	int n = snprintf(out, size, "%s/s-%d.prom%s", dir, (int)pid, suffix);
	CHECK(n > 0 && (size_t)n < size);
}

/* DIR/s-PID.prom.tmpPID, and with i >= 0 the i-th planted .XXXXXXXX name after it. */
static void tmp_name(char *out, size_t size, pid_t pid, int i)
{
	char suffix[64];
	snprintf(suffix, sizeof suffix, ".tmp%d%s%s", (int)pid, i >= 0 ? "." : "", i >= 0 ? planted_hex[i] : "");
	path_of(out, size, pid, suffix);
}

static void child(int go, bool symlinks)
{
	char c;
	CHECK(read(go, &c, 1) == 1);
	uint16_t port;
	int listener = make_listener("127.0.0.1", &port, 1);
	int fd = connect_named("localhost", port);
	int server = accept_one(listener);
	exchange(fd, server, "request", "response");
	char text[8192], sample[96];
	snprintf(sample, sizeof sample, "dnsaware_tracked_sockets{pid=\"%d\"} 1\n", (int)getpid());
	if (symlinks) {
		bool seen = false;
		for (int waited = 0; waited < 3000 && !seen; waited += 20) {
			sleep_ms(20);
			seen = read_stats_file(getpid(), text, sizeof text) && strstr(text, sample) != NULL;
		}
		CHECKF(seen, "no stats file showing 1 tracked socket within 3 s");
	}
	sleep_ms(600); /* several intervals: several writes */
	exchange(fd, server, "again", "answer");
	CHECK(close(fd) == 0 && close(server) == 0 && close(listener) == 0);
	exit(0); /* and the at-exit write */
}

static bool is_symlink_to(const char *path, const char *target)
{
	struct stat st;
	char link[512];
	ssize_t n;
	if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode) || (n = readlink(path, link, sizeof link - 1)) < 0)
		return false;
	link[n] = '\0';
	return strcmp(link, target) == 0;
}

/* Every entry of DIR is one of the names expected (NULL-terminated); prints the others. */
static int unexpected_entries(const char *const *expected)
{
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	int extra = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		bool known = false;
		for (int i = 0; expected[i] != NULL && !known; i++)
			known = strcmp(strrchr(expected[i], '/') + 1, e->d_name) == 0;
		if (!known) {
			fprintf(stderr, "left in %s: %s\n", dir, e->d_name);
			extra++;
		}
	}
	closedir(d);
	return extra;
}

int main(int argc, char **argv)
{
	CHECKF(argc == 2 && (strcmp(argv[1], "symlink") == 0 || strcmp(argv[1], "dir") == 0),
	       "usage: stats_symlink symlink|dir");
	bool symlinks = strcmp(argv[1], "symlink") == 0;
	t_name = symlinks ? "stats-symlink" : "stats-rename-fails";
	watchdog(30);
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *pattern = getenv("DNSAWARE_STATS_FILE");
	CHECKF(pattern != NULL && strstr(pattern, "/s-%p.prom") != NULL && strlen(pattern) < 200,
	       "DNSAWARE_STATS_FILE must be DIR/s-%%p.prom");
	snprintf(dir, sizeof dir, "%.*s", (int)(strstr(pattern, "/s-%p.prom") - pattern), pattern);

	int go[2];
	CHECK(pipe2(go, O_CLOEXEC) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		watchdog(20);
		close(go[1]);
		child(go[0], symlinks);
	}
	close(go[0]);
	char stats[512], victim[512], planted[PLANTED + 1][512];
	path_of(stats, sizeof stats, pid, "");
	snprintf(victim, sizeof victim, "%s/victim", dir);
	if (symlinks) {
		int fd = open(victim, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		CHECK(fd >= 0);
		CHECK(write(fd, victim_text, sizeof victim_text - 1) == (ssize_t)(sizeof victim_text - 1));
		CHECK(close(fd) == 0);
		for (int i = -1; i < PLANTED; i++) {
			tmp_name(planted[i + 1], sizeof planted[0], pid, i);
			CHECK(symlink(victim, planted[i + 1]) == 0);
		}
	} else {
		CHECK(mkdir(stats, 0755) == 0);
	}
	CHECK(write(go[1], "g", 1) == 1);
	CHECKF(wait_pid(pid, 20000, "the child"), "the child (pid %d) failed", (int)pid);

	if (symlinks) {
		char text[8192];
		int fd = open(victim, O_RDONLY | O_CLOEXEC);
		CHECK(fd >= 0);
		ssize_t n = read(fd, text, sizeof text - 1);
		CHECK(n >= 0 && close(fd) == 0);
		text[n] = '\0';
		CHECKF(strcmp(text, victim_text) == 0,
		       "the victim, reached through a symlink planted at a temporary name, was written: it holds %zd "
		       "bytes: \"%.120s\"",
		       n, text);
		for (int i = 0; i <= PLANTED; i++)
			CHECKF(is_symlink_to(planted[i], victim), "the symlink %.300s was removed or replaced", planted[i]);
		struct stat st;
		CHECKF(lstat(stats, &st) == 0 && S_ISREG(st.st_mode), "%s is not a regular file", stats);
		char sample[96];
		snprintf(sample, sizeof sample, "dnsaware_tracked_sockets{pid=\"%d\"} ", (int)pid);
		CHECKF(read_stats_file(pid, text, sizeof text) && strstr(text, sample) != NULL, "%s has no %s sample",
		       stats, sample);
		const char *expected[PLANTED + 4] = { stats, victim };
		for (int i = 0; i <= PLANTED; i++)
			expected[2 + i] = planted[i];
		CHECKF(unexpected_entries(expected) == 0, "files were left behind in %s", dir);
		printf("the victim and the %d symlinks are untouched, %s is the child's metrics, nothing else in %s\n",
		       PLANTED + 1, stats, dir);
	} else {
		DIR *d = opendir(stats);
		CHECKF(d != NULL, "%s is no longer a directory", stats);
		int entries = 0;
		for (struct dirent *e; (e = readdir(d)) != NULL;)
			entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
		closedir(d);
		CHECKF(entries == 0, "something was written into the directory %s", stats);
		const char *expected[] = { stats, NULL };
		CHECKF(unexpected_entries(expected) == 0, "files were left behind in %s", dir);
		int warnings = count_log_lines_of(pid, "warn cannot write DNSAWARE_STATS_FILE");
		print_log_tail(pid, "DNSAWARE_STATS_FILE", 4);
		CHECKF(warnings == 1, "%d \"warn cannot write DNSAWARE_STATS_FILE\" lines from pid %d, expected 1",
		       warnings, (int)pid);
		printf("the child was unharmed, left nothing in %s, and said once that it cannot write its stats file\n",
		       dir);
	}
	printf("PASS %s\n", t_name);
	return 0;
}
