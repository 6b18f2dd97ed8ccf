/* The stats file: Prometheus text, replaced atomically, written only by a process that watches
 * something. */
#include "stats_file.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "config.h"
#include "file_helper.h"
#include "log.h"
#include "names.h"
#include "runtime.h"
#include "stats.h"
#include "stats_names.h"

/* The counters take 4 KB; each name of the per-name families STATS_NAME_TEXT_MAX more. */
#define STATS_TEXT_BASE 8192

static pthread_mutex_t write_mutex = PTHREAD_MUTEX_INITIALIZER;
static bool failing; /* write_mutex: warn once per failure streak */
static bool (*thread_running)(void);
static _Atomic bool exit_registered;

bool stats_file_wanted(void)
{
	return runtime_config.stats_file[0] != '\0';
}

/* A name no one can have planted in advance: 32 random bits per try. */
static uint32_t random_suffix(void)
{
	uint32_t r;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
		return r;
	return runtime_random();
}

/* Lock held. Returns 0, or the errno of what failed (*what names the step). direct: a program
 * thread inside the library (the write at exit) does the file work itself; the background thread
 * has the file helper do it (file_helper.h). */
static int write_locked(bool direct, const char **what, char *path, size_t path_size)
{
	/* Made once, for DNSAWARE_METRICS_NAMES names and _other (under write_mutex; the write at
	 * exit runs on a program thread's stack). Without memory: the counters alone. */
	static char *text;
	static size_t text_size;
	static struct stats_names *names;
	static char base_text[STATS_TEXT_BASE];
	if (text == NULL) {
		unsigned capacity = runtime_config.metrics_names;
		names = calloc(1, sizeof *names + capacity * sizeof names->name[0]);
		text_size = STATS_TEXT_BASE + (size_t)(capacity + 1) * STATS_NAME_TEXT_MAX;
		text = names == NULL ? NULL : malloc(text_size);
		if (text == NULL) {
			free(names);
			names = NULL;
			text = base_text;
			text_size = sizeof base_text;
		} else {
			names->capacity = capacity;
		}
	}
	struct file_replace job;
	*what = "expanding the path";
	if (!stats_expand_path(runtime_config.stats_file, (long)getpid(), path, path_size))
		return ENAMETOOLONG;
	if (names != NULL) {
		sigset_t saved;
		names_lock(&saved);
		names_choose_metrics(runtime_config.metrics_names);
		stats_names_collect(names);
		names_unlock(&saved);
	}
	int length = stats_format(&stats, names, (long)getpid(), text, text_size);
	if (length < 0)
		return EOVERFLOW;
	int n = snprintf(job.tmp_prefix, sizeof job.tmp_prefix, "%s.tmp%d.", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof job.tmp_prefix)
		return ENAMETOOLONG;
	for (unsigned i = 0; i < FILE_HELPER_TMP_TRIES; i++)
		job.suffix[i] = random_suffix();
	job.path = path;
	job.text = text;
	job.length = (size_t)length;
	job.mode = 0644;
	job.error = 0;
	job.step = "";
	file_helper_replace(&job, direct);
	*what = job.step;
	return job.error;
}

static void write_file(bool direct)
{
	if (!stats_file_wanted())
		return;
	int saved_errno = errno;
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	pthread_mutex_lock(&write_mutex);
	char path[CONFIG_PATH_MAX + 32];
	const char *what = "";
	int e = write_locked(direct, &what, path, sizeof path);
	bool warn = e != 0 && !failing;
	failing = e != 0;
	pthread_mutex_unlock(&write_mutex);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (warn) {
		/* Shown as config warnings show values: one short line whatever the path holds. */
		char shown_setting[CONFIG_SHOWN_MAX], shown_path[CONFIG_SHOWN_MAX];
		config_show_value(runtime_config.stats_file, shown_setting);
		config_show_value(path, shown_path);
		log_msg(LOG_WARN, "cannot write DNSAWARE_STATS_FILE=%s (%s %s: %s); trying again at the next interval",
			shown_setting, what, shown_path, strerror(e));
	}
	errno = saved_errno;
}

void stats_file_after_fork_child(void)
{
	/* The parent's thread may have been writing the file when the program forked. */
	pthread_mutex_init(&write_mutex, NULL);
	failing = false;
}

void stats_file_write(void)
{
	write_file(false);
}

/* The process that counted a failed connect (a process whose connects all fail starts no thread,
 * and its failures are what an operator wants to see). */
static _Atomic pid_t failed_connects_pid;
/* Lets the thread take the sockets closed just before exit (resolver_thread.c). */
static void (*settle_thread)(void);

static void write_at_exit(void)
{
	/* A forked child inherits the handler but not the thread: it writes only once its own
	 * thread runs, i.e. once it watches something itself, or once it counted a failed connect. */
	bool watching = thread_running != NULL && thread_running();
	bool failures_here = atomic_load(&failed_connects_pid) == getpid();
	if (runtime_fork_pending() || !(watching || failures_here))
		return;
	if (watching && settle_thread != NULL)
		settle_thread();
	write_file(true);
}

static void register_at_exit(void)
{
	if (!atomic_exchange(&exit_registered, true))
		atexit(write_at_exit);
}

void stats_file_at_exit(bool (*still_running)(void), void (*settle)(void))
{
	if (!stats_file_wanted())
		return;
	thread_running = still_running;
	settle_thread = settle;
	register_at_exit();
}

void stats_file_at_exit_for_failures(void)
{
	if (!stats_file_wanted() || atomic_load_explicit(&failed_connects_pid, memory_order_relaxed) == getpid())
		return;
	atomic_store(&failed_connects_pid, getpid());
	register_at_exit();
}
