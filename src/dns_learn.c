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

static bool question_matches(const uint8_t *query, size_t len, void *context)
{
	const struct dnsmsg_question *asked = context;
	struct dnsmsg_question sent;
	return dnsmsg_question(query, len, &sent) && dnsmsg_same_question(&sent, asked);
}

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
	size_t len;
	unsigned index;
	while ((len = dns_watch_take_answer(answer, &index)) > 0) {
		struct dnsmsg_learned learned;
		if (!dnsmsg_read_answer(answer, len, &learned))
			continue;
		if (!dns_watch_find_query(index, question_matches, &learned.question)) {
			log_msg(LOG_DEBUG, "ignored a DNS answer for %s: it matches no query the program sent on that socket",
				learned.question.name);
			continue;
		}
		if (learn_selected(learned.question.name))
			learn_record(learned.question.name, learned.addrs, learned.count, STATS_LEARN_DNS,
				     learned.ttl_seconds);
	}
	atomic_flag_clear_explicit(&collecting, memory_order_release);
done:
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}
