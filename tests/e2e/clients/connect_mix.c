/*
 * connect_mix: a planned series of TCP connects to the addresses of one name, for
 * tests/e2e/connect_metrics.py (issue 18, per-name connect metrics).
 *
 *     connect_mix --name NAME --port PORT --plan PLAN --out FILE
 *                 --ok ADDR --refused ADDR --blackhole ADDR
 *
 * PLAN has one letter per connect, in order. Before each connect the client resolves NAME with
 * getaddrinfo(AF_INET, SOCK_STREAM) and takes the address the letter asks for from the answer
 * (exit 2 if the answer does not hold it), so every destination came from the name:
 *
 *   B  --ok, blocking connect(); close.
 *   N  --ok, non-blocking (O_NONBLOCK before connect): connect() -> EINPROGRESS, poll(POLLOUT,
 *      2 s), getsockopt(SO_ERROR) as programs do to learn the outcome; close at once.
 *   R  --refused, blocking connect() (nothing listens there: ECONNREFUSED); close.
 *   S  --blackhole, blocking connect() with SO_SNDTIMEO 200 ms. Linux returns -1 EINPROGRESS
 *      when the send timeout expires (not ETIMEDOUT): the handshake is still pending, and the
 *      program gives up on it and closes the socket.
 *   U  --blackhole, blocking connect() with TCP_USER_TIMEOUT 200 ms: the kernel gives up at the
 *      first SYN retransmission (about 1 s) and connect() returns -1 ETIMEDOUT; close.
 *
 * Writes one JSON line per connect to FILE:
 *   {"type": "connect", "i", "kind", "addr", "blocking", "ret", "errno" (name or null),
 *    "connect_ms" (the connect() call), "poll" (N: poll's return; else null), "so_error" (N: the
 *    name; else null), "established_ms" (ok: from the connect() call to the connection being
 *    known established, i.e. connect's return or POLLOUT; else null), "lport" (ok: the local
 *    port, which the server logs), "outcome" (what the program saw: ok, refused, timeout,
 *    unreachable, error)}
 * and at the end {"type": "done", "pid", "counts": {outcome: n}}. Exit 0 once every connect was
 * made (whatever its outcome), 2 on a usage or resolution problem.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POLL_TIMEOUT_MS 2000
#define BLACKHOLE_TIMEOUT_MS 200

static const char *OUTCOMES[] = {"ok", "refused", "timeout", "unreachable", "error"};
enum { OK, REFUSED, TIMEOUT, UNREACHABLE, ERROR, NOUTCOMES };

struct options {
	const char *name, *port, *plan, *out, *ok, *refused, *blackhole;
};

static void usage(const char *why)
{
	fprintf(stderr, "connect_mix: %s\nusage: connect_mix --name NAME --port PORT --plan "
		"[BNRSU]... --out FILE --ok ADDR --refused ADDR --blackhole ADDR\n", why);
	exit(2);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *errname(int e)
{
	const char *n = e ? strerrorname_np(e) : NULL;
	return n ? n : "?";
}

static int outcome_of(int e)
{
	switch (e) {
	case 0: return OK;
	case ECONNREFUSED: return REFUSED;
	case ETIMEDOUT: return TIMEOUT;
	case EHOSTUNREACH: case ENETUNREACH: return UNREACHABLE;
	default: return ERROR;
	}
}

/* The address of `want` in NAME's answer, resolved now. */
static void resolve(const struct options *o, const char *want, struct sockaddr_in *sa)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res, *ai;
	int rc = getaddrinfo(o->name, o->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "connect_mix: getaddrinfo(%s): %s\n", o->name, gai_strerror(rc));
		exit(2);
	}
	for (ai = res; ai; ai = ai->ai_next) {
		char buf[INET_ADDRSTRLEN];
		const struct sockaddr_in *in = (const struct sockaddr_in *)ai->ai_addr;
		if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf) && strcmp(buf, want) == 0) {
			memcpy(sa, in, sizeof *sa);
			freeaddrinfo(res);
			return;
		}
	}
	freeaddrinfo(res);
	fprintf(stderr, "connect_mix: %s does not resolve to %s\n", o->name, want);
	exit(2);
}

static void fmt_ms(char *buf, size_t size, bool have, double v)
{
	if (have)
		snprintf(buf, size, "%.3f", v);
	else
		snprintf(buf, size, "null");
}

int main(int argc, char **argv)
{
	struct options o = {0};
	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (!strcmp(argv[i], "--name")) slot = &o.name;
		else if (!strcmp(argv[i], "--port")) slot = &o.port;
		else if (!strcmp(argv[i], "--plan")) slot = &o.plan;
		else if (!strcmp(argv[i], "--out")) slot = &o.out;
		else if (!strcmp(argv[i], "--ok")) slot = &o.ok;
		else if (!strcmp(argv[i], "--refused")) slot = &o.refused;
		else if (!strcmp(argv[i], "--blackhole")) slot = &o.blackhole;
		if (!slot || i + 1 >= argc)
			usage("bad arguments");
		*slot = argv[++i];
	}
	if (!o.name || !o.port || !o.plan || !o.out || !o.ok || !o.refused || !o.blackhole)
		usage("missing arguments");
	if (strspn(o.plan, "BNRSU") != strlen(o.plan))
		usage("the plan has letters other than B N R S U");
	FILE *out = fopen(o.out, "a");
	if (!out) {
		perror("connect_mix: --out");
		return 2;
	}
	setvbuf(out, NULL, _IOLBF, 0);

	int counts[NOUTCOMES] = {0};
	for (int i = 0; o.plan[i]; i++) {
		char kind = o.plan[i];
		const char *want = kind == 'B' || kind == 'N' ? o.ok
				 : kind == 'R' ? o.refused : o.blackhole;
		struct sockaddr_in sa;
		resolve(&o, want, &sa);

		int fd = socket(AF_INET, SOCK_STREAM | (kind == 'N' ? SOCK_NONBLOCK : 0), 0);
		if (fd < 0) {
			perror("connect_mix: socket");
			return 2;
		}
		if (kind == 'S') {
			struct timeval tv = {0, BLACKHOLE_TIMEOUT_MS * 1000};
			if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
				perror("connect_mix: SO_SNDTIMEO");
				return 2;
			}
		} else if (kind == 'U') {
			unsigned int ms = BLACKHOLE_TIMEOUT_MS;
			if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms) != 0) {
				perror("connect_mix: TCP_USER_TIMEOUT");
				return 2;
			}
		}

		double t0 = now_ms();
		int ret = connect(fd, (struct sockaddr *)&sa, sizeof sa);
		int err = ret == 0 ? 0 : errno;
		double t1 = now_ms();
		int prc = 0, so_error = 0, outcome;
		double t_est = t1;
		if (kind == 'N' && ret != 0 && err == EINPROGRESS) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			prc = poll(&pfd, 1, POLL_TIMEOUT_MS);
			t_est = now_ms();
			socklen_t len = sizeof so_error;
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
				so_error = errno;
			outcome = prc == 0 ? TIMEOUT : outcome_of(so_error);
		} else if (kind == 'S' && ret != 0 && err == EINPROGRESS) {
			outcome = TIMEOUT;       /* the send timeout ran out; the program gives up */
		} else {
			outcome = outcome_of(err);
		}
		int lport = -1;
		if (outcome == OK) {
			struct sockaddr_in local;
			socklen_t len = sizeof local;
			if (getsockname(fd, (struct sockaddr *)&local, &len) == 0)
				lport = ntohs(local.sin_port);
		}
		close(fd);
		counts[outcome]++;

		char cms[32], ems[32], pollbuf[16], soerr[48];
		fmt_ms(cms, sizeof cms, true, t1 - t0);
		fmt_ms(ems, sizeof ems, outcome == OK, t_est - t0);
		if (kind == 'N') {
			snprintf(pollbuf, sizeof pollbuf, "%d", prc);
			snprintf(soerr, sizeof soerr, so_error ? "\"%s\"" : "null", errname(so_error));
		} else {
			snprintf(pollbuf, sizeof pollbuf, "null");
			snprintf(soerr, sizeof soerr, "null");
		}
		char errbuf[48];
		snprintf(errbuf, sizeof errbuf, err ? "\"%s\"" : "null", errname(err));
		fprintf(out, "{\"type\": \"connect\", \"i\": %d, \"kind\": \"%c\", \"addr\": \"%s\", "
			"\"blocking\": %s, \"ret\": %d, \"errno\": %s, \"connect_ms\": %s, "
			"\"poll\": %s, \"so_error\": %s, \"established_ms\": %s, \"lport\": %d, "
			"\"outcome\": \"%s\"}\n",
			i, kind, want, kind == 'N' ? "false" : "true", ret, errbuf, cms, pollbuf,
			soerr, ems, lport, OUTCOMES[outcome]);
	}
	fprintf(out, "{\"type\": \"done\", \"pid\": %d, \"counts\": {", (int)getpid());
	for (int k = 0; k < NOUTCOMES; k++)
		fprintf(out, "%s\"%s\": %d", k ? ", " : "", OUTCOMES[k], counts[k]);
	fprintf(out, "}}\n");
	fclose(out);
	return 0;
}
