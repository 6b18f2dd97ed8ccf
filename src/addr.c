/* Peer addresses in one comparable form. A program may connect to ::ffff:10.0.0.5 on a dual-stack
 * socket after learning 10.0.0.5 from getaddrinfo; both must compare equal, so v4-mapped IPv6 is
 * folded to IPv4 here, once, and everything else compares plain bytes. */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Linux accepts an AF_INET6 sockaddr without sin6_scope_id (the RFC 2133 layout), so only the
 * bytes up to the end of sin6_addr are required. */
#define SOCKADDR_IN6_MIN_LEN (offsetof(struct sockaddr_in6, sin6_addr) + sizeof(struct in6_addr))

static bool read_family(const struct sockaddr *sa, socklen_t len, sa_family_t *family)
{
	if (len < offsetof(struct sockaddr, sa_family) + sizeof *family)
		return false;
	memcpy(family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof *family);
	return true;
}

bool ip_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct ip_addr *out, uint16_t *port)
{
	struct ip_addr parsed;
	uint16_t parsed_port;
	sa_family_t family;

	if (sa == NULL || out == NULL || !read_family(sa, len, &family))
		return false;
	/* Unused bytes are zeroed so that callers may hash or memcmp the whole struct. */
	memset(&parsed, 0, sizeof parsed);
	if (family == AF_INET) {
		struct sockaddr_in v4;

		if (len < sizeof v4)
			return false;
		/* Copied rather than cast: the caller's buffer need not be aligned for sockaddr_in. */
		memcpy(&v4, sa, sizeof v4);
		parsed.family = AF_INET;
		memcpy(parsed.bytes, &v4.sin_addr, 4);
		parsed_port = ntohs(v4.sin_port);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 v6;

		if (len < SOCKADDR_IN6_MIN_LEN)
			return false;
		memset(&v6, 0, sizeof v6);
		memcpy(&v6, sa, len < sizeof v6 ? len : sizeof v6);
		if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
			parsed.family = AF_INET;
			memcpy(parsed.bytes, v6.sin6_addr.s6_addr + 12, 4);
		} else {
			/* The scope id is left out: DNS answers carry none, so it cannot tell names apart. */
			parsed.family = AF_INET6;
			memcpy(parsed.bytes, v6.sin6_addr.s6_addr, 16);
		}
		parsed_port = ntohs(v6.sin6_port);
	} else {
		return false;
	}
	*out = parsed;
	if (port != NULL)
		*port = parsed_port;
	return true;
}

bool ip_addr_from_bytes(int family, const void *bytes, struct ip_addr *out)
{
	struct sockaddr_in v4 = {.sin_family = AF_INET};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
	if (family == AF_INET) {
		memcpy(&v4.sin_addr, bytes, 4);
		return ip_addr_from_sockaddr((const struct sockaddr *)&v4, sizeof v4, out, NULL);
	}
	if (family == AF_INET6) {
		memcpy(&v6.sin6_addr, bytes, 16);
		return ip_addr_from_sockaddr((const struct sockaddr *)&v6, sizeof v6, out, NULL);
	}
	return false;
}

bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b)
{
	if (a == NULL || b == NULL || a->family != b->family)
		return false;
	if (a->family == AF_INET)
		return memcmp(a->bytes, b->bytes, 4) == 0;
	if (a->family == AF_INET6)
		return memcmp(a->bytes, b->bytes, 16) == 0;
	return false;
}

const char *ip_addr_format(const struct ip_addr *a, char *buf)
{
	if (buf == NULL)
		return NULL;
	if (a == NULL || (a->family != AF_INET && a->family != AF_INET6) ||
	    inet_ntop(a->family, a->bytes, buf, IP_ADDR_STRLEN) == NULL)
		memcpy(buf, "?", sizeof "?");
	return buf;
}

const char *ip_addr_format_peer(const struct ip_addr *a, uint16_t port, char *buf)
{
	char text[IP_ADDR_STRLEN];
	ip_addr_format(a, text);
	bool bracketed = a != NULL && a->family == AF_INET6;
	snprintf(buf, IP_PEER_STRLEN, bracketed ? "[%s]:%u" : "%s:%u", text, port);
	return buf;
}
