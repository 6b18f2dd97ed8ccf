/* A dependency of the deep-bound test library that defines send itself: deep binding gives the
 * library this definition, and the shim must leave it so (tests/preload/deepbind.c). */
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((visibility("default"))) int deepbind_dep_send_calls;

__attribute__((visibility("default"))) ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	deepbind_dep_send_calls++;
	return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}
