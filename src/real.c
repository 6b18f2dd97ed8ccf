#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "real.h"

struct real_calls real;

static _Atomic bool resolved;

/* Only what is still NULL: a hook's pointer never changes under it once set. */
#define RESOLVE(name) \
	do { \
		if (REAL_LOAD(name) == NULL) \
			atomic_store_explicit(&real.name, (__typeof__(REAL_LOAD(name)))dlsym(RTLD_NEXT, #name), \
					      memory_order_relaxed); \
	} while (0)

void real_resolve(void)
{
	if (atomic_load_explicit(&resolved, memory_order_acquire))
		return;
	int saved_errno = errno;
	RESOLVE(getaddrinfo);
	RESOLVE(gethostbyname);
	RESOLVE(gethostbyname2);
	RESOLVE(gethostbyname_r);
	RESOLVE(gethostbyname2_r);
	RESOLVE(connect);
	RESOLVE(close);
	RESOLVE(close_range);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(fcntl);
	RESOLVE(fcntl64);
	RESOLVE(send);
	RESOLVE(sendto);
	RESOLVE(sendmsg);
	RESOLVE(write);
	RESOLVE(writev);
	RESOLVE(sendfile);
	RESOLVE(sendfile64);
	RESOLVE(sendmmsg);
	RESOLVE(recv);
	RESOLVE(recvfrom);
	RESOLVE(recvmsg);
	RESOLVE(recvmmsg);
	RESOLVE(read);
	RESOLVE(__recv_chk);
	RESOLVE(__recvfrom_chk);
	RESOLVE(__read_chk);
	RESOLVE(dlopen);
	RESOLVE(socket);
	RESOLVE(open);
	if (REAL_LOAD(fcntl64) == NULL)
		atomic_store_explicit(&real.fcntl64, REAL_LOAD(fcntl), memory_order_relaxed);
	if (REAL_LOAD(sendfile64) == NULL)
		atomic_store_explicit(&real.sendfile64, REAL_LOAD(sendfile), memory_order_relaxed);
	atomic_store_explicit(&resolved, true, memory_order_release);
	errno = saved_errno;
}
