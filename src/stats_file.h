/* Writing DNSAWARE_STATS_FILE: by the background thread every DNSAWARE_STATS_INTERVAL, and at
 * exit, atomically (a temporary file renamed over the old one). */
#ifndef DNSAWARE_STATS_FILE_H
#define DNSAWARE_STATS_FILE_H

#include <stdbool.h>

bool stats_file_wanted(void);
/* Writes the file now; one warning line per failure streak. Serialised (thread vs exit). */
void stats_file_write(void);
/* Fork child settling (runtime.h): the write's lock may be the parent thread's. */
void stats_file_after_fork_child(void);
/* Registers the write at exit, once per process; called when the thread starts, so a process
 * that never makes a tracked connection writes no file. */
void stats_file_at_exit(bool (*still_running)(void), void (*settle)(void));
/* A connect to a name failed (counted in its metrics): the file is written at exit even if this
 * process never watches anything (no thread). */
void stats_file_at_exit_for_failures(void);

#endif
