/* Fuzz target: the duration parser (DNSAWARE_TTL_FLOOR, _IDLE, _MAX_AGE, ...). The input, up to
 * its first NUL, is the text. Checked against an independent reading of the documented form
 * ("250ms", "2s", "5m", "1h", "1d", a bare number of seconds; nothing else, at most 30 days):
 * - accepted exactly when the reference accepts, with the same value, never above 30 days;
 * - a rejected text leaves the output untouched;
 * - an accepted value written back in each unit that holds it exactly ("Nms", "Ns", "N", "Nm",
 *   "Nh", "Nd") parses to the same value (the round trip a formatter of durations would rely on). */
#include "fuzz.h"

#include <inttypes.h>

#include "config.h"

/* Long enough for any digits worth reading: inputs past it are cut, which only shortens them. */
#define TEXT_MAX 4096
#define UNTOUCHED UINT64_C(0xfeedfacecafebeef)

/* The documented form, read without config.c's code: digits, then nothing or one of the units.
 * Leading zeros are digits like any other. Returns false for anything else or over 30 days. */
static bool reference_parse(const char *text, uint64_t *ms)
{
	const char *cursor = text;
	unsigned __int128 value = 0;
	uint64_t unit_ms;

	if (*cursor < '0' || *cursor > '9')
		return false;
	for (; *cursor >= '0' && *cursor <= '9'; cursor++) {
		value = value * 10 + (unsigned)(*cursor - '0');
		if (value > CONFIG_DURATION_MAX_MS) /* once above, only "too big" is left to find out */
			value = (unsigned __int128)CONFIG_DURATION_MAX_MS + 1;
	}
	if (strcmp(cursor, "") == 0 || strcmp(cursor, "s") == 0)
		unit_ms = 1000;
	else if (strcmp(cursor, "ms") == 0)
		unit_ms = 1;
	else if (strcmp(cursor, "m") == 0)
		unit_ms = 60000;
	else if (strcmp(cursor, "h") == 0)
		unit_ms = 3600000;
	else if (strcmp(cursor, "d") == 0)
		unit_ms = 86400000;
	else
		return false;
	value *= unit_ms;
	if (value > CONFIG_DURATION_MAX_MS)
		return false;
	*ms = (uint64_t)value;
	return true;
}

static void check_round_trip(uint64_t ms, uint64_t divisor, const char *suffix)
{
	char text[48];
	uint64_t again = UNTOUCHED;

	if (ms % divisor != 0)
		return;
	snprintf(text, sizeof text, "%" PRIu64 "%s", ms / divisor, suffix);
	FUZZ_CHECK(config_parse_duration(text, &again) == 0, "\"%s\" (from %" PRIu64 " ms) is rejected", text, ms);
	FUZZ_CHECK(again == ms, "\"%s\" reads as %" PRIu64 " ms, not %" PRIu64, text, again, ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t length = size < TEXT_MAX ? size : TEXT_MAX;
	/* Exactly the bytes needed, so AddressSanitizer sees any read past the terminator. */
	char *text = malloc(length + 1);
	uint64_t parsed = UNTOUCHED;
	uint64_t expected = 0;

	if (text == NULL)
		return 0;
	if (length > 0)
		memcpy(text, data, length);
	text[length] = '\0';

	bool accepted = config_parse_duration(text, &parsed) == 0;
	bool reference = reference_parse(text, &expected);
	FUZZ_CHECK(accepted == reference, "\"%.80s\": parser %s it, the documented form %s it", text,
		   accepted ? "accepts" : "rejects", reference ? "accepts" : "rejects");
	if (!accepted) {
		FUZZ_CHECK(parsed == UNTOUCHED, "\"%.80s\" rejected but the output was written", text);
		goto done;
	}
	FUZZ_CHECK(parsed == expected, "\"%.80s\" reads as %" PRIu64 " ms, not %" PRIu64, text, parsed, expected);
	FUZZ_CHECK(parsed <= CONFIG_DURATION_MAX_MS, "\"%.80s\" is above 30 days", text);
	check_round_trip(parsed, 1, "ms");
	check_round_trip(parsed, 1000, "s");
	check_round_trip(parsed, 1000, "");
	check_round_trip(parsed, 60000, "m");
	check_round_trip(parsed, 3600000, "h");
done:
	free(text);
	return 0;
}
