/* A name's record set is only as fresh as its last answer. A program that keeps an address while it
 * has no connection to it (a pool that closed its last one, a runtime that caches the answer), or
 * a fork child whose thread never ran (an nginx worker: the master resolved once and never
 * connects), connects to it after DNS has moved. Its set is asked for again at once, not one TTL
 * after that connect (schedule_first_refresh_ms), so the connection is shut and the next connect
 * steered well within the TTL; a set answered just before its socket keeps its whole interval.
 *
 * kept.test lives in a private /etc/hosts; DNSAWARE_TTL_FLOOR=3s, so a refresh one interval after
 * the connect would come 2.7-3.3 s after it: each shutdown below is asked within 1.5 s.
 *   fork   the parent resolves (no connect, no thread) and forks; the name moves; 3.5 s later the
 *          child connects to the address it inherited, then connects to it again: steered.
 *   kept   the process resolves and keeps the answer; the name moves; 3.5 s later it connects to
 *          the kept address.
 *   fresh  resolve and connect right before a move: not shut within 1.5 s (its refresh waits
 *          for its interval), shut within 6 s.
 * Usage: preload_kept_address. Root (a mount namespace of its own). Env: LD_PRELOAD,
 * DNSAWARE_TTL_FLOOR=3s, DNSAWARE_STALE_AFTER=1, DNSAWARE_IDLE=50ms, DNSAWARE_LOG=debug,
 * DNSAWARE_LOG_FILE. */
#include "common.h"

enum { PORT = 8071, PAST_TTL_MS = 3500, PROMPT_MS = 1500 };
#define NAME "kept.test"
#define OLD "127.0.0.71"
#define NEW "127.0.0.72"
#define THIRD "127.0.0.73"

static int l_old, l_new;

static char *peer_of(int fd, char *text)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	CHECK(getpeername(fd, (struct sockaddr *)&a, &len) == 0);
	return (char *)inet_ntop(AF_INET, &a.sin_addr, text, INET_ADDRSTRLEN);
}

/* Connects to the address the program kept and checks that it is shut within PROMPT_MS. */
static void connect_kept_and_expect_shutdown(const char *what)
{
	int c = connect_literal(OLD, PORT);
	int s = accept_one(l_old);
	uint64_t at = now_ms();
	CHECKF(wait_eof(c, PROMPT_MS), "%s: the connection to the kept address %s was not shut within %d ms (its "
	       "name's set, older than its TTL, was not asked for at once)", what, OLD, PROMPT_MS);
	printf("%s: shut down %llu ms after the connect to the kept address\n", what,
	       (unsigned long long)(now_ms() - at));
	close(c);
	close(s);
}

/* Resolves NAME as a program that keeps the answer does (no connect yet). */
static void resolve_and_keep(void)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
	CHECK(getaddrinfo(NAME, NULL, &hints, &res) == 0);
	freeaddrinfo(res);
}

static void kept(void)
{
	t_name = "kept";
	write_hosts(NAME, OLD);
	resolve_and_keep();
	write_hosts(NAME, NEW);
	sleep_ms(PAST_TTL_MS);
	connect_kept_and_expect_shutdown("kept");
}

static void forked(void)
{
	t_name = "fork";
	write_hosts(NAME, OLD);
	resolve_and_keep();
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		t_name = "fork child";
		sleep_ms(PAST_TTL_MS);
		connect_kept_and_expect_shutdown("fork");
		int c = connect_literal(OLD, PORT);
		char text[INET_ADDRSTRLEN];
		CHECKF(strcmp(peer_of(c, text), NEW) == 0, "the child's next connect to %s went to %s, not steered to %s",
		       OLD, text, NEW);
		int s = accept_one(l_new);
		close(c);
		close(s);
		_exit(0);
	}
	write_hosts(NAME, NEW);
	CHECKF(wait_pid(pid, 15000, "the fork child"), "the fork child failed");
}

static void fresh(void)
{
	t_name = "fresh";
	write_hosts(NAME, NEW);
	int c = connect_named(NAME, PORT); /* answered just now: its refresh waits for its interval */
	int s = accept_one(l_new);
	write_hosts(NAME, THIRD); /* not back to OLD: a name that comes back to an address rotates */
	uint64_t at = now_ms();
	CHECKF(!wait_eof(c, PROMPT_MS), "fresh: a connection whose set was answered just before it was shut within "
	       "%d ms: its refresh did not wait for its interval", PROMPT_MS);
	CHECKF(wait_eof(c, 6000), "fresh: the connection to %s was not shut within 6 s of the move", NEW);
	printf("fresh: shut down %llu ms after the move (its refresh one interval after its answer)\n",
	       (unsigned long long)(now_ms() - at));
	close(c);
	close(s);
}

int main(void)
{
	t_name = "kept-address";
	setvbuf(stdout, NULL, _IONBF, 0); /* the fork child's line too (it ends with _exit) */
	watchdog(50);
	private_hosts(NAME, OLD);
	l_old = listen_on(OLD, PORT, 8);
	l_new = listen_on(NEW, PORT, 8);
	forked(); /* first: the parent has no thread yet */
	kept();   /* no socket to the name before its connect: nothing refreshed it meanwhile */
	fresh();
	close(l_old);
	close(l_new);
	drop_private_hosts();
	printf("PASS kept-address\n");
	return 0;
}
