/* Libraries loaded with RTLD_DEEPBIND (PHP's extensions, and what they load) look symbols up in
 * their own scope first, so their calls to connect, send, getaddrinfo... go straight to libc,
 * past the preloaded shim. After such a dlopen, the newly loaded objects' references to the
 * interposed calls are pointed at what the global scope gives (the shim's hooks), in their GOT:
 * only references that deep binding sent to libc's own definition, so a library of the deep scope
 * that defines one of these calls itself keeps it, as deep binding intends. RELRO pages are made
 * writable for the store and read-only again. Why this and not dropping RTLD_DEEPBIND: every other
 * symbol of the library resolves as the program asked (docs/how-it-works.md). */
#ifndef DNSAWARE_RELINK_H
#define DNSAWARE_RELINK_H

#include <link.h>
#include <stdbool.h>
#include <stddef.h>

/* The objects loaded now (the base namespace's list), to compare against after a dlopen. Returns a
 * malloc'd array of *count link maps, or NULL (then every object counts as new; relinking an
 * object twice stores the same values). */
struct link_map **relink_snapshot(size_t *count);

/* Redirects the interposed references of every object not in before[0..count) that deep binding
 * bound to libc, looked up through handle's scope. Returns the number of GOT entries changed. */
unsigned relink_new_objects(void *handle, struct link_map **before, size_t count);

#endif
