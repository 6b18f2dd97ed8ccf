/* Log lines: "dnsaware[PID]: LEVEL message". Never called on the fast path. */
#ifndef DNSAWARE_LOG_H
#define DNSAWARE_LOG_H

#include "config.h"

/* Fork child: a lock held by another thread of the parent at fork is free again. */
void log_after_fork_child(void);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Opens DNSAWARE_LOG_FILE, if set and not open yet, for the background thread about to start:
 * called from the hook that starts it (the thread itself makes no fd in the program's table). */
void log_open_for_thread(void);
/* A line for a message already formatted (the config warnings). */
void log_line(enum log_level level, const char *message);

#endif
