/* The torture tests' helper process (torture.h): a DNS server on the program's and the shim's ports
 * and TCP echo servers, in a process of its own so that its answers come from outside the program,
 * steered by the test through a control block in shared memory. */
#include "torture.h"

/* ---- the helper process: DNS (UDP) and TCP echo servers, controlled through shared memory ---- */

struct helper_ctl *helper;
static pid_t helper_pid;

struct helper_name *helper_add_name(const char *name, const char *ip)
{
	int i = atomic_load(&helper->name_count);
	CHECK(i < HELPER_NAMES);
	struct helper_name *h = &helper->names[i];
	snprintf(h->name, sizeof h->name, "%s", name);
	struct in_addr a;
	CHECK(inet_pton(AF_INET, ip, &a) == 1);
	atomic_store(&h->addrs[0], a.s_addr);
	atomic_store(&h->count, 1);
	atomic_store(&helper->name_count, i + 1);
	return h;
}

void helper_move(struct helper_name *h, const char *ip)
{
	struct in_addr a;
	CHECK(inet_pton(AF_INET, ip, &a) == 1);
	atomic_store(&h->addrs[0], a.s_addr);
	atomic_store(&h->count, 1);
}

void helper_listen(const char *ip, uint16_t port)
{
	CHECK(helper->listen_count < HELPER_LISTENERS);
	snprintf(helper->listen_ip[helper->listen_count], 16, "%s", ip);
	helper->listen_port[helper->listen_count++] = port;
}

/* A DNS answer to query (len bytes) in out; 0 when the query is not one to answer. */
static size_t dns_answer(const unsigned char *q, size_t len, unsigned char *out, size_t size,
			 struct helper_name **which)
{
	*which = NULL;
	if (len < 17 || size < 512)
		return 0;
	size_t off = 12;
	char name[256];
	size_t nlen = 0;
	while (off < len && q[off] != 0) {
		size_t l = q[off];
		if ((l & 0xc0) != 0 || off + 1 + l >= len || nlen + l + 1 >= sizeof name)
			return 0;
		if (nlen > 0)
			name[nlen++] = '.';
		for (size_t i = 0; i < l; i++)
			name[nlen++] = (char)tolower(q[off + 1 + i]);
		off += 1 + l;
	}
	name[nlen] = '\0';
	if (off + 5 > len)
		return 0;
	size_t qend = off + 5;
	unsigned qtype = (unsigned)(q[off + 1] << 8 | q[off + 2]);
	for (int i = 0; i < atomic_load(&helper->name_count); i++)
		if (strcmp(helper->names[i].name, name) == 0)
			*which = &helper->names[i];
	memcpy(out, q, qend);
	out[2] = (unsigned char)(0x80 | (q[2] & 0x01)); /* QR, RD copied */
	out[3] = 0x80;                                  /* RA, NOERROR */
	out[4] = 0;
	out[5] = 1;
	memset(out + 6, 0, 6);
	size_t n = qend;
	if (*which == NULL) {
		out[3] |= 3; /* NXDOMAIN */
		return n;
	}
	if (qtype != 1)
		return n; /* AAAA and the rest: no data */
	int count = atomic_load(&(*which)->count);
	for (int i = 0; i < count && i < 4; i++) {
		/* A, IN, TTL 0 (the shim re-resolves at DNSAWARE_TTL_FLOOR), 4 bytes */
		static const unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4 };
		memcpy(out + n, rr, sizeof rr);
		uint32_t a = atomic_load(&(*which)->addrs[i]);
		memcpy(out + n + sizeof rr, &a, 4);
		n += sizeof rr + 4;
	}
	out[7] = (unsigned char)count;
	return n;
}

struct pending_answer {
	uint64_t due;
	struct sockaddr_in to;
	size_t len;
	unsigned char data[512];
	struct helper_name *name;
	bool used;
};

struct echo_conn {
	int fd;
	uint64_t due;
	size_t len;
	char buf[512];
};

static __attribute__((noreturn)) void helper_main(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(0);
	int udp[2];
	uint16_t ports[2] = { DNS_GLIBC_PORT, DNS_SHIM_PORT };
	for (int i = 0; i < 2; i++) {
		udp[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_storage ss;
		socklen_t len;
		make_addr("127.0.0.1", ports[i], &ss, &len);
		CHECK(udp[i] >= 0 && bind(udp[i], (struct sockaddr *)&ss, len) == 0);
	}
	int listeners[HELPER_LISTENERS];
	for (int i = 0; i < helper->listen_count; i++)
		listeners[i] = listen_on(helper->listen_ip[i], helper->listen_port[i], 128);
	enum { CONNS = 256, PENDING = 128 };
	static struct echo_conn conns[CONNS];
	static struct pending_answer pending[PENDING];
	int nconns = 0;
	atomic_store(&helper->ready, 1);
	for (;;) {
		struct pollfd p[2 + HELPER_LISTENERS + CONNS];
		int np = 0;
		for (int i = 0; i < 2; i++)
			p[np++] = (struct pollfd){ .fd = udp[i], .events = POLLIN };
		for (int i = 0; i < helper->listen_count; i++)
			p[np++] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
		int first_conn = np;
		for (int i = 0; i < nconns; i++)
			p[np++] = (struct pollfd){ .fd = conns[i].fd, .events = conns[i].len == 0 ? POLLIN : 0 };
		uint64_t now = now_ms(), next = now + 1000;
		for (int i = 0; i < PENDING; i++)
			if (pending[i].used && pending[i].due < next)
				next = pending[i].due;
		for (int i = 0; i < nconns; i++)
			if (conns[i].len > 0 && conns[i].due < next)
				next = conns[i].due;
		poll(p, (nfds_t)np, next > now ? (int)(next - now) : 0);
		now = now_ms();
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			unsigned char q[512], a[512];
			struct sockaddr_in from;
			socklen_t flen = sizeof from;
			ssize_t n = recvfrom(udp[i], q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
			if (n <= 0)
				continue;
			struct helper_name *h;
			size_t alen = dns_answer(q, (size_t)n, a, sizeof a, &h);
			if (alen == 0)
				continue;
			int delay = 0;
			if (i == 1 && h != NULL) {
				atomic_fetch_add(&h->shim_queries, 1);
				if (atomic_load(&h->shim_drop)) {
					atomic_fetch_add(&helper->shim_pending, 1);
					continue;
				}
				delay = atomic_load(&h->shim_delay_ms);
			} else if (h != NULL) {
				atomic_fetch_add(&h->glibc_queries, 1);
			}
			if (delay == 0) {
				sendto(udp[i], a, alen, 0, (struct sockaddr *)&from, flen);
				if (i == 1 && h != NULL)
					atomic_fetch_add(&h->shim_answered, 1);
				continue;
			}
			for (int k = 0; k < PENDING; k++) {
				if (pending[k].used)
					continue;
				pending[k] = (struct pending_answer){ .due = now + (uint64_t)delay, .to = from, .len = alen,
								       .name = h, .used = true };
				memcpy(pending[k].data, a, alen);
				atomic_fetch_add(&helper->shim_pending, 1);
				break;
			}
		}
		for (int k = 0; k < PENDING; k++) {
			if (!pending[k].used || pending[k].due > now)
				continue;
			/* Answers the set of now, not of when asked (the move is what the test waits for). */
			struct pending_answer *pa = &pending[k];
			unsigned char fresh[512];
			struct helper_name *h;
			size_t alen = dns_answer(pa->data, pa->len, fresh, sizeof fresh, &h);
			sendto(udp[1], fresh, alen ? alen : pa->len, 0, (struct sockaddr *)&pa->to, sizeof pa->to);
			pa->used = false;
			atomic_fetch_sub(&helper->shim_pending, 1);
			if (h != NULL)
				atomic_fetch_add(&h->shim_answered, 1);
		}
		for (int i = 0; i < helper->listen_count; i++) {
			if (!(p[2 + i].revents & POLLIN))
				continue;
			int c = accept4(listeners[i], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (c < 0)
				continue;
			atomic_fetch_add(&helper->accepted, 1);
			if (nconns == CONNS) {
				close(c);
				continue;
			}
			conns[nconns++] = (struct echo_conn){ .fd = c };
		}
		for (int i = first_conn; i < np; i++) {
			struct echo_conn *c = &conns[i - first_conn];
			if (c->len > 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = recv(c->fd, c->buf, sizeof c->buf, 0);
			if (n > 0) {
				c->len = (size_t)n;
				c->due = now + 12; /* a real server takes time (see common.h's exchange) */
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(c->fd);
				c->fd = -1;
			}
		}
		for (int i = 0; i < nconns; i++) {
			struct echo_conn *c = &conns[i];
			if (c->fd >= 0 && c->len > 0 && c->due <= now) {
				if (send(c->fd, c->buf, c->len, MSG_NOSIGNAL) != (ssize_t)c->len) {
					close(c->fd);
					c->fd = -1;
				}
				c->len = 0;
			}
		}
		int kept = 0;
		for (int i = 0; i < nconns; i++)
			if (conns[i].fd >= 0)
				conns[kept++] = conns[i];
		nconns = kept;
	}
}

int helper_fd = -1;

void helper_init(void)
{
	helper_fd = memfd_create("dnsaware-torture-helper", 0);
	CHECK(helper_fd >= 0);
	CHECK(ftruncate(helper_fd, sizeof *helper) == 0);
	helper = mmap(NULL, sizeof *helper, PROT_READ | PROT_WRITE, MAP_SHARED, helper_fd, 0);
	CHECK(helper != MAP_FAILED);
}

void helper_attach(int fd)
{
	helper_fd = fd;
	helper = mmap(NULL, sizeof *helper, PROT_READ | PROT_WRITE, MAP_SHARED, helper_fd, 0);
	CHECK(helper != MAP_FAILED);
}

struct helper_name *helper_find(const char *name)
{
	for (int i = 0; i < atomic_load(&helper->name_count); i++)
		if (strcmp(helper->names[i].name, name) == 0)
			return &helper->names[i];
	fail_at(__FILE__, __LINE__, "the helper has no name %s", name);
}

bool wait_counter(_Atomic unsigned *counter, unsigned want, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	while (atomic_load(counter) < want) {
		if (now_ms() >= end)
			return false;
		sleep_ms(2);
	}
	return true;
}

void helper_start(void)
{
	helper_pid = fork();
	CHECK(helper_pid >= 0);
	if (helper_pid == 0) {
		t_name = "dns/echo helper";
		helper_main();
	}
	uint64_t end = now_ms() + 3000;
	while (!atomic_load(&helper->ready)) {
		CHECKF(now_ms() < end, "the helper process did not start");
		sleep_ms(2);
	}
}
