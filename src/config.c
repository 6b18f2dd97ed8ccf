/* Configuration from the environment. Pure: the environment arrives through a callback, warnings
 * leave through one, nothing is allocated, so unit tests drive every path directly. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* FNM_CASEFOLD */
#endif

#include "config.h"
#include "env_names.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

/* A warning line never needs more than this: two sanitized values plus fixed text. */
#define WARNING_MAX CONFIG_WARNING_MAX
/* Values are echoed in warnings; a megabyte of garbage must not become a megabyte of log. */
#define SHOWN_VALUE_MAX 64
#define SHOWN_VALUE_BUFFER CONFIG_SHOWN_MAX
/* Longest DNS name (253) plus a trailing dot and the terminator. */
#define HOST_NAME_BUFFER 256

#define DURATION_FORM "250ms, 2s, 5m, 1h, 1d or a bare number of seconds"
#define DURATION_MAX_TEXT "720h"

#define DEFAULT_TTL_FLOOR_MS 5000ULL
#define DEFAULT_TTL_CEILING_MS 300000ULL
#define DEFAULT_MAX_AGE_MS 0ULL
#define DEFAULT_IDLE_MS 100ULL
#define DEFAULT_DRAIN_TIMEOUT_MS 300000ULL
#define DEFAULT_COOLDOWN_MS 30000ULL
#define DEFAULT_STALE_MAX_MS (24ULL * 3600 * 1000)
#define DEFAULT_RESOLVE_TIMEOUT_MS 1800ULL
#define DEFAULT_STALE_AFTER 2U
#define DEFAULT_STATS_INTERVAL_MS 10000ULL

#define STALE_AFTER_MIN 1U
#define STALE_AFTER_MAX 100U
#define METRICS_NAMES_DEFAULT 32U
#define METRICS_NAMES_MAX 256U

#define NAMESERVERS_FORM \
	"comma-separated IP addresses, each with an optional :port from 1 to 65535, an IPv6 address " \
	"with a port written [addr]:port"
#define PORT_MAX 65535U

enum parse_status { PARSE_OK, PARSE_MALFORMED, PARSE_OUT_OF_RANGE };

/* What config_load needs while reading the environment, passed around as one thing. */
struct env_reader {
	config_getenv_fn getenv_fn;
	config_warn_fn warn;
};

struct duration_rule {
	const char *name;
	uint64_t min_ms;
	const char *min_text;
	const char *default_text;
};

static const struct duration_rule ttl_floor_rule = { ENV_TTL_FLOOR, 1, "1ms", "5s" };
static const struct duration_rule ttl_ceiling_rule = { ENV_TTL_CEILING, 1, "1ms", "300s" };
static const struct duration_rule max_age_rule = { ENV_MAX_AGE, 0, "0", "0 (off)" };
/* An idle time of 0 would call a socket idle the instant its last byte arrived. */
static const struct duration_rule idle_rule = { ENV_IDLE, 1, "1ms", "100ms" };
static const struct duration_rule drain_timeout_rule = { ENV_DRAIN_TIMEOUT, 0, "0", "5m" };
/* 0 turns the memory of failed addresses off; failover still tries every address. */
static const struct duration_rule cooldown_rule = { ENV_COOLDOWN, 0, "0", "30s" };
static const struct duration_rule stale_max_rule = { ENV_STALE_MAX, 0, "0", "1d" };
/* 0: lookups of known names wait for the resolver as long as it takes. */
static const struct duration_rule resolve_timeout_rule = { ENV_RESOLVE_TIMEOUT, 0, "0", "1800ms" };
/* Rewriting the stats file faster than this is load for no reader's benefit. */
static const struct duration_rule stats_interval_rule = { ENV_STATS_INTERVAL, 100, "100ms", "10s" };

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads a run of decimal digits; stops accumulating once above limit, so no digit string can
 * overflow. Returns the first byte after the digits. */
static const char *read_digits(const char *text, uint64_t limit, uint64_t *value, bool *above_limit)
{
	uint64_t accumulated = 0;
	bool too_big = false;

	for (; is_digit(*text); text++) {
		if (too_big)
			continue;
		accumulated = accumulated * 10 + (uint64_t)(*text - '0');
		if (accumulated > limit)
			too_big = true;
	}
	*value = accumulated;
	*above_limit = too_big;
	return text;
}

static enum parse_status parse_duration(const char *text, uint64_t *out_ms)
{
	uint64_t count;
	uint64_t unit_ms;
	bool above_limit;
	const char *unit;

	if (text == NULL || !is_digit(text[0]))
		return PARSE_MALFORMED;
	unit = read_digits(text, CONFIG_DURATION_MAX_MS, &count, &above_limit);
	if (unit[0] == '\0' || strcmp(unit, "s") == 0)
		unit_ms = 1000;
	else if (strcmp(unit, "ms") == 0)
		unit_ms = 1;
	else if (strcmp(unit, "m") == 0)
		unit_ms = 60 * 1000;
	else if (strcmp(unit, "h") == 0)
		unit_ms = 3600 * 1000;
	else if (strcmp(unit, "d") == 0)
		unit_ms = 24 * 3600 * 1000;
	else
		return PARSE_MALFORMED;
	/* Divide rather than multiply so the check itself cannot wrap. */
	if (above_limit || count > CONFIG_DURATION_MAX_MS / unit_ms)
		return PARSE_OUT_OF_RANGE;
	*out_ms = count * unit_ms;
	return PARSE_OK;
}

int config_parse_duration(const char *text, uint64_t *out_ms)
{
	uint64_t parsed;

	if (out_ms == NULL || parse_duration(text, &parsed) != PARSE_OK)
		return -1;
	*out_ms = parsed;
	return 0;
}

static enum parse_status parse_bounded_unsigned(const char *text, unsigned min, unsigned max, unsigned *out)
{
	uint64_t value;
	bool above_limit;

	if (text == NULL || !is_digit(text[0]))
		return PARSE_MALFORMED;
	if (*read_digits(text, max, &value, &above_limit) != '\0')
		return PARSE_MALFORMED;
	if (above_limit || value < min)
		return PARSE_OUT_OF_RANGE;
	*out = (unsigned)value;
	return PARSE_OK;
}

void config_set_defaults(struct config *cfg)
{
	if (cfg == NULL)
		return;
	memset(cfg, 0, sizeof *cfg);
	cfg->ttl_floor_ms = DEFAULT_TTL_FLOOR_MS;
	cfg->ttl_ceiling_ms = DEFAULT_TTL_CEILING_MS;
	cfg->max_age_ms = DEFAULT_MAX_AGE_MS;
	cfg->idle_ms = DEFAULT_IDLE_MS;
	cfg->drain_timeout_ms = DEFAULT_DRAIN_TIMEOUT_MS;
	cfg->stale_after = DEFAULT_STALE_AFTER;
	cfg->redirect = true;
	cfg->metrics_names = METRICS_NAMES_DEFAULT;
	cfg->learn_dns = true;
	cfg->cooldown_ms = DEFAULT_COOLDOWN_MS;
	cfg->stale_max_ms = DEFAULT_STALE_MAX_MS;
	cfg->resolve_timeout_ms = DEFAULT_RESOLVE_TIMEOUT_MS;
	cfg->log_level = LOG_WARN;
	cfg->stats_interval_ms = DEFAULT_STATS_INTERVAL_MS;
	cfg->disable = false;
}

/* A printable, bounded copy of a value for a warning line: the value may be anything the
 * environment holds, and the log line must stay one short line. */
void config_show_value(const char *value, char shown[CONFIG_SHOWN_MAX])
{
	size_t i;

	for (i = 0; i < SHOWN_VALUE_MAX && value[i] != '\0'; i++) {
		unsigned char c = (unsigned char)value[i];
		shown[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (value[i] != '\0') {
		memcpy(shown + i, "...", sizeof "...");
		return;
	}
	shown[i] = '\0';
}

/* Emits "NAME=VALUE <problem> (accepted: <form>); using <default>". */
static void warn_invalid(const struct env_reader *env, const char *name, const char *value,
			 const char *problem, const char *accepted, const char *default_text)
{
	char shown[SHOWN_VALUE_BUFFER];
	char message[WARNING_MAX];

	if (env->warn == NULL)
		return;
	config_show_value(value, shown);
	snprintf(message, sizeof message, "%s=%s %s (accepted: %s); using %s", name, shown, problem,
		 accepted, default_text);
	env->warn(message);
}

static const char *read_env(const struct env_reader *env, const char *name)
{
	return env->getenv_fn == NULL ? NULL : env->getenv_fn(name);
}

/* Returns true when the variable was set and its value taken; *field is left alone otherwise. */
static bool load_duration(const struct env_reader *env, const struct duration_rule *rule, uint64_t *field)
{
	char accepted[128];
	const char *value = read_env(env, rule->name);
	uint64_t parsed = 0;
	enum parse_status status;

	if (value == NULL)
		return false;
	status = parse_duration(value, &parsed);
	if (status == PARSE_OK && parsed < rule->min_ms)
		status = PARSE_OUT_OF_RANGE;
	if (status == PARSE_MALFORMED) {
		warn_invalid(env, rule->name, value, "is not a duration", DURATION_FORM, rule->default_text);
		return false;
	}
	if (status == PARSE_OUT_OF_RANGE) {
		snprintf(accepted, sizeof accepted, "a duration from %s to %s", rule->min_text,
			 DURATION_MAX_TEXT);
		warn_invalid(env, rule->name, value, "is out of range", accepted, rule->default_text);
		return false;
	}
	*field = parsed;
	return true;
}

static void load_stale_after(const struct env_reader *env, unsigned *field)
{
	const char *value = read_env(env, ENV_STALE_AFTER);
	unsigned parsed = 0;

	if (value == NULL)
		return;
	if (parse_bounded_unsigned(value, STALE_AFTER_MIN, STALE_AFTER_MAX, &parsed) != PARSE_OK) {
		warn_invalid(env, ENV_STALE_AFTER, value, "is not a count",
			     "a whole number from 1 to 100", "2");
		return;
	}
	*field = parsed;
}

static void load_metrics_names(const struct env_reader *env, unsigned *field)
{
	const char *value = read_env(env, ENV_METRICS_NAMES);
	unsigned parsed = 0;

	if (value == NULL)
		return;
	if (parse_bounded_unsigned(value, 0, METRICS_NAMES_MAX, &parsed) != PARSE_OK) {
		warn_invalid(env, ENV_METRICS_NAMES, value, "is not a number of names",
			     "a whole number from 0 to 256", "32");
		return;
	}
	*field = parsed;
}

static void load_switch(const struct env_reader *env, const char *name, const char *default_text, bool *field)
{
	const char *value = read_env(env, name);

	if (value == NULL)
		return;
	if (strcmp(value, "0") == 0)
		*field = false;
	else if (strcmp(value, "1") == 0)
		*field = true;
	else
		warn_invalid(env, name, value, "is not a switch", "0 or 1", default_text);
}

static void load_log_level(const struct env_reader *env, enum log_level *field)
{
	static const struct {
		const char *text;
		enum log_level level;
	} levels[] = {
		{ "off", LOG_OFF }, { "error", LOG_ERROR }, { "warn", LOG_WARN },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	const char *value = read_env(env, ENV_LOG);

	if (value == NULL)
		return;
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		if (strcmp(value, levels[i].text) == 0) {
			*field = levels[i].level;
			return;
		}
	}
	warn_invalid(env, ENV_LOG, value, "is not a log level", "off, error, warn, info, debug", "warn");
}

/* A truncated path or list would silently mean something else, so too long is invalid. */
static void load_string(const struct env_reader *env, const char *name, const char *default_text,
			char *field, size_t size)
{
	char accepted[64];
	const char *value = read_env(env, name);
	size_t length;

	if (value == NULL)
		return;
	length = strnlen(value, size);
	if (length == size) {
		snprintf(accepted, sizeof accepted, "at most %zu bytes", size - 1);
		warn_invalid(env, name, value, "is too long", accepted, default_text);
		return;
	}
	memcpy(field, value, length + 1);
}

/* Copies [start, end) into out as a terminated string; false when it does not fit. */
static bool copy_span(const char *start, const char *end, char *out, size_t size)
{
	size_t length = (size_t)(end - start);

	if (length >= size)
		return false;
	memcpy(out, start, length);
	out[length] = '\0';
	return true;
}

static bool is_ipv4(const char *start, const char *end)
{
	char text[INET_ADDRSTRLEN];
	struct in_addr parsed;

	return copy_span(start, end, text, sizeof text) && inet_pton(AF_INET, text, &parsed) == 1;
}

static bool is_ipv6(const char *start, const char *end)
{
	char text[INET6_ADDRSTRLEN];
	struct in6_addr parsed;

	return copy_span(start, end, text, sizeof text) && inet_pton(AF_INET6, text, &parsed) == 1;
}

/* Digits only, 1 to 65535 (c-ares would take 0 as "the default port" and wrap 99999 to 34463). */
static bool is_port(const char *start, const char *end)
{
	uint64_t value;
	bool above_limit;

	if (start == end || !is_digit(*start))
		return false;
	return read_digits(start, PORT_MAX, &value, &above_limit) == end && !above_limit && value >= 1;
}

/* One element of DNSAWARE_NAMESERVERS: "10.0.0.2", "10.0.0.2:5353", "fd00::53", "[fd00::53]:53"
 * or "[fd00::53]". Appends the form c-ares takes (the last one without its brackets) to out at
 * *used. c-ares 1.18 itself would take "1.2.3" as 1.2.3.255 and "10.0.0.2:99999" as port 34463,
 * so every part is checked here. */
static bool append_nameserver(const char *start, const char *end, char *out, size_t size, size_t *used)
{
	const char *host_start = start;
	const char *host_end = end;
	const char *port_start = NULL;
	bool bracketed = false;

	if (start < end && *start == '[') {
		const char *close = memchr(start, ']', (size_t)(end - start));
		if (close == NULL || !is_ipv6(start + 1, close))
			return false;
		host_start = start + 1;
		host_end = close;
		bracketed = true;
		if (close + 1 != end) {
			if (close[1] != ':' || !is_port(close + 2, end))
				return false;
			port_start = close + 2;
		}
	} else if (is_ipv6(start, end)) {
		bracketed = false;
	} else {
		const char *colon = memchr(start, ':', (size_t)(end - start));
		if (colon != NULL) {
			if (!is_port(colon + 1, end))
				return false;
			host_end = colon;
			port_start = colon + 1;
		}
		if (!is_ipv4(host_start, host_end))
			return false;
	}
	/* A bracketed address keeps its brackets only with a port: c-ares rejects "[::1]". */
	const char *copy_start = bracketed && port_start == NULL ? host_start : start;
	const char *copy_end = bracketed && port_start == NULL ? host_end : end;
	size_t length = (size_t)(copy_end - copy_start);
	if (*used + length + 2 > size)
		return false;
	if (*used > 0)
		out[(*used)++] = ',';
	memcpy(out + *used, copy_start, length);
	*used += length;
	out[*used] = '\0';
	return true;
}

/* Checked at load, so a bad list warns in every process, in the contract's form, and the
 * background resolver is only ever given a list it takes as meant. Empty: resolv.conf. */
static void load_nameservers(const struct env_reader *env, char *field, size_t size)
{
	char normalized[CONFIG_LIST_MAX];
	const char *value = read_env(env, ENV_NAMESERVERS);
	size_t used = 0;

	if (value == NULL)
		return;
	if (strnlen(value, size) == size) {
		char accepted[64];
		snprintf(accepted, sizeof accepted, "at most %zu bytes", size - 1);
		warn_invalid(env, ENV_NAMESERVERS, value, "is too long", accepted, "resolv.conf");
		return;
	}
	normalized[0] = '\0';
	for (const char *cursor = value; *cursor != '\0';) {
		const char *end = strchrnul(cursor, ',');
		if (!append_nameserver(cursor, end, normalized, sizeof normalized, &used)) {
			warn_invalid(env, ENV_NAMESERVERS, value, "is not a list of name servers", NAMESERVERS_FORM,
				     "resolv.conf");
			return;
		}
		/* A trailing comma leaves an empty last element: as malformed as an empty middle one. */
		if (*end == ',' && end[1] == '\0') {
			warn_invalid(env, ENV_NAMESERVERS, value, "is not a list of name servers", NAMESERVERS_FORM,
				     "resolv.conf");
			return;
		}
		cursor = *end == ',' ? end + 1 : end;
	}
	memcpy(field, normalized, used + 1);
}

/* How a floor/ceiling value is shown in the cross-field warning: the user's text when it was
 * theirs, otherwise the default it fell back to, marked as such. */
static void show_bound(const struct env_reader *env, const struct duration_rule *rule, bool from_env,
		       char *shown, size_t size)
{
	char value_text[SHOWN_VALUE_BUFFER];

	if (from_env) {
		config_show_value(read_env(env, rule->name), value_text);
		snprintf(shown, size, "%s", value_text);
		return;
	}
	snprintf(shown, size, "%s (default)", rule->default_text);
}

static void check_floor_below_ceiling(const struct env_reader *env, struct config *cfg,
				      bool floor_from_env, bool ceiling_from_env)
{
	char floor_shown[SHOWN_VALUE_BUFFER + sizeof " (default)"];
	char ceiling_shown[SHOWN_VALUE_BUFFER + sizeof " (default)"];
	char message[WARNING_MAX];

	if (cfg->ttl_floor_ms <= cfg->ttl_ceiling_ms)
		return;
	cfg->ttl_floor_ms = DEFAULT_TTL_FLOOR_MS;
	cfg->ttl_ceiling_ms = DEFAULT_TTL_CEILING_MS;
	if (env->warn == NULL)
		return;
	show_bound(env, &ttl_floor_rule, floor_from_env, floor_shown, sizeof floor_shown);
	show_bound(env, &ttl_ceiling_rule, ceiling_from_env, ceiling_shown, sizeof ceiling_shown);
	snprintf(message, sizeof message,
		 "%s=%s is above %s=%s (accepted: a floor no greater than the ceiling); using %s and %s",
		 ENV_TTL_FLOOR, floor_shown, ENV_TTL_CEILING, ceiling_shown, ttl_floor_rule.default_text,
		 ttl_ceiling_rule.default_text);
	env->warn(message);
}

void config_load(struct config *cfg, config_getenv_fn getenv_fn, config_warn_fn warn)
{
	const struct env_reader env = { getenv_fn, warn };
	bool floor_from_env;
	bool ceiling_from_env;

	if (cfg == NULL)
		return;
	config_set_defaults(cfg);
	floor_from_env = load_duration(&env, &ttl_floor_rule, &cfg->ttl_floor_ms);
	ceiling_from_env = load_duration(&env, &ttl_ceiling_rule, &cfg->ttl_ceiling_ms);
	load_duration(&env, &max_age_rule, &cfg->max_age_ms);
	load_duration(&env, &idle_rule, &cfg->idle_ms);
	load_duration(&env, &drain_timeout_rule, &cfg->drain_timeout_ms);
	load_stale_after(&env, &cfg->stale_after);
	load_switch(&env, ENV_REDIRECT, "1", &cfg->redirect);
	load_switch(&env, ENV_LEARN_DNS, "1", &cfg->learn_dns);
	load_duration(&env, &cooldown_rule, &cfg->cooldown_ms);
	load_duration(&env, &stale_max_rule, &cfg->stale_max_ms);
	load_duration(&env, &resolve_timeout_rule, &cfg->resolve_timeout_ms);
	load_switch(&env, ENV_CACHE, "0", &cfg->cache);
	load_switch(&env, ENV_BALANCE, "0", &cfg->balance);
	load_metrics_names(&env, &cfg->metrics_names);
	load_string(&env, ENV_STATE_DIR, "the default place", cfg->state_dir, sizeof cfg->state_dir);
	load_string(&env, ENV_HOSTS, "all names", cfg->hosts, sizeof cfg->hosts);
	load_string(&env, ENV_EXCLUDE, "none", cfg->exclude, sizeof cfg->exclude);
	load_log_level(&env, &cfg->log_level);
	load_string(&env, ENV_LOG_FILE, "stderr", cfg->log_file, sizeof cfg->log_file);
	load_string(&env, ENV_STATS_FILE, "no stats file", cfg->stats_file, sizeof cfg->stats_file);
	load_duration(&env, &stats_interval_rule, &cfg->stats_interval_ms);
	load_nameservers(&env, cfg->nameservers, sizeof cfg->nameservers);
	load_switch(&env, ENV_DISABLE, "0", &cfg->disable);
	check_floor_below_ceiling(&env, cfg, floor_from_env, ceiling_from_env);
}

static bool is_list_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Walks a comma-separated glob list. Blanks around an element are dropped ("a.com, b.com" is
 * what people write) and empty elements are skipped. */
static bool list_matches(const char *list, const char *host)
{
	char pattern[CONFIG_LIST_MAX];
	const char *cursor = list;

	while (*cursor != '\0') {
		const char *start = cursor;
		const char *end = strchrnul(cursor, ',');
		const char *stop = end;

		cursor = *end == ',' ? end + 1 : end;
		while (start < stop && is_list_blank(*start))
			start++;
		while (stop > start && is_list_blank(stop[-1]))
			stop--;
		size_t length = (size_t)(stop - start);
		if (length == 0 || length >= sizeof pattern)
			continue;
		memcpy(pattern, start, length);
		pattern[length] = '\0';
		if (fnmatch(pattern, host, FNM_CASEFOLD) == 0)
			return true;
	}
	return false;
}

static bool list_has_patterns(const char *list)
{
	for (; *list != '\0'; list++) {
		if (*list != ',' && !is_list_blank(*list))
			return true;
	}
	return false;
}

bool config_host_selected(const struct config *cfg, const char *host)
{
	char without_root_dot[HOST_NAME_BUFFER];
	size_t length;

	if (cfg == NULL || host == NULL || host[0] == '\0')
		return false;
	/* "api.example.com." is the same name as "api.example.com"; globs are written without the dot. */
	length = strlen(host);
	if (length > 1 && host[length - 1] == '.' && length - 1 < sizeof without_root_dot) {
		memcpy(without_root_dot, host, length - 1);
		without_root_dot[length - 1] = '\0';
		host = without_root_dot;
	}
	if (list_matches(cfg->exclude, host))
		return false;
	if (!list_has_patterns(cfg->hosts))
		return true;
	return list_matches(cfg->hosts, host);
}
