#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "names.h"
#include "real.h"
#include "resolver_thread.h"
#include "runtime.h"
#include "stats.h"
#include "stats_file.h"
#include "tracked.h"

struct config runtime_config;
_Atomic bool runtime_active;
_Atomic pid_t runtime_pid;
__thread bool runtime_inside __attribute__((tls_model("initial-exec")));
__thread bool runtime_on_thread __attribute__((tls_model("initial-exec")));

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static const char *environment_value(const char *name)
{
	return getenv(name);
}

static const char *no_environment(const char *name)
{
	(void)name;
	return NULL;
}

/* Warnings wait until the whole configuration (the log level and file among it) is known. */
/* One warning per variable at most (16 today), with room for variables to come. */
#define PENDING_WARNINGS_MAX 32
static char pending_warnings[PENDING_WARNINGS_MAX][CONFIG_WARNING_MAX];
static unsigned pending_count;

static void warn_config(const char *message)
{
	if (pending_count < PENDING_WARNINGS_MAX)
		snprintf(pending_warnings[pending_count++], sizeof pending_warnings[0], "%s", message);
}

static void prepare_fork(void)
{
	names_prepare_fork();
}

static void after_fork_parent(void)
{
	names_after_fork_parent();
}

/* A fork child that has not settled yet (runtime_settle_fork). */
static _Atomic bool fork_pending;

/* Only what cannot wait: every page the child writes is a page the kernel copies for it, at every
 * fork the program makes (tools/bench fork). The rest is done when the child first needs the
 * library (runtime_settle_fork); until then runtime_pid is still the parent's, so the hooks leave
 * the inherited tables alone, as in a vfork child. */
static void after_fork_child(void)
{
	names_after_fork_child();
	shimfd_close_inherited();
	atomic_store_explicit(&fork_pending, true, memory_order_relaxed);
}

void runtime_settle_fork(void)
{
	if (__builtin_expect(!atomic_load_explicit(&fork_pending, memory_order_acquire), 1))
		return;
	int saved_errno = errno;
	sigset_t saved;
	names_lock(&saved);
	if (atomic_load(&fork_pending)) {
		atomic_store(&runtime_pid, getpid());
		log_after_fork_child();
		stats_file_after_fork_child();
		stats_after_fork_child();
		names_forget_parent_sockets();
		resolver_thread_after_fork_child();
		atomic_store(&fork_pending, false);
	}
	names_unlock(&saved);
	errno = saved_errno;
}

bool runtime_fork_pending(void)
{
	return atomic_load_explicit(&fork_pending, memory_order_acquire);
}

static void load(void)
{
	real_resolve();
	atomic_store(&runtime_pid, getpid());
	struct config loaded;
	config_set_defaults(&loaded);
	/* The loader keeps LD_PRELOAD for setuid programs only from trusted paths; even then the
	 * environment is the caller's, not the program owner's: ignore it. */
	bool secure = getauxval(AT_SECURE) != 0;
	config_load(&loaded, secure ? no_environment : environment_value, warn_config);
	runtime_config = loaded;
	for (unsigned i = 0; i < pending_count; i++)
		log_line(LOG_WARN, pending_warnings[i]);
	if (runtime_config.disable)
		return;
	pthread_atfork(prepare_fork, after_fork_parent, after_fork_child);
	atomic_store(&runtime_active, true);
}

void runtime_init(void)
{
	int saved_errno = errno;
	pthread_once(&init_once, load);
	errno = saved_errno;
}

__attribute__((constructor)) static void dnsaware_constructor(void)
{
	runtime_init();
}

uint64_t runtime_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t runtime_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t runtime_random(void)
{
	/* xorshift seeded from the clock: jitter needs spread, not secrecy. */
	static __thread uint32_t state;
	if (state == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		state = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)&ts ^ 0x9e3779b9u;
		if (state == 0)
			state = 1;
	}
	state ^= state << 13;
	state ^= state >> 17;
	state ^= state << 5;
	return state;
}
