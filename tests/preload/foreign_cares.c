/* A program that carries and exports its own c-ares (node does, for its addons) must not capture
 * the shim's c-ares calls: every ares_* function this executable exports aborts, and a name that
 * moves must still be re-resolved and its connection shut down. Built with -rdynamic, so these
 * definitions are in the global symbol scope ahead of any library. The name comes from a private
 * /etc/hosts (root). */
#include "common.h"

#define FOREIGN(name) \
	void name(void); \
	void name(void) \
	{ \
		static const char text[] = "the shim called the program's own " #name "\n"; \
		(void)!write(2, text, sizeof text - 1); \
		abort(); \
	}

FOREIGN(ares_library_init)
FOREIGN(ares_init)
FOREIGN(ares_init_options)
FOREIGN(ares_set_socket_functions)
FOREIGN(ares_set_servers_ports_csv)
FOREIGN(ares_getaddrinfo)
FOREIGN(ares_freeaddrinfo)
FOREIGN(ares_getsock)
FOREIGN(ares_process_fd)
FOREIGN(ares_timeout)
FOREIGN(ares_destroy)
FOREIGN(ares_strerror)
FOREIGN(ares_reinit)

int main(void)
{
	t_name = "foreign-cares";
	watchdog(30);
	setvbuf(stdout, NULL, _IONBF, 0);
	private_hosts("foreign.test", "127.0.0.10");

	uint16_t port;
	int listener = make_listener("127.0.0.10", &port, 1);
	int client = connect_named("foreign.test", port);
	int server = accept_one(listener);
	exchange(client, server, "request", "response");
	sleep_ms(1500); /* a refresh or two of the unchanged name, through the shim's own c-ares */
	CHECKF(sock_state(client) == SOCK_ALIVE, "the connection was shut down before the name moved (%s)",
	       sock_state_name(sock_state(client)));

	write_hosts("foreign.test", "127.0.0.11");
	CHECKF(wait_eof(client, 8000), "the connection was not shut down within 8 s of the move (%s)",
	       sock_state_name(sock_state(client)));
	close(client);
	close(server);
	close(listener);
	drop_private_hosts();
	printf("PASS foreign-cares\n");
	return 0;
}
