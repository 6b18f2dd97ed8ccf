/* What every fuzz target shares: libFuzzer's entry points, a reader that turns the fuzzer's bytes
 * into choices, and the way a broken invariant is reported (abort, which libFuzzer and the replay
 * driver both count as a crash). */
#ifndef DNSAWARE_FUZZ_H
#define DNSAWARE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, once before the first input; the replay driver calls it when a target defines it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* An invariant the code under test must keep: when it does not, say which and crash. */
#define FUZZ_CHECK(condition, ...)                                                         \
	do {                                                                               \
		if (!(condition)) {                                                        \
			fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, \
				#condition);                                               \
			fprintf(stderr, __VA_ARGS__);                                      \
			fputc('\n', stderr);                                               \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* The input, consumed from the front. Reading past the end yields zeros, so every input, however
 * short, is a complete program of choices. */
struct fuzz_input {
	const uint8_t *data;
	size_t size;
};

static inline bool fuzz_more(const struct fuzz_input *in)
{
	return in->size > 0;
}

static inline uint8_t fuzz_byte(struct fuzz_input *in)
{
	if (in->size == 0)
		return 0;
	in->size--;
	return *in->data++;
}

static inline uint16_t fuzz_u16(struct fuzz_input *in)
{
	uint16_t high = fuzz_byte(in);

	return (uint16_t)(high << 8 | fuzz_byte(in));
}

static inline uint32_t fuzz_u32(struct fuzz_input *in)
{
	uint32_t high = fuzz_u16(in);

	return high << 16 | fuzz_u16(in);
}

/* Up to max bytes into out; returns how many were there. */
static inline size_t fuzz_bytes(struct fuzz_input *in, uint8_t *out, size_t max)
{
	size_t n = in->size < max ? in->size : max;

	if (n == 0)
		return 0; /* memcpy from a NULL data pointer is undefined even for no bytes */
	memcpy(out, in->data, n);
	in->data += n;
	in->size -= n;
	return n;
}

#endif
