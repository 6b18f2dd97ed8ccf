#include "dnsmsg.h"

#include "dns_watch.h"

#include <ares.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#define HEADER_LEN 12
#define CLASS_IN 1

static uint16_t u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

bool dnsmsg_question(const uint8_t *msg, size_t len, struct dnsmsg_question *out)
{
	char *name = NULL;
	long name_len = 0;
	bool ok = false;

	if (len < HEADER_LEN || len > INT_MAX || u16(msg + 4) != 1)
		goto done;
	if (ares_expand_name(msg + HEADER_LEN, msg, (int)len, &name, &name_len) != ARES_SUCCESS)
		goto done;
	size_t after = HEADER_LEN + (size_t)name_len;
	size_t name_chars = strlen(name);
	if (name_len <= 0 || after + 4 > len || name_chars > DNSMSG_NAME_MAX)
		goto done;
	out->id = u16(msg);
	out->qtype = u16(msg + after);
	out->qclass = u16(msg + after + 2);
	memcpy(out->name, name, name_chars + 1);
	ok = true;
done:
	if (name != NULL)
		ares_free_string(name);
	return ok;
}

bool dnsmsg_same_question(const struct dnsmsg_question *a, const struct dnsmsg_question *b)
{
	return a->id == b->id && a->qtype == b->qtype && a->qclass == b->qclass && strcasecmp(a->name, b->name) == 0;
}

static uint32_t ttl_seconds(int ttl)
{
	return ttl < 0 ? 0 : (uint32_t)ttl; /* a TTL of 2^31 or more reads as negative: 0, never huge */
}

static void add_address(struct dnsmsg_learned *out, int family, const void *bytes, int ttl)
{
	struct ip_addr addr;
	if (!ip_addr_from_bytes(family, bytes, &addr))
		return;
	for (unsigned i = 0; i < out->count; i++)
		if (ip_addr_equal(&out->addrs[i], &addr))
			return;
	if (out->count == RECORDSET_MAX)
		return;
	out->addrs[out->count++] = addr;
	if (out->count == 1 || ttl_seconds(ttl) < out->ttl_seconds)
		out->ttl_seconds = ttl_seconds(ttl);
}

bool dnsmsg_read_answer(const uint8_t *msg, size_t len, struct dnsmsg_learned *out)
{
	if (len < HEADER_LEN || len > INT_MAX)
		return false;
	bool response = (msg[2] & 0x80) != 0, truncated = (msg[2] & 0x02) != 0;
	unsigned opcode = (msg[2] >> 3) & 0x0f, rcode = msg[3] & 0x0f;
	if (!response || truncated || opcode != 0 || rcode != 0)
		return false;
	if (!dnsmsg_question(msg, len, &out->question) || out->question.qclass != CLASS_IN)
		return false;
	out->count = 0;
	out->ttl_seconds = 0;
	int n = RECORDSET_MAX;
	if (out->question.qtype == DNSMSG_TYPE_A) {
		struct ares_addrttl found[RECORDSET_MAX];
		if (ares_parse_a_reply(msg, (int)len, NULL, found, &n) != ARES_SUCCESS)
			return false;
		for (int i = 0; i < n; i++)
			add_address(out, AF_INET, &found[i].ipaddr, found[i].ttl);
	} else if (out->question.qtype == DNSMSG_TYPE_AAAA) {
		struct ares_addr6ttl found[RECORDSET_MAX];
		if (ares_parse_aaaa_reply(msg, (int)len, NULL, found, &n) != ARES_SUCCESS)
			return false;
		for (int i = 0; i < n; i++)
			add_address(out, AF_INET6, &found[i].ip6addr, found[i].ttl);
	}
	return out->count > 0;
}

static bool question_matches(const uint8_t *query, size_t len, void *context)
{
	const struct dnsmsg_question *asked = context;
	struct dnsmsg_question sent;
	return dnsmsg_question(query, len, &sent) && dnsmsg_same_question(&sent, asked);
}

bool dnsmsg_next_learned(uint8_t *buf, struct dnsmsg_learned *out, unsigned *unmatched)
{
	size_t len;
	unsigned index;
	while ((len = dns_watch_take_answer(buf, &index)) > 0) {
		if (!dnsmsg_read_answer(buf, len, out))
			continue;
		if (dns_watch_find_query(index, question_matches, &out->question))
			return true;
		(*unmatched)++;
	}
	return false;
}
