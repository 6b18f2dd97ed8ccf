/* Log lines: "dnsaware[PID]: LEVEL message". Never called on the fast path. */
#ifndef DNSAWARE_LOG_H
#define DNSAWARE_LOG_H

#include "config.h"

/* Fork child: a lock held by another thread of the parent at fork is free again. */
void log_after_fork_child(void);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* A line for a message already formatted (the config warnings). */
void log_line(enum log_level level, const char *message);

#endif
