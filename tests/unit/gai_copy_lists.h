/* The addrinfo lists of the gai_copy unit tests (test_gai_copy.c, test_gai_copy_hostent.c):
 * real ones from glibc's getaddrinfo (numeric hosts, no DNS) and ones built by hand. */
#ifndef DNSAWARE_TEST_GAI_COPY_LISTS_H
#define DNSAWARE_TEST_GAI_COPY_LISTS_H

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static inline struct addrinfo *real_lookup(const char *node, const char *service, int flags, int family, int socktype)
{
	struct addrinfo hints = {.ai_flags = flags | AI_NUMERICHOST, .ai_family = family, .ai_socktype = socktype};
	struct addrinfo *list = NULL;
	int error = getaddrinfo(node, service, &hints, &list);

	cr_assert_eq(error, 0, "getaddrinfo(%s, %s): %s", node, service ? service : "NULL", gai_strerror(error));
	return list;
}

/* A list as a program's resolver might give it, built by hand: entries and sockaddrs malloc'd
 * apart (not glibc's layout: freed here, entry by entry). */
static inline struct addrinfo *hand_entry(const char *text, uint16_t port, int socktype, int protocol, int flags)
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

static inline void hand_free(struct addrinfo *list)
{
	while (list != NULL) {
		struct addrinfo *next = list->ai_next;
		free(list->ai_canonname);
		free(list->ai_addr);
		free(list);
		list = next;
	}
}

static inline struct addrinfo *hand_list(const char *const *texts, unsigned n, int socktype)
{
	struct addrinfo *head = NULL, **tail = &head;

	for (unsigned i = 0; i < n; i++) {
		*tail = hand_entry(texts[i], (uint16_t)(443 + i), socktype, socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP,
				   AI_ADDRCONFIG);
		tail = &(*tail)->ai_next;
	}
	return head;
}

#endif
