/* Unit tests of what a warning shows of the value it rejects, and of the strings too long to
 * keep: a value comes from the environment, any length and any bytes, and must reach the log
 * short, on one line, and still recognisable. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_fixture.h"
#include "env_names.h"

TestSuite(config, .init = reset);

/* ---- how long a string may be ---- */

/* Builds a string of length n from a repeating pattern. */
static void fill(char *buffer, size_t n, char c)
{
	memset(buffer, c, n);
	buffer[n] = '\0';
}

Test(config, string_that_just_fits)
{
	static char path[CONFIG_PATH_MAX];
	struct config cfg;

	fill(path, CONFIG_PATH_MAX - 1, 'p');
	cfg = load_one(ENV_LOG_FILE, path);
	expect_no_warning();
	cr_assert_str_eq(cfg.log_file, path);
}

Test(config, long_strings_rejected)
{
	static char list[CONFIG_LIST_MAX + 1];
	static char path[CONFIG_PATH_MAX + 1];
	char expected[512];
	const char *first64 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	const struct {
		const char *name;
		const char *value;
		const char *accepted;
		const char *default_text;
	} cases[] = {
		{ ENV_HOSTS, list, "at most 1023 bytes", "all names" },
		{ ENV_EXCLUDE, list, "at most 1023 bytes", "none" },
		{ ENV_LOG_FILE, path, "at most 1023 bytes", "stderr" },
		{ ENV_STATS_FILE, path, "at most 1023 bytes", "no stats file" },
		{ ENV_NAMESERVERS, list, "at most 1023 bytes", "resolv.conf" },
	};

	fill(list, CONFIG_LIST_MAX, 'a');
	fill(path, CONFIG_PATH_MAX, 'a');
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config cfg = load_one(cases[i].name, cases[i].value);

		expect_defaults(&cfg);
		snprintf(expected, sizeof expected, "%s=%s... is too long (accepted: %s); using %s",
			 cases[i].name, first64, cases[i].accepted, cases[i].default_text);
		expect_single_warning(expected);
	}
}

/* ---- how values are shown in warnings ---- */

Test(config, shown_value_truncated_at_64)
{
	char value[200];
	char expected[512];

	fill(value, 65, 'x');
	load_one(ENV_IDLE, value);
	value[64] = '\0';
	snprintf(expected, sizeof expected,
		 "DNSAWARE_IDLE=%s... is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a bare number of "
		 "seconds); using 100ms",
		 value);
	expect_single_warning(expected);

	/* Exactly 64 is shown whole. */
	fill(value, 64, 'y');
	load_one(ENV_IDLE, value);
	snprintf(expected, sizeof expected,
		 "DNSAWARE_IDLE=%s is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a bare number of "
		 "seconds); using 100ms",
		 value);
	expect_single_warning(expected);
}

Test(config, shown_value_non_printable)
{
	load_one(ENV_LOG, "de\nbug\x1b[31m\x7f\xc3\xa9");
	expect_single_warning("DNSAWARE_LOG=de?bug?[31m??? is not a log level (accepted: off, error, warn, info, "
			      "debug); using warn");
	cr_assert_null(strchr(warnings[0], '\n'));
}

/* The same form for the runtime warnings about paths (log.c, stats_file.c). */
Test(config, show_value_for_other_warnings)
{
	char shown[CONFIG_SHOWN_MAX];
	char long_path[1000];

	config_show_value("/var/log/dnsaware.log", shown);
	cr_assert_str_eq(shown, "/var/log/dnsaware.log");
	config_show_value("/x/a\ndnsaware[1]: info forged\r\t\x1b\xff", shown);
	cr_assert_str_eq(shown, "/x/a?dnsaware[1]: info forged????");
	fill(long_path, sizeof long_path - 1, 'p');
	config_show_value(long_path, shown);
	cr_assert_eq(strlen(shown), 64 + 3);
	cr_assert_str_eq(shown + 64, "...");
	config_show_value("", shown);
	cr_assert_str_eq(shown, "");
}

Test(config, huge_overflowing_value_shown_safely)
{
	static char value[100000];

	fill(value, sizeof value - 2, '9');
	value[sizeof value - 2] = 'h';
	struct config cfg = load_one(ENV_MAX_AGE, value);
	cr_assert_eq(cfg.max_age_ms, 0);
	cr_assert_eq(warning_count, 1);
	cr_assert_lt(strlen(warnings[0]), 200);
	cr_assert(strstr(warnings[0], "9999999999999999999999999999999999999999999999999999999999999999... is "
				      "out of range") != NULL,
		  "%s", warnings[0]);
}
