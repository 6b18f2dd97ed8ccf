/* Where the library's own fds go in the program's fd table (docs/how-it-works.md, "Where the
 * shim's fds live"). Pure arithmetic, unit-tested.
 *
 * The kernel's fd table of a process is as large as its highest fd needs, in steps (64 slots, then
 * 128, 256, 512, ...), never shrinks, and is copied whole by every fork and vfork. Programs get the
 * lowest free number for each new fd. So the library's few fds go in a band just under the top of
 * the smallest table that holds the program's own fds plus a gap: high enough that the program's
 * next numbers are not theirs, low enough that the table (and what fork copies) is the size the
 * program itself needs, whatever RLIMIT_NOFILE is. */
#ifndef DNSAWARE_FDPLACE_H
#define DNSAWARE_FDPLACE_H

#include <stdint.h>

/* The most fds the library holds at once (c-ares' sockets, 2 per server for 4 servers, the log). */
#define FDPLACE_BAND 16
/* Free numbers kept between the program's fds and the band. */
#define FDPLACE_GAP 16

/* The size of the kernel's fd table (Linux's alloc_fdtable, 64-bit) for a process whose highest fd
 * is highest_fd: 64, then 128 * 2^k. */
uint64_t fdplace_table_size(uint64_t highest_fd);

/* The lowest number of the band, for a program whose fds are dense up to dense_top (-1: none) under
 * a soft RLIMIT_NOFILE of limit. The band's top is at most limit (no fd can be made at or above
 * it) and at most max_fd. -1 when there is no room above dense_top: the fd stays where it was
 * made. */
int64_t fdplace_band_low(int64_t dense_top, uint64_t limit, uint64_t max_fd);

#endif
