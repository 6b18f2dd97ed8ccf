/* The metrics text and the stats file's path. (The strict exposition-format check of a written
 * file is tests/e2e/promtext.py, run on the files of the end-to-end matrix.) */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static struct stats sample(void)
{
	struct stats s;
	memset(&s, 0, sizeof s);
	atomic_store(&s.tracked_sockets, 3);
	atomic_store(&s.watched_names, 1);
	atomic_store(&s.resolutions_ok, 10);
	atomic_store(&s.resolutions_error, 2);
	atomic_store(&s.addresses_removed, 1);
	atomic_store(&s.shutdowns[STATS_REASON_DNS][STATS_PATH_IDLE], 4);
	atomic_store(&s.shutdowns[STATS_REASON_MAX_AGE][STATS_PATH_DEADLINE], 5);
	atomic_store(&s.connects_redirected, 6);
	atomic_store(&s.connect_failovers, 7);
	atomic_store(&s.thread_wakeups, 8);
	atomic_store(&s.thread_socket_visits, 9);
	atomic_store(&s.names_learned[STATS_LEARN_GETADDRINFO], 11);
	atomic_store(&s.names_learned[STATS_LEARN_DNS], 12);
	return s;
}

Test(format, every_family_with_help_type_and_its_samples)
{
	struct stats s = sample();
	char buf[4096];
	int n = stats_format(&s, NULL, 42, buf, sizeof buf);
	cr_assert_gt(n, 0);
	cr_assert_eq((size_t)n, strlen(buf));
	cr_assert_eq(buf[n - 1], '\n');
	const char *families[] = {"dnsaware_tracked_sockets gauge", "dnsaware_watched_names gauge",
				  "dnsaware_resolutions_total counter", "dnsaware_addresses_removed_total counter",
				  "dnsaware_sockets_shutdown_total counter", "dnsaware_connects_redirected_total counter",
				  "dnsaware_connect_failovers_total counter", "dnsaware_names_learned_total counter",
				  "dnsaware_thread_wakeups_total counter",
				  "dnsaware_thread_socket_visits_total counter"};
	for (unsigned i = 0; i < sizeof families / sizeof families[0]; i++) {
		char type[128], help[128];
		snprintf(type, sizeof type, "# TYPE %s\n", families[i]);
		snprintf(help, sizeof help, "# HELP %.*s ", (int)strcspn(families[i], " "), families[i]);
		cr_assert(strstr(buf, type) != NULL, "missing %s", type);
		cr_assert(strstr(buf, help) != NULL && strstr(buf, help) < strstr(buf, type), "HELP before TYPE: %s", help);
	}
	const char *samples[] = {
		"\ndnsaware_tracked_sockets{pid=\"42\"} 3\n",
		"\ndnsaware_watched_names{pid=\"42\"} 1\n",
		"\ndnsaware_resolutions_total{pid=\"42\",result=\"ok\"} 10\n",
		"\ndnsaware_resolutions_total{pid=\"42\",result=\"error\"} 2\n",
		"\ndnsaware_addresses_removed_total{pid=\"42\"} 1\n",
		"\ndnsaware_sockets_shutdown_total{pid=\"42\",reason=\"dns\",path=\"idle\"} 4\n",
		"\ndnsaware_sockets_shutdown_total{pid=\"42\",reason=\"dns\",path=\"send\"} 0\n",
		"\ndnsaware_sockets_shutdown_total{pid=\"42\",reason=\"max_age\",path=\"deadline\"} 5\n",
		"\ndnsaware_sockets_shutdown_total{pid=\"42\",reason=\"balance\",path=\"idle\"} 0\n",
		"\ndnsaware_connects_redirected_total{pid=\"42\"} 6\n",
		"\ndnsaware_connect_failovers_total{pid=\"42\"} 7\n",
		"\ndnsaware_names_learned_total{pid=\"42\",source=\"getaddrinfo\"} 11\n",
		"\ndnsaware_names_learned_total{pid=\"42\",source=\"gethostbyname\"} 0\n",
		"\ndnsaware_names_learned_total{pid=\"42\",source=\"dns\"} 12\n",
		"\ndnsaware_thread_wakeups_total{pid=\"42\"} 8\n",
		"\ndnsaware_thread_socket_visits_total{pid=\"42\"} 9\n",
	};
	for (unsigned i = 0; i < sizeof samples / sizeof samples[0]; i++)
		cr_assert(strstr(buf, samples[i]) != NULL, "missing sample%s", samples[i]);
	cr_assert_null(strstr(buf, "\n\n"), "no blank lines");
}

Test(format, sockets_per_address_of_a_name)
{
	struct stats s = sample();
	struct stats_names *names = calloc(1, sizeof *names + sizeof names->name[0]);
	names->capacity = 1;
	names->count = 1;
	strcpy(names->name[0].name, "api.\"odd\"\\name");
	names->name[0].count = 2;
	strcpy(names->name[0].address[0], "10.0.0.1");
	names->name[0].sockets[0] = 3;
	strcpy(names->name[0].address[1], "fd00::1");
	names->name[0].sockets[1] = 0;
	names->has_other = true;
	names->other = 7;
	static char buf[65536];
	cr_assert_gt(stats_format(&s, names, 42, buf, sizeof buf), 0);
	free(names);
	cr_assert(strstr(buf, "# TYPE dnsaware_name_sockets gauge\n") != NULL);
	cr_assert(strstr(buf, "\ndnsaware_name_sockets{pid=\"42\",name=\"api.\\\"odd\\\"\\\\name\",address=\"10.0.0.1\"} 3\n") != NULL,
		  "escaped name: %s", strstr(buf, "dnsaware_name_sockets{"));
	cr_assert(strstr(buf, ",address=\"fd00::1\"} 0\n") != NULL, "a current address with no socket is shown");
	cr_assert(strstr(buf, "\ndnsaware_name_sockets{pid=\"42\",name=\"_other\",address=\"_other\"} 7\n") != NULL);
}

/* Issue 18's per-name families: every result, and a histogram with cumulative buckets whose +Inf is
 * the count. */
Test(format, connects_and_their_times_per_name)
{
	struct stats s = sample();
	struct stats_names *names = calloc(1, sizeof *names + sizeof names->name[0]);
	names->capacity = 1;
	names->count = 1;
	strcpy(names->name[0].name, "db.test");
	struct name_metrics *m = &names->name[0].metrics;
	name_metrics_record(m, CONNECT_OK, 300000);      /* 0.3 ms */
	name_metrics_record(m, CONNECT_OK, 2000000);     /* 2 ms */
	name_metrics_record(m, CONNECT_OK, 20000000000); /* 20 s */
	name_metrics_record(m, CONNECT_REFUSED, 0);
	name_metrics_record(m, CONNECT_TIMEOUT, 0);
	names->has_other = true;
	name_metrics_record(&names->other_metrics, CONNECT_UNREACHABLE, 0);
	static char buf[65536];
	cr_assert_gt(stats_format(&s, names, 42, buf, sizeof buf), 0);
	free(names);
	const char *want[] = {
		"# TYPE dnsaware_connects_total counter\n",
		"# TYPE dnsaware_connect_duration_seconds histogram\n",
		"\ndnsaware_connects_total{pid=\"42\",name=\"db.test\",result=\"ok\"} 3\n",
		"\ndnsaware_connects_total{pid=\"42\",name=\"db.test\",result=\"refused\"} 1\n",
		"\ndnsaware_connects_total{pid=\"42\",name=\"db.test\",result=\"timeout\"} 1\n",
		"\ndnsaware_connects_total{pid=\"42\",name=\"db.test\",result=\"unreachable\"} 0\n",
		"\ndnsaware_connects_total{pid=\"42\",name=\"db.test\",result=\"error\"} 0\n",
		"\ndnsaware_connects_total{pid=\"42\",name=\"_other\",result=\"unreachable\"} 1\n",
		"\ndnsaware_connect_duration_seconds_bucket{pid=\"42\",name=\"db.test\",le=\"0.0005\"} 1\n",
		"\ndnsaware_connect_duration_seconds_bucket{pid=\"42\",name=\"db.test\",le=\"0.0025\"} 2\n",
		"\ndnsaware_connect_duration_seconds_bucket{pid=\"42\",name=\"db.test\",le=\"10\"} 2\n",
		"\ndnsaware_connect_duration_seconds_bucket{pid=\"42\",name=\"db.test\",le=\"+Inf\"} 3\n",
		"\ndnsaware_connect_duration_seconds_sum{pid=\"42\",name=\"db.test\"} 20.002300000\n",
		"\ndnsaware_connect_duration_seconds_count{pid=\"42\",name=\"db.test\"} 3\n",
		"\ndnsaware_connect_duration_seconds_count{pid=\"42\",name=\"_other\"} 0\n",
	};
	for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
		cr_assert(strstr(buf, want[i]) != NULL, "missing%s", want[i]);
}

Test(format, too_small_a_buffer_says_so)
{
	struct stats s = sample();
	char buf[100];
	cr_assert_eq(stats_format(&s, NULL, 42, buf, sizeof buf), -1);
	cr_assert_eq(stats_format(&s, NULL, 42, buf, 0), -1);
}

Test(path, pid_and_percent)
{
	char out[64];
	cr_assert(stats_expand_path("/var/lib/ne/dnsaware-%p.prom", 4242, out, sizeof out));
	cr_assert_str_eq(out, "/var/lib/ne/dnsaware-4242.prom");
	cr_assert(stats_expand_path("/tmp/a%%b-%p-%p", 7, out, sizeof out));
	cr_assert_str_eq(out, "/tmp/a%b-7-7");
	cr_assert(stats_expand_path("/tmp/plain.prom", 7, out, sizeof out));
	cr_assert_str_eq(out, "/tmp/plain.prom");
	cr_assert(stats_expand_path("/tmp/x%", 7, out, sizeof out), "a lone %% stays as it is");
	cr_assert_str_eq(out, "/tmp/x%");
	char tiny[8];
	cr_assert_not(stats_expand_path("/tmp/%p.prom", 123456, tiny, sizeof tiny));
}
