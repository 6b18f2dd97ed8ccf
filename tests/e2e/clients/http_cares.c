/*
 * HTTP adapter: a C program that resolves with c-ares itself (never getaddrinfo) and speaks
 * HTTP/1.1 over a plain keep-alive socket.
 *
 *     http_cares --target NAME:PORT --rate R --out FILE --stop-file FILE [--max-duration S]
 *                [--connection keep-alive|close] [--slow-file FILE] [--conns 1]
 *
 * What a typical program that links c-ares does (contract: README.md):
 *   - resolve once: ares_getaddrinfo() on a channel made by ares_init() (so /etc/resolv.conf),
 *     driven with ares_getsock() + poll() + ares_process_fd(); AF_UNSPEC, SOCK_STREAM;
 *   - connect to the answered addresses in order (the first that accepts, 2 s each) and keep
 *     the connection for every request (GET /cares, Host: NAME:PORT, Content-Length body);
 *   - before reusing the connection, look whether the server closed it (poll for readability,
 *     as libcurl does); on EOF or any failure of the connection, close it, resolve again with
 *     c-ares and reconnect. A request that fails on a reused connection before any byte of the
 *     answer came is sent once more on a fresh connection (what libcurl and most HTTP/1.1
 *     clients do for an idempotent request on a stale keep-alive connection); "retried": true
 *     marks it. Nothing else is retried.
 *   - a server's orderly close after a complete answer (Connection: close) reconnects to the
 *     same address without resolving again.
 * Records carry "resolved": true when that request resolved the name first.
 * --slow-file and --conns (only 1) are accepted and ignored: HTTP slow answers come from the
 * backend.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT "cares"
#define MAX_ADDRS 16
#define CONNECT_TIMEOUT_MS 2000
#define REQUEST_TIMEOUT_MS 5000

struct options {
	const char *host, *port, *out, *stop_file;
	double rate, max_duration;
	bool close_each;
};

struct addrs {
	struct sockaddr_storage sa[MAX_ADDRS];
	socklen_t len[MAX_ADDRS];
	int n;
};

struct answer {
	bool done;
	int status;
	struct addrs *addrs;
};

struct result {
	bool ok, got_bytes, server_closes;
	int status;
	char backend[64];
	long client_port;
	char error[256];
};

static volatile sig_atomic_t stop_now;
static FILE *out;

static double now_real(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(const char *msg)
{
	fprintf(stderr, "http_cares: %s\nusage: http_cares --target NAME:PORT --rate R --out FILE "
		"--stop-file FILE [--max-duration S] [--connection keep-alive|close] "
		"[--slow-file FILE] [--conns 1]\n", msg);
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static char host[256];
	const char *target = NULL, *rate = NULL;

	o->max_duration = 120;
	for (int i = 1; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			usage("an option without its value");
		if (!strcmp(k, "--target"))
			target = v;
		else if (!strcmp(k, "--rate"))
			rate = v;
		else if (!strcmp(k, "--out"))
			o->out = v;
		else if (!strcmp(k, "--stop-file"))
			o->stop_file = v;
		else if (!strcmp(k, "--max-duration"))
			o->max_duration = strtod(v, NULL);
		else if (!strcmp(k, "--connection") && (!strcmp(v, "close") || !strcmp(v, "keep-alive")))
			o->close_each = !strcmp(v, "close");
		else if (!strcmp(k, "--conns") && !strcmp(v, "1"))
			;
		else if (!strcmp(k, "--slow-file"))
			;
		else
			usage("bad option or value");
	}
	if (!target || !rate || !o->out || !o->stop_file)
		usage("--target, --rate, --out and --stop-file are required");
	const char *colon = strrchr(target, ':');
	if (!colon || colon == target || !colon[1] || (size_t)(colon - target) >= sizeof(host))
		usage("--target must be NAME:PORT");
	memcpy(host, target, colon - target);
	host[colon - target] = '\0';
	o->host = host;
	o->port = colon + 1;
	o->rate = strtod(rate, NULL);
	if (!(o->rate > 0) || !(o->max_duration >= 0))
		usage("--rate must be > 0 and --max-duration >= 0");
}

static void json_string(char *dst, size_t size, const char *s)
{
	size_t j = 0;
	for (; *s && j + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			j += snprintf(dst + j, size - j, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			j += snprintf(dst + j, size - j, "\\u%04x", c);
		else
			dst[j++] = (char)c;
	}
	dst[j] = '\0';
}

static void set_error(struct result *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

/* ---- c-ares ---------------------------------------------------------------------------- */

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct answer *a = arg;
	(void)timeouts;
	a->done = true;
	a->status = status;
	a->addrs->n = 0;
	if (status == ARES_SUCCESS && res != NULL) {
		for (struct ares_addrinfo_node *n = res->nodes; n && a->addrs->n < MAX_ADDRS;
		     n = n->ai_next) {
			if (n->ai_addrlen > sizeof(struct sockaddr_storage))
				continue;
			memcpy(&a->addrs->sa[a->addrs->n], n->ai_addr, n->ai_addrlen);
			a->addrs->len[a->addrs->n++] = n->ai_addrlen;
		}
	}
	if (res != NULL)
		ares_freeaddrinfo(res);
}

/* Resolves name with the channel, waiting on its sockets; c-ares's own timeouts (resolv.conf's
 * timeout and attempts) bound the wait. Returns an ARES_ status. */
static int resolve(ares_channel channel, const struct options *o, struct addrs *addrs)
{
	struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct answer a = {.addrs = addrs};

	ares_getaddrinfo(channel, o->host, o->port, &hints, on_answer, &a);
	while (!a.done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		int bits = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM), n = 0;
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = (ARES_GETSOCK_READABLE(bits, i) ? POLLIN : 0) |
				   (ARES_GETSOCK_WRITABLE(bits, i) ? POLLOUT : 0);
			if (ev)
				pfd[n++] = (struct pollfd){.fd = socks[i], .events = ev};
		}
		struct timeval tv, *tvp = ares_timeout(channel, NULL, &tv);
		int ms = tvp ? (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000) : 1000;
		int ready = poll(pfd, n, ms);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready <= 0) {
			ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			bool rd = pfd[i].revents & (POLLIN | POLLERR | POLLHUP);
			bool wr = pfd[i].revents & (POLLOUT | POLLERR | POLLHUP);
			ares_process_fd(channel, rd ? pfd[i].fd : ARES_SOCKET_BAD,
					wr ? pfd[i].fd : ARES_SOCKET_BAD);
		}
	}
	if (!a.done) {
		ares_cancel(channel); /* calls on_answer with ARES_ECANCELLED */
		return ARES_ECANCELLED;
	}
	return a.status == ARES_SUCCESS && addrs->n == 0 ? ARES_ENODATA : a.status;
}

/* ---- the connection -------------------------------------------------------------------- */

static int wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		int ms = (int)((deadline - now_mono()) * 1000);
		if (ms <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, ms);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/* A non-blocking connect, 2 s at most. Returns the fd or -1 with errno. */
static int connect_to(const struct sockaddr_storage *sa, socklen_t len)
{
	int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, len) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		int r = wait_fd(fd, POLLOUT, now_mono() + CONNECT_TIMEOUT_MS / 1000.0);
		int err = 0;
		socklen_t el = sizeof(err);
		if (r <= 0) {
			errno = r == 0 ? ETIMEDOUT : errno;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			goto fail;
		if (err) {
			errno = err;
			goto fail;
		}
	}
	return fd;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Did the server close the idle connection (or reset it)? Like libcurl's check before reuse. */
static bool closed_by_peer(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 0) <= 0)
		return false;
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

static const char *find_header(const char *head, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
		if (!strncasecmp(p + 2, name, nl) && p[2 + nl] == ':')
			return p + 3 + nl;
	return NULL;
}

static void json_field(const char *body, const char *key, char *dst, size_t size, long *num)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *p = strstr(body, pat);
	if (!p)
		return;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	if (dst && *p == '"') {
		const char *e = strchr(p + 1, '"');
		if (e && (size_t)(e - p - 1) < size) {
			memcpy(dst, p + 1, e - p - 1);
			dst[e - p - 1] = '\0';
		}
	} else if (num && *p >= '0' && *p <= '9') {
		*num = strtol(p, NULL, 10);
	}
}

/* One GET on fd. Fills r; returns false when the connection is unusable afterwards. */
static bool exchange(int fd, const struct options *o, struct result *r)
{
	char req[512], buf[16384];
	int len = snprintf(req, sizeof(req), "GET /" CLIENT " HTTP/1.1\r\nHost: %s:%s\r\n"
			   "Connection: %s\r\nUser-Agent: dnsaware-e2e-cares\r\n\r\n", o->host,
			   o->port, o->close_each ? "close" : "keep-alive");
	double deadline = now_mono() + REQUEST_TIMEOUT_MS / 1000.0;
	for (int sent = 0; sent < len;) {
		ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLOUT, deadline) <= 0) {
				set_error(r, "send: timeout");
				return false;
			}
			continue;
		}
		if (n < 0) {
			set_error(r, "send: %s", strerror(errno));
			return false;
		}
		sent += n;
	}
	size_t have = 0;
	char *body = NULL;
	long clen = -1;
	for (;;) {
		if (body && clen >= 0 && have - (body - buf) >= (size_t)clen)
			break;
		if (have + 1 >= sizeof(buf)) {
			set_error(r, "answer larger than %zu bytes", sizeof(buf));
			return false;
		}
		ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLIN, deadline) <= 0) {
				set_error(r, "recv: timeout after %d ms", REQUEST_TIMEOUT_MS);
				return false;
			}
			continue;
		}
		if (n <= 0) {
			set_error(r, "recv: %s%s", n == 0 ? "EOF (closed by the peer)" : strerror(errno),
				  have ? ", in the middle of the answer" : "");
			return false;
		}
		r->got_bytes = true;
		have += n;
		buf[have] = '\0';
		if (!body) {
			char *end = strstr(buf, "\r\n\r\n");
			if (!end)
				continue;
			*end = '\0';
			body = end + 4;
			if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
				set_error(r, "bad status line");
				return false;
			}
			const char *cl = find_header(buf, "Content-Length");
			const char *conn = find_header(buf, "Connection");
			if (!cl) {
				set_error(r, "no Content-Length");
				return false;
			}
			clen = strtol(cl, NULL, 10);
			if (clen < 0 || (size_t)clen >= sizeof(buf) - (body - buf)) {
				set_error(r, "bad Content-Length");
				return false;
			}
			r->server_closes = conn && strstr(conn, "close") != NULL;
		}
	}
	body[clen] = '\0';
	json_field(body, "backend", r->backend, sizeof(r->backend), NULL);
	json_field(body, "client_port", NULL, 0, &r->client_port);
	if (r->status != 200)
		set_error(r, "HTTP %d", r->status);
	else if (!r->backend[0])
		set_error(r, "no backend in body");
	r->ok = !r->error[0];
	return have - (body - buf) == (size_t)clen && !r->server_closes && !o->close_each;
}

/* ---- the loop -------------------------------------------------------------------------- */

struct client {
	ares_channel channel;
	struct addrs addrs;
	bool need_resolve;
	int fd;
};

/* A connection for the next request: the kept one, or a new one to the kept addresses (resolved
 * first when need_resolve). Returns false with r->error set. */
static bool ensure_connection(struct client *c, const struct options *o, struct result *r,
			      bool *resolved, bool *fresh)
{
	*fresh = false;
	if (c->fd >= 0 && closed_by_peer(c->fd)) {
		close(c->fd);
		c->fd = -1;
		c->need_resolve = true;
	}
	if (c->fd >= 0)
		return true;
	if (c->need_resolve || c->addrs.n == 0) {
		*resolved = true;
		int st = resolve(c->channel, o, &c->addrs);
		if (st != ARES_SUCCESS) {
			set_error(r, "resolve: %s", ares_strerror(st));
			return false; /* need_resolve stays: the next request resolves again */
		}
		c->need_resolve = false;
	}
	int err = 0;
	for (int i = 0; i < c->addrs.n && c->fd < 0; i++) {
		c->fd = connect_to(&c->addrs.sa[i], c->addrs.len[i]);
		err = errno;
	}
	if (c->fd < 0) {
		set_error(r, "connect: %s", strerror(err));
		c->need_resolve = true;
		return false;
	}
	*fresh = true;
	return true;
}

static void one_request(struct client *c, const struct options *o, struct result *r,
			bool *resolved, bool *retried)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		memset(r, 0, sizeof(*r));
		bool fresh;
		if (!ensure_connection(c, o, r, resolved, &fresh))
			return;
		bool keep = exchange(c->fd, o, r);
		if (keep)
			return;
		bool orderly = r->ok;  /* a complete answer, then the server's (or our) close */
		close(c->fd);
		c->fd = -1;
		if (orderly)
			return;
		c->need_resolve = true;
		if (fresh || r->got_bytes)
			return;
		*retried = true; /* a stale keep-alive connection: once more on a fresh one */
	}
}

static void emit_req(long seq, double t, double t_end, const struct result *r, bool resolved,
		     bool retried)
{
	char backend[160], error[600];
	json_string(backend, sizeof(backend), r->backend);
	json_string(error, sizeof(error), r->error);
	fprintf(out, "{\"type\": \"req\", \"seq\": %ld, \"t\": %.6f, \"t_end\": %.6f, \"ok\": %s, ",
		seq, t, t_end, r->ok ? "true" : "false");
	if (r->ok)
		fprintf(out, "\"backend\": \"%s\", \"client_port\": %ld, ", backend, r->client_port);
	else
		fprintf(out, "\"backend\": null, \"client_port\": null, \"error\": \"%s\", ", error);
	fprintf(out, "\"conn\": 0, \"slow\": false, \"resolved\": %s, \"retried\": %s}\n",
		resolved ? "true" : "false", retried ? "true" : "false");
}

static void on_signal(int sig)
{
	(void)sig;
	stop_now = 1;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct client c = {.fd = -1, .need_resolve = true};

	parse_options(argc, argv, &o);
	int st = ares_library_init(ARES_LIB_INIT_ALL);
	if (st == ARES_SUCCESS)
		st = ares_init(&c.channel); /* reads /etc/resolv.conf */
	if (st != ARES_SUCCESS) {
		fprintf(stderr, "http_cares: c-ares: %s\n", ares_strerror(st));
		return 2;
	}
	out = fopen(o.out, "a");
	if (!out) {
		fprintf(stderr, "http_cares: %s: %s\n", o.out, strerror(errno));
		return 2;
	}
	setvbuf(out, NULL, _IOLBF, 0);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	fprintf(out, "{\"type\": \"meta\", \"t\": %.6f, \"pid\": %d, \"client\": \"" CLIENT "\", "
		"\"version\": \"c-ares %s\", \"target\": \"%s:%s\"}\n", now_real(), (int)getpid(),
		ares_version(NULL), o.host, o.port);
	double interval = 1.0 / o.rate, deadline = now_mono() + o.max_duration, next = now_mono();
	for (long seq = 0;; seq++) {
		bool stop = false;
		for (;;) {
			double t = now_mono();
			if (stop_now || t >= deadline || access(o.stop_file, F_OK) == 0) {
				stop = true;
				break;
			}
			if (t >= next)
				break;
			double d = next - t < 0.05 ? next - t : 0.05;
			struct timespec ts = {0, (long)(d * 1e9)};
			nanosleep(&ts, NULL);
		}
		if (stop)
			break;
		next += interval;
		struct result r;
		bool resolved = false, retried = false;
		double t = now_real();
		one_request(&c, &o, &r, &resolved, &retried);
		emit_req(seq, t, now_real(), &r, resolved, retried);
		/* After a late request the next waits a full interval: no catch-up burst. */
		if (next < now_mono())
			next = now_mono() + interval;
	}
	if (c.fd >= 0)
		close(c.fd);
	ares_destroy(c.channel);
	ares_library_cleanup();
	fprintf(out, "{\"type\": \"end\", \"t\": %.6f}\n", now_real());
	fclose(out);
	return 0;
}
