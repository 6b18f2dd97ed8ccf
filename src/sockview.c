#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <linux/tcp.h>

#include "sockview.h"

bool sockview_read(int fd, struct socket_view *view)
{
	struct tcp_info info = {0};
	socklen_t len = sizeof info;
	int unread = 0, unsent = 0;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
		return false;
	if (ioctl(fd, SIOCINQ, &unread) != 0 || ioctl(fd, SIOCOUTQ, &unsent) != 0)
		return false;
	view->tcp_state = info.tcpi_state;
	view->unread_bytes = (uint32_t)unread;
	view->unsent_bytes = (uint32_t)unsent;
	view->ms_since_send = info.tcpi_last_data_sent;
	view->ms_since_recv = info.tcpi_last_data_recv;
	view->rtt_us = info.tcpi_rtt;
	view->total_retrans = info.tcpi_total_retrans;
	/* Kernels before 4.19 fill less: without byte counts, judge by the timestamps alone. */
	if (len >= offsetof(struct tcp_info, tcpi_bytes_sent) + sizeof info.tcpi_bytes_sent) {
		view->bytes_sent = info.tcpi_bytes_sent;
		view->bytes_received = info.tcpi_bytes_received;
	} else {
		view->bytes_sent = 1;
		view->bytes_received = 1;
	}
	return true;
}

bool sockview_record_identity(int fd, struct tracked_socket *s)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return false;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return true;
}

bool sockview_is_tcp(int fd)
{
	int type = 0, protocol = 0;
	socklen_t len = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
		return false;
	len = sizeof protocol;
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0)
		return false;
	return protocol == IPPROTO_TCP;
}

/* The identity check looks at an fd the program may close at any moment, by design and with no
 * synchronisation possible: the identity is what makes it safe. ThreadSanitizer models every fd
 * as a variable and reports this as a race, at times with a stack it cannot restore, which no
 * suppression can match; a TSan build goes around its fstat interceptor here. */
static int identity_stat(int fd, struct stat *st)
{
#if defined(__SANITIZE_THREAD__)
	return (int)syscall(SYS_fstat, fd, st);
#else
	return fstat(fd, st);
#endif
}

enum identity sockview_identity(int fd, const struct tracked_socket *s)
{
	struct stat st;
	if (identity_stat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_dev != s->dev || st.st_ino != s->ino)
		return IDENTITY_DIFFERENT;
	struct sockaddr_storage peer;
	socklen_t len = sizeof peer;
	if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
		return IDENTITY_UNSURE;
	struct ip_addr addr;
	uint16_t port;
	if (!ip_addr_from_sockaddr((struct sockaddr *)&peer, len, &addr, &port))
		return IDENTITY_DIFFERENT;
	if (!ip_addr_equal(&addr, &s->peer) || port != s->port)
		return IDENTITY_DIFFERENT;
	return IDENTITY_SAME;
}
