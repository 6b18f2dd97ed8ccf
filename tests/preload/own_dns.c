/* Programs that speak DNS themselves: a name looked up with the program's own DNS client (a query
 * on a socket to port 53, not getaddrinfo) is learned from the answer it reads, and the connection
 * to the address is tracked like one from getaddrinfo. Each subtest runs in a network namespace
 * of its own (root) with a DNS server (a thread of this program) on 127.0.0.153:53 and [::1]:53,
 * which the shim's own resolver also asks (DNSAWARE_NAMESERVERS).
 *
 * With DNSAWARE_MAX_AGE set (meson), a tracked connection is shut down within about a second: EOF
 * on it means the name was learned; none means it was not.
 *
 * Usage: preload_own_dns SUBTEST
 *   learned (expects the connection tracked): udp, sendto, recvmsg, recvmmsg, read,
 *     fortified-read, fortified-recv, fortified-recvfrom (glibc's __read_chk and kin), tcp, cname,
 *     ipv6, dup, signal (lookups go on in a signal handler every millisecond while the main
 *     thread does its own: the hooks take no lock, so nothing deadlocks)
 *   not learned: wrong-id, wrong-name, nxdomain, off (meson sets DNSAWARE_LEARN_DNS=0)
 *   move: no max age; the name moves and the shim's own resolver sees it: the connection is shut
 *     down, a connect to the old address is steered, and the stats count one name from dns. */
#include <netinet/in.h>
#include <pthread.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "common.h"

enum { PORT = 8080, DNS_PORT = 53 };
#define DNS_V4 "127.0.0.153"
#define DNS_V6 "::1"
#define NAME "svc.own.test"

enum server_mode { ANSWER, WRONG_ID, WRONG_NAME, CNAME, NXDOMAIN };
static _Atomic int server_mode = ANSWER;
static char server_v4[32] = "127.0.0.10";
static pthread_mutex_t server_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the DNS server ---- */

static size_t put_u16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

static size_t put_name(uint8_t *p, const char *name)
{
	size_t n = 0;
	while (*name != '\0') {
		size_t label = strcspn(name, ".");
		p[n++] = (uint8_t)label;
		memcpy(p + n, name, label);
		n += label;
		name += label + (name[label] == '.');
	}
	p[n++] = 0;
	return n;
}

static size_t put_rr_head(uint8_t *p, unsigned type, unsigned ttl, unsigned rdlen)
{
	size_t n = put_u16(p, type);
	n += put_u16(p + n, 1);
	n += put_u16(p + n, ttl >> 16);
	n += put_u16(p + n, ttl & 0xffff);
	n += put_u16(p + n, rdlen);
	return n;
}

/* The answer to query q (len bytes) in out; its length, 0 to stay silent. */
static size_t answer_query(const uint8_t *q, size_t len, uint8_t *out)
{
	if (len < 12 + 5)
		return 0;
	size_t qname_end = 12;
	while (qname_end < len && q[qname_end] != 0)
		qname_end += 1u + q[qname_end];
	if (qname_end + 5 > len)
		return 0;
	unsigned qtype = (unsigned)q[qname_end + 1] << 8 | q[qname_end + 2];
	size_t question_len = qname_end + 5 - 12;
	int mode = server_mode;
	memcpy(out, q, 2);
	if (mode == WRONG_ID)
		out[1] ^= 0x5a;
	out[2] = 0x81;
	out[3] = mode == NXDOMAIN ? 0x83 : 0x80;
	put_u16(out + 4, 1);
	put_u16(out + 6, 0);
	put_u16(out + 8, 0);
	put_u16(out + 10, 0);
	size_t n = 12;
	if (mode == WRONG_NAME) {
		n += put_name(out + n, "other.own.test");
		memcpy(out + n, q + qname_end + 1, 4);
		n += 4;
	} else {
		memcpy(out + n, q + 12, question_len);
		n += question_len;
	}
	if (mode == NXDOMAIN)
		return n;
	unsigned answers = 0;
	uint8_t owner[2] = {0xc0, 12};
	if (mode == CNAME) {
		memcpy(out + n, owner, 2);
		n += 2;
		uint8_t target[64];
		size_t tlen = put_name(target, "real.own.test");
		n += put_rr_head(out + n, 5, 60, (unsigned)tlen);
		size_t target_at = n;
		memcpy(out + n, target, tlen);
		n += tlen;
		owner[0] = (uint8_t)(0xc0 | target_at >> 8);
		owner[1] = (uint8_t)target_at;
		answers++;
	}
	pthread_mutex_lock(&server_lock);
	if (qtype == 1) {
		struct in_addr a;
		inet_pton(AF_INET, server_v4, &a);
		memcpy(out + n, owner, 2);
		n += 2;
		n += put_rr_head(out + n, 1, 1, 4);
		memcpy(out + n, &a, 4);
		n += 4;
		answers++;
	} else if (qtype == 28) {
		struct in6_addr a;
		inet_pton(AF_INET6, "fd00::10", &a);
		memcpy(out + n, owner, 2);
		n += 2;
		n += put_rr_head(out + n, 28, 1, 16);
		memcpy(out + n, &a, 16);
		n += 16;
		answers++;
	}
	pthread_mutex_unlock(&server_lock);
	put_u16(out + 6, answers);
	return n;
}

static int bound_socket(const char *ip, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(ip, DNS_PORT, &ss, &len);
	int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	int one = 1;
	CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
	CHECKF(bind(fd, (struct sockaddr *)&ss, len) == 0, "bind %s:53", ip);
	if (type == SOCK_STREAM)
		CHECK(listen(fd, 8) == 0);
	return fd;
}

static void serve_tcp(int lfd)
{
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	uint8_t prefix[2], q[512], out[1024 + 2];
	while (recv(c, prefix, 2, MSG_WAITALL) == 2) {
		size_t len = (size_t)prefix[0] << 8 | prefix[1];
		if (len > sizeof q || recv(c, q, len, MSG_WAITALL) != (ssize_t)len)
			break;
		size_t n = answer_query(q, len, out + 2);
		put_u16(out, (unsigned)n);
		/* In two pieces, the second one late: the reader reassembles. */
		send_all(c, out, 5);
		sleep_ms(20);
		send_all(c, out + 5, n + 2 - 5);
	}
	close(c);
}

static void *dns_server(void *unused)
{
	(void)unused;
	struct pollfd p[3] = {
		{ .fd = bound_socket(DNS_V4, SOCK_DGRAM), .events = POLLIN },
		{ .fd = bound_socket(DNS_V6, SOCK_DGRAM), .events = POLLIN },
		{ .fd = bound_socket(DNS_V4, SOCK_STREAM), .events = POLLIN },
	};
	for (;;) {
		if (poll(p, 3, -1) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			uint8_t q[512], out[1024];
			struct sockaddr_storage from;
			socklen_t flen = sizeof from;
			ssize_t len = recvfrom(p[i].fd, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
			size_t n = len > 0 ? answer_query(q, (size_t)len, out) : 0;
			if (n > 0)
				sendto(p[i].fd, out, n, 0, (struct sockaddr *)&from, flen);
		}
		if (p[2].revents & POLLIN)
			serve_tcp(p[2].fd);
	}
	return NULL;
}

/* ---- the program's own DNS client ---- */

static size_t make_query(uint8_t *q, unsigned id, const char *name, unsigned qtype)
{
	put_u16(q, id);
	q[2] = 0x01; /* RD */
	q[3] = 0;
	put_u16(q + 4, 1);
	put_u16(q + 6, 0);
	put_u16(q + 8, 0);
	put_u16(q + 10, 0);
	size_t n = 12 + put_name(q + 12, name);
	n += put_u16(q + n, qtype);
	n += put_u16(q + n, 1);
	return n;
}

static int dns_socket(const char *server, int type, bool connected)
{
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(server, DNS_PORT, &ss, &len);
	int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	if (connected)
		CHECK(connect(fd, (struct sockaddr *)&ss, len) == 0);
	return fd;
}

/* glibc's fortified receive calls, declared here: the test calls them directly. */
ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags, struct sockaddr *addr,
		       socklen_t *addrlen);

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t end = now_ms() + 2000;
	int rc;
	while ((rc = poll(&p, 1, 100)) == 0 || (rc < 0 && errno == EINTR))
		if (now_ms() >= end)
			return false;
	return rc == 1;
}

/* One lookup over UDP with the calls `style` names. */
static void lookup_udp(const char *style, const char *server, unsigned qtype)
{
	bool by_sendto = strcmp(style, "sendto") == 0;
	int fd = dns_socket(server, SOCK_DGRAM, !by_sendto);
	uint8_t q[300], a[1024];
	size_t qlen = make_query(q, 0x1234, NAME, qtype);
	ssize_t got;
	if (by_sendto) {
		struct sockaddr_storage ss;
		socklen_t len;
		make_addr(server, DNS_PORT, &ss, &len);
		CHECK(DO_CALL(sendto(fd, q, qlen, 0, (struct sockaddr *)&ss, len)) == (long long)qlen);
		CHECK(xe_ == SENTINEL_ERRNO);
		CHECK(readable(fd));
		got = recvfrom(fd, a, sizeof a, 0, NULL, NULL);
	} else if (strcmp(style, "read") == 0) {
		CHECK(write(fd, q, qlen) == (ssize_t)qlen);
		CHECK(readable(fd));
		got = read(fd, a, sizeof a);
	} else if (strncmp(style, "fortified-", 10) == 0) {
		/* What a _FORTIFY_SOURCE build calls when the length is not a constant: libc's checked
		 * forms, which read through libc's internal recv/read, past the plain hooks. */
		CHECK(send(fd, q, qlen, 0) == (ssize_t)qlen);
		CHECK(readable(fd));
		size_t len = sizeof a;
		if (strcmp(style, "fortified-read") == 0)
			got = __read_chk(fd, a, len, sizeof a);
		else if (strcmp(style, "fortified-recv") == 0)
			got = __recv_chk(fd, a, len, sizeof a, 0);
		else
			got = __recvfrom_chk(fd, a, len, sizeof a, 0, NULL, NULL);
	} else if (strcmp(style, "recvmsg") == 0) {
		struct iovec out = {q, qlen};
		struct msghdr m = { .msg_iov = &out, .msg_iovlen = 1 };
		CHECK(sendmsg(fd, &m, 0) == (ssize_t)qlen);
		CHECK(readable(fd));
		/* Scattered over two buffers: the answer is gathered back. */
		struct iovec in[2] = { {a, 7}, {a + 7, sizeof a - 7} };
		struct msghdr r = { .msg_iov = in, .msg_iovlen = 2 };
		got = recvmsg(fd, &r, 0);
	} else if (strcmp(style, "recvmmsg") == 0) {
		struct iovec out = {q, qlen};
		struct mmsghdr m = { .msg_hdr = { .msg_iov = &out, .msg_iovlen = 1 } };
		CHECK(sendmmsg(fd, &m, 1, 0) == 1);
		CHECK(readable(fd));
		struct iovec in = {a, sizeof a};
		struct mmsghdr r = { .msg_hdr = { .msg_iov = &in, .msg_iovlen = 1 } };
		CHECK(recvmmsg(fd, &r, 1, 0, NULL) == 1);
		got = (ssize_t)r.msg_len;
	} else {
		CHECK(send(fd, q, qlen, 0) == (ssize_t)qlen);
		CHECK(readable(fd));
		/* A peek first: the same bytes are read again, and learned once. */
		CHECK(recv(fd, a, sizeof a, MSG_PEEK) > 0);
		errno = SENTINEL_ERRNO;
		got = recv(fd, a, sizeof a, 0);
		CHECK(errno == SENTINEL_ERRNO);
	}
	CHECKF(got > 12, "no answer (%zd)", got);
	close(fd);
}

/* One lookup over TCP: the query written in two pieces, the answer read a byte at a time. */
static void lookup_tcp(void)
{
	int fd = dns_socket(DNS_V4, SOCK_STREAM, true);
	uint8_t q[302], a[1024];
	size_t qlen = make_query(q + 2, 0x4321, NAME, 1);
	put_u16(q, (unsigned)qlen);
	CHECK(write(fd, q, 3) == 3);
	struct iovec rest = {q + 3, qlen - 1};
	CHECK(writev(fd, &rest, 1) == (ssize_t)qlen - 1);
	uint8_t prefix[2];
	CHECK(read(fd, prefix, 1) == 1 && read(fd, prefix + 1, 1) == 1);
	size_t len = (size_t)prefix[0] << 8 | prefix[1];
	for (size_t i = 0; i < len; i++)
		CHECK(recv(fd, a + i, 1, MSG_WAITALL) == 1);
	close(fd);
}

static int connect_to(const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(ip, PORT, &ss, &len);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECKF(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect %s", ip);
	return fd;
}

static void expect_tracked(const char *ip, bool tracked)
{
	int lfd = listen_on(ip, PORT, 8);
	int c = connect_to(ip);
	int s = accept_one(lfd);
	bool shut = wait_eof(c, tracked ? 4000 : 1500);
	CHECKF(shut == tracked, "the connection to %s was %s", ip,
	       tracked ? "not shut down: the name was not learned from the program's own DNS answer"
		       : "shut down: the name was learned from an answer that must be ignored");
	close(s);
	close(c);
	close(lfd);
}

static int signal_socket = -1;
static volatile sig_atomic_t handler_lookups;

/* A lookup's two halves in a signal handler: the send and, once its answer is there, the receive,
 * on a DNS socket of its own, interrupting the main thread's lookups at any point of their hooks. */
static void on_tick(int sig)
{
	(void)sig;
	int saved = errno;
	uint8_t q[300], a[1024];
	size_t qlen = make_query(q, 0x5151, NAME, 1);
	if (recv(signal_socket, a, sizeof a, MSG_DONTWAIT) > 12)
		handler_lookups++;
	send(signal_socket, q, qlen, MSG_DONTWAIT);
	errno = saved;
}

static void t_signal(void)
{
	signal_socket = dns_socket(DNS_V4, SOCK_DGRAM, true);
	struct sigaction sa = { .sa_handler = on_tick, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	struct itimerval every_ms = { .it_interval = {0, 1000}, .it_value = {0, 1000} };
	CHECK(setitimer(ITIMER_REAL, &every_ms, NULL) == 0);
	uint64_t until = now_ms() + 600;
	int lookups = 0;
	for (; lookups < 300 || now_ms() < until; lookups++)
		lookup_udp(lookups % 2 ? "recvmsg" : "read", DNS_V4, 1);
	struct itimerval off = {0};
	CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
	CHECKF(handler_lookups > 50, "only %d lookups in the signal handler", (int)handler_lookups);
	printf("%d lookups in the handler beside %d in the main thread\n", (int)handler_lookups, lookups);
}

static void start_server(void)
{
	own_network("ip -6 addr add fd00::10/128 dev lo nodad");
	pthread_t t;
	CHECK(pthread_create(&t, NULL, dns_server, NULL) == 0);
	sleep_ms(50);
}

static void t_move(void)
{
	lookup_udp("recv", DNS_V4, 1);
	int lfd10 = listen_on("127.0.0.10", PORT, 8), lfd11 = listen_on("127.0.0.11", PORT, 8);
	int c = connect_to("127.0.0.10");
	int s = accept_one(lfd10);
	pthread_mutex_lock(&server_lock);
	strcpy(server_v4, "127.0.0.11");
	pthread_mutex_unlock(&server_lock);
	uint64_t moved = now_ms();
	CHECKF(wait_eof(c, 6000), "the connection to the old address was not shut down after the move");
	printf("shut down %llu ms after the move\n", (unsigned long long)(now_ms() - moved));
	close(c);
	close(s);
	/* The program kept the old address: its connect is steered to the current one. */
	c = connect_to("127.0.0.10");
	struct sockaddr_in peer;
	socklen_t plen = sizeof peer;
	CHECK(getpeername(c, (struct sockaddr *)&peer, &plen) == 0);
	char text[INET_ADDRSTRLEN];
	CHECKF(peer.sin_addr.s_addr == inet_addr("127.0.0.11"), "connect not steered: peer %s",
	       inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text));
	close(accept_one(lfd11));
	close(c);
	char stats[16384];
	uint64_t until = now_ms() + 3000;
	while (!(read_stats_file(getpid(), stats, sizeof stats) &&
		 strstr(stats, "dnsaware_names_learned_total{pid=") != NULL &&
		 strstr(stats, "source=\"dns\"} 1\n") != NULL) && now_ms() < until)
		sleep_ms(50);
	CHECKF(strstr(stats, "source=\"dns\"} 1\n") != NULL, "stats: %.600s", strstr(stats, "names_learned") ? strstr(stats, "names_learned") : stats);
	close(lfd10);
	close(lfd11);
}

int main(int argc, char **argv)
{
	CHECKF(argc == 2, "usage: %s SUBTEST", argv[0]);
	t_name = argv[1];
	watchdog(30);
	start_server();
	const char *t = argv[1];
	if (strcmp(t, "move") == 0) {
		t_move();
	} else if (strcmp(t, "tcp") == 0) {
		lookup_tcp();
		expect_tracked("127.0.0.10", true);
	} else if (strcmp(t, "ipv6") == 0) {
		lookup_udp("recv", DNS_V6, 28);
		expect_tracked("fd00::10", true);
	} else if (strcmp(t, "cname") == 0) {
		server_mode = CNAME;
		lookup_udp("recv", DNS_V4, 1);
		expect_tracked("127.0.0.10", true);
	} else if (strcmp(t, "dup") == 0) {
		/* The socket's queries and answers go on through a duplicate, after the original is closed. */
		int fd = dns_socket(DNS_V4, SOCK_DGRAM, true);
		int copy = dup(fd);
		CHECK(copy >= 0 && close(fd) == 0);
		uint8_t q[300], a[1024];
		size_t qlen = make_query(q, 0x77, NAME, 1);
		CHECK(send(copy, q, qlen, 0) == (ssize_t)qlen && readable(copy) && recv(copy, a, sizeof a, 0) > 12);
		close(copy);
		expect_tracked("127.0.0.10", true);
	} else if (strcmp(t, "signal") == 0) {
		t_signal();
		expect_tracked("127.0.0.10", true);
	} else if (strcmp(t, "wrong-id") == 0 || strcmp(t, "wrong-name") == 0 || strcmp(t, "nxdomain") == 0) {
		server_mode = strcmp(t, "wrong-id") == 0 ? WRONG_ID : strcmp(t, "wrong-name") == 0 ? WRONG_NAME : NXDOMAIN;
		lookup_udp("recv", DNS_V4, 1);
		expect_tracked("127.0.0.10", false);
	} else if (strcmp(t, "off") == 0) {
		lookup_udp("recv", DNS_V4, 1);
		expect_tracked("127.0.0.10", false);
	} else {
		lookup_udp(t, DNS_V4, 1);
		expect_tracked("127.0.0.10", true);
	}
	printf("%s: ok\n", t);
	return 0;
}
