/* The answer a lookup gave, kept as plain bytes and given back (gai_copy.c), as an addrinfo list:
 * real lists from glibc's getaddrinfo (numeric hosts, no DNS) and lists built by hand round-trip
 * field by field, and the rebuilt list is freed by glibc's own freeaddrinfo (this test is not
 * preloaded: under ASan that proves the layout, one block per entry with its address inside and
 * the canonical name a block of its own); what is refused; every allocation failing in turn.
 * The hostent side and the addresses as the record sets see them: test_gai_copy_hostent.c.
 *
 * This binary is linked with --wrap=calloc,strdup,free (tests/unit/meson.build): the wrappers
 * below make an allocation of gai_copy.c fail on demand and count what it left allocated. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "gai_copy.h"
#include "gai_copy_lists.h"

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
