#include "gai_copy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

static int find_or_add_addr(struct gai_copy *out, const struct gai_copy_addr *addr)
{
	for (unsigned i = 0; i < out->addr_count; i++)
		if (memcmp(&out->addrs[i], addr, sizeof *addr) == 0)
			return (int)i;
	if (out->addr_count == GAI_COPY_ADDRS_MAX)
		return -1;
	out->addrs[out->addr_count] = *addr;
	return out->addr_count++;
}

static bool read_sockaddr(const struct addrinfo *ai, struct gai_copy_addr *addr, uint16_t *port)
{
	memset(addr, 0, sizeof *addr);
	if (ai->ai_addr == NULL || ai->ai_family != ai->ai_addr->sa_family)
		return false;
	if (ai->ai_family == AF_INET && ai->ai_addrlen == sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
		addr->family = AF_INET;
		memcpy(addr->bytes, &sin->sin_addr, 4);
		*port = sin->sin_port;
		return true;
	}
	if (ai->ai_family == AF_INET6 && ai->ai_addrlen == sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ai->ai_addr;
		addr->family = AF_INET6;
		memcpy(addr->bytes, &sin6->sin6_addr, 16);
		addr->scope_id = sin6->sin6_scope_id;
		addr->flowinfo = sin6->sin6_flowinfo;
		*port = sin6->sin6_port;
		return true;
	}
	return false;
}

static bool copy_name(const char *name, struct gai_copy *out)
{
	size_t length = strlen(name);
	if (length > GAI_COPY_NAME_MAX)
		return false;
	memcpy(out->name, name, length + 1);
	out->has_name = true;
	return true;
}

bool gai_copy_from_addrinfo(const struct addrinfo *list, struct gai_copy *out)
{
	memset(out, 0, sizeof *out);
	if (list == NULL)
		return false;
	/* glibc puts the canonical name on the first entry only. */
	if (list->ai_canonname != NULL && !copy_name(list->ai_canonname, out))
		return false;
	for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
		struct gai_copy_addr addr;
		uint16_t port = 0;
		if (out->entry_count == GAI_COPY_ENTRIES_MAX || !read_sockaddr(ai, &addr, &port))
			return false;
		if (ai != list && ai->ai_canonname != NULL)
			return false;
		if (ai->ai_socktype < 0 || ai->ai_socktype > UINT8_MAX || ai->ai_protocol < 0 ||
		    ai->ai_protocol > UINT8_MAX)
			return false;
		int index = find_or_add_addr(out, &addr);
		if (index < 0)
			return false;
		out->entries[out->entry_count++] = (struct gai_copy_entry){
			.addr = (uint8_t)index, .socktype = (uint8_t)ai->ai_socktype,
			.protocol = (uint8_t)ai->ai_protocol, .port = port, .flags = ai->ai_flags};
	}
	return true;
}

bool gai_copy_from_hostent(const struct hostent *he, struct gai_copy *out)
{
	memset(out, 0, sizeof *out);
	out->hostent = true;
	if (he == NULL || he->h_addr_list == NULL || he->h_name == NULL || !copy_name(he->h_name, out))
		return false;
	if (!(he->h_addrtype == AF_INET && he->h_length == 4) && !(he->h_addrtype == AF_INET6 && he->h_length == 16))
		return false;
	for (char **p = he->h_addr_list; *p != NULL; p++) {
		struct gai_copy_addr addr = {.family = (uint8_t)he->h_addrtype};
		memcpy(addr.bytes, *p, (size_t)he->h_length);
		/* Kept as given: a hostent may list an address twice. */
		if (out->addr_count == GAI_COPY_ADDRS_MAX)
			return false;
		out->addrs[out->addr_count++] = addr;
	}
	for (char **p = he->h_aliases; p != NULL && *p != NULL; p++) {
		size_t length = strlen(*p) + 1;
		if (out->aliases_length + length > GAI_COPY_ALIASES_MAX)
			return false;
		memcpy(out->aliases + out->aliases_length, *p, length);
		out->aliases_length = (uint16_t)(out->aliases_length + length);
	}
	return out->addr_count > 0;
}

static void free_list(struct addrinfo *list)
{
	while (list != NULL) {
		struct addrinfo *next = list->ai_next;
		free(list->ai_canonname);
		free(list);
		list = next;
	}
}

static struct addrinfo *make_entry(const struct gai_copy *copy, const struct gai_copy_entry *entry)
{
	const struct gai_copy_addr *addr = &copy->addrs[entry->addr];
	socklen_t length = addr->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	/* One block: the entry and its address, as glibc's freeaddrinfo expects (it frees the entry
	 * and its canonical name, never ai_addr). */
	struct addrinfo *ai = calloc(1, sizeof *ai + length);
	if (ai == NULL)
		return NULL;
	ai->ai_flags = entry->flags;
	ai->ai_family = addr->family;
	ai->ai_socktype = entry->socktype;
	ai->ai_protocol = entry->protocol;
	ai->ai_addrlen = length;
	ai->ai_addr = (struct sockaddr *)(ai + 1);
	if (addr->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
		sin->sin_family = AF_INET;
		sin->sin_port = entry->port;
		memcpy(&sin->sin_addr, addr->bytes, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ai->ai_addr;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = entry->port;
		sin6->sin6_flowinfo = addr->flowinfo;
		sin6->sin6_scope_id = addr->scope_id;
		memcpy(&sin6->sin6_addr, addr->bytes, 16);
	}
	return ai;
}

struct addrinfo *gai_copy_to_addrinfo(const struct gai_copy *copy)
{
	struct addrinfo *head = NULL;
	struct addrinfo **tail = &head;
	if (copy->hostent || copy->entry_count == 0)
		return NULL;
	for (unsigned i = 0; i < copy->entry_count; i++) {
		struct addrinfo *ai = make_entry(copy, &copy->entries[i]);
		if (ai == NULL)
			goto fail;
		*tail = ai;
		tail = &ai->ai_next;
	}
	if (copy->has_name && (head->ai_canonname = strdup(copy->name)) == NULL)
		goto fail;
	return head;
fail:
	free_list(head);
	return NULL;
}

/* Carves size bytes aligned to align from the buffer; NULL when it does not fit. */
static void *carve(char **cursor, char *end, size_t size, size_t align)
{
	uintptr_t at = ((uintptr_t)*cursor + align - 1) & ~(uintptr_t)(align - 1);
	if (at > (uintptr_t)end || size > (uintptr_t)end - at)
		return NULL;
	*cursor = (char *)(at + size);
	return (void *)at;
}

int gai_copy_to_hostent(const struct gai_copy *copy, struct hostent *ret, char *buf, size_t buflen)
{
	char *cursor = buf, *end = buf + buflen;
	unsigned alias_count = 0;
	for (unsigned at = 0; at < copy->aliases_length; at += (unsigned)strlen(copy->aliases + at) + 1)
		alias_count++;
	int length = copy->addr_count > 0 && copy->addrs[0].family == AF_INET6 ? 16 : 4;
	char **aliases = carve(&cursor, end, (alias_count + 1) * sizeof(char *), alignof(char *));
	char **addr_list = carve(&cursor, end, (copy->addr_count + 1u) * sizeof(char *), alignof(char *));
	char *addr_bytes = carve(&cursor, end, (size_t)copy->addr_count * (size_t)length, 16);
	char *strings = carve(&cursor, end, strlen(copy->name) + 1 + copy->aliases_length, 1);
	if (!copy->hostent)
		return EINVAL;
	if (aliases == NULL || addr_list == NULL || addr_bytes == NULL || strings == NULL)
		return ERANGE;
	for (unsigned i = 0; i < copy->addr_count; i++) {
		addr_list[i] = addr_bytes + (size_t)i * (size_t)length;
		memcpy(addr_list[i], copy->addrs[i].bytes, (size_t)length);
	}
	addr_list[copy->addr_count] = NULL;
	size_t name_length = strlen(copy->name) + 1;
	memcpy(strings, copy->name, name_length);
	memcpy(strings + name_length, copy->aliases, copy->aliases_length);
	unsigned n = 0;
	for (unsigned at = 0; at < copy->aliases_length; at += (unsigned)strlen(copy->aliases + at) + 1)
		aliases[n++] = strings + name_length + at;
	aliases[n] = NULL;
	ret->h_name = strings;
	ret->h_aliases = aliases;
	ret->h_addrtype = length == 16 ? AF_INET6 : AF_INET;
	ret->h_length = length;
	ret->h_addr_list = addr_list;
	return 0;
}

unsigned gai_copy_addresses(const struct gai_copy *copy, struct ip_addr *out, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < copy->addr_count && n < max; i++) {
		struct ip_addr addr;
		if (!ip_addr_from_bytes(copy->addrs[i].family, copy->addrs[i].bytes, &addr))
			continue;
		bool seen = false;
		for (unsigned j = 0; j < n && !seen; j++)
			seen = ip_addr_equal(&out[j], &addr);
		if (!seen)
			out[n++] = addr;
	}
	return n;
}
