#include <criterion/criterion.h>

#include "tracked.h"

static struct tracked_socket sockets[3];

static void setup(void)
{
	fdtable_clear_all();
	for (int i = 0; i < 3; i++)
		tracked_init(&sockets[i]);
}

TestSuite(fdtable, .init = setup);

Test(fdtable, untracked_fds_load_zero)
{
	cr_assert_eq(fdtable_load(0), 0);
	cr_assert_eq(fdtable_load(5000), 0);
	cr_assert_eq(fdtable_load(-1), 0);
	cr_assert_eq(fdtable_load(FDTABLE_MAX_FD), 0);
	cr_assert_eq(fdtable_load(0x7fffffff), 0);
}

Test(fdtable, track_and_close)
{
	cr_assert(tracked_attach(7, &sockets[0]));
	cr_assert_eq(fdtable_socket(fdtable_load(7)), &sockets[0]);
	cr_assert_eq(atomic_load(&sockets[0].refs), 1);
	cr_assert_eq(tracked_any_fd(&sockets[0]), 7);
	cr_assert_eq(tracked_detach(7), &sockets[0]);
	cr_assert_eq(atomic_load(&sockets[0].refs), 0);
	cr_assert_eq(fdtable_load(7), 0);
	cr_assert_eq(tracked_any_fd(&sockets[0]), -1);
	cr_assert_null(tracked_detach(7));
}

Test(fdtable, out_of_range_is_refused)
{
	cr_assert_not(tracked_attach(FDTABLE_MAX_FD, &sockets[0]));
	cr_assert_not(tracked_attach(-3, &sockets[0]));
	cr_assert_eq(atomic_load(&sockets[0].refs), 0);
}

Test(fdtable, dup_keeps_the_socket_until_the_last_fd_closes)
{
	tracked_attach(7, &sockets[0]);
	tracked_duplicate(7, 9);
	cr_assert_eq(atomic_load(&sockets[0].refs), 2);
	tracked_detach(7);
	cr_assert_eq(atomic_load(&sockets[0].refs), 1);
	cr_assert_eq(tracked_any_fd(&sockets[0]), 9);
	tracked_detach(9);
	cr_assert_eq(atomic_load(&sockets[0].refs), 0);
}

Test(fdtable, dup2_onto_a_tracked_fd_drops_the_old_entry)
{
	tracked_attach(7, &sockets[0]);
	tracked_attach(8, &sockets[1]);
	tracked_duplicate(7, 8);
	cr_assert_eq(atomic_load(&sockets[1].refs), 0);
	cr_assert_eq(atomic_load(&sockets[0].refs), 2);
	cr_assert_eq(fdtable_socket(fdtable_load(8)), &sockets[0]);
}

Test(fdtable, dup2_of_an_untracked_fd_onto_a_tracked_fd_untracks_it)
{
	tracked_attach(8, &sockets[1]);
	tracked_duplicate(3, 8);
	cr_assert_eq(fdtable_load(8), 0);
	cr_assert_eq(atomic_load(&sockets[1].refs), 0);
}

Test(fdtable, dup_onto_itself_changes_nothing)
{
	tracked_attach(7, &sockets[0]);
	tracked_duplicate(7, 7);
	cr_assert_eq(atomic_load(&sockets[0].refs), 1);
}

Test(fdtable, reuse_after_close)
{
	tracked_attach(7, &sockets[0]);
	tracked_detach(7);
	tracked_attach(7, &sockets[1]);
	cr_assert_eq(fdtable_socket(fdtable_load(7)), &sockets[1]);
	cr_assert_eq(atomic_load(&sockets[0].refs), 0);
	cr_assert_eq(atomic_load(&sockets[1].refs), 1);
}

Test(fdtable, attach_over_a_stale_entry_releases_it)
{
	/* An fd closed by a raw syscall and reused: the new connect replaces the entry. */
	tracked_attach(7, &sockets[0]);
	tracked_attach(7, &sockets[1]);
	cr_assert_eq(atomic_load(&sockets[0].refs), 0);
	cr_assert_eq(tracked_any_fd(&sockets[0]), -1);
	cr_assert_eq(fdtable_socket(fdtable_load(7)), &sockets[1]);
}

Test(fdtable, shim_marker_is_not_a_socket)
{
	bool ok;
	fdtable_exchange(12, FDTABLE_SHIM, &ok);
	cr_assert(ok);
	cr_assert_eq(fdtable_load(12), FDTABLE_SHIM);
	cr_assert_null(fdtable_socket(fdtable_load(12)));
	cr_assert_null(tracked_detach(12));
	cr_assert_eq(fdtable_load(12), 0);
}

Test(fdtable, high_fds_in_other_chunks)
{
	int high = FDTABLE_MAX_FD - 1;
	cr_assert(tracked_attach(high, &sockets[2]));
	cr_assert_eq(fdtable_socket(fdtable_load(high)), &sockets[2]);
	cr_assert_eq(fdtable_load(high - 1), 0);
	fdtable_clear_all();
	cr_assert_eq(fdtable_load(high), 0);
}

Test(fdtable, more_dups_than_remembered_fds_stay_in_the_table)
{
	tracked_attach(10, &sockets[0]);
	for (int fd = 11; fd < 10 + TRACKED_MAX_FDS + 3; fd++)
		tracked_duplicate(10, fd);
	cr_assert_eq(atomic_load(&sockets[0].refs), TRACKED_MAX_FDS + 3);
	int last = 10 + TRACKED_MAX_FDS + 2;
	for (int fd = 10; fd < last; fd++)
		tracked_detach(fd);
	cr_assert_eq(tracked_any_fd(&sockets[0]), last, "found in the table though never remembered");
	tracked_detach(last);
	cr_assert_eq(atomic_load(&sockets[0].refs), 0);
}

Test(fdtable, next_mapped_skips_unmapped_chunks)
{
	int high = 5 << FDTABLE_CHUNK_BITS;
	cr_assert(tracked_attach(high + 3, &sockets[0]));
	cr_assert_eq(fdtable_next_mapped(high + 3), high + 3);
	cr_assert_geq(fdtable_next_mapped((6 << FDTABLE_CHUNK_BITS)), 6 << FDTABLE_CHUNK_BITS);
	cr_assert_eq(fdtable_next_mapped(FDTABLE_MAX_FD), FDTABLE_MAX_FD);
	tracked_detach(high + 3);
}

Test(fdtable, detach_if_only_drops_the_expected_socket)
{
	tracked_attach(7, &sockets[0]);
	tracked_detach(7);
	tracked_attach(7, &sockets[1]); /* the number was reused by another tracked connect */
	cr_assert_not(tracked_detach_if(7, &sockets[0]));
	cr_assert_eq(fdtable_socket(fdtable_load(7)), &sockets[1]);
	cr_assert(tracked_detach_if(7, &sockets[1]));
	cr_assert_eq(atomic_load(&sockets[1].refs), 0);
	cr_assert_eq(fdtable_load(7), 0);
}
