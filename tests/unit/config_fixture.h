/* What the configuration tests (test_config*.c) share: an environment of the test's own for
 * config_load, the warnings it gives back, and the defaults every test compares against. */
#ifndef DNSAWARE_TEST_CONFIG_FIXTURE_H
#define DNSAWARE_TEST_CONFIG_FIXTURE_H

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "env_names.h"

#define MAX_WARNINGS 32
#define MAX_ENV 32

static char warnings[MAX_WARNINGS][1024];
static int warning_count;

static const char *env_names[MAX_ENV];
static const char *env_values[MAX_ENV];
static int env_count;

static inline void capture_warning(const char *message)
{
	if (warning_count < MAX_WARNINGS)
		snprintf(warnings[warning_count], sizeof warnings[0], "%s", message);
	warning_count++;
}

static inline const char *fake_getenv(const char *name)
{
	for (int i = 0; i < env_count; i++) {
		if (strcmp(env_names[i], name) == 0)
			return env_values[i];
	}
	return NULL;
}

static inline void set_env(const char *name, const char *value)
{
	cr_assert_lt(env_count, MAX_ENV);
	env_names[env_count] = name;
	env_values[env_count] = value;
	env_count++;
}

static inline void reset(void)
{
	warning_count = 0;
	env_count = 0;
}

/* Loads with a single variable set; returns the config for inspection. */
static inline struct config load_one(const char *name, const char *value)
{
	struct config cfg;

	reset();
	set_env(name, value);
	config_load(&cfg, fake_getenv, capture_warning);
	return cfg;
}

static inline void expect_single_warning(const char *expected)
{
	cr_assert_eq(warning_count, 1, "expected one warning, got %d", warning_count);
	cr_assert_str_eq(warnings[0], expected);
}

static inline void expect_no_warning(void)
{
	cr_assert_eq(warning_count, 0, "unexpected warning: %s", warning_count > 0 ? warnings[0] : "");
}

static inline void expect_defaults(const struct config *cfg)
{
	cr_assert_eq(cfg->ttl_floor_ms, 5000);
	cr_assert_eq(cfg->ttl_ceiling_ms, 300000);
	cr_assert_eq(cfg->max_age_ms, 0);
	cr_assert_eq(cfg->idle_ms, 100);
	cr_assert_eq(cfg->drain_timeout_ms, 300000);
	cr_assert_eq(cfg->stale_after, 2);
	cr_assert(cfg->redirect);
	cr_assert_eq(cfg->cooldown_ms, 30000);
	cr_assert_str_eq(cfg->hosts, "");
	cr_assert_str_eq(cfg->exclude, "");
	cr_assert_eq(cfg->log_level, LOG_WARN);
	cr_assert_str_eq(cfg->log_file, "");
	cr_assert_str_eq(cfg->stats_file, "");
	cr_assert_eq(cfg->stats_interval_ms, 10000);
	cr_assert_str_eq(cfg->nameservers, "");
	cr_assert_not(cfg->disable);
}

#endif
