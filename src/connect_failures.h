/* The cooldown's memory of failed connects, shared by the connect hook and the background thread. */
#ifndef DNSAWARE_CONNECT_FAILURES_H
#define DNSAWARE_CONNECT_FAILURES_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

/* A connect to addr:port failed: later connects avoid it for DNSAWARE_COOLDOWN while `host`
 * has other addresses (nothing, when steering or the cooldown is off). `say`: one info line. */
void connect_failure_remember(const struct ip_addr *addr, uint16_t port, const char *host, bool say);

/* A connect to addr:port succeeded: it is healthy again. */
void connect_success_remember(const struct ip_addr *addr, uint16_t port);

#endif
