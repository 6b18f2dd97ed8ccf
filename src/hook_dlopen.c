/* dlopen: a library loaded with RTLD_DEEPBIND gets its interposed calls pointed at the hooks
 * (relink.h). Every other dlopen is a tail jump to libc's, so libc sees the program's own return
 * address: dlopen searches the caller's DT_RPATH/DT_RUNPATH and expands $ORIGIN from the caller. */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "real.h"
#include "relink.h"
#include "runtime.h"

static bool has_search_path(const struct link_map *m)
{
	for (const ElfW(Dyn) *d = m->l_ld; d != NULL && d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_RPATH || d->d_tag == DT_RUNPATH)
			return true;
	return false;
}

/* Would libc find and name the same file if the call came from the library rather than from the
 * program? Yes for a path (and no $ORIGIN to expand), or when the caller has no search path of its
 * own and is in the base namespace. */
static bool same_from_here(const char *file, const void *caller)
{
	if (strchr(file, '$') != NULL)
		return false;
	if (strchr(file, '/') != NULL)
		return true;
	Dl_info info;
	struct link_map *m = NULL;
	if (dladdr1(caller, &info, (void **)&m, RTLD_DL_LINKMAP) == 0 || m == NULL)
		return false;
	Lmid_t namespace_id;
	return !has_search_path(m) && dlinfo(m, RTLD_DI_LMID, &namespace_id) == 0 && namespace_id == LM_ID_BASE;
}

static bool relink_wanted(const char *file, int flags, const void *caller)
{
	if (!(flags & RTLD_DEEPBIND) || file == NULL || runtime_inside)
		return false;
	runtime_init();
	if (!atomic_load_explicit(&runtime_active, memory_order_relaxed))
		return false;
	if (same_from_here(file, caller))
		return true;
	log_msg(LOG_WARN,
		"%s is loaded with RTLD_DEEPBIND by name from a library with its own search path: its calls are not "
		"seen (connect, send, getaddrinfo go straight to libc)",
		file);
	return false;
}

__attribute__((noinline)) static void *dlopen_deepbind(const char *file, int flags)
{
	size_t count = 0;
	struct link_map **before = relink_snapshot(&count);
	void *handle = REAL(dlopen)(file, flags);
	if (handle != NULL) {
		unsigned changed = relink_new_objects(handle, before, count);
		log_msg(LOG_DEBUG, "%s loaded with RTLD_DEEPBIND: %u of its calls pointed at the hooks", file, changed);
	}
	free(before);
	return handle;
}

__attribute__((visibility("default"))) void *dlopen(const char *file, int flags)
{
	if (__builtin_expect(relink_wanted(file, flags, __builtin_return_address(0)), 0))
		return dlopen_deepbind(file, flags);
	return REAL(dlopen)(file, flags);
}
