/* Unit tests of the durations: config_parse_duration on its own, then every duration variable,
 * because each has its own range and default, and a wrong one must name them. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_fixture.h"
#include "env_names.h"

TestSuite(config, .init = reset);

/* ---- config_parse_duration ---- */

static uint64_t parse_ok(const char *text)
{
	uint64_t ms = 12345;

	cr_assert_eq(config_parse_duration(text, &ms), 0, "\"%s\" should parse", text);
	return ms;
}

static void parse_rejected(const char *text)
{
	uint64_t ms = 777;

	cr_assert_eq(config_parse_duration(text, &ms), -1, "\"%s\" should be rejected", text);
	cr_assert_eq(ms, 777, "\"%s\": output must stay untouched on failure", text);
}

Test(config, duration_units)
{
	cr_assert_eq(parse_ok("250ms"), 250);
	cr_assert_eq(parse_ok("2s"), 2000);
	cr_assert_eq(parse_ok("5m"), 300000);
	cr_assert_eq(parse_ok("1h"), 3600000);
	cr_assert_eq(parse_ok("3"), 3000);
	cr_assert_eq(parse_ok("0"), 0);
	cr_assert_eq(parse_ok("0ms"), 0);
	cr_assert_eq(parse_ok("0h"), 0);
	cr_assert_eq(parse_ok("007s"), 7000);
}

Test(config, duration_malformed)
{
	const char *bad[] = {
		"", "s", "ms", "-1", "+1", "-1s", " 1s", "1s ", "1 s", "\t1", "1.5s", "0.5", ".5s",
		"1S", "1M", "1H", "1MS", "1D", "1sec", "1ss", "1msx", "1x", "abc", "1h1", "1s2", "720h1",
		"1e3", "0x10", "1,5s", "1_000",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		parse_rejected(bad[i]);
	parse_rejected(NULL);
	cr_assert_eq(config_parse_duration("1s", NULL), -1);
}

Test(config, duration_limit)
{
	cr_assert_eq(parse_ok("720h"), CONFIG_DURATION_MAX_MS);
	cr_assert_eq(parse_ok("30d"), CONFIG_DURATION_MAX_MS);
	cr_assert_eq(parse_ok("1d"), 24ULL * 3600 * 1000);
	parse_rejected("31d");
	cr_assert_eq(parse_ok("43200m"), CONFIG_DURATION_MAX_MS);
	cr_assert_eq(parse_ok("2592000s"), CONFIG_DURATION_MAX_MS);
	cr_assert_eq(parse_ok("2592000"), CONFIG_DURATION_MAX_MS);
	cr_assert_eq(parse_ok("2592000000ms"), CONFIG_DURATION_MAX_MS);
	parse_rejected("721h");
	parse_rejected("43201m");
	parse_rejected("2592001s");
	parse_rejected("2592001");
	parse_rejected("2592000001ms");
}

Test(config, duration_overflow)
{
	/* Each of these wraps uint64_t if multiplied naively. */
	parse_rejected("99999999999999999999s");
	parse_rejected("18446744073709551615ms");
	parse_rejected("18446744073709551616");
	parse_rejected("5124095576030432h"); /* * 3600000 wraps to a small number */
	parse_rejected("307445734561825861m");

	char huge[4096];
	memset(huge, '9', sizeof huge - 2);
	huge[sizeof huge - 2] = 's';
	huge[sizeof huge - 1] = '\0';
	parse_rejected(huge);

	/* Leading zeros carry no value and must not count toward the limit. */
	char zeros[200];
	memset(zeros, '0', sizeof zeros - 3);
	memcpy(zeros + sizeof zeros - 3, "1h", 3);
	cr_assert_eq(parse_ok(zeros), 3600000);
}

/* ---- durations, per variable ---- */

Test(config, ttl_floor)
{
	struct config cfg = load_one(ENV_TTL_FLOOR, "250ms");
	cr_assert_eq(cfg.ttl_floor_ms, 250);
	expect_no_warning();

	cfg = load_one(ENV_TTL_FLOOR, "1ms");
	cr_assert_eq(cfg.ttl_floor_ms, 1);
	expect_no_warning();

	cfg = load_one(ENV_TTL_FLOOR, "abc");
	cr_assert_eq(cfg.ttl_floor_ms, 5000);
	expect_single_warning("DNSAWARE_TTL_FLOOR=abc is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a bare "
			      "number of seconds); using 5s");

	/* A floor of 0 would re-resolve in a tight loop. */
	cfg = load_one(ENV_TTL_FLOOR, "0");
	cr_assert_eq(cfg.ttl_floor_ms, 5000);
	expect_single_warning("DNSAWARE_TTL_FLOOR=0 is out of range (accepted: a duration from 1ms to 720h); "
			      "using 5s");

	cfg = load_one(ENV_TTL_FLOOR, "0ms");
	cr_assert_eq(cfg.ttl_floor_ms, 5000);
	cr_assert_eq(warning_count, 1);
}

Test(config, ttl_ceiling)
{
	struct config cfg = load_one(ENV_TTL_CEILING, "1h");
	cr_assert_eq(cfg.ttl_ceiling_ms, 3600000);
	expect_no_warning();

	cfg = load_one(ENV_TTL_CEILING, "1h30m");
	cr_assert_eq(cfg.ttl_ceiling_ms, 300000);
	expect_single_warning("DNSAWARE_TTL_CEILING=1h30m is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a "
			      "bare number of seconds); using 300s");

	cfg = load_one(ENV_TTL_CEILING, "721h");
	cr_assert_eq(cfg.ttl_ceiling_ms, 300000);
	expect_single_warning("DNSAWARE_TTL_CEILING=721h is out of range (accepted: a duration from 1ms to "
			      "720h); using 300s");
}

Test(config, ttl_ceiling_zero_warns_once)
{
	struct config cfg = load_one(ENV_TTL_CEILING, "0");

	cr_assert_eq(cfg.ttl_floor_ms, 5000);
	cr_assert_eq(cfg.ttl_ceiling_ms, 300000);
	expect_single_warning("DNSAWARE_TTL_CEILING=0 is out of range (accepted: a duration from 1ms to 720h); "
			      "using 300s");
}

Test(config, max_age)
{
	struct config cfg = load_one(ENV_MAX_AGE, "10m");
	cr_assert_eq(cfg.max_age_ms, 600000);
	expect_no_warning();

	cfg = load_one(ENV_MAX_AGE, "0");
	cr_assert_eq(cfg.max_age_ms, 0);
	expect_no_warning();

	cfg = load_one(ENV_MAX_AGE, "-5m");
	cr_assert_eq(cfg.max_age_ms, 0);
	expect_single_warning("DNSAWARE_MAX_AGE=-5m is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a bare "
			      "number of seconds); using 0 (off)");

	cfg = load_one(ENV_MAX_AGE, "99999999999999999999s");
	cr_assert_eq(cfg.max_age_ms, 0);
	expect_single_warning("DNSAWARE_MAX_AGE=99999999999999999999s is out of range (accepted: a duration "
			      "from 0 to 720h); using 0 (off)");
}

Test(config, idle)
{
	struct config cfg = load_one(ENV_IDLE, "250ms");
	cr_assert_eq(cfg.idle_ms, 250);
	expect_no_warning();

	cfg = load_one(ENV_IDLE, "abc");
	cr_assert_eq(cfg.idle_ms, 100);
	expect_single_warning("DNSAWARE_IDLE=abc is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a bare "
			      "number of seconds); using 100ms");

	cfg = load_one(ENV_IDLE, "0ms");
	cr_assert_eq(cfg.idle_ms, 100);
	expect_single_warning("DNSAWARE_IDLE=0ms is out of range (accepted: a duration from 1ms to 720h); "
			      "using 100ms");

	cfg = load_one(ENV_IDLE, "");
	cr_assert_eq(cfg.idle_ms, 100);
	expect_single_warning("DNSAWARE_IDLE= is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a bare number "
			      "of seconds); using 100ms");
}

Test(config, drain_timeout)
{
	struct config cfg = load_one(ENV_DRAIN_TIMEOUT, "30s");
	cr_assert_eq(cfg.drain_timeout_ms, 30000);
	expect_no_warning();

	/* 0 means never and is valid. */
	cfg = load_one(ENV_DRAIN_TIMEOUT, "0");
	cr_assert_eq(cfg.drain_timeout_ms, 0);
	expect_no_warning();

	cfg = load_one(ENV_DRAIN_TIMEOUT, "1.5m");
	cr_assert_eq(cfg.drain_timeout_ms, 300000);
	expect_single_warning("DNSAWARE_DRAIN_TIMEOUT=1.5m is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a "
			      "bare number of seconds); using 5m");
}

Test(config, cooldown)
{
	struct config cfg = load_one(ENV_COOLDOWN, "5s");
	cr_assert_eq(cfg.cooldown_ms, 5000);
	expect_no_warning();

	/* 0: no memory of failed addresses, and valid. */
	cfg = load_one(ENV_COOLDOWN, "0");
	cr_assert_eq(cfg.cooldown_ms, 0);
	expect_no_warning();

	cfg = load_one(ENV_COOLDOWN, "-1s");
	cr_assert_eq(cfg.cooldown_ms, 30000);
	expect_single_warning("DNSAWARE_COOLDOWN=-1s is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a "
			      "bare number of seconds); using 30s");
}

Test(config, stats_interval)
{
	struct config cfg = load_one(ENV_STATS_INTERVAL, "100ms");
	cr_assert_eq(cfg.stats_interval_ms, 100);
	expect_no_warning();

	cfg = load_one(ENV_STATS_INTERVAL, "1m");
	cr_assert_eq(cfg.stats_interval_ms, 60000);
	expect_no_warning();

	cfg = load_one(ENV_STATS_INTERVAL, "99ms");
	cr_assert_eq(cfg.stats_interval_ms, 10000);
	expect_single_warning("DNSAWARE_STATS_INTERVAL=99ms is out of range (accepted: a duration from 100ms to "
			      "720h); using 10s");

	cfg = load_one(ENV_STATS_INTERVAL, "10 s");
	cr_assert_eq(cfg.stats_interval_ms, 10000);
	expect_single_warning("DNSAWARE_STATS_INTERVAL=10 s is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a "
			      "bare number of seconds); using 10s");
}
