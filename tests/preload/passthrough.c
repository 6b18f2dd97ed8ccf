/* Every hooked call returns the same value and errno as without the shim.
 *
 * Table of situations with known results, checked against hard-coded kernel/glibc behaviour, and
 * for the resolver calls also against libc's own definitions (looked up in libc.so.6 with dlsym,
 * which the preload does not interpose). meson runs this program without the shim and with it
 * (and with DNSAWARE_DISABLE=1): it must pass every way, so the expectations come from the kernel,
 * not from the shim. Connections go to 127.0.0.1 after getaddrinfo("localhost"), so with the shim
 * most sockets here are tracked. */
#include "passthrough.h"

/* One name for the CHECKs of every file (common.h, PRELOAD_SHARED_T_NAME). */
const char *t_name = "?";
static char tmpdir[256];
/* Hidden from the compiler, so that deliberately bad arguments compile under -Werror. */
void *volatile vnull;
volatile int vneg = -1;
struct iovec many_iov[IOV_MAX + 1]; /* valid entries, one more than allowed */
volatile sig_atomic_t sigpipe_count;
uint16_t port; /* listener on 127.0.0.1, reached through "localhost" */
int lfd;

/* ---------------------------------------------------------------- helpers */

static void on_sigpipe(int s) { (void)s; sigpipe_count++; }

/* An fd number that was open and is closed now (high enough not to be reused meanwhile). */
int closed_fd(void)
{
	CHECK(dup2(2, 900) == 900);
	CHECK(close(900) == 0);
	return 900;
}

struct conn new_conn(void)
{
	struct conn k;
	k.c = connect_named("localhost", port);
	k.s = accept_one(lfd);
	return k;
}

void close_conn(struct conn k)
{
	CHECK(close(k.c) == 0);
	CHECK(close(k.s) == 0);
}

/* A connection whose client end cannot take one more byte: small buffers, peer not reading. */
static int small_lfd;
static uint16_t small_port;

/* Sends without blocking until the socket takes nothing more, twice in a row. */
void refill(int fd)
{
	static char buf[65536];
	const size_t sizes[] = { sizeof buf, 4096, 256, 1 };
	for (int quiet = 0; quiet < 2;) {
		size_t sent = 0;
		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			ssize_t n;
			while ((n = send(fd, buf, sizes[i], MSG_DONTWAIT | MSG_NOSIGNAL)) > 0)
				sent += (size_t)n;
			CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
		}
		quiet = sent == 0 ? quiet + 1 : 0;
		sleep_ms(10);
	}
}

struct conn full_conn(void)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	char svc[16];
	snprintf(svc, sizeof svc, "%u", small_port);
	CHECK(getaddrinfo("localhost", svc, &hints, &res) == 0);
	struct conn k;
	k.c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(k.c >= 0);
	int sz = 4096;
	CHECK(setsockopt(k.c, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz) == 0);
	CHECK(connect(k.c, res->ai_addr, res->ai_addrlen) == 0);
	freeaddrinfo(res);
	k.s = accept_one(small_lfd);
	refill(k.c);
	return k;
}

char *tmp_path(const char *name)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	return path;
}

int make_file(const char *name, const char *content)
{
	int fd = open(tmp_path(name), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, content, strlen(content)) == (ssize_t)strlen(content));
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	return fd;
}

void expect_bytes(int fd, const char *want)
{
	char buf[512];
	size_t n = strlen(want);
	CHECK(n < sizeof buf);
	recv_exact(fd, buf, n);
	CHECKF(memcmp(buf, want, n) == 0, "peer received \"%.*s\", expected \"%s\"", (int)n, buf, want);
}

int main(int argc, char **argv)
{
	t_name = argc > 1 ? argv[1] : "passthrough";
	watchdog(40);
	setvbuf(stdout, NULL, _IONBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigpipe;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGPIPE, &sa, NULL) == 0);

	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/dnsaware-passthrough-XXXXXX", t && *t ? t : "/tmp");
	CHECK(mkdtemp(tmpdir) != NULL);

	for (int i = 0; i <= IOV_MAX; i++)
		many_iov[i] = (struct iovec){ .iov_base = "i", .iov_len = 1 };
	lfd = make_listener("127.0.0.1", &port, 64);
	int sz = 4096;
	small_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(setsockopt(small_lfd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz) == 0);
	{
		struct sockaddr_storage ss;
		socklen_t len;
		make_addr("127.0.0.1", 0, &ss, &len);
		CHECK(bind(small_lfd, (struct sockaddr *)&ss, len) == 0);
		CHECK(listen(small_lfd, 16) == 0);
		len = sizeof ss;
		CHECK(getsockname(small_lfd, (struct sockaddr *)&ss, &len) == 0);
		small_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}

	test_resolvers();
	printf("resolvers ok\n");
	test_connect();
	printf("connect ok\n");
	test_send_family();
	printf("send family ok\n");
	test_write_family();
	printf("write family ok\n");
	test_dup_family();
	printf("dup family ok\n");
	test_fcntl();
	printf("fcntl ok\n");
	test_eintr();
	printf("EINTR ok\n");

	/* which way this ran: with the shim active, the tracked connects above started its one
	 * background thread; without the shim, or disabled, there is none */
	const char *pre = getenv("LD_PRELOAD");
	const char *dis = getenv("DNSAWARE_DISABLE");
	bool active = pre != NULL && strstr(pre, "dnsaware") != NULL && !(dis != NULL && strcmp(dis, "1") == 0);
	int threads = thread_count();
	CHECKF(threads == (active ? 2 : 1), "%d threads at the end, expected %d (shim %s)", threads, active ? 2 : 1,
	       active ? "active" : "absent or disabled");

	const char *files[] = { "sendfile-src", "append", "write-dst", "locks", "eintr-src" };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		unlink(tmp_path(files[i]));
	rmdir(tmpdir);
	printf("%s: all checks passed\n", t_name);
	return 0;
}
