/* The files c-ares reads (cares_files.c): close-on-exec, and read without an fd on the background
 * thread. */
#ifndef DNSAWARE_CARES_FILES_H
#define DNSAWARE_CARES_FILES_H

/* On a program thread, inside a hook (the connect that starts the thread, and later tracked
 * connects): opens /etc/hosts for the thread to read, when it has none that is still the file. */
void cares_files_pin(void);

/* Fork child settling: the pinned file was closed with the library's other fds. */
void cares_files_after_fork_child(void);

#endif
