#include "relink.h"

#include <dlfcn.h>
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
#define RELINK_SUPPORTED 1
#define RELOC_JUMP_SLOT R_X86_64_JUMP_SLOT
#define RELOC_GLOB_DAT R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define RELINK_SUPPORTED 1
#define RELOC_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define RELOC_GLOB_DAT R_AARCH64_GLOB_DAT
#else
#define RELINK_SUPPORTED 0
#endif

/* The interposed calls: every symbol of libdnsaware.map. */
static const char *const interposed[] = {
	"getaddrinfo", "gethostbyname", "gethostbyname2", "gethostbyname_r", "gethostbyname2_r",
	"connect", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64",
	"send", "sendto", "sendmsg", "sendmmsg", "write", "writev", "sendfile", "sendfile64",
	"recv", "recvfrom", "recvmsg", "recvmmsg", "read", "__recv_chk", "__recvfrom_chk", "__read_chk",
	"dlopen",
};
#define INTERPOSED_COUNT (sizeof interposed / sizeof interposed[0])

struct link_map **relink_snapshot(size_t *count)
{
	size_t n = 0;
	for (struct link_map *m = _r_debug.r_map; m != NULL; m = m->l_next)
		n++;
	struct link_map **maps = malloc((n + 1) * sizeof *maps);
	*count = 0;
	if (maps == NULL)
		return NULL;
	for (struct link_map *m = _r_debug.r_map; m != NULL && *count < n; m = m->l_next)
		maps[(*count)++] = m;
	return maps;
}

#if RELINK_SUPPORTED

/* Where each interposed call of a deep-bound object should go: the global scope's definition (the
 * hook), only for references that the object's own scope bound to libc's definition. */
struct targets {
	void *to[INTERPOSED_COUNT]; /* NULL: leave the reference alone */
};

static void find_targets(void *handle, struct targets *t)
{
	for (size_t i = 0; i < INTERPOSED_COUNT; i++) {
		void *libc = dlsym(RTLD_NEXT, interposed[i]);     /* the definition after the shim's */
		void *global = dlsym(RTLD_DEFAULT, interposed[i]); /* what a library bound normally gets */
		void *deep = dlsym(handle, interposed[i]);         /* what the deep-bound scope gives */
		t->to[i] = libc != NULL && deep == libc && global != NULL && global != libc ? global : NULL;
	}
}

struct relro_search {
	ElfW(Addr) base;
	const char *name;
	ElfW(Addr) start, end; /* the object's RELRO range, 0 if none */
};

static int find_relro(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct relro_search *search = data;
	if (info->dlpi_addr != search->base || strcmp(info->dlpi_name, search->name) != 0)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO) {
			search->start = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
			search->end = search->start + info->dlpi_phdr[i].p_memsz;
		}
	}
	return 1;
}

/* Stores value at slot, making a RELRO page writable for the moment. */
static bool store(void **slot, void *value, const struct relro_search *relro)
{
	if (*slot == value)
		return false;
	uintptr_t at = (uintptr_t)slot;
	bool protected = at >= relro->start && at < relro->end;
	size_t span = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t page = at & ~(uintptr_t)(span - 1);
	if (protected && mprotect((void *)page, span, PROT_READ | PROT_WRITE) != 0)
		return false;
	__atomic_store_n(slot, value, __ATOMIC_RELEASE); /* another thread may be calling through it */
	if (protected)
		mprotect((void *)page, span, PROT_READ);
	return true;
}

/* The dynamic section's addresses are relocated in place by ld.so on most targets, not all. */
static uintptr_t dynamic_address(const struct link_map *m, ElfW(Addr) value)
{
	return value < m->l_addr ? m->l_addr + value : value;
}

static unsigned relink_relocations(const struct link_map *m, const ElfW(Rela) *relocs, size_t bytes,
				   const ElfW(Sym) *symbols, const char *strings, const struct targets *t,
				   const struct relro_search *relro)
{
	unsigned changed = 0;
	for (size_t r = 0; r < bytes / sizeof *relocs; r++) {
		unsigned long type = ELF64_R_TYPE(relocs[r].r_info);
		if (type != RELOC_JUMP_SLOT && type != RELOC_GLOB_DAT)
			continue;
		const ElfW(Sym) *sym = &symbols[ELF64_R_SYM(relocs[r].r_info)];
		if (sym->st_shndx != SHN_UNDEF || sym->st_name == 0)
			continue; /* the object's own definition: deep binding or not, it keeps it */
		const char *name = strings + sym->st_name;
		for (size_t i = 0; i < INTERPOSED_COUNT; i++) {
			if (t->to[i] != NULL && strcmp(name, interposed[i]) == 0) {
				changed += store((void **)(m->l_addr + relocs[r].r_offset), t->to[i], relro);
				break;
			}
		}
	}
	return changed;
}

static unsigned relink_object(const struct link_map *m, const struct targets *t)
{
	const ElfW(Sym) *symbols = NULL;
	const char *strings = NULL;
	const ElfW(Rela) *plt = NULL, *rela = NULL;
	size_t plt_bytes = 0, rela_bytes = 0;
	bool plt_is_rela = true;
	for (const ElfW(Dyn) *d = m->l_ld; d != NULL && d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB:
			symbols = (const ElfW(Sym) *)dynamic_address(m, d->d_un.d_ptr);
			break;
		case DT_STRTAB:
			strings = (const char *)dynamic_address(m, d->d_un.d_ptr);
			break;
		case DT_JMPREL:
			plt = (const ElfW(Rela) *)dynamic_address(m, d->d_un.d_ptr);
			break;
		case DT_PLTRELSZ:
			plt_bytes = d->d_un.d_val;
			break;
		case DT_PLTREL:
			plt_is_rela = d->d_un.d_val == DT_RELA;
			break;
		case DT_RELA:
			rela = (const ElfW(Rela) *)dynamic_address(m, d->d_un.d_ptr);
			break;
		case DT_RELASZ:
			rela_bytes = d->d_un.d_val;
			break;
		}
	}
	if (symbols == NULL || strings == NULL || !plt_is_rela)
		return 0;
	struct relro_search relro = {.base = m->l_addr, .name = m->l_name};
	dl_iterate_phdr(find_relro, &relro);
	unsigned changed = 0;
	if (plt != NULL)
		changed += relink_relocations(m, plt, plt_bytes, symbols, strings, t, &relro);
	if (rela != NULL)
		changed += relink_relocations(m, rela, rela_bytes, symbols, strings, t, &relro);
	return changed;
}

static bool was_loaded(const struct link_map *m, struct link_map **before, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (before[i] == m)
			return true;
	return false;
}

unsigned relink_new_objects(void *handle, struct link_map **before, size_t count)
{
	struct targets t;
	find_targets(handle, &t);
	unsigned changed = 0;
	for (struct link_map *m = _r_debug.r_map; m != NULL; m = m->l_next)
		if (m->l_name != NULL && m->l_name[0] != '\0' && !was_loaded(m, before, count))
			changed += relink_object(m, &t);
	return changed;
}

#else

unsigned relink_new_objects(void *handle, struct link_map **before, size_t count)
{
	(void)handle;
	(void)before;
	(void)count;
	return 0;
}

#endif
