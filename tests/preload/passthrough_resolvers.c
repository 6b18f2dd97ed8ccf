/* The resolver hooks against libc's own getaddrinfo and gethostbyname* (dlsym in libc.so.6): the
 * same code, list, errno and h_errno, whether or not the shim is there. */
#include "passthrough.h"

#include <dlfcn.h>
#include <limits.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
typedef struct hostent *(*ghbn_fn)(const char *);
typedef struct hostent *(*ghbn2_fn)(const char *, int);
typedef int (*ghbnr_fn)(const char *, struct hostent *, char *, size_t, struct hostent **, int *);
typedef int (*ghbn2r_fn)(const char *, int, struct hostent *, char *, size_t, struct hostent **, int *);

static gai_fn real_getaddrinfo;
static ghbn_fn real_gethostbyname;
static ghbn2_fn real_gethostbyname2;
static ghbnr_fn real_gethostbyname_r;
static ghbn2r_fn real_gethostbyname2_r;

static void load_real(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	CHECK(libc != NULL);
	CHECK((real_getaddrinfo = (gai_fn)dlsym(libc, "getaddrinfo")) != NULL);
	CHECK((real_gethostbyname = (ghbn_fn)dlsym(libc, "gethostbyname")) != NULL);
	CHECK((real_gethostbyname2 = (ghbn2_fn)dlsym(libc, "gethostbyname2")) != NULL);
	CHECK((real_gethostbyname_r = (ghbnr_fn)dlsym(libc, "gethostbyname_r")) != NULL);
	CHECK((real_gethostbyname2_r = (ghbn2r_fn)dlsym(libc, "gethostbyname2_r")) != NULL);
	/* the program's own symbol must be the interposed one when preloaded (sanity of the set-up) */
	if (getenv("LD_PRELOAD") != NULL && strstr(getenv("LD_PRELOAD"), "dnsaware") != NULL &&
	    getenv("DNSAWARE_DISABLE") == NULL)
		CHECKF((void *)real_getaddrinfo != (void *)getaddrinfo, "getaddrinfo is not interposed");
}

static void cmp_addrinfo(const struct addrinfo *a, const struct addrinfo *b, const char *what)
{
	int i = 0;
	for (; a != NULL && b != NULL; a = a->ai_next, b = b->ai_next, i++) {
		CHECKF(a->ai_flags == b->ai_flags && a->ai_family == b->ai_family && a->ai_socktype == b->ai_socktype &&
			       a->ai_protocol == b->ai_protocol && a->ai_addrlen == b->ai_addrlen,
		       "%s: entry %d differs", what, i);
		CHECKF(memcmp(a->ai_addr, b->ai_addr, a->ai_addrlen) == 0, "%s: entry %d address differs", what, i);
		CHECKF((a->ai_canonname == NULL) == (b->ai_canonname == NULL) &&
			       (a->ai_canonname == NULL || strcmp(a->ai_canonname, b->ai_canonname) == 0),
		       "%s: entry %d canonname differs", what, i);
	}
	CHECKF(a == NULL && b == NULL, "%s: lists differ in length", what);
}

/* getaddrinfo returns what libc's returns: same code, same list, same errno; want_rc is the
 * code expected from glibc itself (or INT_MIN when it depends on the system). */
static void gai_case(const char *node, const char *service, const struct addrinfo *hints, int want_rc)
{
	char what[256];
	snprintf(what, sizeof what, "getaddrinfo(%s, %s, %s)", node ? node : "NULL", service ? service : "NULL",
		 hints ? "hints" : "NULL");
	struct addrinfo *ra = NULL, *hb = NULL;
	errno = SENTINEL_ERRNO;
	int rc_real = real_getaddrinfo(node, service, hints, &ra);
	int e_real = errno;
	errno = SENTINEL_ERRNO;
	int rc_hook = getaddrinfo(node, service, hints, &hb);
	int e_hook = errno;
	CHECKF(rc_hook == rc_real, "%s: returned %d (%s), libc returns %d (%s)", what, rc_hook, gai_strerror(rc_hook),
	       rc_real, gai_strerror(rc_real));
	if (want_rc != INT_MIN)
		CHECKF(rc_hook == want_rc, "%s: returned %d (%s), expected %d (%s)", what, rc_hook,
		       gai_strerror(rc_hook), want_rc, gai_strerror(want_rc));
	CHECKF(e_hook == e_real, "%s: errno %d after the call, libc leaves %d", what, e_hook, e_real);
	if (rc_real == 0)
		cmp_addrinfo(ra, hb, what);
	if (ra)
		freeaddrinfo(ra);
	if (hb)
		freeaddrinfo(hb);
}

struct hcopy {
	bool null;
	char name[256];
	int naliases;
	char aliases[8][256];
	int type, len, naddrs;
	unsigned char addrs[16][16];
	int h_err, err;
};

static void hcopy(struct hcopy *c, const struct hostent *he, int err)
{
	memset(c, 0, sizeof *c);
	c->h_err = h_errno;
	c->err = err;
	c->null = he == NULL;
	if (he == NULL)
		return;
	snprintf(c->name, sizeof c->name, "%s", he->h_name);
	for (int i = 0; he->h_aliases[i] != NULL && i < 8; i++, c->naliases++)
		snprintf(c->aliases[i], sizeof c->aliases[i], "%s", he->h_aliases[i]);
	c->type = he->h_addrtype;
	c->len = he->h_length;
	for (int i = 0; he->h_addr_list[i] != NULL && i < 16; i++, c->naddrs++)
		memcpy(c->addrs[i], he->h_addr_list[i], (size_t)he->h_length);
}

static void hcmp(const struct hcopy *a, const struct hcopy *b, const char *what)
{
	CHECKF(a->null == b->null, "%s: %s, libc: %s", what, b->null ? "NULL" : "hostent", a->null ? "NULL" : "hostent");
	CHECKF(a->h_err == b->h_err, "%s: h_errno %d, libc %d", what, b->h_err, a->h_err);
	CHECKF(a->err == b->err, "%s: errno %d, libc %d", what, b->err, a->err);
	if (a->null)
		return;
	CHECKF(strcmp(a->name, b->name) == 0 && a->type == b->type && a->len == b->len, "%s: hostent differs", what);
	CHECKF(a->naliases == b->naliases && a->naddrs == b->naddrs, "%s: list lengths differ", what);
	for (int i = 0; i < a->naliases; i++)
		CHECKF(strcmp(a->aliases[i], b->aliases[i]) == 0, "%s: alias %d differs", what, i);
	for (int i = 0; i < a->naddrs; i++)
		CHECKF(memcmp(a->addrs[i], b->addrs[i], (size_t)a->len) == 0, "%s: address %d differs", what, i);
}

static void ghbn_case(const char *name)
{
	struct hcopy a, b;
	char what[256];
	snprintf(what, sizeof what, "gethostbyname(%s)", name);
	h_errno = 0;
	errno = SENTINEL_ERRNO;
	struct hostent *he = real_gethostbyname(name);
	hcopy(&a, he, errno);
	h_errno = 0;
	errno = SENTINEL_ERRNO;
	he = gethostbyname(name);
	hcopy(&b, he, errno);
	hcmp(&a, &b, what);
}

static void ghbn2_case(const char *name, int af)
{
	struct hcopy a, b;
	char what[256];
	snprintf(what, sizeof what, "gethostbyname2(%s, %d)", name, af);
	h_errno = 0;
	errno = SENTINEL_ERRNO;
	struct hostent *he = real_gethostbyname2(name, af);
	hcopy(&a, he, errno);
	h_errno = 0;
	errno = SENTINEL_ERRNO;
	he = gethostbyname2(name, af);
	hcopy(&b, he, errno);
	hcmp(&a, &b, what);
}

/* af < 0: gethostbyname_r, else gethostbyname2_r. */
static void ghbnr_case(const char *name, int af, size_t buflen)
{
	static char buf1[8192], buf2[8192];
	struct hostent he1, he2, *r1 = (struct hostent *)1, *r2 = (struct hostent *)1;
	int herr1 = -7, herr2 = -7, rc1, rc2, e1, e2;
	char what[256];
	snprintf(what, sizeof what, "gethostbyname%s_r(%s, %d, buflen %zu)", af < 0 ? "" : "2", name, af, buflen);
	errno = SENTINEL_ERRNO;
	rc1 = af < 0 ? real_gethostbyname_r(name, &he1, buf1, buflen, &r1, &herr1)
		     : real_gethostbyname2_r(name, af, &he1, buf1, buflen, &r1, &herr1);
	e1 = errno;
	errno = SENTINEL_ERRNO;
	rc2 = af < 0 ? gethostbyname_r(name, &he2, buf2, buflen, &r2, &herr2)
		     : gethostbyname2_r(name, af, &he2, buf2, buflen, &r2, &herr2);
	e2 = errno;
	CHECKF(rc1 == rc2, "%s: returned %d, libc %d", what, rc2, rc1);
	CHECKF(e1 == e2, "%s: errno %d, libc %d", what, e2, e1);
	CHECKF(herr1 == herr2, "%s: *h_errnop %d, libc %d", what, herr2, herr1);
	CHECKF((r1 == NULL) == (r2 == NULL), "%s: *result %p, libc %p", what, (void *)r2, (void *)r1);
	if (r1 != NULL) {
		CHECKF(r1 == &he1 && r2 == &he2, "%s: *result does not point at the caller's hostent", what);
		struct hcopy a, b;
		hcopy(&a, &he1, 0);
		hcopy(&b, &he2, 0);
		a.h_err = b.h_err = 0;
		hcmp(&a, &b, what);
	}
}

void test_resolvers(void)
{
	load_real();
	struct addrinfo h;

	/* warm-up: the first call in a process loads NSS modules and may touch errno differently */
	struct addrinfo *warm = NULL;
	if (real_getaddrinfo("localhost", NULL, NULL, &warm) == 0)
		freeaddrinfo(warm);
	real_gethostbyname("localhost");

	memset(&h, 0, sizeof h);
	h.ai_family = AF_INET;
	h.ai_socktype = SOCK_STREAM;
	gai_case("localhost", "80", &h, 0);
	gai_case("localhost", NULL, NULL, 0); /* NULL hints */
	memset(&h, 0, sizeof h);
	h.ai_flags = AI_CANONNAME;
	gai_case("localhost", "80", &h, 0);
	memset(&h, 0, sizeof h);
	h.ai_flags = AI_ADDRCONFIG;
	h.ai_socktype = SOCK_STREAM;
	gai_case("localhost", "443", &h, INT_MIN);
	/* numeric hosts */
	memset(&h, 0, sizeof h);
	h.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	gai_case("127.0.0.1", "8080", &h, 0);
	gai_case("::1", "8080", &h, 0);
	gai_case("127.0.0.2", NULL, NULL, 0);
	gai_case("::1", NULL, NULL, 0);
	/* passive / no host */
	memset(&h, 0, sizeof h);
	h.ai_flags = AI_PASSIVE;
	h.ai_socktype = SOCK_STREAM;
	gai_case(NULL, "80", &h, 0);
	/* errors */
	gai_case(NULL, NULL, NULL, EAI_NONAME);
	memset(&h, 0, sizeof h);
	h.ai_flags = AI_NUMERICHOST;
	gai_case("localhost", NULL, &h, EAI_NONAME); /* a name where a number is required */
	gai_case("no-such-host.invalid", NULL, NULL, INT_MIN); /* unknown name: EAI_NONAME (or EAI_AGAIN offline) */
	memset(&h, 0, sizeof h);
	h.ai_socktype = SOCK_STREAM;
	gai_case("localhost", "no-such-service-dnsaware", &h, EAI_SERVICE);
	memset(&h, 0, sizeof h);
	h.ai_family = 12345;
	gai_case("localhost", "80", &h, EAI_FAMILY);
	memset(&h, 0, sizeof h);
	h.ai_flags = 0x40000000;
	gai_case("localhost", "80", &h, EAI_BADFLAGS);
	memset(&h, 0, sizeof h);
	h.ai_flags = AI_CANONNAME;
	gai_case(NULL, "80", &h, EAI_BADFLAGS);
	memset(&h, 0, sizeof h);
	h.ai_socktype = 12345;
	gai_case("localhost", "80", &h, EAI_SOCKTYPE);

	/* and the answers are the expected ones, independently of libc comparison */
	{
		struct addrinfo *res = NULL;
		memset(&h, 0, sizeof h);
		h.ai_family = AF_INET;
		h.ai_socktype = SOCK_STREAM;
		CHECK(getaddrinfo("localhost", "80", &h, &res) == 0);
		CHECK(res->ai_family == AF_INET);
		struct sockaddr_in *a = (struct sockaddr_in *)res->ai_addr;
		CHECK(a->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && a->sin_port == htons(80));
		freeaddrinfo(res);
	}

	ghbn_case("localhost");
	ghbn_case("127.0.0.1");
	ghbn_case("no-such-host.invalid");
	ghbn2_case("localhost", AF_INET);
	ghbn2_case("localhost", AF_INET6);
	ghbn2_case("::1", AF_INET6);
	ghbn2_case("localhost", AF_UNIX); /* EAFNOSUPPORT */
	{
		h_errno = 0;
		struct hostent *he = gethostbyname("localhost");
		CHECK(he != NULL && he->h_addrtype == AF_INET && he->h_addr_list[0] != NULL);
		CHECK(memcmp(he->h_addr_list[0], "\x7f\x00\x00\x01", 4) == 0);
	}
	ghbnr_case("localhost", -1, 8192);
	ghbnr_case("localhost", -1, 8); /* ERANGE */
	ghbnr_case("127.0.0.1", -1, 8192);
	ghbnr_case("no-such-host.invalid", -1, 8192);
	ghbnr_case("localhost", AF_INET, 8192);
	ghbnr_case("localhost", AF_INET, 8); /* ERANGE */
	ghbnr_case("localhost", AF_INET6, 8192);
	ghbnr_case("::1", AF_INET6, 8192);
	ghbnr_case("localhost", AF_UNIX, 8192);
	{
		static char tiny[8];
		struct hostent he, *res = (struct hostent *)1;
		int herr = 0;
		CHECK(gethostbyname_r("localhost", &he, tiny, sizeof tiny, &res, &herr) == ERANGE);
		CHECK(res == NULL);
		CHECK(gethostbyname2_r("localhost", AF_INET, &he, tiny, sizeof tiny, &res, &herr) == ERANGE);
		CHECK(res == NULL);
		static char big[8192];
		CHECK(gethostbyname_r("localhost", &he, big, sizeof big, &res, &herr) == 0 && res == &he);
		CHECK(he.h_addrtype == AF_INET && memcmp(he.h_addr_list[0], "\x7f\x00\x00\x01", 4) == 0);
	}
}
