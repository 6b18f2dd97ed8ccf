/* getaddrinfo and gethostbyname*: the program's answers, recorded as name -> addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include "log.h"
#include "names.h"
#include "real.h"
#include "runtime.h"

#define LEARN_MAX RECORDSET_MAX

static bool is_numeric_host(const char *host)
{
	struct in_addr v4;
	struct in6_addr v6;
	char literal[INET6_ADDRSTRLEN + 1];
	if (inet_aton(host, &v4))
		return true;
	/* "fe80::1%eth0": the scope does not make it a name. */
	size_t len = strcspn(host, "%");
	if (len >= sizeof literal)
		return false;
	memcpy(literal, host, len);
	literal[len] = '\0';
	return inet_pton(AF_INET6, literal, &v6) == 1;
}

static bool wanted(const char *host)
{
	return host != NULL && !runtime_inside && atomic_load_explicit(&runtime_active, memory_order_relaxed) &&
	       !is_numeric_host(host) && config_host_selected(&runtime_config, host);
}

static void learn(const char *host, const struct ip_addr *addrs, unsigned n)
{
	char name[NAME_MAX_LEN + 1];
	if (n == 0 || !names_normalize(host, name))
		return;
	runtime_settle_fork();
	sigset_t saved;
	names_lock(&saved);
	struct name_entry *entry = names_learn(name, addrs, n, runtime_now_ms());
	names_unlock(&saved);
	if (entry != NULL && log_enabled(LOG_DEBUG)) {
		char text[IP_ADDR_STRLEN];
		log_msg(LOG_DEBUG, "learned %s -> %s%s", name, ip_addr_format(&addrs[0], text), n > 1 ? " and more" : "");
	}
}

static void learn_addrinfo(const char *host, const struct addrinfo *list)
{
	struct ip_addr addrs[LEARN_MAX];
	unsigned n = 0;
	for (const struct addrinfo *ai = list; ai != NULL && n < LEARN_MAX; ai = ai->ai_next)
		if (ai->ai_addr != NULL && ip_addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &addrs[n], NULL))
			n++;
	learn(host, addrs, n);
}

static void learn_hostent(const char *host, const struct hostent *he)
{
	struct ip_addr addrs[LEARN_MAX];
	unsigned n = 0;
	if (he == NULL || he->h_addr_list == NULL)
		return;
	if (!(he->h_addrtype == AF_INET && he->h_length == 4) && !(he->h_addrtype == AF_INET6 && he->h_length == 16))
		return;
	for (char **p = he->h_addr_list; *p != NULL && n < LEARN_MAX; p++) {
		struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6};
		struct sockaddr_in sa4 = {.sin_family = AF_INET};
		bool ok;
		if (he->h_addrtype == AF_INET) {
			memcpy(&sa4.sin_addr, *p, 4);
			ok = ip_addr_from_sockaddr((struct sockaddr *)&sa4, sizeof sa4, &addrs[n], NULL);
		} else {
			memcpy(&sa6.sin6_addr, *p, 16);
			ok = ip_addr_from_sockaddr((struct sockaddr *)&sa6, sizeof sa6, &addrs[n], NULL);
		}
		if (ok)
			n++;
	}
	learn(host, addrs, n);
}

/* After a gethostbyname* call: records its answer, leaving errno (and h_errno) as libc set them. */
static void learn_hostent_result(const char *name, const struct hostent *he)
{
	if (he == NULL || !wanted(name))
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
	if (rc == 0 && (hints == NULL || !(hints->ai_flags & AI_NUMERICHOST)) && wanted(node)) {
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
