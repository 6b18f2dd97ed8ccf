#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#include "real.h"

struct real_calls real;

#define RESOLVE(name) real.name = (__typeof__(real.name))dlsym(RTLD_NEXT, #name)

void real_resolve(void)
{
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
	if (real.fcntl64 == NULL)
		real.fcntl64 = real.fcntl;
	if (real.sendfile64 == NULL)
		real.sendfile64 = real.sendfile;
	errno = saved_errno;
}
