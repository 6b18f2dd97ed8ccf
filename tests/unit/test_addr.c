/* Unit tests of peer-address folding, comparison and formatting. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>

#include "addr.h"

static struct sockaddr_in make_v4(const char *text, uint16_t port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET, text, &sin.sin_addr), 1);
	return sin;
}

static struct sockaddr_in6 make_v6(const char *text, uint16_t port)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
	return sin6;
}

static void expect_zero_from(const struct ip_addr *a, size_t first)
{
	for (size_t i = first; i < sizeof a->bytes; i++)
		cr_assert_eq(a->bytes[i], 0, "byte %zu not zeroed", i);
}

/* A struct full of garbage, to show that from_sockaddr overwrites every byte it leaves unused. */
static struct ip_addr dirty(void)
{
	struct ip_addr a;

	memset(&a, 0xee, sizeof a);
	return a;
}

Test(addr, ipv4)
{
	struct sockaddr_in sin = make_v4("10.0.0.5", 443);
	struct ip_addr a = dirty();
	uint16_t port = 0;
	char buf[IP_ADDR_STRLEN];

	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, &a, &port));
	cr_assert_eq(a.family, AF_INET);
	cr_assert_eq(port, 443);
	cr_assert_eq(a.bytes[0], 10);
	cr_assert_eq(a.bytes[3], 5);
	expect_zero_from(&a, 4);
	cr_assert_str_eq(ip_addr_format(&a, buf), "10.0.0.5");
}

Test(addr, ipv6)
{
	struct sockaddr_in6 sin6 = make_v6("2001:db8::1", 8080);
	struct ip_addr a = dirty();
	uint16_t port = 0;
	char buf[IP_ADDR_STRLEN];

	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&sin6, sizeof sin6, &a, &port));
	cr_assert_eq(a.family, AF_INET6);
	cr_assert_eq(port, 8080);
	cr_assert_eq(memcmp(a.bytes, &sin6.sin6_addr, 16), 0);
	cr_assert_str_eq(ip_addr_format(&a, buf), "2001:db8::1");
}

Test(addr, v4_mapped_folds_to_ipv4)
{
	struct sockaddr_in6 mapped = make_v6("::ffff:10.0.0.5", 443);
	struct sockaddr_in plain = make_v4("10.0.0.5", 80);
	struct ip_addr from_mapped = dirty();
	struct ip_addr from_plain = dirty();
	uint16_t port = 0;
	char buf[IP_ADDR_STRLEN];

	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&mapped, sizeof mapped, &from_mapped, &port));
	cr_assert_eq(from_mapped.family, AF_INET);
	cr_assert_eq(port, 443);
	expect_zero_from(&from_mapped, 4);
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&plain, sizeof plain, &from_plain, NULL));
	cr_assert(ip_addr_equal(&from_mapped, &from_plain));
	cr_assert_eq(memcmp(&from_mapped, &from_plain, sizeof from_plain), 0);
	cr_assert_str_eq(ip_addr_format(&from_mapped, buf), "10.0.0.5");
}

Test(addr, v4_compatible_and_nat64_not_folded)
{
	/* Only ::ffff:0:0/96 is the same host as the IPv4 address; these are real IPv6 destinations. */
	const char *not_mapped[] = { "::10.0.0.5", "64:ff9b::10.0.0.5", "::fffe:10.0.0.5", "::1" };

	for (size_t i = 0; i < sizeof not_mapped / sizeof not_mapped[0]; i++) {
		struct sockaddr_in6 sin6 = make_v6(not_mapped[i], 1);
		struct ip_addr a;

		cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&sin6, sizeof sin6, &a, NULL));
		cr_assert_eq(a.family, AF_INET6, "%s", not_mapped[i]);
	}
}

Test(addr, ipv6_without_scope_id_accepted)
{
	/* The RFC 2133 layout ends at sin6_addr; Linux's connect accepts it, so must we. */
	struct sockaddr_in6 sin6 = make_v6("2001:db8::2", 53);
	socklen_t short_len = offsetof(struct sockaddr_in6, sin6_addr) + sizeof(struct in6_addr);
	struct ip_addr a;

	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&sin6, short_len, &a, NULL));
	cr_assert_eq(a.family, AF_INET6);
	cr_assert_not(ip_addr_from_sockaddr((struct sockaddr *)&sin6, short_len - 1, &a, NULL));
}

Test(addr, wrong_length)
{
	struct sockaddr_in sin = make_v4("192.0.2.1", 1);
	struct sockaddr_in6 sin6 = make_v6("2001:db8::1", 1);
	struct ip_addr a = dirty();
	struct ip_addr untouched = dirty();
	uint16_t port = 99;

	cr_assert_not(ip_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin - 1, &a, &port));
	cr_assert_not(ip_addr_from_sockaddr((struct sockaddr *)&sin, 0, &a, &port));
	cr_assert_not(ip_addr_from_sockaddr((struct sockaddr *)&sin, 1, &a, &port));
	/* An AF_INET6 family with only an IPv4-sized buffer. */
	cr_assert_not(ip_addr_from_sockaddr((struct sockaddr *)&sin6, sizeof sin, &a, &port));
	cr_assert_eq(memcmp(&a, &untouched, sizeof a), 0, "output must stay untouched on failure");
	cr_assert_eq(port, 99);
}

Test(addr, longer_length_accepted)
{
	struct sockaddr_storage storage;
	struct sockaddr_in sin = make_v4("192.0.2.7", 7);
	struct ip_addr a;

	memset(&storage, 0, sizeof storage);
	memcpy(&storage, &sin, sizeof sin);
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&storage, sizeof storage, &a, NULL));
	cr_assert_eq(a.family, AF_INET);
}

Test(addr, wrong_family)
{
	struct sockaddr_storage storage;
	struct ip_addr a;

	memset(&storage, 0, sizeof storage);
	storage.ss_family = AF_UNIX;
	cr_assert_not(ip_addr_from_sockaddr((struct sockaddr *)&storage, sizeof storage, &a, NULL));
	storage.ss_family = AF_UNSPEC;
	cr_assert_not(ip_addr_from_sockaddr((struct sockaddr *)&storage, sizeof storage, &a, NULL));
	storage.ss_family = AF_PACKET;
	cr_assert_not(ip_addr_from_sockaddr((struct sockaddr *)&storage, sizeof storage, &a, NULL));
}

Test(addr, null_arguments)
{
	struct sockaddr_in sin = make_v4("192.0.2.1", 1);
	struct ip_addr a;

	cr_assert_not(ip_addr_from_sockaddr(NULL, sizeof sin, &a, NULL));
	cr_assert_not(ip_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, NULL, NULL));
	cr_assert_not(ip_addr_equal(NULL, &a));
	cr_assert_not(ip_addr_equal(&a, NULL));
	cr_assert_null(ip_addr_format(&a, NULL));
}

Test(addr, unaligned_sockaddr)
{
	unsigned char raw[sizeof(struct sockaddr_in6) + 1];
	struct sockaddr_in6 sin6 = make_v6("2001:db8::9", 9);
	struct ip_addr a;
	uint16_t port = 0;

	memcpy(raw + 1, &sin6, sizeof sin6);
	cr_assert(ip_addr_from_sockaddr((const struct sockaddr *)(raw + 1), sizeof sin6, &a, &port));
	cr_assert_eq(port, 9);
	cr_assert_eq(a.family, AF_INET6);
}

Test(addr, equal_compares_only_relevant_bytes)
{
	struct ip_addr a;
	struct ip_addr b;

	memset(&a, 0, sizeof a);
	memset(&b, 0xff, sizeof b);
	a.family = b.family = AF_INET;
	memcpy(a.bytes, "\x0a\x00\x00\x05", 4);
	memcpy(b.bytes, "\x0a\x00\x00\x05", 4);
	cr_assert(ip_addr_equal(&a, &b), "bytes past the IPv4 address must not matter");
	b.bytes[3] = 6;
	cr_assert_not(ip_addr_equal(&a, &b));
}

Test(addr, equal_ipv6_and_family)
{
	struct sockaddr_in6 one = make_v6("2001:db8::1", 1);
	struct sockaddr_in6 one_other_port = make_v6("2001:db8::1", 2);
	struct sockaddr_in6 last_byte_differs = make_v6("2001:db8::2", 1);
	struct sockaddr_in6 first_byte_differs = make_v6("3001:db8::1", 1);
	struct sockaddr_in v4 = make_v4("0.0.0.0", 1);
	struct ip_addr a, b, c, d, e;

	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&one, sizeof one, &a, NULL));
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&one_other_port, sizeof one, &b, NULL));
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&last_byte_differs, sizeof one, &c, NULL));
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&first_byte_differs, sizeof one, &d, NULL));
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&v4, sizeof v4, &e, NULL));
	cr_assert(ip_addr_equal(&a, &b), "port is not part of the address");
	cr_assert_not(ip_addr_equal(&a, &c));
	cr_assert_not(ip_addr_equal(&a, &d));
	cr_assert_not(ip_addr_equal(&a, &e));

	/* :: and 0.0.0.0 have the same (zero) bytes but differ in family. */
	struct sockaddr_in6 any6 = make_v6("::", 1);
	struct ip_addr f;
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&any6, sizeof any6, &f, NULL));
	cr_assert_not(ip_addr_equal(&e, &f));
}

Test(addr, equal_unknown_family)
{
	struct ip_addr a;
	struct ip_addr b;

	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	cr_assert_not(ip_addr_equal(&a, &b));
}

Test(addr, format_longest_and_unknown)
{
	struct sockaddr_in6 longest = make_v6("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 1);
	struct ip_addr a;
	char buf[IP_ADDR_STRLEN];

	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&longest, sizeof longest, &a, NULL));
	cr_assert_str_eq(ip_addr_format(&a, buf), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

	struct sockaddr_in broadcast = make_v4("255.255.255.255", 1);
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&broadcast, sizeof broadcast, &a, NULL));
	cr_assert_str_eq(ip_addr_format(&a, buf), "255.255.255.255");

	memset(&a, 0, sizeof a);
	a.family = 77;
	cr_assert_str_eq(ip_addr_format(&a, buf), "?");
	cr_assert_str_eq(ip_addr_format(NULL, buf), "?");
}

/* The log's form of a peer (design.md): IPv6 in brackets, so the port cannot read as a group. */
Test(addr, format_peer_brackets_ipv6)
{
	struct sockaddr_in6 v6 = make_v6("fd00::10", 1);
	struct sockaddr_in v4 = make_v4("10.0.0.5", 1);
	struct sockaddr_in6 longest = make_v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1);
	struct ip_addr a;
	char buf[IP_PEER_STRLEN];

	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&v6, sizeof v6, &a, NULL));
	cr_assert_str_eq(ip_addr_format_peer(&a, 8080, buf), "[fd00::10]:8080");
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&v4, sizeof v4, &a, NULL));
	cr_assert_str_eq(ip_addr_format_peer(&a, 443, buf), "10.0.0.5:443");
	cr_assert(ip_addr_from_sockaddr((struct sockaddr *)&longest, sizeof longest, &a, NULL));
	cr_assert_str_eq(ip_addr_format_peer(&a, 65535, buf), "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	cr_assert_str_eq(ip_addr_format_peer(NULL, 1, buf), "?:1");
}

/* Raw bytes (a hostent's, a DNS record's) read as a sockaddr would be: v4-mapped folded. */
Test(addr, from_bytes_folds_v4_mapped)
{
	struct ip_addr a;
	struct in6_addr mapped, v6;
	struct in_addr v4;
	inet_pton(AF_INET6, "::ffff:10.0.0.7", &mapped);
	inet_pton(AF_INET6, "fd00::10", &v6);
	inet_pton(AF_INET, "10.0.0.5", &v4);
	char buf[IP_ADDR_STRLEN];
	cr_assert(ip_addr_from_bytes(AF_INET6, &mapped, &a));
	cr_assert_eq(a.family, AF_INET);
	cr_assert_str_eq(ip_addr_format(&a, buf), "10.0.0.7");
	cr_assert(ip_addr_from_bytes(AF_INET6, &v6, &a));
	cr_assert_str_eq(ip_addr_format(&a, buf), "fd00::10");
	cr_assert(ip_addr_from_bytes(AF_INET, &v4, &a));
	cr_assert_str_eq(ip_addr_format(&a, buf), "10.0.0.5");
	cr_assert_not(ip_addr_from_bytes(AF_UNIX, &v6, &a));
}
