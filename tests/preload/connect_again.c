/* connect called again on a socket whose non-blocking connect is under way or done, the way
 * Ruby's connect_nonblock and Perl's IO::Socket::IP learn its result (0, then EISCONN): the kernel
 * ignores the address, so the library must not take it for a new attempt. With
 * DNSAWARE_BALANCE=1 and two addresses, a new attempt would be aimed at the other address and the
 * socket tracked under an address it never went to: never drained, counted twice.
 *
 * again.test has 127.0.0.81 and .82 (a private /etc/hosts). 16 sockets: non-blocking connect to
 * the first address getaddrinfo gives, poll for POLLOUT, connect again (0 or EISCONN), once more
 * (EISCONN); the peer stays the one the first connect reached. Then the stats file counts 16 ok connects of
 * again.test and no error; then the name moves to .83 and every socket is shut within 3 s.
 * Env: LD_PRELOAD, DNSAWARE_BALANCE=1, DNSAWARE_TTL_FLOOR=200ms, DNSAWARE_STALE_AFTER=1,
 * DNSAWARE_IDLE=50ms, DNSAWARE_STATS_FILE (with %p), DNSAWARE_STATS_INTERVAL=200ms,
 * DNSAWARE_LOG=debug, DNSAWARE_LOG_FILE. Root (a mount namespace of its own). */
#include "common.h"

enum { PORT = 8081, SOCKETS = 16 };
#define NAME "again.test"

static void peer_of(int fd, char *text)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	CHECK(getpeername(fd, (struct sockaddr *)&a, &len) == 0);
	inet_ntop(AF_INET, &a.sin_addr, text, INET_ADDRSTRLEN);
}

/* Non-blocking connect to the first address of NAME (balance may aim it at the other one), then
 * connect again until it says EISCONN: the peer stays the one the first connect reached. */
static int connect_twice(void)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
	CHECK(getaddrinfo(NAME, "8081", &hints, &res) == 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	int rc = connect(fd, res->ai_addr, res->ai_addrlen);
	CHECKF(rc == 0 || errno == EINPROGRESS, "the first connect: %d (%s)", rc, strerror(errno));
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	CHECK(poll(&p, 1, 2000) == 1);
	char reached[INET_ADDRSTRLEN], after[INET_ADDRSTRLEN];
	peer_of(fd, reached);
	errno = 0;
	rc = connect(fd, res->ai_addr, res->ai_addrlen);
	CHECKF(rc == 0 || errno == EISCONN, "connect again: %d (%s), expected 0 or EISCONN", rc, strerror(errno));
	errno = 0;
	rc = connect(fd, res->ai_addr, res->ai_addrlen);
	CHECKF(rc == -1 && errno == EISCONN, "connect once more: %d (%s), expected EISCONN", rc, strerror(errno));
	freeaddrinfo(res);
	peer_of(fd, after);
	CHECKF(strcmp(reached, after) == 0, "fd %d: connected to %s, then to %s", fd, reached, after);
	return fd;
}

static long counted(const char *stats, const char *result)
{
	char series[160];
	snprintf(series, sizeof series, "dnsaware_connects_total{pid=\"%d\",name=\"%s\",result=\"%s\"} ", (int)getpid(),
		 NAME, result);
	const char *at = strstr(stats, series);
	return at == NULL ? 0 : strtol(at + strlen(series), NULL, 10);
}

int main(void)
{
	t_name = "connect-again";
	setvbuf(stdout, NULL, _IONBF, 0);
	watchdog(40);
	private_hosts(NAME, "127.0.0.81 127.0.0.82");
	int l81 = listen_on("127.0.0.81", PORT, 32), l82 = listen_on("127.0.0.82", PORT, 32);
	int c[SOCKETS];
	for (int i = 0; i < SOCKETS; i++)
		c[i] = connect_twice();
	/* The stats file counts each connect once, as ok. */
	static char stats[65536];
	uint64_t end = now_ms() + 3000;
	long ok = 0, error = 0;
	while (now_ms() < end) {
		if (read_stats_file(getpid(), stats, sizeof stats)) {
			ok = counted(stats, "ok");
			error = counted(stats, "error");
			if (ok >= SOCKETS)
				break;
		}
		sleep_ms(100);
	}
	sleep_ms(500); /* a later write would show a late double count */
	CHECK(read_stats_file(getpid(), stats, sizeof stats));
	ok = counted(stats, "ok");
	error = counted(stats, "error");
	CHECKF(ok == SOCKETS && error == 0, "the stats file counts %ld ok and %ld error connects of %s, expected %d and 0",
	       ok, error, NAME, SOCKETS);
	/* Each socket was tracked under the address it went to: the move shuts every one. */
	write_hosts(NAME, "127.0.0.83");
	uint64_t moved = now_ms();
	for (int i = 0; i < SOCKETS; i++) {
		uint64_t left = now_ms() - moved < 3000 ? 3000 - (now_ms() - moved) : 0;
		CHECKF(wait_eof(c[i], (unsigned)left), "socket %d of %d (fd %d) was not shut within 3 s of the move: tracked "
		       "under another address than its own?", i + 1, SOCKETS, c[i]);
	}
	printf("connect-again: %d sockets connected twice each, counted once (%ld ok), all shut %llu ms after the "
	       "move\n", SOCKETS, ok, (unsigned long long)(now_ms() - moved));
	for (int i = 0; i < SOCKETS; i++)
		close(c[i]);
	close(l81);
	close(l82);
	drop_private_hosts();
	printf("PASS connect-again\n");
	return 0;
}
