#include "tracked.h"

#include "dns_watch.h"

void tracked_init(struct tracked_socket *s)
{
	atomic_init(&s->state, 0);
	atomic_init(&s->refs, 0);
	for (int i = 0; i < TRACKED_MAX_FDS; i++)
		atomic_init(&s->fds[i], -1);
	atomic_init(&s->send_recorded, false);
	atomic_init(&s->bytes_received_at_send, 0);
	atomic_init(&s->connecting, false);
	atomic_init(&s->connect_failed, false);
	atomic_init(&s->release_pushed, false);
}

static void remember_fd(struct tracked_socket *s, int fd)
{
	for (int i = 0; i < TRACKED_MAX_FDS; i++) {
		int expected = -1;
		if (atomic_compare_exchange_strong(&s->fds[i], &expected, fd))
			return;
	}
	/* All slots taken: tracked_any_fd falls back on the slots that remain; the table stays true. */
}

static void forget_fd(struct tracked_socket *s, int fd)
{
	for (int i = 0; i < TRACKED_MAX_FDS; i++) {
		int expected = fd;
		if (atomic_compare_exchange_strong(&s->fds[i], &expected, -1))
			return;
	}
}

_Atomic uint64_t tracked_live_count;
_Atomic(struct tracked_socket *) tracked_released;
_Atomic uint64_t tracked_released_pushed;
_Atomic uint64_t tracked_released_done;

static void push_released(struct tracked_socket *s)
{
	if (atomic_exchange_explicit(&s->release_pushed, true, memory_order_acq_rel))
		return; /* still on the list from an earlier release */
	atomic_fetch_add_explicit(&tracked_released_pushed, 1, memory_order_relaxed);
	struct tracked_socket *head = atomic_load_explicit(&tracked_released, memory_order_relaxed);
	do
		s->next_released = head;
	while (!atomic_compare_exchange_weak_explicit(&tracked_released, &head, s, memory_order_release,
						      memory_order_relaxed));
}

struct tracked_socket *tracked_take_released(void)
{
	return atomic_exchange_explicit(&tracked_released, NULL, memory_order_acquire);
}

static void release(struct tracked_socket *s, int fd)
{
	forget_fd(s, fd);
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
		atomic_fetch_sub_explicit(&tracked_live_count, 1, memory_order_relaxed);
		push_released(s);
	}
}

/* fd no longer refers to what its slot held (previous). */
static void release_slot(uintptr_t previous, int fd)
{
	struct tracked_socket *old = fdtable_socket(previous);
	if (old != NULL)
		release(old, fd);
	else if (fdtable_is_dns(previous))
		dns_watch_unref(fdtable_dns_index(previous));
}

bool tracked_attach(int fd, struct tracked_socket *s)
{
	bool ok;
	if (atomic_fetch_add_explicit(&s->refs, 1, memory_order_acq_rel) == 0)
		atomic_fetch_add_explicit(&tracked_live_count, 1, memory_order_relaxed);
	remember_fd(s, fd);
	uintptr_t previous = fdtable_exchange(fd, (uintptr_t)s, &ok);
	if (!ok) {
		release(s, fd);
		return false;
	}
	/* Whatever fd referred to goes (s itself, attached twice: one reference kept). */
	release_slot(previous, fd);
	return true;
}

bool tracked_attach_dns(int fd, int index)
{
	bool ok;
	uintptr_t previous = fdtable_exchange(fd, fdtable_dns_slot(index), &ok);
	if (!ok) {
		dns_watch_unref(index);
		return false;
	}
	release_slot(previous, fd);
	return true;
}

struct tracked_socket *tracked_detach(int fd)
{
	if (fdtable_load(fd) == 0)
		return NULL;
	bool ok;
	uintptr_t previous = fdtable_exchange(fd, 0, &ok);
	release_slot(previous, fd);
	return fdtable_socket(previous);
}

bool tracked_detach_if(int fd, struct tracked_socket *s)
{
	if (!fdtable_compare_exchange(fd, (uintptr_t)s, 0))
		return false;
	release(s, fd);
	return true;
}

void tracked_duplicate(int oldfd, int newfd)
{
	if (oldfd == newfd)
		return;
	uintptr_t slot = fdtable_load(oldfd);
	struct tracked_socket *s = fdtable_socket(slot);
	if (fdtable_is_dns(slot)) {
		dns_watch_ref(fdtable_dns_index(slot));
		tracked_attach_dns(newfd, fdtable_dns_index(slot));
	} else if (s == NULL || !tracked_attach(newfd, s)) {
		tracked_detach(newfd);
	}
}

int tracked_any_fd(struct tracked_socket *s)
{
	for (int i = 0; i < TRACKED_MAX_FDS; i++) {
		int fd = atomic_load(&s->fds[i]);
		if (fd >= 0 && fdtable_socket(fdtable_load(fd)) == s)
			return fd;
	}
	if (atomic_load(&s->refs) == 0)
		return -1;
	/* Only duplicates beyond the remembered ones are left: find one in the table, remember it. */
	for (int fd = fdtable_next_mapped(0); fd < FDTABLE_MAX_FD; fd = fdtable_next_mapped(fd + 1)) {
		if (fdtable_socket(fdtable_load(fd)) == s) {
			remember_fd(s, fd);
			return fd;
		}
	}
	return -1;
}
