/* Shared by the files of preload_tracking (tracking.c has main and the reason for it): the
 * listeners and settings main() sets up, defined in tracking.c, and the helpers the subtests share. */
#ifndef DNSAWARE_PRELOAD_TRACKING_H
#define DNSAWARE_PRELOAD_TRACKING_H

#define PRELOAD_SHARED_T_NAME
#include "common.h"

#define SHUT_TIMEOUT_MS 5000 /* a tracked idle socket must be shut down within this */
#define MARGIN_MS 700        /* after the control was shut down, wait this long before negatives */

/* t_closeall makes the listeners anew after closing every fd. */
extern uint16_t port;  /* 127.0.0.1: tracked through "localhost" */
extern uint16_t uport; /* 127.0.0.2: untracked */
extern int lfd, ulfd;
extern unsigned max_age_ms;

struct conn {
	int c; /* client end */
	int s; /* server end */
};

struct conn tracked(void);
struct conn untracked(void);
bool fd_open(int fd);
void expect_alive_fd(int c, int s, const char *what);
#define expect_alive(k, what) expect_alive_fd((k).c, (k).s, what)
uint64_t expect_shut_fd(int c, int s, const char *what);
#define expect_shut(k, what) expect_shut_fd((k).c, (k).s, what)
void close_conn(struct conn k);
void control_then_margin(void);

/* The subtests (tracking_shutdown.c, tracking_fds.c), one per run, chosen by argv[1]. */
void t_control(void);
void t_dup2_over(void);
void t_rawclose(void);
void t_dup_keeps(void);
void t_close_last(void);
void t_reconnect(void);
void t_closeall(const char *how);
void t_resolver(const char *which);
void t_untracked(void);
void t_sendpath(void);
void t_disabled(void);

#endif
