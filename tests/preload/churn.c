/* Many threads connect, exchange, dup, close and reuse fd numbers while the background thread
 * recycles their connections as fast as it can (tiny max age): nothing crashes, nothing hangs,
 * and every failure a thread sees is one a server closing an idle connection could cause. */
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"

enum { THREADS = 4, RUN_MS = 3000 };

static uint16_t port;
static _Atomic long exchanges, refused_sends, cut_requests;

static void *server_main(void *arg)
{
	int lfd = *(int *)arg;
	for (;;) {
		int s = accept(lfd, NULL, NULL);
		if (s < 0)
			continue;
		char buf[64];
		ssize_t n;
		while ((n = recv(s, buf, sizeof buf, 0)) > 0) {
			sleep_ms(2);
			if (send(s, buf, (size_t)n, MSG_NOSIGNAL) != n)
				break;
		}
		close(s);
	}
	return NULL;
}

static void *client_main(void *unused)
{
	(void)unused;
	uint64_t end = now_ms() + RUN_MS;
	while (now_ms() < end) {
		int c = connect_named("localhost", port);
		if (random() % 2) {
			int d = dup(c);
			CHECK(d >= 0);
			close(c);
			c = d;
		}
		for (int i = 0; i < 20 && now_ms() < end; i++) {
			char buf[8];
			if (send(c, "ping", 4, MSG_NOSIGNAL) != 4) {
				CHECKF(errno == EPIPE, "send failed with errno %d", errno);
				atomic_fetch_add(&refused_sends, 1);
				break;
			}
			ssize_t got = 0;
			while (got < 4) {
				ssize_t n = recv(c, buf + got, 4 - (size_t)got, 0);
				if (n <= 0)
					break;
				got += n;
			}
			if (got != 4) {
				/* The request went out and its answer never came: cut mid-exchange. */
				atomic_fetch_add(&cut_requests, 1);
				break;
			}
			atomic_fetch_add(&exchanges, 1);
			sleep_ms((unsigned)(random() % 15));
		}
		close(c);
	}
	return NULL;
}

int main(void)
{
	t_name = "churn";
	watchdog(30);
	setvbuf(stdout, NULL, _IONBF, 0);
	int lfd = make_listener("127.0.0.1", &port, 128);
	enum { SERVERS = THREADS * 2 };
	pthread_t servers[SERVERS], clients[THREADS];
	for (int i = 0; i < SERVERS; i++)
		CHECK(pthread_create(&servers[i], NULL, server_main, &lfd) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&clients[i], NULL, client_main, NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_join(clients[i], NULL) == 0);
	printf("%ld exchanges, %ld sends refused with EPIPE (new exchange on a draining connection), "
	       "%ld requests cut\n", atomic_load(&exchanges), atomic_load(&refused_sends), atomic_load(&cut_requests));
	CHECKF(atomic_load(&cut_requests) == 0, "%ld requests were cut while waiting for their answer",
	       atomic_load(&cut_requests));
	CHECKF(atomic_load(&exchanges) > 200, "only %ld exchanges in %d ms", atomic_load(&exchanges), RUN_MS);
	printf("PASS churn\n");
	return 0;
}
