/* A peer address as the library compares it: IPv4 or IPv6, v4-mapped IPv6 folded to IPv4. */
#ifndef DNSAWARE_ADDR_H
#define DNSAWARE_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct ip_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16];
};

#define IP_ADDR_STRLEN 46

/* From a sockaddr (AF_INET / AF_INET6). Returns false for anything else. port may be NULL. */
bool ip_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct ip_addr *out, uint16_t *port);
/* From raw address bytes of family (AF_INET: 4, AF_INET6: 16), as from a sockaddr: v4-mapped IPv6
 * folded to IPv4. False for another family. */
bool ip_addr_from_bytes(int family, const void *bytes, struct ip_addr *out);
bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b);
/* Writes a printable form into buf (IP_ADDR_STRLEN bytes). */
const char *ip_addr_format(const struct ip_addr *a, char *buf);

/* An address with its port as the log writes it: "10.0.0.5:443", "[fd00::10]:8080". */
#define IP_PEER_STRLEN (IP_ADDR_STRLEN + sizeof "[]:65535")
const char *ip_addr_format_peer(const struct ip_addr *a, uint16_t port, char *buf);

#endif
