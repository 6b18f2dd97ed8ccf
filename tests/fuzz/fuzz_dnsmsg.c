/* Fuzz target: what the library does with the DNS a program exchanges itself. The hooks' side
 * (dns_watch.c: queries and answers kept, TCP streams reassembled) fed with the input's bytes in
 * the input's pieces, and the reading side (dnsmsg.c: c-ares' parsers, the match of id and
 * question) run over whatever was kept, exactly as dns_learn.c runs it.
 *
 * Input: a header byte (a datagram or a stream socket), then operations until the input ends:
 * - the program sends a query (id, name from a small pool or the input, type A, AAAA or another);
 * - the program receives raw bytes from the input;
 * - the program receives an answer built from the input: an id and a question (often those of a
 *   query it sent), flags and rcode, and records (A, AAAA, CNAME chains, records for other names,
 *   odd TTLs, wrong lengths), then possibly cut short;
 * - bytes discarded unread (MSG_TRUNC), or a truncated datagram;
 * - the answers kept so far are read.
 * Stream bytes go length-prefixed (answers sometimes not, when the input says so) in pieces of
 * input-chosen size.
 *
 * Checked, for every answer learned:
 * - it answers a query the program sent, with the same id, type, class and name (no case);
 * - it holds 1 to RECORDSET_MAX distinct addresses, IPv4 or IPv6, never v4-mapped, each one an
 *   address the input put in an A or AAAA record of that answer;
 * - its TTL is at most the largest TTL the input wrote, and never negative.
 * And: a well-formed datagram answer to a query just sent, with an address for the name itself,
 * read at once, is learned. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <strings.h>

#include "dns_watch.h"
#include "dnsmsg.h"

#define SENT_MAX 64
#define RECORDS_MAX 24

static const char *const names[] = { "svc.test", "SVC.test", "a.b.c.example", "x", "cdn.test", "svc.test." };

struct sent_query {
	uint16_t id, qtype;
	char name[DNSMSG_NAME_MAX + 1];
};

static struct sent_query sent[SENT_MAX];
static unsigned sent_count;
/* The last query sent is sent[sent_count - 1] (not one the library reads otherwise, nor one past
 * SENT_MAX): an answer to it must be learned. */
static bool last_is_latest;
/* Every address any built answer held, and the largest TTL written. */
static uint8_t written_addrs[4096][16];
static uint8_t written_family[4096];
static unsigned written_count;
static uint32_t largest_ttl;

struct msg {
	uint8_t b[8192];
	size_t n;
};

static void m_u16(struct msg *m, unsigned v)
{
	if (m->n + 2 > sizeof m->b)
		return;
	m->b[m->n++] = (uint8_t)(v >> 8);
	m->b[m->n++] = (uint8_t)v;
}

static void m_name(struct msg *m, const char *name)
{
	while (*name != '\0' && m->n + 66 < sizeof m->b) {
		size_t label = strcspn(name, ".");
		if (label > 63)
			label = 63;
		m->b[m->n++] = (uint8_t)label;
		memcpy(m->b + m->n, name, label);
		m->n += label;
		name += label;
		if (*name == '.')
			name++;
	}
	if (m->n < sizeof m->b)
		m->b[m->n++] = 0;
}

static void pick_name(struct fuzz_input *in, char out[64])
{
	uint8_t choice = fuzz_byte(in);
	if (choice < 200) {
		snprintf(out, 64, "%s", names[choice % (sizeof names / sizeof names[0])]);
		return;
	}
	size_t len = fuzz_byte(in) % 40;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = fuzz_byte(in);
		out[i] = (char)(c % 3 == 0 ? '.' : 'a' + c % 26);
	}
	out[len] = '\0';
}

static unsigned pick_type(struct fuzz_input *in)
{
	uint8_t choice = fuzz_byte(in);
	return choice % 4 == 0 ? DNSMSG_TYPE_AAAA : choice % 4 == 3 ? choice : DNSMSG_TYPE_A;
}

/* Feeds a message as the program's socket carries it: one datagram, or prefixed stream pieces. */
static void carry(int index, bool stream, bool outgoing, struct fuzz_input *in, const uint8_t *bytes, size_t n)
{
	static uint8_t framed[2 + sizeof((struct msg *)0)->b];
	if (!stream) {
		struct iovec iov = { (void *)bytes, n };
		if (outgoing)
			dns_watch_sent(index, &iov, 1, n);
		else
			dns_watch_received(index, &iov, 1, n, false);
		return;
	}
	size_t total = 0;
	/* Answers mostly framed, sometimes not, as garbage would be; queries always (the checks
	 * know what was sent only as whole messages). */
	if (outgoing || fuzz_byte(in) % 8 != 0) {
		framed[0] = (uint8_t)(n >> 8);
		framed[1] = (uint8_t)n;
		total = 2;
	}
	memcpy(framed + total, bytes, n);
	total += n;
	for (size_t at = 0; at < total;) {
		size_t piece = 1 + fuzz_byte(in) % 64;
		if (fuzz_byte(in) % 4 == 0)
			piece = total - at;
		if (piece > total - at)
			piece = total - at;
		/* Sometimes scattered over two buffers. */
		struct iovec iov[2] = { { framed + at, piece / 2 }, { framed + at + piece / 2, piece - piece / 2 } };
		if (outgoing)
			dns_watch_sent(index, iov, 2, piece);
		else
			dns_watch_received(index, iov, 2, piece, false);
		at += piece;
	}
}

static void send_query(int index, bool stream, struct fuzz_input *in)
{
	if (sent_count == SENT_MAX)
		return; /* a query the checks could not know of */
	struct msg q = { .n = 0 };
	struct sent_query s = { .id = fuzz_u16(in), .qtype = (uint16_t)pick_type(in) };
	char name[64];
	pick_name(in, name);
	m_u16(&q, s.id);
	m_u16(&q, 0x0100);
	m_u16(&q, 1);
	m_u16(&q, 0);
	m_u16(&q, 0);
	m_u16(&q, 0);
	m_name(&q, name);
	m_u16(&q, s.qtype);
	m_u16(&q, 1);
	struct dnsmsg_question parsed;
	last_is_latest = false;
	if (dnsmsg_question(q.b, q.n, &parsed)) {
		/* A name with an empty label ends early: what follows is read as type and class. */
		last_is_latest = parsed.qclass == 1;
		/* What the library will read of it (a name of odd labels may end early). */
		s.id = parsed.id;
		s.qtype = parsed.qtype;
		strcpy(s.name, parsed.name);
		sent[sent_count++] = s;
	}
	carry(index, stream, true, in, q.b, q.n);
}

static void note_written(int family, const uint8_t *bytes)
{
	if (written_count == sizeof written_family)
		return;
	written_family[written_count] = (uint8_t)family;
	memcpy(written_addrs[written_count++], bytes, family == AF_INET ? 4 : 16);
}

static void put_record(struct msg *a, struct fuzz_input *in, const char *owner)
{
	uint8_t kind = fuzz_byte(in);
	uint32_t ttl = kind & 0x80 ? fuzz_u32(in) : (uint32_t)(fuzz_byte(in) * 10);
	if (ttl > largest_ttl)
		largest_ttl = ttl;
	m_name(a, owner);
	uint8_t bytes[16];
	for (int i = 0; i < 16; i++)
		bytes[i] = fuzz_byte(in) % 4 == 0 ? fuzz_byte(in) : (uint8_t)(i == 0 ? 10 : 0);
	if (kind % 5 == 4) { /* v4-mapped */
		memset(bytes, 0, 10);
		bytes[10] = bytes[11] = 0xff;
	}
	switch (kind % 5) {
	case 0:
	case 1:
		m_u16(a, DNSMSG_TYPE_A);
		m_u16(a, 1);
		m_u16(a, ttl >> 16);
		m_u16(a, ttl & 0xffff);
		m_u16(a, kind & 0x40 ? 4 : fuzz_byte(in) % 8);
		note_written(AF_INET, bytes);
		if (a->n + 4 <= sizeof a->b)
			memcpy(a->b + a->n, bytes, 4), a->n += 4;
		break;
	case 2:
	case 4:
		m_u16(a, DNSMSG_TYPE_AAAA);
		m_u16(a, 1);
		m_u16(a, ttl >> 16);
		m_u16(a, ttl & 0xffff);
		m_u16(a, 16);
		note_written(AF_INET6, bytes);
		note_written(AF_INET, bytes + 12); /* a v4-mapped one is learned as IPv4 */
		if (a->n + 16 <= sizeof a->b)
			memcpy(a->b + a->n, bytes, 16), a->n += 16;
		break;
	default: { /* a CNAME to another name of the pool */
		char target[64];
		pick_name(in, target);
		m_u16(a, 5);
		m_u16(a, 1);
		m_u16(a, ttl >> 16);
		m_u16(a, ttl & 0xffff);
		size_t len_at = a->n;
		m_u16(a, 0);
		size_t start = a->n;
		m_name(a, target);
		if (len_at + 2 <= sizeof a->b) {
			a->b[len_at] = (uint8_t)((a->n - start) >> 8);
			a->b[len_at + 1] = (uint8_t)(a->n - start);
		}
	}
	}
}

/* Builds an answer; returns whether it is one the library must learn if read at once (well
 * formed, NOERROR, to the last query sent, an address for the name itself first). */
static bool build_answer(struct msg *a, struct fuzz_input *in)
{
	uint8_t shape = fuzz_byte(in);
	bool to_last = sent_count > 0 && shape % 4 != 0;
	struct sent_query s = to_last ? sent[sent_count - 1] : (struct sent_query){ .id = fuzz_u16(in), .qtype = (uint16_t)pick_type(in) };
	if (!to_last)
		pick_name(in, s.name);
	unsigned flags = shape & 0x10 ? fuzz_u16(in) | 0x8000 : 0x8180;
	unsigned records = fuzz_byte(in) % RECORDS_MAX;
	a->n = 0;
	m_u16(a, s.id);
	m_u16(a, flags);
	m_u16(a, 1);
	m_u16(a, records);
	m_u16(a, 0);
	m_u16(a, 0);
	m_name(a, s.name);
	m_u16(a, s.qtype);
	m_u16(a, 1);
	bool learnable = to_last && last_is_latest && flags == 0x8180 && records > 0 &&
			 (s.qtype == DNSMSG_TYPE_A || s.qtype == DNSMSG_TYPE_AAAA);
	for (unsigned r = 0; r < records; r++) {
		if (r == 0 && learnable) {
			/* The first record: an address for the name itself, well formed. */
			uint8_t bytes[16] = { 10, 1, 2, 3, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
			bytes[3] = fuzz_byte(in);
			m_name(a, s.name);
			m_u16(a, s.qtype);
			m_u16(a, 1);
			m_u16(a, 0);
			m_u16(a, 30);
			m_u16(a, s.qtype == DNSMSG_TYPE_A ? 4 : 16);
			note_written(s.qtype == DNSMSG_TYPE_A ? AF_INET : AF_INET6, bytes);
			if (a->n + 16 <= sizeof a->b)
				memcpy(a->b + a->n, bytes, s.qtype == DNSMSG_TYPE_A ? 4 : 16);
			a->n += s.qtype == DNSMSG_TYPE_A ? 4 : 16;
			largest_ttl = largest_ttl > 30 ? largest_ttl : 30;
			continue;
		}
		char owner[64];
		if (fuzz_byte(in) % 2 == 0)
			strcpy(owner, s.name);
		else
			pick_name(in, owner);
		put_record(a, in, owner);
	}
	if (a->n > sizeof a->b)
		a->n = sizeof a->b;
	/* Records after the first may be malformed (lengths the input chose): c-ares then refuses
	 * the whole answer, so only an answer of one record is certain to be learned. */
	learnable = learnable && records == 1;
	if (fuzz_byte(in) % 8 == 0) {
		a->n = fuzz_u16(in) % (a->n + 1);
		learnable = false;
	}
	return learnable;
}

static bool was_sent(const struct dnsmsg_question *q)
{
	for (unsigned i = 0; i < sent_count; i++)
		if (sent[i].id == q->id && sent[i].qtype == q->qtype && strcasecmp(sent[i].name, q->name) == 0)
			return true;
	return false;
}

static bool was_written(const struct ip_addr *a)
{
	for (unsigned i = 0; i < written_count; i++)
		if (written_family[i] == a->family && memcmp(written_addrs[i], a->bytes, a->family == AF_INET ? 4 : 16) == 0)
			return true;
	return false;
}

static unsigned read_answers(void)
{
	static uint8_t buf[DNS_ANSWER_MAX];
	struct dnsmsg_learned l;
	unsigned unmatched = 0, learned = 0;
	while (dnsmsg_next_learned(buf, &l, &unmatched)) {
		learned++;
		FUZZ_CHECK(was_sent(&l.question), "learned %s (id %u, type %u): no such query was sent", l.question.name,
			   l.question.id, l.question.qtype);
		FUZZ_CHECK(l.question.qclass == 1, "class %u", l.question.qclass);
		FUZZ_CHECK(l.count >= 1 && l.count <= RECORDSET_MAX, "%u addresses", l.count);
		FUZZ_CHECK(l.ttl_seconds <= largest_ttl && l.ttl_seconds <= INT32_MAX, "TTL %u (largest written %u)",
			   l.ttl_seconds, largest_ttl);
		for (unsigned i = 0; i < l.count; i++) {
			const struct ip_addr *a = &l.addrs[i];
			FUZZ_CHECK(a->family == AF_INET || a->family == AF_INET6, "family %u", a->family);
			static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
			FUZZ_CHECK(a->family == AF_INET || memcmp(a->bytes, mapped, 12) != 0, "a v4-mapped address kept");
			FUZZ_CHECK(was_written(a), "an address no record held");
			for (unsigned j = 0; j < i; j++)
				FUZZ_CHECK(!ip_addr_equal(a, &l.addrs[j]), "a duplicate address");
		}
	}
	return learned;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	sent_count = 0;
	last_is_latest = false;
	written_count = 0;
	largest_ttl = 0;
	uint8_t buf[DNS_ANSWER_MAX];
	unsigned ignored;
	while (dns_watch_take_answer(buf, &ignored) > 0)
		;
	dns_watch_forget_all();
	bool stream = fuzz_byte(&in) % 2 == 1;
	int index = dns_watch_claim(stream);
	FUZZ_CHECK(index >= 0, "the pool is empty");
	for (unsigned ops = 0; fuzz_more(&in) && ops < 256; ops++) {
		uint8_t op = fuzz_byte(&in);
		switch (op % 5) {
		case 0:
			send_query(index, stream, &in);
			break;
		case 1: {
			uint8_t raw[600];
			size_t n = fuzz_u16(&in) % sizeof raw;
			for (size_t i = 0; i < n; i++)
				raw[i] = fuzz_byte(&in);
			carry(index, stream, false, &in, raw, n);
			break;
		}
		case 2: {
			static struct msg a;
			/* Read at once, with the slots empty: a learnable datagram answer must be learned. */
			read_answers();
			bool learnable = build_answer(&a, &in);
			carry(index, stream, false, &in, a.b, a.n);
			if (learnable && !stream)
				FUZZ_CHECK(read_answers() == 1, "a well-formed answer to the last query was not learned");
			break;
		}
		case 3: {
			struct iovec iov = { buf, 12 };
			memset(buf, 0x80, 12);
			dns_watch_received(index, stream ? NULL : &iov, 1, 1 + fuzz_byte(&in), !stream);
			break;
		}
		default:
			read_answers();
		}
	}
	read_answers();
	dns_watch_unref(index);
	return 0;
}
