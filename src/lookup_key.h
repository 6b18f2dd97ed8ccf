/* The query shape a stored answer belongs to (design.md, "The resolver's bad days"): the same
 * node, service, family, socktype, protocol and flags, asked through the same call, in the same
 * resolver context. Pure, unit-tested. */
#ifndef DNSAWARE_LOOKUP_KEY_H
#define DNSAWARE_LOOKUP_KEY_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOOKUP_NODE_MAX 255
#define LOOKUP_SERVICE_MAX 31

/* The _r forms of gethostbyname are kinds of their own: what they leave in *h_errnop is not what
 * the others leave in h_errno for the same answer, and a kept answer gives back the same call's. */
enum lookup_kind { LOOKUP_GETADDRINFO = 1, LOOKUP_HOSTENT = 2, LOOKUP_HOSTENT_R = 3 };

struct lookup_key {
	uint8_t kind;
	bool has_service;
	int32_t family;
	int32_t socktype;
	int32_t protocol;
	int32_t flags;
	/* What else decides a lookup's answer besides the files every process of the store shares:
	 * the resolver's environment (LOCALDOMAIN, RES_OPTIONS, HOSTALIASES), hashed. */
	uint64_t context;
	/* Lowercased (DNS and /etc/hosts compare names without case); a trailing dot is kept: "db."
	 * is absolute, "db" goes through the search list. */
	char node[LOOKUP_NODE_MAX + 1];
	char service[LOOKUP_SERVICE_MAX + 1];
};

/* glibc's hints when the program passes none. */
#define LOOKUP_DEFAULT_FLAGS (AI_V4MAPPED | AI_ADDRCONFIG)

/* False when the call is not one whose answer is kept: no node, a numeric host (AI_NUMERICHOST),
 * or a node or service too long. */
bool lookup_key_for_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
				uint64_t context, struct lookup_key *out);
/* gethostbyname (family AF_INET) and gethostbyname2; reentrant: their _r forms. */
bool lookup_key_for_hostent(const char *name, int family, bool reentrant, uint64_t context, struct lookup_key *out);

uint64_t lookup_key_hash(const struct lookup_key *key);
bool lookup_key_equal(const struct lookup_key *a, const struct lookup_key *b);

/* The node as the record sets name it (names.h): without the trailing dot. */
bool lookup_key_same_name(const struct lookup_key *key, const char *normalized_name);

/* FNV-1a over a string, continuing from h (0 starts afresh): the context hash is made of the
 * environment's values with it. */
uint64_t lookup_hash_text(uint64_t h, const char *text);
/* The same over length bytes. */
uint64_t lookup_hash_bytes(uint64_t h, const void *data, size_t length);

#endif
