/* Unit tests of the configuration parser: every variable, valid and invalid, with the exact
 * warning a user would read. The durations are in test_config_durations.c, the limits on a
 * value's length and how a value is shown in a warning in test_config_messages.c. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_fixture.h"
#include "env_names.h"

TestSuite(config, .init = reset);

/* ---- defaults ---- */

Test(config, set_defaults)
{
	struct config cfg;

	memset(&cfg, 0xa5, sizeof cfg);
	config_set_defaults(&cfg);
	expect_defaults(&cfg);
}

Test(config, empty_environment_gives_defaults_silently)
{
	struct config cfg;

	memset(&cfg, 0xa5, sizeof cfg);
	config_load(&cfg, fake_getenv, capture_warning);
	expect_defaults(&cfg);
	expect_no_warning();
}

Test(config, null_callbacks)
{
	struct config cfg;

	config_load(&cfg, NULL, capture_warning);
	expect_defaults(&cfg);
	set_env(ENV_IDLE, "abc");
	config_load(&cfg, fake_getenv, NULL);
	expect_defaults(&cfg);
	expect_no_warning();
	config_load(NULL, fake_getenv, capture_warning);
	config_set_defaults(NULL);
}

/* ---- counts, switches, levels ---- */

Test(config, stale_after)
{
	struct config cfg = load_one(ENV_STALE_AFTER, "1");
	cr_assert_eq(cfg.stale_after, 1);
	expect_no_warning();

	cfg = load_one(ENV_STALE_AFTER, "100");
	cr_assert_eq(cfg.stale_after, 100);
	expect_no_warning();

	const char *bad[] = { "0", "101", "-1", "+3", "3x", "2.0", "", " 2", "99999999999999999999999" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char expected[256];

		cfg = load_one(ENV_STALE_AFTER, bad[i]);
		cr_assert_eq(cfg.stale_after, 2, "value \"%s\"", bad[i]);
		snprintf(expected, sizeof expected,
			 "DNSAWARE_STALE_AFTER=%s is not a count (accepted: a whole number from 1 to 100); using 2",
			 bad[i]);
		expect_single_warning(expected);
	}
}

Test(config, redirect)
{
	struct config cfg = load_one(ENV_REDIRECT, "0");
	cr_assert_not(cfg.redirect);
	expect_no_warning();

	cfg = load_one(ENV_REDIRECT, "1");
	cr_assert(cfg.redirect);
	expect_no_warning();

	cfg = load_one(ENV_REDIRECT, "no");
	cr_assert(cfg.redirect);
	expect_single_warning("DNSAWARE_REDIRECT=no is not a switch (accepted: 0 or 1); using 1");

	cfg = load_one(ENV_REDIRECT, "01");
	cr_assert(cfg.redirect);
	cr_assert_eq(warning_count, 1);
}

Test(config, disable)
{
	struct config cfg = load_one(ENV_DISABLE, "1");
	cr_assert(cfg.disable);
	expect_no_warning();

	cfg = load_one(ENV_DISABLE, "0");
	cr_assert_not(cfg.disable);
	expect_no_warning();

	cfg = load_one(ENV_DISABLE, "true");
	cr_assert_not(cfg.disable);
	expect_single_warning("DNSAWARE_DISABLE=true is not a switch (accepted: 0 or 1); using 0");
}

Test(config, log_level)
{
	static const struct {
		const char *text;
		enum log_level level;
	} levels[] = {
		{ "off", LOG_OFF }, { "error", LOG_ERROR }, { "warn", LOG_WARN },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	struct config cfg;

	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		cfg = load_one(ENV_LOG, levels[i].text);
		cr_assert_eq(cfg.log_level, levels[i].level, "level %s", levels[i].text);
		expect_no_warning();
	}

	cfg = load_one(ENV_LOG, "DEBUG");
	cr_assert_eq(cfg.log_level, LOG_WARN);
	expect_single_warning("DNSAWARE_LOG=DEBUG is not a log level (accepted: off, error, warn, info, debug); "
			      "using warn");

	cfg = load_one(ENV_LOG, "warning");
	cr_assert_eq(cfg.log_level, LOG_WARN);
	cr_assert_eq(warning_count, 1);
}

/* ---- strings ---- */

Test(config, strings_copied)
{
	struct config cfg;

	set_env(ENV_HOSTS, "*.example.com,db.internal");
	set_env(ENV_EXCLUDE, "metrics.example.com");
	set_env(ENV_LOG_FILE, "/var/log/dnsaware.log");
	set_env(ENV_STATS_FILE, "/var/lib/node_exporter/dnsaware.prom");
	set_env(ENV_NAMESERVERS, "10.0.0.2:5353,10.0.0.3");
	config_load(&cfg, fake_getenv, capture_warning);
	expect_no_warning();
	cr_assert_str_eq(cfg.hosts, "*.example.com,db.internal");
	cr_assert_str_eq(cfg.exclude, "metrics.example.com");
	cr_assert_str_eq(cfg.log_file, "/var/log/dnsaware.log");
	cr_assert_str_eq(cfg.stats_file, "/var/lib/node_exporter/dnsaware.prom");
	cr_assert_str_eq(cfg.nameservers, "10.0.0.2:5353,10.0.0.3");
}

Test(config, empty_strings_are_defaults)
{
	struct config cfg;

	set_env(ENV_HOSTS, "");
	set_env(ENV_LOG_FILE, "");
	config_load(&cfg, fake_getenv, capture_warning);
	expect_no_warning();
	expect_defaults(&cfg);
}

/* ---- DNSAWARE_NAMESERVERS: checked at load, in the form c-ares is given ---- */

Test(config, nameservers_accepted)
{
	static const struct {
		const char *value;
		const char *stored;
	} cases[] = {
		{ "10.0.0.2", "10.0.0.2" },
		{ "10.0.0.2:5353", "10.0.0.2:5353" },
		{ "10.0.0.2:1", "10.0.0.2:1" },
		{ "10.0.0.2:65535", "10.0.0.2:65535" },
		{ "fd00::53", "fd00::53" },
		{ "[fd00::53]:53", "[fd00::53]:53" },
		/* c-ares rejects brackets without a port; the address alone is what was meant. */
		{ "[fd00::53]", "fd00::53" },
		{ "::ffff:10.0.0.2", "::ffff:10.0.0.2" },
		{ "10.0.0.2,10.0.0.3:53,[::1]:5353,fd00::1", "10.0.0.2,10.0.0.3:53,[::1]:5353,fd00::1" },
		{ "", "" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config cfg = load_one(ENV_NAMESERVERS, cases[i].value);
		expect_no_warning();
		cr_assert_str_eq(cfg.nameservers, cases[i].stored, "value \"%s\"", cases[i].value);
	}
}

Test(config, nameservers_rejected)
{
	/* Each of these c-ares 1.18 would refuse only when the thread starts (no warning in a process
	 * that never connects), or worse, take as something else: "1.2.3" as 1.2.3.255,
	 * ":99999" as port 34463, ":0" as port 53. */
	const char *bad[] = {
		"abc", "dns.example.com", "localhost", "-1", "5S", "1.2.3", "10.0.0.256", "10.0.0.2:99999",
		"10.0.0.2:0", "10.0.0.2:", "10.0.0.2:+53", "10.0.0.2:5s", "10.0.0.2:-1", " 10.0.0.2",
		"10.0.0.2 ", "10.0.0.2, 10.0.0.3", "10.0.0.2,,10.0.0.3", ",", "10.0.0.2,", ",10.0.0.2",
		"[10.0.0.2]:53", "fe80::1%eth0", "[::1]:", "[::1", "[::1]x", "[]", "::1]:53", "10.0.0.2,abc",
		"\t", " ",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char expected[512];

		struct config cfg = load_one(ENV_NAMESERVERS, bad[i]);
		cr_assert_str_eq(cfg.nameservers, "", "value \"%s\"", bad[i]);
		snprintf(expected, sizeof expected,
			 "DNSAWARE_NAMESERVERS=%s is not a list of name servers (accepted: comma-separated IP "
			 "addresses, each with an optional :port from 1 to 65535, an IPv6 address with a port "
			 "written [addr]:port); using resolv.conf",
			 strcmp(bad[i], "\t") == 0 ? "?" : bad[i]);
		expect_single_warning(expected);
	}
}

/* ---- floor and ceiling together ---- */

Test(config, floor_equal_to_ceiling_is_fine)
{
	struct config cfg;

	set_env(ENV_TTL_FLOOR, "30s");
	set_env(ENV_TTL_CEILING, "30");
	config_load(&cfg, fake_getenv, capture_warning);
	expect_no_warning();
	cr_assert_eq(cfg.ttl_floor_ms, 30000);
	cr_assert_eq(cfg.ttl_ceiling_ms, 30000);
}

Test(config, floor_above_ceiling)
{
	struct config cfg;

	set_env(ENV_TTL_FLOOR, "10m");
	set_env(ENV_TTL_CEILING, "1m");
	config_load(&cfg, fake_getenv, capture_warning);
	cr_assert_eq(cfg.ttl_floor_ms, 5000);
	cr_assert_eq(cfg.ttl_ceiling_ms, 300000);
	expect_single_warning("DNSAWARE_TTL_FLOOR=10m is above DNSAWARE_TTL_CEILING=1m (accepted: a floor no "
			      "greater than the ceiling); using 5s and 300s");
}

Test(config, floor_above_default_ceiling)
{
	struct config cfg = load_one(ENV_TTL_FLOOR, "1h");

	cr_assert_eq(cfg.ttl_floor_ms, 5000);
	cr_assert_eq(cfg.ttl_ceiling_ms, 300000);
	expect_single_warning("DNSAWARE_TTL_FLOOR=1h is above DNSAWARE_TTL_CEILING=300s (default) (accepted: a "
			      "floor no greater than the ceiling); using 5s and 300s");
}

Test(config, ceiling_below_default_floor)
{
	struct config cfg = load_one(ENV_TTL_CEILING, "2s");

	cr_assert_eq(cfg.ttl_floor_ms, 5000);
	cr_assert_eq(cfg.ttl_ceiling_ms, 300000);
	expect_single_warning("DNSAWARE_TTL_FLOOR=5s (default) is above DNSAWARE_TTL_CEILING=2s (accepted: a "
			      "floor no greater than the ceiling); using 5s and 300s");
}

Test(config, invalid_floor_then_conflict_warns_for_each_problem)
{
	struct config cfg;

	set_env(ENV_TTL_FLOOR, "soon");
	set_env(ENV_TTL_CEILING, "1s");
	config_load(&cfg, fake_getenv, capture_warning);
	cr_assert_eq(cfg.ttl_floor_ms, 5000);
	cr_assert_eq(cfg.ttl_ceiling_ms, 300000);
	cr_assert_eq(warning_count, 2);
	cr_assert_str_eq(warnings[0], "DNSAWARE_TTL_FLOOR=soon is not a duration (accepted: 250ms, 2s, 5m, 1h, 1d or a "
				      "bare number of seconds); using 5s");
	cr_assert_str_eq(warnings[1], "DNSAWARE_TTL_FLOOR=5s (default) is above DNSAWARE_TTL_CEILING=1s (accepted: "
				      "a floor no greater than the ceiling); using 5s and 300s");
}

/* ---- several variables at once ---- */

Test(config, everything_valid_at_once)
{
	struct config cfg;

	set_env(ENV_TTL_FLOOR, "1s");
	set_env(ENV_TTL_CEILING, "2m");
	set_env(ENV_MAX_AGE, "1h");
	set_env(ENV_IDLE, "50ms");
	set_env(ENV_DRAIN_TIMEOUT, "0");
	set_env(ENV_STALE_AFTER, "3");
	set_env(ENV_REDIRECT, "0");
	set_env(ENV_COOLDOWN, "2m");
	set_env(ENV_HOSTS, "*.svc");
	set_env(ENV_EXCLUDE, "kube-dns.*");
	set_env(ENV_LOG, "debug");
	set_env(ENV_LOG_FILE, "/tmp/d.log");
	set_env(ENV_STATS_FILE, "/tmp/d.prom");
	set_env(ENV_STATS_INTERVAL, "5s");
	set_env(ENV_NAMESERVERS, "127.0.0.1:53");
	set_env(ENV_DISABLE, "1");
	config_load(&cfg, fake_getenv, capture_warning);
	expect_no_warning();
	cr_assert_eq(cfg.ttl_floor_ms, 1000);
	cr_assert_eq(cfg.ttl_ceiling_ms, 120000);
	cr_assert_eq(cfg.max_age_ms, 3600000);
	cr_assert_eq(cfg.idle_ms, 50);
	cr_assert_eq(cfg.drain_timeout_ms, 0);
	cr_assert_eq(cfg.stale_after, 3);
	cr_assert_not(cfg.redirect);
	cr_assert_eq(cfg.cooldown_ms, 120000);
	cr_assert_str_eq(cfg.hosts, "*.svc");
	cr_assert_str_eq(cfg.exclude, "kube-dns.*");
	cr_assert_eq(cfg.log_level, LOG_DEBUG);
	cr_assert_str_eq(cfg.log_file, "/tmp/d.log");
	cr_assert_str_eq(cfg.stats_file, "/tmp/d.prom");
	cr_assert_eq(cfg.stats_interval_ms, 5000);
	cr_assert_str_eq(cfg.nameservers, "127.0.0.1:53");
	cr_assert(cfg.disable);
}

Test(config, one_warning_per_invalid_variable_others_kept)
{
	struct config cfg;

	set_env(ENV_IDLE, "x");
	set_env(ENV_LOG, "loud");
	set_env(ENV_MAX_AGE, "2m");
	set_env(ENV_REDIRECT, "2");
	config_load(&cfg, fake_getenv, capture_warning);
	cr_assert_eq(warning_count, 3);
	cr_assert_eq(cfg.max_age_ms, 120000);
	cr_assert_eq(cfg.idle_ms, 100);
	cr_assert_eq(cfg.log_level, LOG_WARN);
	cr_assert(cfg.redirect);
}

Test(config, load_resets_previous_contents)
{
	struct config cfg;

	set_env(ENV_HOSTS, "a.com");
	set_env(ENV_IDLE, "1s");
	config_load(&cfg, fake_getenv, capture_warning);
	cr_assert_str_eq(cfg.hosts, "a.com");
	reset();
	config_load(&cfg, fake_getenv, capture_warning);
	expect_defaults(&cfg);
}

/* ---- host selection ---- */

static struct config with_lists(const char *hosts, const char *exclude)
{
	struct config cfg;

	config_set_defaults(&cfg);
	snprintf(cfg.hosts, sizeof cfg.hosts, "%s", hosts);
	snprintf(cfg.exclude, sizeof cfg.exclude, "%s", exclude);
	return cfg;
}

Test(config, hosts_empty_selects_all)
{
	struct config cfg = with_lists("", "");

	cr_assert(config_host_selected(&cfg, "api.example.com"));
	cr_assert(config_host_selected(&cfg, "localhost"));
	cr_assert_not(config_host_selected(&cfg, ""));
	cr_assert_not(config_host_selected(&cfg, NULL));
	cr_assert_not(config_host_selected(NULL, "api.example.com"));
}

Test(config, hosts_only_empty_elements_selects_all)
{
	struct config cfg = with_lists(", ,,", "");

	cr_assert(config_host_selected(&cfg, "anything.example"));
}

Test(config, hosts_globs)
{
	struct config cfg = with_lists("*.example.com,db-?.internal,,[ab].svc", "");

	cr_assert(config_host_selected(&cfg, "api.example.com"));
	cr_assert(config_host_selected(&cfg, "a.b.example.com"));
	cr_assert_not(config_host_selected(&cfg, "example.com"));
	cr_assert(config_host_selected(&cfg, "db-1.internal"));
	cr_assert_not(config_host_selected(&cfg, "db-12.internal"));
	cr_assert(config_host_selected(&cfg, "a.svc"));
	cr_assert_not(config_host_selected(&cfg, "c.svc"));
	cr_assert_not(config_host_selected(&cfg, "api.example.org"));
}

Test(config, hosts_case_insensitive)
{
	struct config cfg = with_lists("*.Example.COM", "");

	cr_assert(config_host_selected(&cfg, "API.example.com"));
	cr_assert(config_host_selected(&cfg, "api.EXAMPLE.com"));
}

Test(config, hosts_blanks_around_elements)
{
	struct config cfg = with_lists(" a.com , b.com\t", "");

	cr_assert(config_host_selected(&cfg, "a.com"));
	cr_assert(config_host_selected(&cfg, "b.com"));
	cr_assert_not(config_host_selected(&cfg, "c.com"));
}

Test(config, hosts_trailing_root_dot)
{
	struct config cfg = with_lists("*.example.com", "");

	cr_assert(config_host_selected(&cfg, "api.example.com."));
	cr_assert_not(config_host_selected(&cfg, "."));
}

Test(config, exclude_wins)
{
	struct config cfg = with_lists("*.example.com", "metrics.example.com,*.INTERNAL.example.com");

	cr_assert(config_host_selected(&cfg, "api.example.com"));
	cr_assert_not(config_host_selected(&cfg, "metrics.example.com"));
	cr_assert_not(config_host_selected(&cfg, "METRICS.example.com"));
	cr_assert_not(config_host_selected(&cfg, "db.internal.example.com"));
}

Test(config, exclude_alone)
{
	struct config cfg = with_lists("", "localhost,*.local");

	cr_assert(config_host_selected(&cfg, "api.example.com"));
	cr_assert_not(config_host_selected(&cfg, "localhost"));
	cr_assert_not(config_host_selected(&cfg, "printer.local"));
}

Test(config, hosts_from_environment)
{
	struct config cfg;

	set_env(ENV_HOSTS, "*.svc.cluster.local");
	set_env(ENV_EXCLUDE, "kube-dns.*");
	config_load(&cfg, fake_getenv, capture_warning);
	cr_assert(config_host_selected(&cfg, "web.default.svc.cluster.local"));
	cr_assert_not(config_host_selected(&cfg, "kube-dns.kube-system.svc.cluster.local"));
	cr_assert_not(config_host_selected(&cfg, "api.example.com"));
}
