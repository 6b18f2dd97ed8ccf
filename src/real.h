/* The libc functions the hooks stand in front of, found with dlsym(RTLD_NEXT). */
#ifndef DNSAWARE_REAL_H
#define DNSAWARE_REAL_H

#include <netdb.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct real_calls {
	_Atomic(int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **)) getaddrinfo;
	_Atomic(struct hostent *(*)(const char *)) gethostbyname;
	_Atomic(struct hostent *(*)(const char *, int)) gethostbyname2;
	_Atomic(int (*)(const char *, struct hostent *, char *, size_t, struct hostent **, int *)) gethostbyname_r;
	_Atomic(int (*)(const char *, int, struct hostent *, char *, size_t, struct hostent **, int *)) gethostbyname2_r;
	_Atomic(int (*)(int, const struct sockaddr *, socklen_t)) connect;
	_Atomic(int (*)(int)) close;
	_Atomic(int (*)(unsigned int, unsigned int, int)) close_range;
	_Atomic(int (*)(int)) dup;
	_Atomic(int (*)(int, int)) dup2;
	_Atomic(int (*)(int, int, int)) dup3;
	_Atomic(int (*)(int, int, ...)) fcntl;
	_Atomic(int (*)(int, int, ...)) fcntl64;
	_Atomic(ssize_t (*)(int, const void *, size_t, int)) send;
	_Atomic(ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *, socklen_t)) sendto;
	_Atomic(ssize_t (*)(int, const struct msghdr *, int)) sendmsg;
	_Atomic(ssize_t (*)(int, const void *, size_t)) write;
	_Atomic(ssize_t (*)(int, const struct iovec *, int)) writev;
	_Atomic(ssize_t (*)(int, int, off_t *, size_t)) sendfile;
	_Atomic(ssize_t (*)(int, int, off_t *, size_t)) sendfile64;
	_Atomic(int (*)(int, struct mmsghdr *, unsigned int, int)) sendmmsg;
	_Atomic(ssize_t (*)(int, void *, size_t, int)) recv;
	_Atomic(ssize_t (*)(int, void *, size_t, int, struct sockaddr *, socklen_t *)) recvfrom;
	_Atomic(ssize_t (*)(int, struct msghdr *, int)) recvmsg;
	_Atomic(int (*)(int, struct mmsghdr *, unsigned int, int, struct timespec *)) recvmmsg;
	_Atomic(ssize_t (*)(int, void *, size_t)) read;
	/* The fortified forms (_FORTIFY_SOURCE), which call libc's recv/read internally, past the hooks. */
	_Atomic(ssize_t (*)(int, void *, size_t, size_t, int)) __recv_chk;
	_Atomic(ssize_t (*)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *)) __recvfrom_chk;
	_Atomic(ssize_t (*)(int, void *, size_t, size_t)) __read_chk;
	_Atomic(void *(*)(const char *, int)) dlopen;
	/* Not hooked: the library makes its own fds through the same layer that closes them
	 * (REAL(close)), whatever else is preloaded before it (ThreadSanitizer, whose interceptors
	 * saw the library's sockets made but never closed, reported the program's next fd with the
	 * same number as a race). */
	_Atomic(int (*)(int, int, int)) socket;
	_Atomic(int (*)(const char *, int, ...)) open;
};

/* Atomic: a hook may run in any thread before the constructor has filled them (another library's
 * constructor writing, say), and the first calls then fill them concurrently (ThreadSanitizer
 * reported the plain pointers as raced). Relaxed loads: a plain mov, as before. */
extern struct real_calls real;

/* Fills what is still NULL in `real`; does nothing once it has completed (no dlsym after the
 * first call: the hooks' slow paths may run in a signal handler). Hooks call it through REAL(). */
void real_resolve(void);

/* The libc function, NULL before real_resolve. */
#define REAL_LOAD(name) atomic_load_explicit(&real.name, memory_order_relaxed)
/* The libc function, looked up first if needed. */
#define REAL(name) \
	(__extension__({ \
		__auto_type real_call_ = REAL_LOAD(name); \
		if (__builtin_expect(real_call_ == NULL, 0)) { \
			real_resolve(); \
			real_call_ = REAL_LOAD(name); \
		} \
		real_call_; \
	}))

#endif
