/* A name moves under many tracked connections: every one of them is shut down at its idle boundary,
 * not before the move, and the shutdowns are spread over time rather than all at once.
 * The name comes from /etc/hosts, which this test replaces in a private mount namespace (root). */
#include "common.h"

enum { CONNECTIONS = 20 };

/* Right after the first shutdown, a new request on every connection still waiting for its turn
 * in the spread. Those connections are not yet due: the send path must let the requests through
 * (they are answered, and the connections shut down later, when idle again). The one whose turn
 * comes while the requests go out may be failed with EPIPE, as a due socket should be. */
static void new_requests_while_waiting(const int *client, const int *server, const uint64_t *shut_at)
{
	bool sent[CONNECTIONS] = {false};
	int waiting = 0, passed = 0;
	for (int i = 0; i < CONNECTIONS; i++) {
		if (shut_at[i] != 0)
			continue;
		waiting++;
		sent[i] = send(client[i], "again", 5, MSG_NOSIGNAL) == 5;
		passed += sent[i];
	}
	sleep_ms(12); /* as exchange() does: the answer must not share the request's jiffy */
	for (int i = 0; i < CONNECTIONS; i++) {
		if (!sent[i])
			continue;
		char buf[5];
		recv_exact(server[i], buf, sizeof buf);
		send_all(server[i], "answer", 6);
		char answer[6];
		recv_exact(client[i], answer, sizeof answer);
	}
	printf("new requests on connections waiting for their turn: %d of %d went through\n", passed, waiting);
	CHECKF(passed >= waiting - 2, "only %d of %d requests on connections not yet due went through", passed,
	       waiting);
}

int main(void)
{
	t_name = "spread";
	watchdog(40);
	setvbuf(stdout, NULL, _IONBF, 0);
	private_hosts("spread.test", "127.0.0.10");

	uint16_t port;
	int old_listener = make_listener("127.0.0.10", &port, CONNECTIONS);
	int client[CONNECTIONS], server[CONNECTIONS];
	for (int i = 0; i < CONNECTIONS; i++) {
		client[i] = connect_named("spread.test", port);
		server[i] = accept_one(old_listener);
		exchange(client[i], server[i], "request", "response");
	}
	sleep_ms(1500);
	for (int i = 0; i < CONNECTIONS; i++)
		CHECKF(sock_state(client[i]) == SOCK_ALIVE, "connection %d was shut down before the name moved (%s)", i,
		       sock_state_name(sock_state(client[i])));

	uint64_t moved_at = now_ms();
	write_hosts("spread.test", "127.0.0.11");
	printf("spread.test moved to 127.0.0.11\n");

	uint64_t shut_at[CONNECTIONS] = {0};
	int shut = 0;
	bool asked = false;
	while (shut < CONNECTIONS && now_ms() - moved_at < 10000) {
		for (int i = 0; i < CONNECTIONS; i++) {
			if (shut_at[i] == 0 && sock_state(client[i]) == SOCK_EOF) {
				shut_at[i] = now_ms();
				shut++;
			}
		}
		if (shut > 0 && !asked) {
			asked = true;
			new_requests_while_waiting(client, server, shut_at);
		}
		sleep_ms(5);
	}
	CHECKF(shut == CONNECTIONS, "only %d of %d connections were shut down within 10 s of the move", shut,
	       CONNECTIONS);
	uint64_t first = UINT64_MAX, last = 0;
	for (int i = 0; i < CONNECTIONS; i++) {
		first = shut_at[i] < first ? shut_at[i] : first;
		last = shut_at[i] > last ? shut_at[i] : last;
	}
	printf("shut down %llu..%llu ms after the move: spread over %llu ms\n",
	       (unsigned long long)(first - moved_at), (unsigned long long)(last - moved_at),
	       (unsigned long long)(last - first));
	/* 20 sockets, 20 ms apart, within one TTL (the 1 s floor here): about 380 ms. */
	CHECKF(last - first >= 200, "all %d shutdowns within %llu ms: not spread", CONNECTIONS,
	       (unsigned long long)(last - first));
	CHECKF(last - first <= 1200, "shutdowns spread over %llu ms, more than one TTL", (unsigned long long)(last - first));

	for (int i = 0; i < CONNECTIONS; i++) {
		close(client[i]);
		close(server[i]);
	}
	close(old_listener);
	drop_private_hosts();
	printf("PASS spread\n");
	return 0;
}
