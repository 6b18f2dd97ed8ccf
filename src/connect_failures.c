/* The connects that failed lately, remembered for steering's cooldown (DNSAWARE_COOLDOWN): the
 * connect hook remembers the blocking ones it sees fail, the background thread the non-blocking ones
 * it sees end without connecting (connect_watch.c), and a successful connect clears its address. */
#include "connect_failures.h"

#include "log.h"
#include "names.h"
#include "runtime.h"
#include "steer.h"

void connect_failure_remember(const struct ip_addr *addr, uint16_t port, const char *host, bool say)
{
	if (!runtime_config.redirect || runtime_config.cooldown_ms == 0)
		return; /* nothing would avoid it */
	sigset_t saved;
	names_lock(&saved);
	steer_mark_failed(&names_failed_connects, addr, port, runtime_now_ms(), runtime_config.cooldown_ms);
	names_unlock(&saved);
	if (say) {
		char text[IP_PEER_STRLEN];
		log_msg(LOG_INFO, "a connect to %s failed; avoiding it for %llums while %s has other addresses",
			ip_addr_format_peer(addr, port, text), (unsigned long long)runtime_config.cooldown_ms, host);
	}
}

void connect_success_remember(const struct ip_addr *addr, uint16_t port)
{
	sigset_t saved;
	names_lock(&saved);
	steer_mark_healthy(&names_failed_connects, addr, port);
	names_unlock(&saved);
}
