/* Configuration: parsed once at load from the environment; pure, unit-testable. */
#ifndef DNSAWARE_CONFIG_H
#define DNSAWARE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_OFF = 0, LOG_ERROR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

#define CONFIG_PATH_MAX 1024
#define CONFIG_LIST_MAX 1024
/* The longest warning config_load passes to its warn callback, terminator included. */
#define CONFIG_WARNING_MAX 512

struct config {
	uint64_t ttl_floor_ms;      /* default 5000 */
	uint64_t ttl_ceiling_ms;    /* default 300000 */
	uint64_t max_age_ms;        /* default 0 = off */
	uint64_t idle_ms;           /* default 100 */
	uint64_t drain_timeout_ms;  /* default 300000; 0 = never */
	unsigned stale_after;       /* default 2, accepted 1..100 */
	bool redirect;              /* default true */
	bool learn_dns;             /* default true: learn from the program's own DNS answers */
	uint64_t cooldown_ms;       /* default 30000: a failed connect's address is avoided this long */
	uint64_t stale_max_ms;      /* default 1 day; 0 = never serve a stale answer */
	uint64_t resolve_timeout_ms; /* default 1800: a known name's lookup waits this long at most; 0 = no timer */
	bool cache;                 /* default false: answer known names from the fresh record set */
	bool balance;               /* default false: spread each name's connections over its addresses */
	unsigned metrics_names;     /* default 32, accepted 0..256: names with per-name series */
	char state_dir[CONFIG_PATH_MAX]; /* empty = the default place; "off" = this process and its children only */
	char hosts[CONFIG_LIST_MAX];   /* comma-separated globs; empty = all */
	char exclude[CONFIG_LIST_MAX]; /* comma-separated globs; empty = none */
	enum log_level log_level;   /* default LOG_WARN */
	char log_file[CONFIG_PATH_MAX];   /* empty = stderr */
	char stats_file[CONFIG_PATH_MAX]; /* empty = no stats */
	uint64_t stats_interval_ms; /* default 10000 */
	char nameservers[CONFIG_LIST_MAX]; /* empty = resolv.conf */
	bool disable;               /* default false */
};

/* Longest duration accepted anywhere: 30 days. Larger values are invalid (overflow guard). */
#define CONFIG_DURATION_MAX_MS (30ULL * 24 * 3600 * 1000)

/* Parses "250ms", "2s", "5m", "1h", "1d", or a bare number of seconds ("3", "0.5" is NOT accepted).
 * Surrounding whitespace is not accepted. Returns 0 and sets *out_ms, or -1 (out untouched). */
int config_parse_duration(const char *text, uint64_t *out_ms);

void config_set_defaults(struct config *cfg);

/* A value as every warning shows it: its first 64 bytes, then "..." if there is more, each byte
 * outside printable ASCII as '?' (a newline in a value must not make a second log line). */
#define CONFIG_SHOWN_MAX (64 + sizeof "...")
void config_show_value(const char *value, char shown[CONFIG_SHOWN_MAX]);

typedef const char *(*config_getenv_fn)(const char *name);
/* Receives one complete warning message without prefix or newline, e.g.
 * "DNSAWARE_IDLE=abc is not a duration (accepted: 250ms, 2s, 5m, 1h or a bare number of seconds); using 100ms" */
typedef void (*config_warn_fn)(const char *message);

/* Fills cfg from the environment. Each invalid value: one warn() call and the default.
 * Cross-field rule: a floor above the ceiling warns and both keep their defaults.
 * Strings longer than their buffer are invalid (warn, default). */
void config_load(struct config *cfg, config_getenv_fn getenv_fn, config_warn_fn warn);

/* True when host matches the DNSAWARE_HOSTS/DNSAWARE_EXCLUDE lists (fnmatch globs, case-insensitive). */
bool config_host_selected(const struct config *cfg, const char *host);

#endif
