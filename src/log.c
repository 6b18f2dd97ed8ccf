#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "file_helper.h"
#include "log.h"
#include "ratelimit.h"
#include "real.h"
#include "runtime.h"

#define LOG_LINE_MAX 512
/* At most this many lines a second, with bursts of LOG_BURST: a storm of events (thousands of
 * redirects, say) cannot flood a disk. The next line let through says how many were dropped. */
#define LOG_RATE_PER_S 100
#define LOG_BURST 500

static const char *const level_names[] = {"off", "error", "warn", "info", "debug"};

/* -1: not opened yet; the log file opens on the first line, or when the background thread starts
 * (log_open_for_thread), so a quiet process opens nothing. Opening and writing hold log_mutex
 * (signals blocked): no line goes to an fd being replaced. */
static int log_fd = -1;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct rate_limit log_rate; /* log_mutex */

static bool log_fd_usable(void)
{
	return log_fd >= 0 && (log_fd <= STDERR_FILENO || !shimfd_is_lost(log_fd));
}

/* Lock held, the fd not usable; on a program thread (never the background thread: it makes no fd
 * in the program's table, file_helper.h), unless the log is stderr. Afterwards the fd is usable: the
 * file just opened, or stderr. */
static void open_locked(void)
{
	if (runtime_config.log_file[0] == '\0') {
		log_fd = STDERR_FILENO;
		return;
	}
	int fd = REAL(open)(runtime_config.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		/* One complaint on stderr, then log there. The path is shown as config warnings show
		 * values: a path of 1000 bytes cut the line before its newline, and one holding a
		 * newline wrote a second line of its own making. */
		char line[LOG_LINE_MAX];
		char shown[CONFIG_SHOWN_MAX];
		int open_errno = errno;
		config_show_value(runtime_config.log_file, shown);
		int n = snprintf(line, sizeof line, "dnsaware[%d]: warn cannot open DNSAWARE_LOG_FILE=%s (%s); logging to stderr\n",
				 (int)getpid(), shown, strerror(open_errno));
		if (n > 0)
			REAL(write)(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
		runtime_config.log_file[0] = '\0';
		log_fd = STDERR_FILENO;
		return;
	}
	if (log_fd > STDERR_FILENO)
		shimfd_release(log_fd); /* lost: the program closed it, the number is not ours to close */
	log_fd = shimfd_adopt(fd, true);
}

/* Lock held. The background thread never opens the file (it would take a number in the program's
 * table, file_helper.h): when the file is not open there (the program closed it), the file helper
 * appends the thread's line. */
static void write_locked(const char *text, size_t length)
{
	if (log_fd_usable()) {
		REAL(write)(log_fd, text, length);
	} else if (!runtime_on_thread || runtime_config.log_file[0] == '\0') {
		open_locked();
		REAL(write)(log_fd, text, length);
	} else {
		file_helper_append(runtime_config.log_file, text, length);
	}
}

void log_open_for_thread(void)
{
	if (runtime_config.log_level == LOG_OFF)
		return;
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	pthread_mutex_lock(&log_mutex);
	if (!log_fd_usable())
		open_locked();
	pthread_mutex_unlock(&log_mutex);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

void log_after_fork_child(void)
{
	pthread_mutex_init(&log_mutex, NULL);
}

bool log_enabled(enum log_level level)
{
	return level != LOG_OFF && level <= runtime_config.log_level;
}

void log_line(enum log_level level, const char *message)
{
	if (!log_enabled(level))
		return;
	runtime_settle_fork(); /* the log's lock may be a parent thread's */
	int saved_errno = errno;
	char line[LOG_LINE_MAX];
	int n = snprintf(line, sizeof line, "dnsaware[%d]: %s %s\n", (int)getpid(), level_names[level], message);
	if (n < 0)
		goto done;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	pthread_mutex_lock(&log_mutex);
	uint64_t suppressed = 0;
	if (rate_limit_take(&log_rate, runtime_now_ms(), LOG_RATE_PER_S, LOG_BURST, &suppressed)) {
		if (suppressed > 0) {
			char note[160];
			int k = snprintf(note, sizeof note,
					 "dnsaware[%d]: warn %llu log lines dropped (more than %d a second)\n",
					 (int)getpid(), (unsigned long long)suppressed, LOG_RATE_PER_S);
			if (k > 0 && (size_t)k < sizeof note)
				write_locked(note, (size_t)k);
		}
		write_locked(line, (size_t)n);
	}
	pthread_mutex_unlock(&log_mutex);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
done:
	errno = saved_errno;
}

void log_msg(enum log_level level, const char *format, ...)
{
	if (!log_enabled(level))
		return;
	char message[LOG_LINE_MAX];
	va_list args;
	va_start(args, format);
	vsnprintf(message, sizeof message, format, args);
	va_end(args);
	log_line(level, message);
}
