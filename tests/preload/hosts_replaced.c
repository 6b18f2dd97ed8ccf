/* /etc/hosts replaced by a new file, not rewritten in place (an editor's save, a new bind mount):
 * the shim's thread reads /etc/hosts through an fd a hook opened for it, which still shows the old
 * file. The path's new file must be read all the same (by the file helper, src/file_helper.c), the
 * move seen, the connection shut down; the next tracked connect opens the new file for the thread,
 * and a later move written into that one in place is seen too.
 * Usage: preload_hosts_replaced. Root (a mount namespace of its own). Env: LD_PRELOAD,
 * DNSAWARE_TTL_FLOOR=200ms, DNSAWARE_STALE_AFTER=1, DNSAWARE_IDLE=50ms, DNSAWARE_LOG=debug,
 * DNSAWARE_LOG_FILE. */
#include "common.h"

enum { PORT = 8061 };
#define NAME "replaced.test"

static char second_path[] = "/tmp/dnsaware-test-hosts2-XXXXXX";

/* Mounts a new file over /etc/hosts: the path names another inode from now on. */
static void replace_hosts(const char *address)
{
	int fd = mkstemp(second_path);
	CHECK(fd >= 0);
	char text[256];
	int n = snprintf(text, sizeof text, "127.0.0.1 localhost\n%s %s\n", address, NAME);
	CHECK(write(fd, text, (size_t)n) == n && close(fd) == 0);
	CHECK(mount(second_path, "/etc/hosts", NULL, MS_BIND, NULL) == 0);
}

/* Rewrites the file now at /etc/hosts in place. */
static void rewrite_hosts(const char *address)
{
	char text[256];
	int n = snprintf(text, sizeof text, "127.0.0.1 localhost\n%s %s\n", address, NAME);
	int fd = open(second_path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, text, (size_t)n) == n && close(fd) == 0);
}

static int connect_to(const char *expected_ip)
{
	int fd = connect_named(NAME, PORT);
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	char text[INET_ADDRSTRLEN];
	CHECK(getpeername(fd, (struct sockaddr *)&a, &len) == 0);
	inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
	CHECKF(strcmp(text, expected_ip) == 0, "connected to %s, expected %s", text, expected_ip);
	return fd;
}

int main(void)
{
	t_name = "hosts-replaced";
	watchdog(40);
	private_hosts(NAME, "127.0.0.61");
	int l1 = listen_on("127.0.0.61", PORT, 8), l2 = listen_on("127.0.0.62", PORT, 8),
	    l3 = listen_on("127.0.0.63", PORT, 8);

	int c = connect_to("127.0.0.61");
	int s = accept_one(l1);
	sleep_ms(600); /* a few refreshes through the fd the connect opened */
	replace_hosts("127.0.0.62");
	uint64_t moved = now_ms();
	CHECKF(wait_eof(c, 5000), "the connection to .61 was not shut down within 5 s of /etc/hosts being replaced");
	printf("replaced: shut down %llu ms after /etc/hosts was replaced\n", (unsigned long long)(now_ms() - moved));
	close(c);
	close(s);

	c = connect_to("127.0.0.62"); /* opens the new file for the thread */
	s = accept_one(l2);
	sleep_ms(600);
	rewrite_hosts("127.0.0.63");
	moved = now_ms();
	CHECKF(wait_eof(c, 5000), "the connection to .62 was not shut down within 5 s of the move in place");
	printf("rewritten: shut down %llu ms after the move\n", (unsigned long long)(now_ms() - moved));
	close(c);
	close(s);
	close(l1);
	close(l2);
	close(l3);
	umount("/etc/hosts");
	unlink(second_path);
	drop_private_hosts();
	printf("hosts-replaced: all checks passed\n");
	return 0;
}
