/* The answer a lookup gave, kept as plain bytes and given back (gai_copy.c), as a hostent: rebuilt
 * into the caller's buffer, every pointer inside it and aligned, ERANGE for a buffer one byte short
 * at every size, and what is refused; then the addresses as the record sets compare them (deduped,
 * v4-mapped folded). The addrinfo side, with allocation failures: test_gai_copy.c. */
#include <criterion/criterion.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gai_copy.h"
#include "gai_copy_lists.h"
#include "ip_literal.h"

/* ---- hostent ---- */

struct hostent_storage {
	struct hostent he;
	char *aliases[4];
	char *addrs[GAI_COPY_ADDRS_MAX + 2];
	unsigned char bytes[GAI_COPY_ADDRS_MAX + 1][16];
};

static void hand_hostent(struct hostent_storage *s, const char *name, const char *const *aliases, unsigned na,
			 const char *const *texts, unsigned n)
{
	memset(s, 0, sizeof *s);
	s->he.h_name = (char *)name;
	for (unsigned i = 0; i < na; i++)
		s->aliases[i] = (char *)aliases[i];
	s->he.h_aliases = s->aliases;
	for (unsigned i = 0; i < n; i++) {
		struct ip_addr addr = ip(texts[i]);
		s->he.h_addrtype = addr.family;
		s->he.h_length = addr.family == AF_INET ? 4 : 16;
		memcpy(s->bytes[i], addr.bytes, 16);
		s->addrs[i] = (char *)s->bytes[i];
	}
	s->he.h_addr_list = s->addrs;
}

static bool inside(const void *p, size_t length, const char *buf, size_t buflen)
{
	return (const char *)p >= buf && (const char *)p + length <= buf + buflen;
}

/* Every field equal to the original, every pointer inside buf and aligned. */
static void assert_same_hostent(const struct hostent *want, const struct hostent *got, const char *buf, size_t buflen)
{
	cr_assert_str_eq(got->h_name, want->h_name);
	cr_assert(inside(got->h_name, strlen(got->h_name) + 1, buf, buflen));
	cr_assert_eq(got->h_addrtype, want->h_addrtype);
	cr_assert_eq(got->h_length, want->h_length);
	cr_assert_eq((uintptr_t)got->h_aliases % alignof(char *), 0);
	cr_assert_eq((uintptr_t)got->h_addr_list % alignof(char *), 0);
	unsigned i = 0;
	for (; want->h_aliases[i] != NULL; i++) {
		cr_assert_not_null(got->h_aliases[i]);
		cr_assert_str_eq(got->h_aliases[i], want->h_aliases[i]);
		cr_assert(inside(got->h_aliases[i], strlen(got->h_aliases[i]) + 1, buf, buflen));
	}
	cr_assert_null(got->h_aliases[i]);
	cr_assert(inside(got->h_aliases, (i + 1) * sizeof(char *), buf, buflen));
	for (i = 0; want->h_addr_list[i] != NULL; i++) {
		cr_assert_not_null(got->h_addr_list[i]);
		cr_assert_eq(memcmp(got->h_addr_list[i], want->h_addr_list[i], (size_t)want->h_length), 0, "address %u", i);
		cr_assert(inside(got->h_addr_list[i], (size_t)got->h_length, buf, buflen));
		cr_assert_eq((uintptr_t)got->h_addr_list[i] % alignof(struct in6_addr), 0);
		cr_assert_eq((uintptr_t)got->h_addr_list[i] % alignof(uint32_t), 0);
	}
	cr_assert_null(got->h_addr_list[i]);
	cr_assert(inside(got->h_addr_list, (i + 1) * sizeof(char *), buf, buflen));
}

static const char *const three_v4[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3"};
static const char *const two_aliases[] = {"alias-one.example.test", "a2.example.test"};

Test(hostent, ipv4_with_aliases_round_trip)
{
	struct hostent_storage s;
	hand_hostent(&s, "www.example.test", two_aliases, 2, three_v4, 3);
	struct gai_copy copy;
	cr_assert(gai_copy_from_hostent(&s.he, &copy));
	cr_assert(copy.hostent);
	cr_assert_eq(copy.addr_count, 3);

	alignas(16) char buf[1024];
	struct hostent got;
	memset(buf, 0xa5, sizeof buf);
	cr_assert_eq(gai_copy_to_hostent(&copy, &got, buf, sizeof buf), 0);
	assert_same_hostent(&s.he, &got, buf, sizeof buf);
	/* Not an addrinfo list. */
	cr_assert_null(gai_copy_to_addrinfo(&copy));
}

Test(hostent, ipv6_without_aliases_round_trip)
{
	const char *texts[] = {"2001:db8::1", "2001:db8::2"};
	struct hostent_storage s;
	hand_hostent(&s, "v6.example.test", NULL, 0, texts, 2);
	struct gai_copy copy;
	cr_assert(gai_copy_from_hostent(&s.he, &copy));

	alignas(16) char buf[512];
	struct hostent got;
	for (unsigned offset = 0; offset < 16; offset++) {
		cr_assert_eq(gai_copy_to_hostent(&copy, &got, buf + offset, sizeof buf - offset), 0);
		assert_same_hostent(&s.he, &got, buf + offset, sizeof buf - offset);
	}
}

Test(hostent, duplicate_addresses_kept_as_given)
{
	const char *texts[] = {"192.0.2.1", "192.0.2.1"};
	struct hostent_storage s;
	hand_hostent(&s, "dup.example.test", NULL, 0, texts, 2);
	struct gai_copy copy;
	cr_assert(gai_copy_from_hostent(&s.he, &copy));
	cr_assert_eq(copy.addr_count, 2);
}

Test(hostent, addrinfo_copy_gives_einval)
{
	struct addrinfo *list = real_lookup("127.0.0.1", NULL, 0, AF_INET, SOCK_STREAM);
	struct gai_copy copy;
	cr_assert(gai_copy_from_addrinfo(list, &copy));
	freeaddrinfo(list);
	char buf[512];
	struct hostent got;
	cr_assert_eq(gai_copy_to_hostent(&copy, &got, buf, sizeof buf), EINVAL);
}

/* The smallest buffer that fits at buf + offset; every smaller one gives ERANGE and writes
 * nothing (the canary after it, and the buffer itself, untouched); the smallest writes nothing
 * past its end. */
static void assert_erange_below_fit(const struct gai_copy *copy, const struct hostent *want)
{
	enum { SIZE = 1024 };
	alignas(16) static unsigned char storage[SIZE + 64];
	struct hostent got;

	for (unsigned offset = 0; offset < 16; offset++) {
		char *buf = (char *)storage + offset;
		size_t fit = 0;
		while (fit < SIZE && gai_copy_to_hostent(copy, &got, buf, fit) == ERANGE)
			fit++;
		cr_assert_lt(fit, SIZE);
		for (size_t length = 0; length < fit; length++) {
			memset(storage, 0xa5, sizeof storage);
			cr_assert_eq(gai_copy_to_hostent(copy, &got, buf, length), ERANGE, "offset %u length %zu", offset,
				     length);
			for (size_t i = 0; i < sizeof storage; i++)
				cr_assert_eq(storage[i], 0xa5, "offset %u length %zu: byte %zu written", offset, length, i);
		}
		memset(storage, 0xa5, sizeof storage);
		cr_assert_eq(gai_copy_to_hostent(copy, &got, buf, fit), 0);
		for (size_t i = offset + fit; i < sizeof storage; i++)
			cr_assert_eq(storage[i], 0xa5, "offset %u: byte %zu past the buffer written", offset, i);
		assert_same_hostent(want, &got, buf, fit);
		/* On the heap (malloc aligns as storage is), ending exactly there: ASan sees any byte
		 * past it. */
		char *heap = malloc(offset + fit);
		cr_assert_not_null(heap);
		cr_assert_eq(gai_copy_to_hostent(copy, &got, heap + offset, fit), 0);
		assert_same_hostent(want, &got, heap + offset, fit);
		cr_assert_eq(gai_copy_to_hostent(copy, &got, heap + offset, fit - 1), ERANGE);
		free(heap);
	}
}

Test(hostent, one_byte_short_gives_erange_at_every_size)
{
	struct hostent_storage s;
	struct gai_copy copy;

	hand_hostent(&s, "www.example.test", two_aliases, 2, three_v4, 3);
	cr_assert(gai_copy_from_hostent(&s.he, &copy));
	assert_erange_below_fit(&copy, &s.he);

	const char *texts[] = {"2001:db8::1"};
	hand_hostent(&s, "v6.example.test", two_aliases, 1, texts, 1);
	cr_assert(gai_copy_from_hostent(&s.he, &copy));
	assert_erange_below_fit(&copy, &s.he);

	hand_hostent(&s, "x", NULL, 0, three_v4, 1);
	cr_assert(gai_copy_from_hostent(&s.he, &copy));
	assert_erange_below_fit(&copy, &s.he);
}

Test(hostent, refused_when_it_does_not_fit_or_is_odd)
{
	struct hostent_storage s;
	struct gai_copy copy;

	char storage[GAI_COPY_ADDRS_MAX + 1][32];
	const char *texts[GAI_COPY_ADDRS_MAX + 1];
	for (unsigned i = 0; i <= GAI_COPY_ADDRS_MAX; i++) {
		snprintf(storage[i], sizeof storage[i], "10.0.0.%u", i + 1);
		texts[i] = storage[i];
	}
	hand_hostent(&s, "many.example.test", NULL, 0, texts, GAI_COPY_ADDRS_MAX);
	cr_assert(gai_copy_from_hostent(&s.he, &copy));
	hand_hostent(&s, "many.example.test", NULL, 0, texts, GAI_COPY_ADDRS_MAX + 1);
	cr_assert_not(gai_copy_from_hostent(&s.he, &copy));

	hand_hostent(&s, "none.example.test", NULL, 0, texts, 0);
	s.he.h_addrtype = AF_INET;
	s.he.h_length = 4;
	cr_assert_not(gai_copy_from_hostent(&s.he, &copy), "no address");

	hand_hostent(&s, "odd.example.test", NULL, 0, texts, 1);
	s.he.h_length = 16; /* IPv4 said to be 16 bytes long */
	cr_assert_not(gai_copy_from_hostent(&s.he, &copy));

	char long_alias[200];
	memset(long_alias, 'a', sizeof long_alias - 1);
	long_alias[sizeof long_alias - 1] = '\0';
	const char *aliases[] = {long_alias, long_alias};
	hand_hostent(&s, "aliases.example.test", aliases, 1, texts, 1);
	cr_assert(gai_copy_from_hostent(&s.he, &copy));
	hand_hostent(&s, "aliases.example.test", aliases, 2, texts, 1);
	cr_assert_not(gai_copy_from_hostent(&s.he, &copy), "aliases longer than GAI_COPY_ALIASES_MAX");
	cr_assert_not(gai_copy_from_hostent(NULL, &copy));
}

/* ---- The addresses as the record sets compare them ---- */

Test(addresses, deduped_and_v4_mapped_folded)
{
	struct addrinfo *list = real_lookup("192.0.2.1", "80", 0, AF_INET, 0); /* 3 entries, one address */
	struct addrinfo **tail = &list;
	while (*tail != NULL)
		tail = &(*tail)->ai_next;
	/* Hand-built entries after glibc's: freed apart below. */
	const char *texts[] = {"::ffff:192.0.2.1", "2001:db8::1", "192.0.2.9", "2001:db8::1"};
	struct addrinfo *extra = hand_list(texts, 4, SOCK_STREAM);
	*tail = extra;
	struct gai_copy copy;
	bool kept = gai_copy_from_addrinfo(list, &copy);
	*tail = NULL;
	freeaddrinfo(list);
	hand_free(extra);
	cr_assert(kept);
	cr_assert_eq(copy.addr_count, 4, "the copy keeps the mapped form apart");

	struct ip_addr out[GAI_COPY_ADDRS_MAX];
	unsigned n = gai_copy_addresses(&copy, out, GAI_COPY_ADDRS_MAX);
	cr_assert_eq(n, 3);
	struct ip_addr want[] = {ip("192.0.2.1"), ip("2001:db8::1"), ip("192.0.2.9")};
	for (unsigned i = 0; i < 3; i++)
		cr_assert(ip_addr_equal(&out[i], &want[i]), "address %u", i);
	cr_assert_eq(gai_copy_addresses(&copy, out, 2), 2, "at most max");
}

Test(addresses, hostent_duplicates_counted_once)
{
	const char *texts[] = {"::ffff:198.51.100.7", "2001:db8::5", "::ffff:198.51.100.7"};
	struct hostent_storage s;
	hand_hostent(&s, "m.example.test", NULL, 0, texts, 3);
	struct gai_copy copy;
	cr_assert(gai_copy_from_hostent(&s.he, &copy));

	struct ip_addr out[GAI_COPY_ADDRS_MAX];
	cr_assert_eq(gai_copy_addresses(&copy, out, GAI_COPY_ADDRS_MAX), 2);
	struct ip_addr v4 = ip("198.51.100.7");
	cr_assert(ip_addr_equal(&out[0], &v4));
	cr_assert_eq(out[0].family, AF_INET);
	cr_assert_eq(out[1].family, AF_INET6);
}
