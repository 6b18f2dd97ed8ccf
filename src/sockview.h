/* Reading a socket's state from the kernel: the idle inputs and the identity check. Every call
 * here is a plain syscall, so the send hooks' slow path may use them (async-signal-safe). */
#ifndef DNSAWARE_SOCKVIEW_H
#define DNSAWARE_SOCKVIEW_H

#include <stdbool.h>

#include "idle.h"
#include "tracked.h"

bool sockview_read(int fd, struct socket_view *view);

enum identity { IDENTITY_SAME, IDENTITY_DIFFERENT, IDENTITY_UNSURE };
/* Is fd still the socket recorded at connect (same st_dev/st_ino, same peer)? */
enum identity sockview_identity(int fd, const struct tracked_socket *s);
/* Records st_dev/st_ino of fd into s; false if fd is not a socket. */
bool sockview_record_identity(int fd, struct tracked_socket *s);
/* A TCP stream socket (the only kind tracked)? */
bool sockview_is_tcp(int fd);

#endif
