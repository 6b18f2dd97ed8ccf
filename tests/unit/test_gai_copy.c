/* The answer a lookup gave, kept as plain bytes and given back (gai_copy.c): real lists from
 * glibc's getaddrinfo (numeric hosts, no DNS) and lists built by hand round-trip field by field,
 * and the rebuilt list is freed by glibc's own freeaddrinfo (this test is not preloaded: under
 * ASan that proves the layout, one block per entry with its address inside and the canonical name
 * a block of its own). A hostent is rebuilt into the caller's buffer, every pointer inside it.
 *
 * This binary is linked with --wrap=calloc,strdup,free (tests/unit/meson.build): the wrappers
 * below make an allocation of gai_copy.c fail on demand and count what it left allocated. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "gai_copy.h"
#include "ip_literal.h"

/* ---- Allocation failure on demand ---- */

void *__real_calloc(size_t count, size_t size);
void *__wrap_calloc(size_t count, size_t size);
char *__real_strdup(const char *text);
char *__wrap_strdup(const char *text);
void __real_free(void *p);
void __wrap_free(void *p);

#define LIVE_MAX 256
static int fail_countdown = -1; /* the allocation that fails: 0 the next one; -1 none */
static void *live[LIVE_MAX];    /* blocks given out and not freed through free() */
static unsigned live_count;

static void *track(void *p)
{
	if (p != NULL && live_count < LIVE_MAX)
		live[live_count++] = p;
	return p;
}

static bool failing_now(void)
{
	if (fail_countdown < 0)
		return false;
	return fail_countdown-- == 0;
}

void *__wrap_calloc(size_t count, size_t size)
{
	return failing_now() ? NULL : track(__real_calloc(count, size));
}

char *__wrap_strdup(const char *text)
{
	return failing_now() ? NULL : track(__real_strdup(text));
}

void __wrap_free(void *p)
{
	for (unsigned i = 0; i < live_count; i++)
		if (live[i] == p) {
			live[i] = live[--live_count];
			break;
		}
	__real_free(p);
}

/* ---- Lists ---- */

static struct addrinfo *real_lookup(const char *node, const char *service, int flags, int family, int socktype)
{
	struct addrinfo hints = {.ai_flags = flags | AI_NUMERICHOST, .ai_family = family, .ai_socktype = socktype};
	struct addrinfo *list = NULL;
	int error = getaddrinfo(node, service, &hints, &list);

	cr_assert_eq(error, 0, "getaddrinfo(%s, %s): %s", node, service ? service : "NULL", gai_strerror(error));
	return list;
}

static unsigned list_length(const struct addrinfo *list)
{
	unsigned n = 0;

	for (; list != NULL; list = list->ai_next)
		n++;
	return n;
}

/* Field by field, in order; the rebuilt entry holds its address in its own block. */
static void assert_same_list(const struct addrinfo *want, const struct addrinfo *got)
{
	unsigned i = 0;

	for (; want != NULL && got != NULL; want = want->ai_next, got = got->ai_next, i++) {
		cr_assert_eq(got->ai_flags, want->ai_flags, "entry %u flags", i);
		cr_assert_eq(got->ai_family, want->ai_family, "entry %u family", i);
		cr_assert_eq(got->ai_socktype, want->ai_socktype, "entry %u socktype", i);
		cr_assert_eq(got->ai_protocol, want->ai_protocol, "entry %u protocol", i);
		cr_assert_eq(got->ai_addrlen, want->ai_addrlen, "entry %u addrlen", i);
		cr_assert_eq(got->ai_addr->sa_family, want->ai_addr->sa_family, "entry %u sa_family", i);
		if (want->ai_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)want->ai_addr, *b = (const void *)got->ai_addr;
			cr_assert_eq(b->sin_port, a->sin_port, "entry %u port", i);
			cr_assert_eq(memcmp(&b->sin_addr, &a->sin_addr, 4), 0, "entry %u address", i);
		} else {
			const struct sockaddr_in6 *a = (const void *)want->ai_addr, *b = (const void *)got->ai_addr;
			cr_assert_eq(b->sin6_port, a->sin6_port, "entry %u port", i);
			cr_assert_eq(memcmp(&b->sin6_addr, &a->sin6_addr, 16), 0, "entry %u address", i);
			cr_assert_eq(b->sin6_scope_id, a->sin6_scope_id, "entry %u scope id", i);
			cr_assert_eq(b->sin6_flowinfo, a->sin6_flowinfo, "entry %u flowinfo", i);
		}
		cr_assert_eq((const void *)got->ai_addr, (const void *)(got + 1), "entry %u: address not in its block", i);
		if (i == 0 && want->ai_canonname != NULL) {
			cr_assert_not_null(got->ai_canonname);
			cr_assert_str_eq(got->ai_canonname, want->ai_canonname);
		} else {
			cr_assert_null(want->ai_canonname, "entry %u of the original has a name", i);
			cr_assert_null(got->ai_canonname, "entry %u has a name", i);
		}
	}
	cr_assert_null(want, "the copy has fewer entries");
	cr_assert_null(got, "the copy has more entries");
}

/* Kept, rebuilt, compared, and freed by glibc's freeaddrinfo. */
static void round_trip(const struct addrinfo *list)
{
	struct gai_copy copy;

	cr_assert(gai_copy_from_addrinfo(list, &copy));
	cr_assert_not(copy.hostent);
	cr_assert_eq(copy.entry_count, list_length(list));
	struct addrinfo *rebuilt = gai_copy_to_addrinfo(&copy);
	cr_assert_not_null(rebuilt);
	assert_same_list(list, rebuilt);
	freeaddrinfo(rebuilt);
}

Test(addrinfo, ipv4_socktype_zero_three_entries)
{
	struct addrinfo *list = real_lookup("127.0.0.1", NULL, 0, AF_UNSPEC, 0);

	cr_assert_eq(list_length(list), 3); /* STREAM, DGRAM, RAW */
	round_trip(list);
	struct gai_copy copy;
	cr_assert(gai_copy_from_addrinfo(list, &copy));
	cr_assert_eq(copy.addr_count, 1, "one address for its three entries");
	freeaddrinfo(list);
}

Test(addrinfo, ipv6_socktype_zero_three_entries)
{
	struct addrinfo *list = real_lookup("::1", NULL, 0, AF_UNSPEC, 0);

	cr_assert_eq(list_length(list), 3);
	round_trip(list);
	freeaddrinfo(list);
}

Test(addrinfo, numeric_service_port_kept)
{
	struct addrinfo *list = real_lookup("127.0.0.1", "80", 0, AF_INET, 0);

	cr_assert_eq(ntohs(((struct sockaddr_in *)list->ai_addr)->sin_port), 80);
	round_trip(list);
	freeaddrinfo(list);
	list = real_lookup("::1", "8443", 0, AF_INET6, SOCK_STREAM);
	round_trip(list);
	freeaddrinfo(list);
}

Test(addrinfo, named_service_port_kept)
{
	/* How many socktypes "http" has depends on /etc/services: whatever glibc gave comes back. */
	struct addrinfo *list = real_lookup("127.0.0.1", "http", 0, AF_UNSPEC, 0);

	round_trip(list);
	freeaddrinfo(list);
}

Test(addrinfo, canonname_on_first_entry_only)
{
	struct addrinfo *list = real_lookup("127.0.0.1", "80", AI_CANONNAME, AF_INET, 0);

	cr_assert_not_null(list->ai_canonname);
	cr_assert_str_eq(list->ai_canonname, "127.0.0.1");
	cr_assert_gt(list_length(list), 1);
	round_trip(list); /* checks NULL on the others */
	freeaddrinfo(list);
}

Test(addrinfo, ipv6_scope_id_kept)
{
	struct addrinfo *list = real_lookup("fe80::1%1", "443", 0, AF_INET6, SOCK_STREAM);

	cr_assert_eq(((struct sockaddr_in6 *)list->ai_addr)->sin6_scope_id, 1);
	round_trip(list);
	freeaddrinfo(list);
}

/* A list as a program's resolver might give it, built by hand: entries and sockaddrs malloc'd
 * apart (not glibc's layout: freed here, entry by entry). */
static struct addrinfo *hand_entry(const char *text, uint16_t port, int socktype, int protocol, int flags)
{
	struct addrinfo *ai = calloc(1, sizeof *ai);
	cr_assert_not_null(ai);
	ai->ai_flags = flags;
	ai->ai_socktype = socktype;
	ai->ai_protocol = protocol;
	struct in6_addr v6;
	if (inet_pton(AF_INET6, text, &v6) == 1) {
		struct sockaddr_in6 *sin6 = calloc(1, sizeof *sin6);
		cr_assert_not_null(sin6);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = v6;
		sin6->sin6_flowinfo = htonl(0x12345);
		ai->ai_family = AF_INET6;
		ai->ai_addr = (struct sockaddr *)sin6;
		ai->ai_addrlen = sizeof *sin6;
	} else {
		struct sockaddr_in *sin = calloc(1, sizeof *sin);
		cr_assert_not_null(sin);
		cr_assert_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1, "bad literal %s", text);
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		ai->ai_family = AF_INET;
		ai->ai_addr = (struct sockaddr *)sin;
		ai->ai_addrlen = sizeof *sin;
	}
	return ai;
}

static void hand_free(struct addrinfo *list)
{
	while (list != NULL) {
		struct addrinfo *next = list->ai_next;
		free(list->ai_canonname);
		free(list->ai_addr);
		free(list);
		list = next;
	}
}

static struct addrinfo *hand_list(const char *const *texts, unsigned n, int socktype)
{
	struct addrinfo *head = NULL, **tail = &head;

	for (unsigned i = 0; i < n; i++) {
		*tail = hand_entry(texts[i], (uint16_t)(443 + i), socktype, socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP,
				   AI_ADDRCONFIG);
		tail = &(*tail)->ai_next;
	}
	return head;
}

Test(addrinfo, hand_built_interleaved_families_keep_order)
{
	const char *texts[] = {"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"};
	struct addrinfo *list = hand_list(texts, 4, SOCK_STREAM);

	list->ai_canonname = strdup("edge.example.test");
	round_trip(list);
	struct gai_copy copy;
	cr_assert(gai_copy_from_addrinfo(list, &copy));
	cr_assert_eq(copy.addr_count, 4);
	cr_assert(copy.has_name);
	hand_free(list);
}

/* ---- What is refused ---- */

/* A list of max entries (texts[0..max]) is kept, with addrs distinct addresses, and round-trips;
 * one entry more is refused. */
static void kept_up_to(const char *const *texts, unsigned max, unsigned addrs)
{
	struct gai_copy copy;
	struct addrinfo *list = hand_list(texts, max, SOCK_STREAM);
	cr_assert(gai_copy_from_addrinfo(list, &copy), "exactly the maximum is kept");
	cr_assert_eq(copy.addr_count, addrs);
	round_trip(list);
	hand_free(list);

	list = hand_list(texts, max + 1, SOCK_STREAM);
	cr_assert_not(gai_copy_from_addrinfo(list, &copy), "one more is refused");
	hand_free(list);
}

Test(refused, more_entries_than_kept)
{
	/* Four addresses, each many times: only the entry count is over. */
	const char *four[] = {"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"};
	const char *texts[GAI_COPY_ENTRIES_MAX + 1];
	for (unsigned i = 0; i <= GAI_COPY_ENTRIES_MAX; i++)
		texts[i] = four[i % 4];
	kept_up_to(texts, GAI_COPY_ENTRIES_MAX, 4);
}

Test(refused, more_addresses_than_kept)
{
	char storage[GAI_COPY_ADDRS_MAX + 1][32];
	const char *texts[GAI_COPY_ADDRS_MAX + 1];
	for (unsigned i = 0; i <= GAI_COPY_ADDRS_MAX; i++) {
		snprintf(storage[i], sizeof storage[i], "10.0.0.%u", i + 1);
		texts[i] = storage[i];
	}
	kept_up_to(texts, GAI_COPY_ADDRS_MAX, GAI_COPY_ADDRS_MAX);
}

Test(refused, unix_entry)
{
	const char *texts[] = {"192.0.2.1", "192.0.2.2"};
	struct addrinfo *list = hand_list(texts, 2, SOCK_STREAM);
	struct sockaddr_un *local = calloc(1, sizeof *local);
	cr_assert_not_null(local);
	local->sun_family = AF_UNIX;
	strcpy(local->sun_path, "/run/x.sock");
	free(list->ai_next->ai_addr);
	list->ai_next->ai_addr = (struct sockaddr *)local;
	list->ai_next->ai_addrlen = sizeof *local;
	list->ai_next->ai_family = AF_UNIX;
	struct gai_copy copy;

	cr_assert_not(gai_copy_from_addrinfo(list, &copy));
	hand_free(list);
}

Test(refused, inconsistent_entries)
{
	const char *texts[] = {"192.0.2.1", "2001:db8::1"};
	struct gai_copy copy;
	struct addrinfo *list = hand_list(texts, 2, SOCK_STREAM);

	list->ai_next->ai_family = AF_INET; /* an IPv6 sockaddr said to be IPv4 */
	cr_assert_not(gai_copy_from_addrinfo(list, &copy));
	list->ai_next->ai_family = AF_INET6;
	list->ai_next->ai_addrlen = sizeof(struct sockaddr_in6) - 4; /* too short */
	cr_assert_not(gai_copy_from_addrinfo(list, &copy));
	list->ai_next->ai_addrlen = sizeof(struct sockaddr_in6);
	list->ai_next->ai_canonname = strdup("second.example.test"); /* glibc names the first only */
	cr_assert_not(gai_copy_from_addrinfo(list, &copy));
	cr_assert_not(gai_copy_from_addrinfo(NULL, &copy));
	hand_free(list);
}

/* ---- Allocation failures ---- */

static void fail_at_every_allocation(const struct addrinfo *list)
{
	struct gai_copy copy;
	cr_assert(gai_copy_from_addrinfo(list, &copy));
	unsigned allocations = copy.entry_count + (copy.has_name ? 1u : 0u);

	for (unsigned k = 0; k < allocations; k++) {
		live_count = 0;
		fail_countdown = (int)k;
		struct addrinfo *rebuilt = gai_copy_to_addrinfo(&copy);
		fail_countdown = -1;
		cr_assert_null(rebuilt, "allocation %u failed, yet a list came back", k);
		cr_assert_eq(live_count, 0, "allocation %u failed: %u blocks left allocated", k, live_count);
	}
	/* And with every allocation there, the list, freed by glibc. */
	live_count = 0;
	fail_countdown = (int)allocations;
	struct addrinfo *rebuilt = gai_copy_to_addrinfo(&copy);
	fail_countdown = -1;
	cr_assert_not_null(rebuilt);
	cr_assert_eq(live_count, allocations, "one block per entry and one for the name");
	assert_same_list(list, rebuilt);
	freeaddrinfo(rebuilt);
	live_count = 0;
}

Test(allocation, failure_leaves_nothing_allocated)
{
	struct addrinfo *list = real_lookup("127.0.0.1", "80", AI_CANONNAME, AF_INET, 0);
	fail_at_every_allocation(list); /* the name's strdup is the last */
	freeaddrinfo(list);
	list = real_lookup("::1", NULL, 0, AF_INET6, 0);
	fail_at_every_allocation(list);
	freeaddrinfo(list);
}

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
