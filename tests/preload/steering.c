/* Connect steering: a connect to an address its name no longer resolves to goes to a current
 * one; a blocking connect that fails tries the name's other addresses; failed addresses are
 * avoided for DNSAWARE_COOLDOWN. Each subtest runs in a network and mount namespace of its own
 * (root), with a private /etc/hosts, so 127.0.0.x and the ports are the test's alone.
 * Usage: preload_steering SUBTEST (redirect, spread, failover, nonblocking-failure, all-refuse,
 * timeout, log-storm, off). */
#include <netinet/in.h>
#include <sys/time.h>

#include "common.h"

enum { PORT = 8080 };

/* The address a connected socket reached. */
static const char *peer_of(int fd, char *buf)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	CHECK(getpeername(fd, (struct sockaddr *)&a, &len) == 0);
	return inet_ntop(AF_INET, &a.sin_addr, buf, INET_ADDRSTRLEN);
}

static int try_connect(const char *ip, bool nonblocking, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(ip, PORT, &ss, &len);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
	CHECK(fd >= 0);
	errno = SENTINEL_ERRNO;
	int rc = connect(fd, (struct sockaddr *)&ss, len);
	*err = errno;
	if (rc != 0 && nonblocking && *err == EINPROGRESS) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		CHECK(poll(&p, 1, 2000) == 1);
		socklen_t elen = sizeof *err;
		CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &elen) == 0);
		rc = *err == 0 ? 0 : -1;
	}
	if (rc != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* steer.test moves from .10 to `to` under a tracked connection; returns once the shim has shut
 * that connection down, i.e. once .10 has left the name's set. */
static void move_under_a_connection(const char *to)
{
	int c = connect_named("steer.test", PORT);
	write_hosts("steer.test", to);
	CHECKF(wait_eof(c, 8000), "the connection to the old address was not shut down after the move");
	close(c);
}

static void t_redirect(void)
{
	private_hosts("steer.test", "127.0.0.10");
	int old = listen_on("127.0.0.10", PORT, 64), fresh = listen_on("127.0.0.11", PORT, 64);
	int other = listen_on("127.0.0.12", PORT, 64);
	move_under_a_connection("127.0.0.11");
	char buf[INET_ADDRSTRLEN];

	/* Blocking: lands on .11; errno untouched; getpeername tells the truth. */
	int err;
	int fd = try_connect("127.0.0.10", false, &err);
	CHECKF(fd >= 0, "redirected connect failed: %s", strerror(err));
	CHECKF(err == SENTINEL_ERRNO, "errno changed by a successful connect: %d", err);
	CHECKF(strcmp(peer_of(fd, buf), "127.0.0.11") == 0, "connect to the old address reached %s", buf);
	close(fd);
	/* Non-blocking: EINPROGRESS semantics kept, SO_ERROR 0, on .11. */
	fd = try_connect("127.0.0.10", true, &err);
	CHECKF(fd >= 0, "non-blocking redirected connect failed: %s", strerror(err));
	CHECKF(strcmp(peer_of(fd, buf), "127.0.0.11") == 0, "non-blocking connect reached %s", buf);
	close(fd);
	/* UDP is never redirected. */
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr("127.0.0.10", PORT, &ss, &len);
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(u >= 0 && connect(u, (struct sockaddr *)&ss, len) == 0);
	CHECKF(strcmp(peer_of(u, buf), "127.0.0.10") == 0, "a UDP connect was redirected to %s", buf);
	close(u);
	/* An address no name produced is connected as asked. */
	fd = try_connect("127.0.0.12", false, &err);
	CHECK(fd >= 0);
	CHECKF(strcmp(peer_of(fd, buf), "127.0.0.12") == 0, "an unrelated address was redirected to %s", buf);
	close(fd);
	CHECKF(count_log_lines("redirected connect") == 2, "expected 2 redirect log lines, found %d",
	       count_log_lines("redirected connect"));
	close(old);
	close(fresh);
	close(other);
	drop_private_hosts();
}

static void t_spread(void)
{
	private_hosts("steer.test", "127.0.0.10");
	int l[4] = { listen_on("127.0.0.10", PORT, 64), listen_on("127.0.0.11", PORT, 64), listen_on("127.0.0.12", PORT, 64),
		     listen_on("127.0.0.13", PORT, 64) };
	move_under_a_connection("127.0.0.11 127.0.0.12 127.0.0.13");
	int hits[3] = {0};
	char buf[INET_ADDRSTRLEN];
	for (int i = 0; i < 30; i++) {
		int err;
		int fd = try_connect("127.0.0.10", false, &err);
		CHECK(fd >= 0);
		const char *p = peer_of(fd, buf);
		CHECKF(strncmp(p, "127.0.0.1", 9) == 0 && p[9] >= '1' && p[9] <= '3' && p[10] == '\0',
		       "reached %s", p);
		hits[p[9] - '1']++;
		close(fd);
	}
	printf("30 redirected connects: %d on .11, %d on .12, %d on .13\n", hits[0], hits[1], hits[2]);
	for (int i = 0; i < 3; i++)
		CHECKF(hits[i] >= 5, "redirects not spread: %d, %d, %d", hits[0], hits[1], hits[2]);
	for (int i = 0; i < 4; i++)
		close(l[i]);
	drop_private_hosts();
}

static void t_failover(void)
{
	/* .10 refuses (nothing listens); the name's other addresses answer. */
	private_hosts("fo.test", "127.0.0.10 127.0.0.11 127.0.0.12");
	int l1 = listen_on("127.0.0.11", PORT, 64), l2 = listen_on("127.0.0.12", PORT, 64);
	char buf[INET_ADDRSTRLEN];

	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	CHECK(getaddrinfo("fo.test", "8080", &hints, &res) == 0); /* the first answer is .10 */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT_OK(connect(fd, res->ai_addr, res->ai_addrlen));
	freeaddrinfo(res);
	const char *p = peer_of(fd, buf);
	CHECKF(strcmp(p, "127.0.0.11") == 0 || strcmp(p, "127.0.0.12") == 0, "failed over to %s", p);
	close(fd);
	CHECKF(count_log_lines("failed over") == 1, "expected one failover log line");
	/* .10 is cooling now: later connects, blocking or not, go straight to a healthy address. */
	for (int i = 0; i < 20; i++) {
		int err;
		fd = try_connect("127.0.0.10", i % 2 == 1, &err);
		CHECKF(fd >= 0, "connect %d to the refusing address failed: %s", i, strerror(err));
		p = peer_of(fd, buf);
		CHECKF(strcmp(p, "127.0.0.10") != 0, "reached the refusing address");
		close(fd);
	}
	CHECKF(count_log_lines("failed over") == 1, "a cooling address was tried again");
	CHECKF(count_log_lines("refused a connection lately") == 20, "expected 20 cooldown redirects, found %d",
	       count_log_lines("refused a connection lately"));
	close(l1);
	close(l2);
	drop_private_hosts();
}

/* A non-blocking connect that fails is the program's to see (SO_ERROR, untouched); once it is
 * closed, the shim avoids that address for later connects, blocking or not. */
static void t_nonblocking_failure(void)
{
	private_hosts("nb.test", "127.0.0.10 127.0.0.11");
	int l = listen_on("127.0.0.11", PORT, 64);
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	CHECK(getaddrinfo("nb.test", "8080", &hints, &res) == 0);
	freeaddrinfo(res);
	int err;
	int fd = try_connect("127.0.0.10", true, &err);
	CHECKF(fd < 0 && err == ECONNREFUSED, "the failed non-blocking connect: fd %d, error %d (%s)", fd, err,
	       strerror(err));
	/* The thread notes the failure (nudged by close); give it a moment. */
	for (int waited = 0; waited < 2000 && count_log_lines("a connect to 127.0.0.10:8080 failed") == 0; waited += 10)
		sleep_ms(10);
	CHECKF(count_log_lines("a connect to 127.0.0.10:8080 failed") == 1, "the failed connect was not noted");
	char buf[INET_ADDRSTRLEN];
	for (int i = 0; i < 4; i++) {
		fd = try_connect("127.0.0.10", i % 2 == 0, &err);
		CHECKF(fd >= 0, "connect %d after the noted failure: %s", i, strerror(err));
		CHECKF(strcmp(peer_of(fd, buf), "127.0.0.11") == 0, "reached %s", buf);
		close(fd);
	}
	close(l);
	drop_private_hosts();
}

static void t_all_refuse(void)
{
	private_hosts("none.test", "127.0.0.10 127.0.0.12");
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	CHECK(getaddrinfo("none.test", "8080", &hints, &res) == 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT_ERR(connect(fd, res->ai_addr, res->ai_addrlen), ECONNREFUSED);
	CHECKF(count_log_lines("failed over") == 0, "a failover was logged though every address refused");
	freeaddrinfo(res);
	close(fd);
	drop_private_hosts();
}

/* .10 refuses, the other address drops every packet: a blocking connect with a send timeout
 * fails over within that timeout, and the timeout the program set is left as it was. */
static void t_timeout(void)
{
	/* A veth pair whose far end nobody answers on, and a made-up neighbour: SYNs vanish. */
	CHECK(run_plain("ip link add bh0 type veth peer name bh1 && ip link set bh0 up && ip link set bh1 up && "
		     "ip addr add 10.77.0.1/24 dev bh0 && "
		     "ip neigh add 10.77.0.2 lladdr 02:00:00:00:00:01 dev bh0 nud permanent") == 0);
	private_hosts("slow.test", "127.0.0.10 10.77.0.2");
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	CHECK(getaddrinfo("slow.test", "8080", &hints, &res) == 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 800000 }, got;
	CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
	uint64_t start = now_ms();
	long long rc = DO_CALL(connect(fd, res->ai_addr, res->ai_addrlen));
	uint64_t took = now_ms() - start;
	printf("connect: %lld, errno %d (%s) after %llu ms\n", rc, xe_, strerror(xe_), (unsigned long long)took);
	CHECKF(rc == -1 && xe_ == EINPROGRESS, "expected the send timeout's EINPROGRESS, got %lld errno %d", rc, xe_);
	CHECKF(took >= 600 && took <= 1500, "the failover took %llu ms with an 800 ms send timeout",
	       (unsigned long long)took);
	socklen_t len = sizeof got;
	CHECK(getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &got, &len) == 0);
	CHECKF(got.tv_sec == 0 && got.tv_usec == 800000, "SO_SNDTIMEO not restored: %ld.%06ld", (long)got.tv_sec,
	       (long)got.tv_usec);
	freeaddrinfo(res);
	close(fd);
	drop_private_hosts();
}

/* A storm of decisions (2000 redirects in a moment) is rate-limited in the log: the burst goes
 * out, the rest is dropped and counted, and the next line let through says how many. */
static void t_log_storm(void)
{
	private_hosts("steer.test", "127.0.0.10");
	int old = listen_on("127.0.0.10", PORT, 64), fresh = listen_on("127.0.0.11", PORT, 4096);
	move_under_a_connection("127.0.0.11");
	int before = count_log_lines("");
	for (int i = 0; i < 2000; i++) {
		int err;
		int fd = try_connect("127.0.0.10", false, &err);
		CHECK(fd >= 0);
		close(fd);
		int a = accept(fresh, NULL, NULL);
		if (a >= 0)
			close(a);
	}
	sleep_ms(100);
	int err;
	int fd = try_connect("127.0.0.10", false, &err); /* one more line: it reports the dropped */
	CHECK(fd >= 0);
	close(fd);
	int lines = count_log_lines("") - before;
	int redirects = count_log_lines("redirected connect");
	printf("2001 redirects: %d log lines written, %d of them redirects\n", lines, redirects);
	CHECKF(redirects < 1000, "the log was not rate-limited: %d redirect lines", redirects);
	CHECKF(redirects >= 400, "the burst should go out whole: %d redirect lines", redirects);
	CHECKF(count_log_lines("log lines dropped (more than 100 a second)") >= 1, "no line says lines were dropped");
	close(old);
	close(fresh);
	drop_private_hosts();
}

/* DNSAWARE_REDIRECT=0: the old address is connected as asked, and no failover. */
static void t_off(void)
{
	private_hosts("steer.test", "127.0.0.10");
	int old = listen_on("127.0.0.10", PORT, 64), fresh = listen_on("127.0.0.11", PORT, 64);
	move_under_a_connection("127.0.0.11");
	char buf[INET_ADDRSTRLEN];
	int err;
	int fd = try_connect("127.0.0.10", false, &err);
	CHECK(fd >= 0);
	CHECKF(strcmp(peer_of(fd, buf), "127.0.0.10") == 0, "redirected to %s with DNSAWARE_REDIRECT=0", buf);
	close(fd);
	close(old);
	/* .10 now refuses; the name's other address is not tried. */
	write_hosts("steer.test", "127.0.0.10 127.0.0.11");
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	CHECK(getaddrinfo("steer.test", "8080", &hints, &res) == 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT_ERR(connect(fd, res->ai_addr, res->ai_addrlen), ECONNREFUSED);
	freeaddrinfo(res);
	close(fd);
	CHECK(count_log_lines("redirected connect") == 0 && count_log_lines("failed over") == 0);
	close(fresh);
	drop_private_hosts();
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	t_name = argv[1];
	watchdog(40);
	setvbuf(stdout, NULL, _IONBF, 0);
	own_network(NULL);
	if (strcmp(t_name, "redirect") == 0)
		t_redirect();
	else if (strcmp(t_name, "spread") == 0)
		t_spread();
	else if (strcmp(t_name, "failover") == 0)
		t_failover();
	else if (strcmp(t_name, "nonblocking-failure") == 0)
		t_nonblocking_failure();
	else if (strcmp(t_name, "all-refuse") == 0)
		t_all_refuse();
	else if (strcmp(t_name, "timeout") == 0)
		t_timeout();
	else if (strcmp(t_name, "log-storm") == 0)
		t_log_storm();
	else if (strcmp(t_name, "off") == 0)
		t_off();
	else
		fail_at(__FILE__, __LINE__, "unknown subtest %s", t_name);
	printf("PASS steering-%s\n", t_name);
	return 0;
}
