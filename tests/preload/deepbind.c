/* Libraries loaded with RTLD_DEEPBIND (as PHP loads its extensions): their own calls to
 * getaddrinfo and connect resolve to libc first, past the preloaded shim; the shim points them at
 * its hooks, so a connection the library makes is tracked. A symbol the deep-bound scope defines
 * itself (send, in the library's dependency) stays the library's.
 *
 * Each subtest in a network and mount namespace of its own (root), with a private /etc/hosts. With
 * DNSAWARE_MAX_AGE set (meson), a tracked connection is shut down within about a second.
 *
 * Usage: preload_deepbind SUBTEST LIBRARY
 *   now, lazy: the library (bound at load with full RELRO, or lazily) dlopen'ed with RTLD_DEEPBIND:
 *     its connection is tracked, and its send is still its dependency's;
 *   plain: dlopen'ed without RTLD_DEEPBIND: tracked (as always);
 *   bypass: libc's connect as the deep scope gives it (dlsym on the handle) is not tracked, the
 *     control that the library's calls would otherwise go unseen.
 * Under AddressSanitizer or ThreadSanitizer, whose runtimes refuse RTLD_DEEPBIND, the three deep
 * subtests exit 77 (skipped). */
#include <dlfcn.h>

#include "common.h"

enum { PORT = 8080 };

int main(int argc, char **argv)
{
	CHECKF(argc == 3, "usage: %s SUBTEST LIBRARY", argv[0]);
	t_name = argv[1];
	watchdog(30);
	own_network(NULL);
	private_hosts("deep.test", "127.0.0.10");
	int lfd = listen_on("127.0.0.10", PORT, 8);

	bool plain = strcmp(argv[1], "plain") == 0, bypass = strcmp(argv[1], "bypass") == 0;
	const char *preload = getenv("LD_PRELOAD");
	if (!plain && preload != NULL && (strstr(preload, "libasan") != NULL || strstr(preload, "libtsan") != NULL)) {
		/* google/sanitizers#611: the sanitizer runtimes refuse RTLD_DEEPBIND outright. */
		printf("SKIP %s: the sanitizer runtimes refuse dlopen with RTLD_DEEPBIND\n", argv[1]);
		return 77;
	}
	void *lib = dlopen(argv[2], (strcmp(argv[1], "lazy") == 0 ? RTLD_LAZY : RTLD_NOW) | (plain ? 0 : RTLD_DEEPBIND));
	CHECKF(lib != NULL, "dlopen %s: %s", argv[2], dlerror());
	int (*deep_connect)(const char *, unsigned) = (int (*)(const char *, unsigned))dlsym(lib, "deepbind_connect");
	ssize_t (*deep_send)(int, const void *, size_t) = (ssize_t(*)(int, const void *, size_t))dlsym(lib, "deepbind_send");
	int (*dep_sends)(void) = (int (*)(void))dlsym(lib, "deepbind_dep_sends");
	CHECK(deep_connect != NULL && deep_send != NULL && dep_sends != NULL);
	/* Deep binding gives the library the first send of its own scope: its dependency's, unless a
	 * sanitizer runtime the build linked in comes first (it is listed before it). */
	void *dep = dlopen("libdeepbind_dep.so", RTLD_NOW | RTLD_NOLOAD);
	CHECK(dep != NULL);
	bool dep_send_first = dlsym(lib, "send") == dlsym(dep, "send");

	int c;
	if (bypass) {
		/* The program learns the name (its own getaddrinfo, through the shim), then connects
		 * with the connect the deep scope resolves to: libc's. */
		close(connect_name("deep.test", PORT));
		close(accept_one(lfd));
		int (*libc_connect)(int, const struct sockaddr *, socklen_t) =
			(int (*)(int, const struct sockaddr *, socklen_t))dlsym(lib, "connect");
		struct sockaddr_storage ss;
		socklen_t len;
		make_addr("127.0.0.10", PORT, &ss, &len);
		c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(c >= 0 && libc_connect(c, (struct sockaddr *)&ss, len) == 0);
	} else {
		c = deep_connect("deep.test", PORT);
		CHECKF(c >= 0, "the library could not connect");
	}
	int s = accept_one(lfd);
	if (!bypass) {
		/* Bound normally, the library's send is the global scope's (the shim's, preloaded before
		 * the dependency); bound deep, its dependency's. One exchange: the connection is idle. */
		int before = dep_sends();
		CHECK(deep_send(c, "x", 1) == 1);
		CHECKF(dep_sends() == before + (!plain && dep_send_first ? 1 : 0), "the library's send is %s",
		       plain ? "its dependency's, not the global scope's" : "no longer its deep scope's");
		char byte;
		CHECK(recv(s, &byte, 1, 0) == 1);
		sleep_ms(20); /* the answer a few jiffies after the request, as the idle rule reads TCP_INFO */
		CHECK(send(s, "y", 1, 0) == 1);
		CHECK(recv(c, &byte, 1, 0) == 1);
	}
	bool shut = wait_eof(c, bypass ? 1500 : 4000);
	CHECKF(shut == !bypass, "the connection was %s", shut ? "shut down" : "not shut down: the library's calls were not seen");
	close(s);
	close(c);
	drop_private_hosts();
	printf("%s: ok\n", argv[1]);
	return 0;
}
