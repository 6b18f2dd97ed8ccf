/* Connects racing the move of their name: every tracked connection to the address the name left is
 * shut down, however close to the move its connect came (before the shim read the answer that
 * removed the address, between that and the thread taking the socket over, or after).
 *
 * r.test has one address at a time, in a private /etc/hosts. Each round, 4 threads connect to it in a
 * tight loop for 40 ms and keep every connection (nothing sent: idle from the start); 20 ms in, the
 * name moves to the next address. 400 ms after the window, every connection to the old address must
 * be shut down (EOF): one left open was tracked but never drained. Connections to the new address
 * stay up. 12 rounds.
 * Env: LD_PRELOAD, DNSAWARE_TTL_FLOOR=1ms, DNSAWARE_STALE_AFTER=1, DNSAWARE_IDLE=20ms, DNSAWARE_LOG,
 * DNSAWARE_LOG_FILE. Root. */
#include "torture.h"

enum { PORT = 7100, ADDRS = 8, THREADS = 4, ROUNDS = 12, WINDOW_MS = 40, MOVE_AT_MS = 20, PER_THREAD = 300 };

static int listeners[ADDRS];
static _Atomic bool window_open, stop_accepting;
static uint64_t window_end;

struct kept {
	int fd[PER_THREAD];
	int n;
};
static struct kept kept[THREADS];

#define ACCEPTED_MAX (THREADS * PER_THREAD * 2)
static int accepted[ACCEPTED_MAX], accepted_n;
static pthread_mutex_t accepted_lock = PTHREAD_MUTEX_INITIALIZER;

static void *accept_main(void *unused)
{
	(void)unused;
	struct pollfd p[ADDRS];
	for (int i = 0; i < ADDRS; i++)
		p[i] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
	while (!atomic_load(&stop_accepting)) {
		if (poll(p, ADDRS, 50) <= 0)
			continue;
		for (int i = 0; i < ADDRS; i++)
			if (p[i].revents & POLLIN) {
				/* Kept open until the round is judged: the server never ends a connection. */
				int fd = accept4(listeners[i], NULL, NULL, SOCK_CLOEXEC);
				pthread_mutex_lock(&accepted_lock);
				if (fd >= 0 && accepted_n < ACCEPTED_MAX)
					accepted[accepted_n++] = fd;
				else if (fd >= 0)
					close(fd);
				pthread_mutex_unlock(&accepted_lock);
			}
	}
	return NULL;
}

static void *connector_main(void *arg)
{
	struct kept *k = &kept[(intptr_t)arg];
	while (!atomic_load(&window_open))
		sched_yield();
	while (now_ms() < window_end && k->n < PER_THREAD) {
		struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
		if (getaddrinfo("r.test", "7100", &hints, &res) != 0)
			continue; /* the hosts file is empty for a moment while it is rewritten */
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(fd >= 0);
		CHECKF(connect(fd, res->ai_addr, res->ai_addrlen) == 0, "connect to r.test");
		freeaddrinfo(res);
		k->fd[k->n++] = fd;
	}
	return NULL;
}

int main(void)
{
	t_name = "adopt-race";
	setvbuf(stdout, NULL, _IONBF, 0);
	private_network();
	private_files("127.0.50.1 r.test\n");
	watchdog_thread(60, "connects racing a move");
	for (int i = 0; i < ADDRS; i++) {
		char ip[INET_ADDRSTRLEN];
		snprintf(ip, sizeof ip, "127.0.50.%u", (unsigned char)(i + 1));
		listeners[i] = listen_on(ip, PORT, 4096);
	}
	pthread_t acceptor;
	CHECK(pthread_create(&acceptor, NULL, accept_main, NULL) == 0);
	/* The thread is running and the name watched before the first round. */
	int warm = connect_named("r.test", PORT);
	sleep_ms(100);
	long total_old = 0, total_new = 0;
	for (int round = 0; round < ROUNDS; round++) {
		int from = round % ADDRS, to = (round + 1) % ADDRS;
		char old_ip[INET_ADDRSTRLEN], new_ip[INET_ADDRSTRLEN], line[64];
		snprintf(old_ip, sizeof old_ip, "127.0.50.%u", (unsigned char)(from + 1));
		snprintf(new_ip, sizeof new_ip, "127.0.50.%u", (unsigned char)(to + 1));
		pthread_t t[THREADS];
		for (int i = 0; i < THREADS; i++) {
			kept[i].n = 0;
			CHECK(pthread_create(&t[i], NULL, connector_main, (void *)(intptr_t)i) == 0);
		}
		uint64_t start = now_ms();
		window_end = start + WINDOW_MS;
		atomic_store(&window_open, true);
		sleep_ms(MOVE_AT_MS);
		snprintf(line, sizeof line, "%s r.test\n", new_ip);
		set_hosts(line);
		for (int i = 0; i < THREADS; i++)
			CHECK(pthread_join(t[i], NULL) == 0);
		atomic_store(&window_open, false);
		sleep_ms(400);
		int old = 0, fresh = 0, missed = 0;
		for (int i = 0; i < THREADS; i++) {
			for (int j = 0; j < kept[i].n; j++) {
				int fd = kept[i].fd[j];
				char peer[INET_ADDRSTRLEN];
				if (strcmp(peer_text(fd, peer), old_ip) == 0) {
					old++;
					if (sock_state(fd) != SOCK_EOF) {
						if (missed++ == 0)
							fprintf(stderr, "round %d: fd %d to %s (the old address) still open\n", round,
								fd, old_ip);
					}
				} else {
					CHECKF(strcmp(peer, new_ip) == 0, "a connection to %s", peer);
					fresh++;
				}
				/* The raw system call: ThreadSanitizer models an fd as a variable that the shim's
				 * thread read (fstat, long ago, its stack no longer kept, so no suppression can
				 * match) and close writes. What close does to the shim's table is tested
				 * elsewhere; the next round's connects to these numbers take over the table. */
				CHECK(syscall(SYS_close, fd) == 0);
			}
		}
		sleep_ms(20);
		pthread_mutex_lock(&accepted_lock);
		for (int i = 0; i < accepted_n; i++)
			close(accepted[i]);
		accepted_n = 0;
		pthread_mutex_unlock(&accepted_lock);
		total_old += old;
		total_new += fresh;
		CHECKF(missed == 0, "round %d: %d of the %d connections to the old address %s were never shut down "
		       "(%d to the new one)", round, missed, old, old_ip, fresh);
	}
	printf("%d rounds: %ld connections to the address their name left, all shut down; %ld to the new one\n",
	       ROUNDS, total_old, total_new);
	CHECKF(total_old >= ROUNDS * 10 && total_new >= ROUNDS * 10, "too few connections around the moves");
	atomic_store(&stop_accepting, true);
	CHECK(pthread_join(acceptor, NULL) == 0);
	close(warm);
	drop_private_files();
	printf("PASS adopt-race\n");
	return 0;
}
