/* The query shape a kept answer belongs to (lookup_key.c): what makes two lookups the same (node
 * without case, glibc's default hints), what makes them different (every field of the shape, the
 * resolver context, the call), and which calls have no key at all. */
#include <criterion/criterion.h>

#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include "lookup_key.h"

static struct lookup_key gai_key(const char *node, const char *service, const struct addrinfo *hints, uint64_t context)
{
	struct lookup_key key;

	cr_assert(lookup_key_for_getaddrinfo(node, service, hints, context, &key), "no key for %s", node);
	return key;
}

static void assert_same(const struct lookup_key *a, const struct lookup_key *b)
{
	cr_assert(lookup_key_equal(a, b));
	cr_assert(lookup_key_equal(b, a));
	cr_assert_eq(lookup_key_hash(a), lookup_key_hash(b));
}

/* Different keys, and (for these cases) different hashes. */
static void assert_differ(const struct lookup_key *a, const struct lookup_key *b, const char *what)
{
	cr_assert_not(lookup_key_equal(a, b), "%s: equal keys", what);
	cr_assert_not(lookup_key_equal(b, a), "%s: equal keys", what);
	cr_assert_neq(lookup_key_hash(a), lookup_key_hash(b), "%s: same hash", what);
}

static const struct addrinfo stream_v4 = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};

Test(same, node_case_folded)
{
	struct lookup_key a = gai_key("SVC.Test", "443", &stream_v4, 7);
	struct lookup_key b = gai_key("svc.test", "443", &stream_v4, 7);

	assert_same(&a, &b);
	cr_assert_str_eq(a.node, "svc.test");
}

Test(same, service_not_case_folded)
{
	/* Service names are looked up as given (/etc/services is case-sensitive). */
	struct lookup_key a = gai_key("svc.test", "HTTP", &stream_v4, 0);
	struct lookup_key b = gai_key("svc.test", "http", &stream_v4, 0);

	assert_differ(&a, &b, "service case");
}

Test(same, null_hints_are_glibc_defaults)
{
	struct addrinfo defaults = {.ai_family = AF_UNSPEC, .ai_flags = AI_V4MAPPED | AI_ADDRCONFIG};
	struct lookup_key none = gai_key("db.test", NULL, NULL, 0);
	struct lookup_key explicit_defaults = gai_key("db.test", NULL, &defaults, 0);

	assert_same(&none, &explicit_defaults);
	cr_assert_eq(none.family, AF_UNSPEC);
	cr_assert_eq(none.flags, LOOKUP_DEFAULT_FLAGS);
	cr_assert_eq(none.flags, AI_V4MAPPED | AI_ADDRCONFIG);

	struct addrinfo zero = {0};
	struct lookup_key zero_hints = gai_key("db.test", NULL, &zero, 0);
	assert_differ(&none, &zero_hints, "NULL hints against zero hints");
}

Test(same, other_hints_fields_ignored)
{
	/* A program's hints may carry junk in the fields getaddrinfo ignores. */
	struct addrinfo junk = stream_v4;
	junk.ai_addrlen = 99;
	junk.ai_canonname = (char *)"junk";
	struct lookup_key a = gai_key("svc.test", "443", &stream_v4, 0);
	struct lookup_key b = gai_key("svc.test", "443", &junk, 0);

	assert_same(&a, &b);
}

Test(differ, trailing_dot_kept)
{
	struct lookup_key absolute = gai_key("db.", NULL, NULL, 0);
	struct lookup_key relative = gai_key("db", NULL, NULL, 0);

	assert_differ(&absolute, &relative, "trailing dot");
	cr_assert_str_eq(absolute.node, "db.");
}

Test(differ, each_field_of_the_shape)
{
	struct addrinfo base = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP,
				.ai_flags = AI_ADDRCONFIG};
	struct lookup_key reference = gai_key("svc.test", "443", &base, 11);

	struct addrinfo hints = base;
	hints.ai_family = AF_INET6;
	struct lookup_key k = gai_key("svc.test", "443", &hints, 11);
	assert_differ(&reference, &k, "family");

	hints = base;
	hints.ai_socktype = SOCK_DGRAM;
	k = gai_key("svc.test", "443", &hints, 11);
	assert_differ(&reference, &k, "socktype");

	hints = base;
	hints.ai_protocol = IPPROTO_SCTP;
	k = gai_key("svc.test", "443", &hints, 11);
	assert_differ(&reference, &k, "protocol");

	hints = base;
	hints.ai_flags = AI_ADDRCONFIG | AI_CANONNAME;
	k = gai_key("svc.test", "443", &hints, 11);
	assert_differ(&reference, &k, "flags");

	k = gai_key("svc.test", "8443", &base, 11);
	assert_differ(&reference, &k, "service");

	k = gai_key("svc.test", "443", &base, 12);
	assert_differ(&reference, &k, "context");

	k = gai_key("other.test", "443", &base, 11);
	assert_differ(&reference, &k, "node");
}

Test(differ, kind)
{
	/* gethostbyname("svc.test") against getaddrinfo("svc.test", NULL, {AF_INET}): only the call
	 * differs, and the answers have different shapes. */
	struct addrinfo v4 = {.ai_family = AF_INET};
	struct lookup_key gai = gai_key("svc.test", NULL, &v4, 3);
	struct lookup_key he;

	cr_assert(lookup_key_for_hostent("svc.test", AF_INET, false, 3, &he));
	cr_assert_eq(he.kind, LOOKUP_HOSTENT);
	cr_assert_eq(gai.kind, LOOKUP_GETADDRINFO);
	assert_differ(&gai, &he, "kind");
}

Test(differ, hostent_family_and_context)
{
	struct lookup_key v4, v6, other_context, upper;

	cr_assert(lookup_key_for_hostent("svc.test", AF_INET, false, 3, &v4));
	cr_assert(lookup_key_for_hostent("svc.test", AF_INET6, false, 3, &v6));
	cr_assert(lookup_key_for_hostent("svc.test", AF_INET, false, 4, &other_context));
	cr_assert(lookup_key_for_hostent("SVC.test", AF_INET, false, 3, &upper));
	assert_differ(&v4, &v6, "hostent family");
	struct lookup_key reentrant;
	cr_assert(lookup_key_for_hostent("svc.test", AF_INET, true, 3, &reentrant));
	cr_assert_eq(reentrant.kind, LOOKUP_HOSTENT_R);
	assert_differ(&v4, &reentrant, "gethostbyname against gethostbyname_r (their h_errno differ)");
	assert_differ(&v4, &other_context, "hostent context");
	assert_same(&v4, &upper);
}

Test(differ, null_empty_and_numeric_service)
{
	struct lookup_key none = gai_key("svc.test", NULL, &stream_v4, 0);
	struct lookup_key empty = gai_key("svc.test", "", &stream_v4, 0);
	struct lookup_key port = gai_key("svc.test", "80", &stream_v4, 0);

	cr_assert_not(none.has_service);
	cr_assert(empty.has_service);
	assert_differ(&none, &empty, "NULL against \"\" service");
	assert_differ(&none, &port, "NULL against \"80\"");
	assert_differ(&empty, &port, "\"\" against \"80\"");
}

Test(refused, numeric_host)
{
	struct addrinfo numeric = {.ai_flags = AI_NUMERICHOST};
	struct addrinfo numeric_and_more = {.ai_flags = AI_NUMERICHOST | AI_ADDRCONFIG, .ai_family = AF_INET};
	struct lookup_key key;

	cr_assert_not(lookup_key_for_getaddrinfo("192.0.2.1", NULL, &numeric, 0, &key));
	cr_assert_not(lookup_key_for_getaddrinfo("svc.test", "80", &numeric_and_more, 0, &key));
	/* AI_NUMERICSERV alone is a name lookup. */
	struct addrinfo numeric_service = {.ai_flags = AI_NUMERICSERV};
	cr_assert(lookup_key_for_getaddrinfo("svc.test", "80", &numeric_service, 0, &key));
}

Test(refused, no_node)
{
	struct lookup_key key;

	cr_assert_not(lookup_key_for_getaddrinfo(NULL, "80", NULL, 0, &key));
	cr_assert_not(lookup_key_for_getaddrinfo("", "80", NULL, 0, &key));
	cr_assert_not(lookup_key_for_hostent(NULL, AF_INET, false, 0, &key));
	cr_assert_not(lookup_key_for_hostent("", AF_INET, false, 0, &key));
}

Test(refused, node_longer_than_255)
{
	char node[LOOKUP_NODE_MAX + 2];
	struct lookup_key key;

	memset(node, 'a', sizeof node);
	node[LOOKUP_NODE_MAX] = '\0'; /* 255 characters */
	cr_assert(lookup_key_for_getaddrinfo(node, NULL, NULL, 0, &key));
	cr_assert_eq(strlen(key.node), LOOKUP_NODE_MAX);
	cr_assert(lookup_key_for_hostent(node, AF_INET, false, 0, &key));

	node[LOOKUP_NODE_MAX] = 'a';
	node[LOOKUP_NODE_MAX + 1] = '\0'; /* 256 */
	cr_assert_not(lookup_key_for_getaddrinfo(node, NULL, NULL, 0, &key));
	cr_assert_not(lookup_key_for_hostent(node, AF_INET, false, 0, &key));
}

Test(refused, service_longer_than_max)
{
	char service[LOOKUP_SERVICE_MAX + 2];
	struct lookup_key key;

	memset(service, 's', sizeof service);
	service[LOOKUP_SERVICE_MAX] = '\0';
	cr_assert(lookup_key_for_getaddrinfo("svc.test", service, NULL, 0, &key));
	cr_assert_str_eq(key.service, service);

	service[LOOKUP_SERVICE_MAX] = 's';
	service[LOOKUP_SERVICE_MAX + 1] = '\0';
	cr_assert_not(lookup_key_for_getaddrinfo("svc.test", service, NULL, 0, &key));
}

Test(name, same_name_with_and_without_trailing_dot)
{
	struct lookup_key relative = gai_key("DB.example.test", NULL, NULL, 0);
	struct lookup_key absolute = gai_key("db.example.test.", NULL, NULL, 0);

	cr_assert(lookup_key_same_name(&relative, "db.example.test"));
	cr_assert(lookup_key_same_name(&absolute, "db.example.test"));
	cr_assert_not(lookup_key_same_name(&relative, "db.example"), "a prefix is another name");
	cr_assert_not(lookup_key_same_name(&relative, "example.test"));
	cr_assert_not(lookup_key_same_name(&relative, "db.example.test.more"));
	cr_assert_not(lookup_key_same_name(&absolute, "db.example"));

	struct lookup_key short_key = gai_key("db", NULL, NULL, 0);
	cr_assert(lookup_key_same_name(&short_key, "db"));
	cr_assert_not(lookup_key_same_name(&short_key, "db.example.test"));
}

Test(hash, text_null_and_empty_differ)
{
	cr_assert_neq(lookup_hash_text(0, NULL), lookup_hash_text(0, ""));
	cr_assert_neq(lookup_hash_text(0, "a"), lookup_hash_text(0, ""));
	cr_assert_eq(lookup_hash_text(0, "abc"), lookup_hash_text(0, "abc"));
	/* Chained: (NULL, "x") is not ("x", NULL), nor ("", "x"). */
	uint64_t null_then_x = lookup_hash_text(lookup_hash_text(0, NULL), "x");
	uint64_t x_then_null = lookup_hash_text(lookup_hash_text(0, "x"), NULL);
	uint64_t empty_then_x = lookup_hash_text(lookup_hash_text(0, ""), "x");
	cr_assert_neq(null_then_x, x_then_null);
	cr_assert_neq(null_then_x, empty_then_x);
	/* The terminator separates values: ("ab", "c") is not ("a", "bc"). */
	cr_assert_neq(lookup_hash_text(lookup_hash_text(0, "ab"), "c"), lookup_hash_text(lookup_hash_text(0, "a"), "bc"));
}
