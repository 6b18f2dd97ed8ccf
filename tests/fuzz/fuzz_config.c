/* Fuzz target: the configuration parser, every DNSAWARE_* variable of src/env_names.h, through
 * config_load as init.c calls it (the environment through a getenv callback, warnings through a
 * callback), and what the library later does with the values it keeps (host selection globs, the
 * stats file path, the nameserver list handed to c-ares).
 *
 * Input: the first byte picks a mode. 'a'..'p' (the variables in env_names.h order): that one
 * variable is set, to the bytes up to the next NUL; further NUL-separated pieces are host names
 * asked of config_host_selected. Anything else: the whole environment, as NUL-separated entries
 * whose first byte picks the variable ('a'..'p'), a host query ('q') or a variable the library
 * does not read (other bytes); getenv answers the first entry of a name, as glibc's does.
 *
 * Checked: the loaded configuration equals what the contract (design.md, docs/configuration.md)
 * says, variable by variable (an invalid value: exactly one warning and the default; the floor
 * above the ceiling: one warning and both defaults); every field within its documented range; each
 * warning one printable line that names the variable and its default, short enough for init.c's
 * buffer, at most one per variable. */
#include "fuzz.h"

#include <ares.h>
#include <arpa/inet.h>
#include <fnmatch.h>
#include <stddef.h>

#include "config.h"
#include "env_names.h"
#include "stats.h"

#define VARIABLE_COUNT 17
#define HOST_QUERY_SELECTOR ('a' + VARIABLE_COUNT)
#define ENTRIES_MAX 64
#define HOSTS_MAX 16
#define WARNINGS_SEEN_MAX 64

enum kind { DURATION, COUNT, SWITCH, LEVEL, STRING, SERVERS };

struct variable {
	const char *name;
	enum kind kind;
	size_t offset;    /* of the field in struct config */
	size_t size;      /* STRING: the buffer's size */
	uint64_t min_ms;  /* DURATION: the smallest accepted */
};

#define FIELD(member) offsetof(struct config, member)
#define STRING_FIELD(member) FIELD(member), sizeof(((struct config *)0)->member)

/* In env_names.h order; the selector byte 'a' + index picks one. */
static const struct variable variables[VARIABLE_COUNT] = {
	{ ENV_TTL_FLOOR, DURATION, FIELD(ttl_floor_ms), 0, 1 },
	{ ENV_TTL_CEILING, DURATION, FIELD(ttl_ceiling_ms), 0, 1 },
	{ ENV_MAX_AGE, DURATION, FIELD(max_age_ms), 0, 0 },
	{ ENV_IDLE, DURATION, FIELD(idle_ms), 0, 1 },
	{ ENV_DRAIN_TIMEOUT, DURATION, FIELD(drain_timeout_ms), 0, 0 },
	{ ENV_STALE_AFTER, COUNT, FIELD(stale_after), 0, 0 },
	{ ENV_REDIRECT, SWITCH, FIELD(redirect), 0, 0 },
	{ ENV_COOLDOWN, DURATION, FIELD(cooldown_ms), 0, 0 },
	{ ENV_HOSTS, STRING, STRING_FIELD(hosts), 0 },
	{ ENV_EXCLUDE, STRING, STRING_FIELD(exclude), 0 },
	{ ENV_LOG, LEVEL, FIELD(log_level), 0, 0 },
	{ ENV_LOG_FILE, STRING, STRING_FIELD(log_file), 0 },
	{ ENV_STATS_FILE, STRING, STRING_FIELD(stats_file), 0 },
	{ ENV_STATS_INTERVAL, DURATION, FIELD(stats_interval_ms), 0, 100 },
	{ ENV_NAMESERVERS, SERVERS, STRING_FIELD(nameservers), 0 },
	{ ENV_DISABLE, SWITCH, FIELD(disable), 0, 0 },
	{ ENV_LEARN_DNS, SWITCH, FIELD(learn_dns), 0, 0 },
};

/* The environment of one input: names point into variables[] or at a name nobody reads. */
static struct {
	const char *names[ENTRIES_MAX];
	const char *values[ENTRIES_MAX];
	unsigned count;
} environment;

static const char *hosts[HOSTS_MAX];
static unsigned host_count;

static char warnings[WARNINGS_SEEN_MAX][1024];
static unsigned warning_count;

static ares_channel channel;

static const char *fake_getenv(const char *name)
{
	for (unsigned i = 0; i < environment.count; i++)
		if (strcmp(environment.names[i], name) == 0)
			return environment.values[i];
	return NULL;
}

static void capture_warning(const char *message)
{
	size_t length = strlen(message);

	/* init.c keeps warnings in buffers of this size until the log is set up. */
	FUZZ_CHECK(length < CONFIG_WARNING_MAX, "a warning of %zu bytes would be cut short: %s", length, message);
	if (warning_count < WARNINGS_SEEN_MAX)
		memcpy(warnings[warning_count], message, length + 1);
	warning_count++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* One channel for every input, as the library has one: only its server list changes. */
	struct ares_options options = { .timeout = 100, .tries = 1 };
	ares_library_init(ARES_LIB_INIT_ALL);
	if (ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS)
		channel = NULL;
	return 0;
}

/* ---- the contract, read independently of config.c ---- */

static bool all_digits(const char *text)
{
	if (*text == '\0')
		return false;
	for (; *text != '\0'; text++)
		if (*text < '0' || *text > '9')
			return false;
	return true;
}

/* Whole numbers 1..100, leading zeros allowed. */
static bool reference_count(const char *text, unsigned *out)
{
	unsigned value = 0;

	if (!all_digits(text))
		return false;
	for (; *text != '\0'; text++) {
		value = value * 10 + (unsigned)(*text - '0');
		if (value > 100)
			return false;
	}
	if (value < 1)
		return false;
	*out = value;
	return true;
}

static bool reference_level(const char *text, enum log_level *out)
{
	static const char *const names[] = { "off", "error", "warn", "info", "debug" };

	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(text, names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

/* A port: digits only, 1 to 65535. */
static bool reference_port(const char *text, unsigned *port)
{
	unsigned value = 0;

	if (!all_digits(text))
		return false;
	for (; *text != '\0'; text++) {
		value = value * 10 + (unsigned)(*text - '0');
		if (value > 65535)
			return false;
	}
	*port = value;
	return value >= 1;
}

/* One DNSAWARE_NAMESERVERS element: "a.b.c.d", "a.b.c.d:port", an IPv6 address, "[v6]:port" or
 * "[v6]". Fills the server as c-ares should read it, and the element as c-ares is to be given it
 * (the brackets of "[v6]" dropped). */
static bool reference_server(char *element, struct ares_addr_port_node *server, char *given, size_t size)
{
	char *port_text = NULL;
	char *host = element;

	memset(server, 0, sizeof *server);
	if (element[0] == '[') {
		char *close = strchr(element, ']');
		if (close == NULL)
			return false;
		*close = '\0';
		host = element + 1;
		if (close[1] != '\0') {
			if (close[1] != ':')
				return false;
			port_text = close + 2;
		}
		if (strlen(host) >= INET6_ADDRSTRLEN || inet_pton(AF_INET6, host, &server->addr.addr6) != 1)
			return false;
		server->family = AF_INET6;
		if (port_text == NULL)
			snprintf(given, size, "%s", host);
		else
			snprintf(given, size, "[%s]:%s", host, port_text);
	} else if (strlen(element) < INET6_ADDRSTRLEN && inet_pton(AF_INET6, element, &server->addr.addr6) == 1) {
		server->family = AF_INET6;
		snprintf(given, size, "%s", element);
	} else {
		snprintf(given, size, "%s", element);
		port_text = strchr(element, ':');
		if (port_text != NULL)
			*port_text++ = '\0';
		if (strlen(host) >= INET_ADDRSTRLEN || inet_pton(AF_INET, host, &server->addr.addr4) != 1)
			return false;
		server->family = AF_INET;
	}
	unsigned port = 0;
	if (port_text != NULL && !reference_port(port_text, &port))
		return false;
	server->udp_port = (int)port;
	server->tcp_port = (int)port;
	return true;
}

/* The servers the last reference_servers call accepted, for the c-ares check in use_values. */
#define SERVERS_MAX (CONFIG_LIST_MAX / 2)
static struct ares_addr_port_node expected_servers[SERVERS_MAX];
static unsigned expected_server_count;

/* Comma-separated elements, none empty; the empty list means resolv.conf. */
static bool reference_servers(const char *value, char *field, size_t size)
{
	char copy[CONFIG_LIST_MAX];
	char normalized[CONFIG_LIST_MAX] = "";
	size_t used = 0;

	expected_server_count = 0;
	if (strlen(value) >= size)
		return false;
	memcpy(copy, value, strlen(value) + 1);
	for (char *element = copy; *value != '\0';) {
		char *comma = strchr(element, ',');
		char given[CONFIG_LIST_MAX];
		if (comma != NULL)
			*comma = '\0';
		if (expected_server_count == SERVERS_MAX ||
		    !reference_server(element, &expected_servers[expected_server_count], given, sizeof given))
			return false;
		expected_server_count++;
		used += (size_t)snprintf(normalized + used, sizeof normalized - used, "%s%s", used > 0 ? "," : "", given);
		if (comma == NULL)
			break;
		element = comma + 1;
	}
	memcpy(field, normalized, used + 1);
	return true;
}

/* Applies value to the expected configuration as the contract says; false when it is invalid
 * (the field keeps its default, and one warning is due). */
static bool reference_apply(const struct variable *v, const char *value, struct config *expected)
{
	char *field = (char *)expected + v->offset;
	uint64_t ms;
	unsigned count;
	enum log_level level;

	switch (v->kind) {
	case DURATION:
		/* fuzz_duration holds the parser itself to the documented form. */
		if (config_parse_duration(value, &ms) != 0 || ms < v->min_ms)
			return false;
		memcpy(field, &ms, sizeof ms);
		return true;
	case COUNT:
		if (!reference_count(value, &count))
			return false;
		memcpy(field, &count, sizeof count);
		return true;
	case SWITCH:
		if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
			return false;
		*(bool *)field = value[0] == '1';
		return true;
	case LEVEL:
		if (!reference_level(value, &level))
			return false;
		memcpy(field, &level, sizeof level);
		return true;
	case STRING:
		if (strlen(value) >= v->size)
			return false;
		memcpy(field, value, strlen(value) + 1);
		return true;
	case SERVERS:
		return reference_servers(value, field, v->size);
	}
	return false;
}

/* ---- checks ---- */

static bool starts_with(const char *text, const char *prefix)
{
	return strncmp(text, prefix, strlen(prefix)) == 0;
}

static void check_warning(const char *message, const bool rejected[VARIABLE_COUNT], bool cross_field)
{
	for (const char *c = message; *c != '\0'; c++)
		FUZZ_CHECK(*c >= 0x20 && *c < 0x7f, "a warning holds byte 0x%02x: %s", (unsigned char)*c, message);
	FUZZ_CHECK(strstr(message, "(accepted: ") != NULL && strstr(message, "; using ") != NULL,
		   "a warning does not give the accepted form and the default: %s", message);
	for (unsigned i = 0; i < VARIABLE_COUNT; i++) {
		char prefix[64];

		snprintf(prefix, sizeof prefix, "%s=", variables[i].name);
		if (!starts_with(message, prefix))
			continue;
		/* "DNSAWARE_TTL_FLOOR=" also begins the cross-field warning. */
		FUZZ_CHECK(rejected[i] || (cross_field && i == 0), "a warning for %s, whose value was valid: %s",
			   variables[i].name, message);
		return;
	}
	FUZZ_CHECK(false, "a warning names no variable: %s", message);
}

/* Loads the current environment and holds the result and the warnings to the contract. */
static struct config load_and_check(void)
{
	struct config loaded;
	struct config expected;
	bool rejected[VARIABLE_COUNT] = { false };
	unsigned rejected_count = 0;

	warning_count = 0;
	expected_server_count = 0;
	config_load(&loaded, fake_getenv, capture_warning);

	config_set_defaults(&expected);
	for (unsigned i = 0; i < VARIABLE_COUNT; i++) {
		const char *value = fake_getenv(variables[i].name);

		if (value != NULL && !reference_apply(&variables[i], value, &expected)) {
			rejected[i] = true;
			rejected_count++;
		}
	}
	bool cross_field = expected.ttl_floor_ms > expected.ttl_ceiling_ms;
	if (cross_field) {
		struct config defaults;

		config_set_defaults(&defaults);
		expected.ttl_floor_ms = defaults.ttl_floor_ms;
		expected.ttl_ceiling_ms = defaults.ttl_ceiling_ms;
	}

	FUZZ_CHECK(memcmp(&loaded, &expected, sizeof loaded) == 0,
		   "the loaded configuration differs from the contract's (floor %llu/%llu, ceiling %llu/%llu)",
		   (unsigned long long)loaded.ttl_floor_ms, (unsigned long long)expected.ttl_floor_ms,
		   (unsigned long long)loaded.ttl_ceiling_ms, (unsigned long long)expected.ttl_ceiling_ms);
	FUZZ_CHECK(warning_count == rejected_count + cross_field, "%u warnings for %u invalid values%s",
		   warning_count, rejected_count, cross_field ? " and a floor above the ceiling" : "");
	FUZZ_CHECK(warning_count <= VARIABLE_COUNT + 1, "%u warnings", warning_count);
	for (unsigned i = 0; i < warning_count && i < WARNINGS_SEEN_MAX; i++)
		check_warning(warnings[i], rejected, cross_field);

	/* The documented ranges, whatever the input. */
	FUZZ_CHECK(loaded.ttl_floor_ms >= 1 && loaded.ttl_floor_ms <= loaded.ttl_ceiling_ms, "floor/ceiling");
	FUZZ_CHECK(loaded.ttl_ceiling_ms <= CONFIG_DURATION_MAX_MS && loaded.max_age_ms <= CONFIG_DURATION_MAX_MS &&
		   loaded.drain_timeout_ms <= CONFIG_DURATION_MAX_MS && loaded.cooldown_ms <= CONFIG_DURATION_MAX_MS &&
		   loaded.idle_ms <= CONFIG_DURATION_MAX_MS && loaded.stats_interval_ms <= CONFIG_DURATION_MAX_MS,
		   "a duration above 30 days");
	FUZZ_CHECK(loaded.idle_ms >= 1 && loaded.stats_interval_ms >= 100, "idle or stats interval below its minimum");
	FUZZ_CHECK(loaded.stale_after >= 1 && loaded.stale_after <= 100, "stale_after %u", loaded.stale_after);
	FUZZ_CHECK(loaded.log_level >= LOG_OFF && loaded.log_level <= LOG_DEBUG, "log level %d", (int)loaded.log_level);
	return loaded;
}

/* ---- what the library does with the strings it kept ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The list semantics of DNSAWARE_HOSTS/EXCLUDE (comma-separated globs, blanks around an element
 * dropped, empty elements skipped, case-insensitive), element by element on a copy. */
static bool reference_list_matches(const char *list, const char *host, bool *has_patterns)
{
	char copy[CONFIG_LIST_MAX];
	char *save = NULL;
	bool matched = false;

	*has_patterns = false;
	snprintf(copy, sizeof copy, "%s", list);
	for (char *element = strtok_r(copy, ",", &save); element != NULL; element = strtok_r(NULL, ",", &save)) {
		size_t length = strlen(element);

		while (length > 0 && is_blank(element[length - 1]))
			element[--length] = '\0';
		while (is_blank(*element))
			element++;
		if (*element == '\0')
			continue;
		*has_patterns = true;
		if (!matched && fnmatch(element, host, FNM_CASEFOLD) == 0)
			matched = true;
	}
	return matched;
}

static void check_host(const struct config *cfg, const char *host)
{
	char without_dot[256];
	size_t length = strlen(host);
	bool has_hosts, has_excludes;
	bool selected = config_host_selected(cfg, host);

	FUZZ_CHECK(!selected || length > 0, "the empty name is selected");
	if (length == 0)
		return;
	/* "name." is "name": the globs are matched against the name without its root dot. */
	if (length > 1 && host[length - 1] == '.' && length - 1 < sizeof without_dot) {
		memcpy(without_dot, host, length - 1);
		without_dot[length - 1] = '\0';
		host = without_dot;
	}
	bool excluded = reference_list_matches(cfg->exclude, host, &has_excludes);
	bool listed = reference_list_matches(cfg->hosts, host, &has_hosts);
	bool expected = !excluded && (!has_hosts || listed);
	FUZZ_CHECK(selected == expected, "\"%.80s\" is %sselected with hosts \"%.80s\", exclude \"%.80s\"", host,
		   selected ? "" : "not ", cfg->hosts, cfg->exclude);
}

static void check_stats_path(const char *pattern, size_t size)
{
	char out[CONFIG_PATH_MAX + 64];
	char expected[4 * CONFIG_PATH_MAX]; /* every "%p" may become 7 bytes */
	size_t used = 0;
	const long pid = 4194304; /* the largest pid Linux hands out: the longest expansion */

	for (const char *p = pattern; *p != '\0'; p++) {
		if (p[0] == '%' && (p[1] == 'p' || p[1] == '%')) {
			used += (size_t)snprintf(expected + used, sizeof expected - used, "%s", p[1] == 'p' ? "4194304" : "%");
			p++;
		} else {
			expected[used++] = *p;
		}
	}
	expected[used] = '\0';
	memset(out, 'X', sizeof out);
	bool fitted = stats_expand_path(pattern, pid, out, size);
	FUZZ_CHECK(fitted == (used < size), "\"%.80s\" into %zu bytes: %s, expansion is %zu long", pattern, size,
		   fitted ? "fits" : "does not fit", used);
	if (fitted)
		FUZZ_CHECK(strcmp(out, expected) == 0, "\"%.80s\" expands to \"%.80s\", not \"%.80s\"", pattern, out, expected);
	for (size_t i = size; i < sizeof out; i++)
		FUZZ_CHECK(out[i] == 'X', "expanding \"%.80s\" wrote past its %zu bytes", pattern, size);
}

/* What resolver_thread.c does with the list config_load kept: c-ares must take it, and read it as
 * meant (the same addresses and ports, in order). */
static void check_servers(const char *list)
{
	struct ares_addr_port_node *servers = NULL;
	unsigned count = 0;

	FUZZ_CHECK(ares_set_servers_ports_csv(channel, list) == ARES_SUCCESS, "c-ares refuses \"%.200s\"", list);
	if (ares_get_servers_ports(channel, &servers) != ARES_SUCCESS)
		return; /* out of memory */
	for (const struct ares_addr_port_node *server = servers; server != NULL; server = server->next, count++) {
		FUZZ_CHECK(count < expected_server_count, "c-ares reads more than %u servers from \"%.200s\"",
			   expected_server_count, list);
		const struct ares_addr_port_node *expected = &expected_servers[count];
		FUZZ_CHECK(server->family == expected->family && server->udp_port == expected->udp_port &&
				   server->tcp_port == expected->tcp_port &&
				   memcmp(&server->addr, &expected->addr,
					  server->family == AF_INET ? sizeof server->addr.addr4 : sizeof server->addr.addr6) == 0,
			   "c-ares reads server %u of \"%.200s\" otherwise (family %d port %d)", count, list,
			   server->family, server->udp_port);
	}
	ares_free_data(servers);
	FUZZ_CHECK(count == expected_server_count, "c-ares reads %u of the %u servers of \"%.200s\"", count,
		   expected_server_count, list);
}

static void use_values(const struct config *cfg, uint8_t size_choice)
{
	for (unsigned i = 0; i < host_count; i++)
		check_host(cfg, hosts[i]);
	if (cfg->stats_file[0] != '\0') {
		check_stats_path(cfg->stats_file, CONFIG_PATH_MAX);
		check_stats_path(cfg->stats_file, 1 + size_choice % 64);
	}
	if (channel != NULL && cfg->nameservers[0] != '\0')
		check_servers(cfg->nameservers);
}

/* ---- the input ---- */

/* Splits a copy of the input at NULs; every piece is a C string. */
static char *pieces_of(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (text == NULL)
		return NULL;
	if (size > 0)
		memcpy(text, data, size);
	text[size] = '\0';
	return text;
}

static const char *const unread_names[] = { "DNSAWARE_TTL", "DNSAWARE_LIB", "PATH", "dnsaware_idle", "DNSAWARE_IDLE " };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	const char *end;
	uint8_t size_choice = size > 0 ? data[size - 1] : 0;

	if (size == 0)
		return 0;
	text = pieces_of(data, size);
	if (text == NULL)
		return 0;
	end = text + size;
	environment.count = 0;
	host_count = 0;

	unsigned selector = (uint8_t)(text[0] - 'a');
	if (selector < VARIABLE_COUNT) {
		/* One variable; then host names. */
		const char *piece = text + 1;

		environment.names[environment.count] = variables[selector].name;
		environment.values[environment.count++] = piece;
		for (piece += strlen(piece) + 1; piece < end && host_count < HOSTS_MAX; piece += strlen(piece) + 1)
			hosts[host_count++] = piece;
	} else {
		/* The whole environment. */
		for (const char *piece = text + 1; piece < end; piece += strlen(piece) + 1) {
			unsigned which = (uint8_t)(piece[0] - 'a');

			if (piece[0] == '\0')
				continue;
			if (which < VARIABLE_COUNT && environment.count < ENTRIES_MAX) {
				environment.names[environment.count] = variables[which].name;
				environment.values[environment.count++] = piece + 1;
			} else if (piece[0] == HOST_QUERY_SELECTOR && host_count < HOSTS_MAX) {
				hosts[host_count++] = piece + 1;
			} else if (environment.count < ENTRIES_MAX) {
				environment.names[environment.count] =
					unread_names[(uint8_t)piece[0] % (sizeof unread_names / sizeof unread_names[0])];
				environment.values[environment.count++] = piece + 1;
			}
		}
	}

	struct config loaded = load_and_check();
	use_values(&loaded, size_choice);
	free(text);
	return 0;
}
