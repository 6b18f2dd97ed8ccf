/* The stress test's servers, one listener per pool address and a thread per connection: they
 * answer as a real server would (after a while, with who they are), so that the client can tell a
 * wrong peer, and they report any end of a connection the client did not cause. */
#include "stress.h"

/* ---- servers ---- */

int listeners[ADDRS];
_Atomic int live_handlers;

static bool recv_full(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

static void *handler_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct sockaddr_in local;
	socklen_t len = sizeof local;
	CHECK(getsockname(fd, (struct sockaddr *)&local, &len) == 0);
	int a = addr_index(&local);
	CHECK(a >= 0);
	unsigned seed = (unsigned)fd * 2654435761u ^ (unsigned)now_ms();
	char buf[9];
	if (recv_full(fd, buf, 8) && buf[0] == 'H') {
		buf[8] = '\0';
		unsigned id = (unsigned)atoi(buf + 1);
		CHECK(id > 0 && id < MAX_RECS);
		CHECKF(recs[id].addr == a, "connection %u says hello to address %d, the client says %d", id, a,
		       recs[id].addr);
		/* The hello is answered too: a request left unanswered would never make the connection idle
		 * (nor would an answer within the request's jiffy: see common.h's exchange). */
		sleep_ms(12);
		if (send(fd, "K-hello-", 8, MSG_NOSIGNAL) != 8) {
			if (!atomic_load(&recs[id].closing)) {
				atomic_fetch_add(&by_server, 1);
				end_seen(id, "server (send failed)");
			}
			goto done;
		}
		for (;;) {
			if (!recv_full(fd, buf, 8)) {
				if (!atomic_load(&recs[id].closing)) {
					atomic_fetch_add(&by_server, 1);
					end_seen(id, "server (EOF)");
				}
				break;
			}
			CHECK(buf[0] == 'Q');
			sleep_ms(rand_r(&seed) % 16);
			char resp[16];
			snprintf(resp, sizeof resp, "A%02u%05u", (unsigned)a % 100u, (unsigned)atoi(buf + 3) % 100000u);
			if (send(fd, resp, 8, MSG_NOSIGNAL) != 8) {
				if (!atomic_load(&recs[id].closing)) {
					atomic_fetch_add(&by_server, 1);
					end_seen(id, "server (send failed)");
				}
				break;
			}
		}
	}
done:
	close(fd);
	atomic_fetch_sub(&live_handlers, 1);
	return NULL;
}

void *accept_main(void *unused)
{
	(void)unused;
	struct pollfd p[ADDRS];
	for (int i = 0; i < ADDRS; i++)
		p[i] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
	for (;;) {
		if (poll(p, ADDRS, 1000) <= 0)
			continue;
		for (int i = 0; i < ADDRS; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			int fd = accept4(listeners[i], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			atomic_fetch_add(&live_handlers, 1);
			pthread_attr_t attr;
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			pthread_attr_setstacksize(&attr, 64 << 10);
			pthread_t t;
			CHECK(pthread_create(&t, &attr, handler_main, (void *)(intptr_t)fd) == 0);
			pthread_attr_destroy(&attr);
		}
	}
	return NULL;
}
