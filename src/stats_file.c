/* The stats file: Prometheus text, replaced atomically, written only by a process that watches
 * something. */
#include "stats_file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "real.h"
#include "runtime.h"
#include "stats.h"

#define STATS_TEXT_MAX 4096

static pthread_mutex_t write_mutex = PTHREAD_MUTEX_INITIALIZER;
static bool failing; /* write_mutex: warn once per failure streak */
static bool (*thread_running)(void);
static _Atomic bool exit_registered;

bool stats_file_wanted(void)
{
	return runtime_config.stats_file[0] != '\0';
}

static bool write_all(int fd, const char *text, size_t length)
{
	while (length > 0) {
		ssize_t n = REAL(write)(fd, text, length);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		text += n;
		length -= (size_t)n;
	}
	return true;
}

/* Lock held. Returns 0, or the errno of what failed (*what names the step). */
static int write_locked(const char **what, char *path, size_t path_size)
{
	char text[STATS_TEXT_MAX], tmp[CONFIG_PATH_MAX + 32];
	*what = "expanding the path";
	if (!stats_expand_path(runtime_config.stats_file, (long)getpid(), path, path_size))
		return ENAMETOOLONG;
	int length = stats_format(&stats, (long)getpid(), text, sizeof text);
	if (length < 0)
		return EOVERFLOW;
	int tmp_length = snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
	if (tmp_length < 0 || (size_t)tmp_length >= sizeof tmp)
		return ENAMETOOLONG;
	*what = "creating";
	int fd = REAL(open)(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	*what = "writing";
	bool written = write_all(fd, text, (size_t)length);
	int e = errno;
	if (REAL(close)(fd) != 0 && written) {
		written = false;
		e = errno;
	}
	if (written) {
		*what = "renaming";
		if (rename(tmp, path) == 0)
			return 0;
		e = errno;
	}
	unlink(tmp);
	return e;
}

void stats_file_write(void)
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
	int e = write_locked(&what, path, sizeof path);
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

static void write_at_exit(void)
{
	/* A forked child inherits the handler but not the thread: it writes only once its own
	 * thread runs, i.e. once it watches something itself. */
	if (thread_running != NULL && thread_running())
		stats_file_write();
}

void stats_file_at_exit(bool (*still_running)(void))
{
	if (!stats_file_wanted() || atomic_exchange(&exit_registered, true))
		return;
	thread_running = still_running;
	atexit(write_at_exit);
}
