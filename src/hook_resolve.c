/* getaddrinfo and gethostbyname*: the program's answers, recorded as name -> addresses. */
#include <errno.h>
#include <netdb.h>

#include "learn.h"
#include "names.h"
#include "real.h"
#include "runtime.h"

#define LEARN_MAX RECORDSET_MAX

static void learn_addrinfo(const char *host, const struct addrinfo *list)
{
	struct ip_addr addrs[LEARN_MAX];
	unsigned n = 0;
	for (const struct addrinfo *ai = list; ai != NULL && n < LEARN_MAX; ai = ai->ai_next)
		if (ai->ai_addr != NULL && ip_addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &addrs[n], NULL))
			n++;
	learn_record(host, addrs, n, STATS_LEARN_GETADDRINFO, LEARN_TTL_UNKNOWN);
}

static void learn_hostent(const char *host, const struct hostent *he)
{
	struct ip_addr addrs[LEARN_MAX];
	unsigned n = 0;
	if (he == NULL || he->h_addr_list == NULL)
		return;
	if (!(he->h_addrtype == AF_INET && he->h_length == 4) && !(he->h_addrtype == AF_INET6 && he->h_length == 16))
		return;
	for (char **p = he->h_addr_list; *p != NULL && n < LEARN_MAX; p++)
		if (ip_addr_from_bytes(he->h_addrtype, *p, &addrs[n]))
			n++;
	learn_record(host, addrs, n, STATS_LEARN_GETHOSTBYNAME, LEARN_TTL_UNKNOWN);
}

/* After a gethostbyname* call: records its answer, leaving errno (and h_errno) as libc set them. */
static void learn_hostent_result(const char *name, const struct hostent *he)
{
	if (he == NULL || !learn_wanted(name))
		return;
	int saved_errno = errno;
	learn_hostent(name, he);
	errno = saved_errno;
}

__attribute__((visibility("default"))) int getaddrinfo(const char *node, const char *service,
							const struct addrinfo *hints, struct addrinfo **res)
{
	runtime_init();
	bool was_inside = runtime_inside;
	runtime_inside = true;
	int rc = REAL(getaddrinfo)(node, service, hints, res);
	runtime_inside = was_inside;
	if (rc == 0 && (hints == NULL || !(hints->ai_flags & AI_NUMERICHOST)) && learn_wanted(node)) {
		int saved_errno = errno;
		learn_addrinfo(node, *res);
		errno = saved_errno;
	}
	return rc;
}

__attribute__((visibility("default"))) struct hostent *gethostbyname(const char *name)
{
	runtime_init();
	bool was_inside = runtime_inside;
	runtime_inside = true;
	struct hostent *he = REAL(gethostbyname)(name);
	runtime_inside = was_inside;
	learn_hostent_result(name, he);
	return he;
}

__attribute__((visibility("default"))) struct hostent *gethostbyname2(const char *name, int af)
{
	runtime_init();
	bool was_inside = runtime_inside;
	runtime_inside = true;
	struct hostent *he = REAL(gethostbyname2)(name, af);
	runtime_inside = was_inside;
	learn_hostent_result(name, he);
	return he;
}

__attribute__((visibility("default"))) int gethostbyname_r(const char *name, struct hostent *ret, char *buf,
							    size_t buflen, struct hostent **result, int *h_errnop)
{
	runtime_init();
	bool was_inside = runtime_inside;
	runtime_inside = true;
	int rc = REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
	runtime_inside = was_inside;
	if (rc == 0 && result != NULL)
		learn_hostent_result(name, *result);
	return rc;
}

__attribute__((visibility("default"))) int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
							     size_t buflen, struct hostent **result, int *h_errnop)
{
	runtime_init();
	bool was_inside = runtime_inside;
	runtime_inside = true;
	int rc = REAL(gethostbyname2_r)(name, af, ret, buf, buflen, result, h_errnop);
	runtime_inside = was_inside;
	if (rc == 0 && result != NULL)
		learn_hostent_result(name, *result);
	return rc;
}
