#include "dns_learn.h"

#include <signal.h>
#include <pthread.h>

#include "dnsmsg.h"
#include "learn.h"
#include "log.h"

/* One collector at a time: others leave the answers to it (they will be learned before it
 * returns, or by the next collector). */
static atomic_flag collecting = ATOMIC_FLAG_INIT;
/* Only the collector uses it: 4 KB off every program thread's stack. */
static uint8_t answer[DNS_ANSWER_MAX];

void dns_learn_after_fork_child(void)
{
	atomic_flag_clear(&collecting); /* a thread the child does not have may have held it */
}

void dns_learn_collect(void)
{
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	if (atomic_flag_test_and_set_explicit(&collecting, memory_order_acquire))
		goto done;
	struct dnsmsg_learned learned;
	unsigned unmatched = 0;
	while (dnsmsg_next_learned(answer, &learned, &unmatched))
		if (learn_selected(learned.question.name))
			learn_record(learned.question.name, learned.addrs, learned.count, STATS_LEARN_DNS,
				     learned.ttl_seconds);
	if (unmatched > 0)
		log_msg(LOG_DEBUG, "ignored %u DNS answer%s the program read: no query it sent on that socket matches",
			unmatched, unmatched == 1 ? "" : "s");
	atomic_flag_clear_explicit(&collecting, memory_order_release);
done:
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}
