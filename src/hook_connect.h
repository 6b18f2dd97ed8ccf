/* What the connect hook shares with the rest of the library. */
#ifndef DNSAWARE_HOOK_CONNECT_H
#define DNSAWARE_HOOK_CONNECT_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

/* A connect to addr:port failed: later connects avoid it for DNSAWARE_COOLDOWN while `host`
 * has other addresses (nothing, when steering or the cooldown is off). `say`: one info line. */
void connect_failure_remember(const struct ip_addr *addr, uint16_t port, const char *host, bool say);

#endif
