/* Addresses from literals for the unit tests, with inet_pton rather than addr.c, so a test
 * stands on the one module it tests. */
#ifndef DNSAWARE_TEST_IP_LITERAL_H
#define DNSAWARE_TEST_IP_LITERAL_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"

static inline struct ip_addr ip(const char *text)
{
	struct ip_addr addr;

	memset(&addr, 0, sizeof(addr));
	if (inet_pton(AF_INET, text, addr.bytes) == 1)
		addr.family = AF_INET;
	else if (inet_pton(AF_INET6, text, addr.bytes) == 1)
		addr.family = AF_INET6;
	else
		cr_assert_fail("bad address literal %s", text);
	return addr;
}

#endif
