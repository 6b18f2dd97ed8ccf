#include "lookup_key.h"

#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

uint64_t lookup_hash_bytes(uint64_t h, const void *data, size_t length)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < length; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

uint64_t lookup_hash_text(uint64_t h, const char *text)
{
	if (h == 0)
		h = FNV_OFFSET;
	/* NULL and "" differ: an unset variable is not an empty one. */
	if (text == NULL)
		return lookup_hash_bytes(h, "\1", 1);
	return lookup_hash_bytes(h, text, strlen(text) + 1);
}

static bool copy_lowered(const char *text, char *out, size_t size)
{
	size_t i;
	for (i = 0; text[i] != '\0'; i++) {
		if (i + 1 >= size)
			return false;
		char c = text[i];
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[i] = '\0';
	return i > 0;
}

static bool start_key(enum lookup_kind kind, const char *node, uint64_t context, struct lookup_key *out)
{
	memset(out, 0, sizeof *out);
	out->kind = (uint8_t)kind;
	out->context = context;
	return node != NULL && copy_lowered(node, out->node, sizeof out->node);
}

bool lookup_key_for_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
				uint64_t context, struct lookup_key *out)
{
	if (!start_key(LOOKUP_GETADDRINFO, node, context, out))
		return false;
	if (hints != NULL) {
		out->family = hints->ai_family;
		out->socktype = hints->ai_socktype;
		out->protocol = hints->ai_protocol;
		out->flags = hints->ai_flags;
	} else {
		out->family = AF_UNSPEC;
		out->flags = LOOKUP_DEFAULT_FLAGS;
	}
	if (out->flags & AI_NUMERICHOST)
		return false;
	if (service != NULL) {
		size_t length = strlen(service);
		if (length > LOOKUP_SERVICE_MAX)
			return false;
		memcpy(out->service, service, length + 1);
		out->has_service = true;
	}
	return true;
}

bool lookup_key_for_hostent(const char *name, int family, bool reentrant, uint64_t context, struct lookup_key *out)
{
	if (!start_key(reentrant ? LOOKUP_HOSTENT_R : LOOKUP_HOSTENT, name, context, out))
		return false;
	out->family = family;
	return true;
}

uint64_t lookup_key_hash(const struct lookup_key *key)
{
	uint64_t h = lookup_hash_text(0, key->node);
	h = lookup_hash_text(h, key->has_service ? key->service : NULL);
	int32_t numbers[] = {key->kind, key->family, key->socktype, key->protocol, key->flags};
	h = lookup_hash_bytes(h, numbers, sizeof numbers);
	return lookup_hash_bytes(h, &key->context, sizeof key->context);
}

bool lookup_key_equal(const struct lookup_key *a, const struct lookup_key *b)
{
	return a->kind == b->kind && a->has_service == b->has_service && a->family == b->family &&
	       a->socktype == b->socktype && a->protocol == b->protocol && a->flags == b->flags &&
	       a->context == b->context && strcmp(a->node, b->node) == 0 && strcmp(a->service, b->service) == 0;
}

bool lookup_key_same_name(const struct lookup_key *key, const char *normalized_name)
{
	size_t length = strlen(normalized_name);
	return strncmp(key->node, normalized_name, length) == 0 &&
	       (key->node[length] == '\0' || (key->node[length] == '.' && key->node[length + 1] == '\0'));
}
