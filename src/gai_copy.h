/* A lookup's answer kept as plain bytes (no pointers: it lives in memory several processes share)
 * and given back exactly as the real call returned it: the same entries in the same order, the
 * canonical name, one entry per socktype. An addrinfo list is laid out as glibc lays it out, each
 * entry one block with its address after it and the canonical name a block of its own on the first
 * entry, so that glibc's freeaddrinfo frees it. Pure, unit-tested (under ASan, freed by the real
 * freeaddrinfo). */
#ifndef DNSAWARE_GAI_COPY_H
#define DNSAWARE_GAI_COPY_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define GAI_COPY_ADDRS_MAX 32
#define GAI_COPY_ENTRIES_MAX 96
#define GAI_COPY_NAME_MAX 255
#define GAI_COPY_ALIASES_MAX 255 /* bytes of the aliases, each with its terminator */
#define GAI_COPY_H_ERROR_UNSET INT8_MIN

struct gai_copy_addr {
	uint8_t family;
	uint8_t bytes[16];
	uint32_t scope_id;
	uint32_t flowinfo;
};

struct gai_copy_entry {
	uint8_t addr;      /* index into addrs */
	uint8_t socktype;
	uint8_t protocol;
	uint16_t port;     /* network order */
	int32_t flags;
};

struct gai_copy {
	bool hostent;         /* a struct hostent, not an addrinfo list */
	bool has_name;        /* addrinfo: ai_canonname on the first entry */
	uint8_t addr_count;
	uint8_t entry_count;  /* addrinfo entries */
	uint16_t aliases_length;
	/* hostent: the h_errno value the real call gave with its answer (h_errno, or the _r forms'
	 * *h_errnop), or GAI_COPY_H_ERROR_UNSET when it left it alone. Set by the caller (0 after the
	 * copy). In what was padding: the layout's size, hence the store file's name, is unchanged. */
	int8_t h_error;
	struct gai_copy_addr addrs[GAI_COPY_ADDRS_MAX];
	struct gai_copy_entry entries[GAI_COPY_ENTRIES_MAX];
	char name[GAI_COPY_NAME_MAX + 1];   /* ai_canonname or h_name */
	char aliases[GAI_COPY_ALIASES_MAX]; /* h_aliases, each ending in '\0' */
};

/* False when the answer does not fit (it is then not kept) or holds something else than IPv4 and
 * IPv6 entries. */
bool gai_copy_from_addrinfo(const struct addrinfo *list, struct gai_copy *out);
bool gai_copy_from_hostent(const struct hostent *he, struct gai_copy *out);

/* A new list, as getaddrinfo would have returned it; NULL without memory (nothing is left
 * allocated). */
struct addrinfo *gai_copy_to_addrinfo(const struct gai_copy *copy);

/* Fills ret, its pointers into buf, as gethostbyname_r would. 0, or ERANGE when buf is too small. */
int gai_copy_to_hostent(const struct gai_copy *copy, struct hostent *ret, char *buf, size_t buflen);

/* The distinct addresses of the answer, in order, as the record sets compare them. */
unsigned gai_copy_addresses(const struct gai_copy *copy, struct ip_addr *out, unsigned max);

#endif
