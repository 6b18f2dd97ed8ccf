/* A request waiting for its answer is never idle, however long it waits: a draining socket with
 * one outstanding is left alone until DNSAWARE_DRAIN_TIMEOUT, then shut down (the deadline path);
 * with DNSAWARE_DRAIN_TIMEOUT=0 it is never shut down. An answered one is shut down at once. */
#include "common.h"

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	t_name = argv[1];
	bool never = strcmp(argv[1], "deadline-never") == 0;
	watchdog(30);
	setvbuf(stdout, NULL, _IONBF, 0);
	uint16_t port;
	int lfd = make_listener("127.0.0.1", &port, 16);

	/* Positive control: an answered exchange on a connection past DNSAWARE_MAX_AGE=300ms. */
	int c0 = connect_named("localhost", port);
	int s0 = accept_one(lfd);
	exchange(c0, s0, "request", "response");
	CHECKF(wait_eof(c0, 2000), "an idle connection past max age was not shut down: %s",
	       sock_state_name(sock_state(c0)));

	/* A request the server never answers. */
	uint64_t start = now_ms();
	int c = connect_named("localhost", port);
	int s = accept_one(lfd);
	send_all(c, "slow request", 12);
	char buf[16];
	recv_exact(s, buf, 12);
	/* DNSAWARE_DRAIN_TIMEOUT=1500ms after draining began at ~300 ms: nothing before 1.7 s. */
	CHECKF(!wait_eof(c, 1500), "a request waiting for its answer was cut after %llu ms",
	       (unsigned long long)(now_ms() - start));
	if (never) {
		sleep_ms(2000);
		CHECKF(sock_state(c) == SOCK_ALIVE, "DNSAWARE_DRAIN_TIMEOUT=0 still shut it down (%s)",
		       sock_state_name(sock_state(c)));
		printf("PASS %s: alive after %llu ms\n", t_name, (unsigned long long)(now_ms() - start));
	} else {
		CHECKF(wait_eof(c, 2000), "not shut down at the drain deadline (%s after %llu ms)",
		       sock_state_name(sock_state(c)), (unsigned long long)(now_ms() - start));
		printf("PASS %s: shut down after %llu ms\n", t_name, (unsigned long long)(now_ms() - start));
	}
	close(c);
	close(s);
	close(c0);
	close(s0);
	close(lfd);
	return 0;
}
