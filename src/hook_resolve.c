/* getaddrinfo and gethostbyname*: the program's answers, recorded as name -> addresses, and its
 * lookups of names it asked for before run through the stale-answer store (stale_lookup.h). */
#include <errno.h>
#include <netdb.h>

#include "learn.h"
#include "names.h"
#include "real.h"
#include "runtime.h"
#include "stale_lookup.h"

#define LEARN_MAX RECORDSET_MAX

static void learn_addrinfo(const char *host, const struct addrinfo *list, bool kept)
{
	struct ip_addr addrs[LEARN_MAX];
	unsigned n = 0;
	for (const struct addrinfo *ai = list; ai != NULL && n < LEARN_MAX; ai = ai->ai_next)
		if (ai->ai_addr != NULL && ip_addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &addrs[n], NULL))
			n++;
	if (kept)
		learn_record_repeated(host, addrs, n, STATS_LEARN_GETADDRINFO);
	else
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

/* After a lookup: records its answer, leaving errno (and h_errno) as the call left them. */
static void learn_hostent_result(const char *name, const struct hostent *he)
{
	if (he == NULL)
		return;
	int saved_errno = errno;
	learn_hostent(name, he);
	errno = saved_errno;
}

static enum lookup_outcome hostent_outcome(int h_error)
{
	if (h_error == TRY_AGAIN)
		return LOOKUP_TEMPORARY;
	return h_error == HOST_NOT_FOUND || h_error == NO_DATA ? LOOKUP_NEGATIVE : LOOKUP_OTHER;
}

/* What a kept hostent answer must give back besides itself is what glibc's call gave with it:
 * errno (0, or ERANGE for a small buffer: the _r forms end with __set_errno of the value they
 * return) and the h_errno value (h_errno, or the _r forms' *h_errnop), which depends on the
 * sources asked and on the call (glibc 2.36: a name in /etc/hosts leaves HOST_NOT_FOUND with its
 * answer; for one DNS answer, gethostbyname leaves h_errno HOST_NOT_FOUND and gethostbyname_r
 * *h_errnop 0, as preload test stale-hostent measures): so the _r forms keep answers of their own
 * (LOOKUP_HOSTENT_R), and
 * the real call runs with the value set to one no call of glibc's gives, which tells whether the
 * call set it. Kept with the answer; GAI_COPY_H_ERROR_UNSET: the call left it alone. */
#define H_ERRNO_UNTOUCHED (-7777)

static int8_t kept_h_error(int value)
{
	if (value == H_ERRNO_UNTOUCHED || value < INT8_MIN + 1 || value > INT8_MAX)
		return GAI_COPY_H_ERROR_UNSET;
	return (int8_t)value;
}

/* ---- getaddrinfo ---- */

struct gai_call {
	struct lookup_call base;
	const char *service;
	const struct addrinfo *hints;
	struct addrinfo **res;
	int rc;
};

static int real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
			    struct addrinfo **res)
{
	bool was_inside = runtime_inside;
	runtime_inside = true;
	int rc = REAL(getaddrinfo)(node, service, hints, res);
	runtime_inside = was_inside;
	return rc;
}

static enum lookup_outcome gai_ask(struct lookup_call *base)
{
	struct gai_call *call = (struct gai_call *)base;
	call->rc = real_getaddrinfo(base->node, call->service, call->hints, call->res);
	switch (call->rc) {
	case 0:
		return LOOKUP_GOOD;
	case EAI_AGAIN:
		return LOOKUP_TEMPORARY;
	case EAI_NONAME:
	case EAI_NODATA:
		return LOOKUP_NEGATIVE;
	default:
		return LOOKUP_OTHER;
	}
}

static bool gai_keep(struct lookup_call *base, struct gai_copy *out)
{
	struct gai_call *call = (struct gai_call *)base;
	return gai_copy_from_addrinfo(*call->res, out);
}

static bool gai_serve(struct lookup_call *base, const struct gai_copy *answer)
{
	struct gai_call *call = (struct gai_call *)base;
	struct addrinfo *list = gai_copy_to_addrinfo(answer);
	if (list == NULL)
		return false;
	*call->res = list;
	call->rc = 0;
	return true;
}

__attribute__((visibility("default"))) int getaddrinfo(const char *node, const char *service,
							const struct addrinfo *hints, struct addrinfo **res)
{
	runtime_init();
	struct gai_call call = {.base = {.node = node, .ask = gai_ask, .keep = gai_keep, .serve = gai_serve},
				.service = service, .hints = hints, .res = res};
	if (!learn_wanted(node) || res == NULL)
		return real_getaddrinfo(node, service, hints, res);
	/* A shape that cannot be kept (a service name too long; AI_NUMERICHOST, which only a
	 * numeric host passes) is asked and learned as before. */
	if (lookup_key_for_getaddrinfo(node, service, hints, 0, &call.base.key))
		stale_lookup_run(&call.base);
	else
		gai_ask(&call.base);
	if (call.rc == 0) {
		int saved_errno = errno;
		learn_addrinfo(node, *res, call.base.served_kept);
		errno = saved_errno;
	}
	return call.rc;
}

/* ---- gethostbyname, gethostbyname2 ---- */

/* Where a kept answer is laid out for the non-reentrant calls, as glibc keeps one per function. */
struct hostent_static {
	struct hostent he;
	char buf[2 * sizeof(struct gai_copy)];
};

struct hostent_call {
	struct lookup_call base;
	int af;
	bool with_family; /* gethostbyname2 */
	struct hostent_static *kept;
	struct hostent *he;
	int8_t h_error; /* the real call's, as kept_h_error gives it */
	bool served;    /* he is a kept answer */
	int8_t served_h_error;
};

static enum lookup_outcome hostent_ask(struct lookup_call *base)
{
	struct hostent_call *call = (struct hostent_call *)base;
	bool was_inside = runtime_inside;
	runtime_inside = true;
	int before = h_errno;
	h_errno = H_ERRNO_UNTOUCHED;
	call->he = call->with_family ? REAL(gethostbyname2)(base->node, call->af) : REAL(gethostbyname)(base->node);
	int after = h_errno;
	runtime_inside = was_inside;
	if (after == H_ERRNO_UNTOUCHED)
		h_errno = before;
	call->h_error = kept_h_error(after);
	return call->he != NULL ? LOOKUP_GOOD : hostent_outcome(h_errno);
}

static bool hostent_keep(struct lookup_call *base, struct gai_copy *out)
{
	struct hostent_call *call = (struct hostent_call *)base;
	if (!gai_copy_from_hostent(call->he, out))
		return false;
	out->h_error = call->h_error;
	return true;
}

static bool hostent_serve(struct lookup_call *base, const struct gai_copy *answer)
{
	struct hostent_call *call = (struct hostent_call *)base;
	if (gai_copy_to_hostent(answer, &call->kept->he, call->kept->buf, sizeof call->kept->buf) != 0)
		return false;
	call->he = &call->kept->he;
	call->served = true;
	call->served_h_error = answer->h_error;
	return true;
}

static struct hostent *hostent_lookup(const char *name, int af, bool with_family, struct hostent_static *kept)
{
	struct hostent_call call = {.base = {.node = name, .ask = hostent_ask, .keep = hostent_keep, .serve = hostent_serve},
				    .af = af, .with_family = with_family, .kept = kept};
	if (learn_wanted(name) && lookup_key_for_hostent(name, af, false, 0, &call.base.key))
		stale_lookup_run(&call.base);
	else
		hostent_ask(&call.base);
	if (learn_wanted(name))
		learn_hostent_result(name, call.he);
	/* errno and h_errno as glibc's call leaves them with this answer (above kept_h_error). */
	if (call.served) {
		if (call.served_h_error != GAI_COPY_H_ERROR_UNSET)
			h_errno = call.served_h_error;
		errno = 0;
	}
	return call.he;
}

__attribute__((visibility("default"))) struct hostent *gethostbyname(const char *name)
{
	static struct hostent_static kept;
	runtime_init();
	return hostent_lookup(name, AF_INET, false, &kept);
}

__attribute__((visibility("default"))) struct hostent *gethostbyname2(const char *name, int af)
{
	static struct hostent_static kept;
	runtime_init();
	return hostent_lookup(name, af, true, &kept);
}

/* ---- gethostbyname_r, gethostbyname2_r ---- */

struct hostent_r_call {
	struct lookup_call base;
	int af;
	bool with_family;
	struct hostent *ret;
	char *buf;
	size_t buflen;
	struct hostent **result;
	int *h_errnop;
	int rc;
	int8_t h_error; /* the real call's *h_errnop, as kept_h_error gives it */
	bool served;    /* rc and the result come from a kept answer */
};

static enum lookup_outcome hostent_r_ask(struct lookup_call *base)
{
	struct hostent_r_call *call = (struct hostent_r_call *)base;
	bool was_inside = runtime_inside;
	runtime_inside = true;
	int before = *call->h_errnop;
	*call->h_errnop = H_ERRNO_UNTOUCHED;
	call->rc = call->with_family ? REAL(gethostbyname2_r)(base->node, call->af, call->ret, call->buf, call->buflen,
							      call->result, call->h_errnop)
				     : REAL(gethostbyname_r)(base->node, call->ret, call->buf, call->buflen, call->result,
							     call->h_errnop);
	runtime_inside = was_inside;
	call->h_error = kept_h_error(*call->h_errnop);
	if (*call->h_errnop == H_ERRNO_UNTOUCHED)
		*call->h_errnop = before;
	if (call->rc == 0 && *call->result != NULL)
		return LOOKUP_GOOD;
	/* ERANGE: the program asks again with a larger buffer; nothing failed. */
	if (call->rc == ERANGE)
		return LOOKUP_OTHER;
	return hostent_outcome(*call->h_errnop);
}

static bool hostent_r_keep(struct lookup_call *base, struct gai_copy *out)
{
	struct hostent_r_call *call = (struct hostent_r_call *)base;
	if (!gai_copy_from_hostent(*call->result, out))
		return false;
	out->h_error = call->h_error;
	return true;
}

static bool hostent_r_serve(struct lookup_call *base, const struct gai_copy *answer)
{
	struct hostent_r_call *call = (struct hostent_r_call *)base;
	int rc = gai_copy_to_hostent(answer, call->ret, call->buf, call->buflen);
	if (rc == EINVAL)
		return false;
	/* Too small a buffer is answered as glibc answers it: the program retries with a larger one. */
	call->rc = rc;
	call->served = true;
	*call->result = rc == 0 ? call->ret : NULL;
	if (rc != 0)
		*call->h_errnop = NETDB_INTERNAL;
	else if (answer->h_error != GAI_COPY_H_ERROR_UNSET)
		*call->h_errnop = answer->h_error;
	return true;
}

static int hostent_r_lookup(struct hostent_r_call *call)
{
	const char *name = call->base.node;
	if (learn_wanted(name) && lookup_key_for_hostent(name, call->af, true, 0, &call->base.key))
		stale_lookup_run(&call->base);
	else
		hostent_r_ask(&call->base);
	if (call->rc == 0 && call->result != NULL && learn_wanted(name))
		learn_hostent_result(name, *call->result);
	/* errno as glibc's call leaves it: the value it returns, 0 or ERANGE (getXXbyYY_r.c sets
	 * errno to it); a program may test errno == ERANGE rather than the returned value. */
	if (call->served)
		errno = call->rc;
	return call->rc;
}

__attribute__((visibility("default"))) int gethostbyname_r(const char *name, struct hostent *ret, char *buf,
							    size_t buflen, struct hostent **result, int *h_errnop)
{
	runtime_init();
	struct hostent_r_call call = {.base = {.node = name, .ask = hostent_r_ask, .keep = hostent_r_keep,
					       .serve = hostent_r_serve},
				      .af = AF_INET, .ret = ret, .buf = buf, .buflen = buflen, .result = result,
				      .h_errnop = h_errnop};
	return hostent_r_lookup(&call);
}

__attribute__((visibility("default"))) int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
							     size_t buflen, struct hostent **result, int *h_errnop)
{
	runtime_init();
	struct hostent_r_call call = {.base = {.node = name, .ask = hostent_r_ask, .keep = hostent_r_keep,
					       .serve = hostent_r_serve},
				      .af = af, .with_family = true, .ret = ret, .buf = buf, .buflen = buflen,
				      .result = result, .h_errnop = h_errnop};
	return hostent_r_lookup(&call);
}
