/* Shared by the files of preload_passthrough (passthrough.c has main and the reason for it): the
 * state main() sets up, defined in passthrough.c, and the helpers the sections share. */
#ifndef DNSAWARE_PRELOAD_PASSTHROUGH_H
#define DNSAWARE_PRELOAD_PASSTHROUGH_H

#define PRELOAD_SHARED_T_NAME
#include "common.h"

#include <limits.h>
#include <sys/uio.h>

/* Hidden from the compiler, so that deliberately bad arguments compile under -Werror. */
extern void *volatile vnull;
extern volatile int vneg;
extern struct iovec many_iov[IOV_MAX + 1]; /* valid entries, one more than allowed */
extern volatile sig_atomic_t sigpipe_count;
extern uint16_t port; /* listener on 127.0.0.1, reached through "localhost" */
extern int lfd;

struct conn {
	int c; /* client end (tracked with the shim) */
	int s; /* server end */
};

int closed_fd(void);
struct conn new_conn(void);
void close_conn(struct conn k);
void refill(int fd);
struct conn full_conn(void);
char *tmp_path(const char *name);
int make_file(const char *name, const char *content);
void expect_bytes(int fd, const char *want);

/* The sections, in the order main() runs them. */
void test_resolvers(void);
void test_connect(void);
void test_send_family(void);
void test_write_family(void);
void test_dup_family(void);
void test_fcntl(void);
void test_eintr(void);

#endif
