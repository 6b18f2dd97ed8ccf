/* DNS messages built by hand for the tests of dnsmsg.c and dns_watch.c: a query, and an answer
 * with a chosen header, question and records (A, AAAA, CNAME), in wire format. */
#ifndef DNSAWARE_TEST_DNS_WIRE_H
#define DNSAWARE_TEST_DNS_WIRE_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

struct wire {
	uint8_t b[4096];
	size_t n;
	size_t ancount_at;
};

static inline void w_u16(struct wire *w, unsigned v)
{
	w->b[w->n++] = (uint8_t)(v >> 8);
	w->b[w->n++] = (uint8_t)v;
}

static inline void w_u32(struct wire *w, uint32_t v)
{
	w_u16(w, v >> 16);
	w_u16(w, v & 0xffff);
}

static inline void w_name(struct wire *w, const char *name)
{
	while (*name != '\0') {
		size_t label = strcspn(name, ".");
		w->b[w->n++] = (uint8_t)label;
		memcpy(w->b + w->n, name, label);
		w->n += label;
		name += label + (name[label] == '.');
	}
	w->b[w->n++] = 0;
}

/* flags: the two flag bytes (0x0100 a query with RD, 0x8180 a NOERROR answer). */
static inline void w_message(struct wire *w, unsigned id, unsigned flags, const char *qname, unsigned qtype)
{
	w->n = 0;
	w_u16(w, id);
	w_u16(w, flags);
	w_u16(w, 1);
	w->ancount_at = w->n;
	w_u16(w, 0);
	w_u16(w, 0);
	w_u16(w, 0);
	w_name(w, qname);
	w_u16(w, qtype);
	w_u16(w, 1);
}

static inline void w_count_answer(struct wire *w)
{
	unsigned count = (unsigned)w->b[w->ancount_at] << 8 | w->b[w->ancount_at + 1];
	count++;
	w->b[w->ancount_at] = (uint8_t)(count >> 8);
	w->b[w->ancount_at + 1] = (uint8_t)count;
}

static inline void w_a(struct wire *w, const char *owner, uint32_t ttl, const char *ip)
{
	struct in_addr a;
	inet_pton(AF_INET, ip, &a);
	w_name(w, owner);
	w_u16(w, 1);
	w_u16(w, 1);
	w_u32(w, ttl);
	w_u16(w, 4);
	memcpy(w->b + w->n, &a, 4);
	w->n += 4;
	w_count_answer(w);
}

static inline void w_aaaa(struct wire *w, const char *owner, uint32_t ttl, const char *ip)
{
	struct in6_addr a;
	inet_pton(AF_INET6, ip, &a);
	w_name(w, owner);
	w_u16(w, 28);
	w_u16(w, 1);
	w_u32(w, ttl);
	w_u16(w, 16);
	memcpy(w->b + w->n, &a, 16);
	w->n += 16;
	w_count_answer(w);
}

static inline void w_cname(struct wire *w, const char *owner, uint32_t ttl, const char *target)
{
	w_name(w, owner);
	w_u16(w, 5);
	w_u16(w, 1);
	w_u32(w, ttl);
	size_t len_at = w->n;
	w_u16(w, 0);
	size_t start = w->n;
	w_name(w, target);
	w->b[len_at] = (uint8_t)((w->n - start) >> 8);
	w->b[len_at + 1] = (uint8_t)(w->n - start);
	w_count_answer(w);
}

#endif
