#include <criterion/criterion.h>
#include <netinet/tcp.h>

#include "idle.h"

static const struct send_record no_record = {.valid = false};

/* A keep-alive connection after one complete exchange, quiet for 500 ms. */
static struct socket_view answered(void)
{
	return (struct socket_view){
		.tcp_state = TCP_ESTABLISHED,
		.ms_since_send = 520,
		.ms_since_recv = 500,
		.bytes_sent = 100,
		.bytes_received = 300,
	};
}

Test(idle_background, answered_and_quiet_is_ready)
{
	struct socket_view v = answered();
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_READY);
}

Test(idle_background, not_quiet_long_enough_is_busy)
{
	struct socket_view v = answered();
	v.ms_since_recv = 50;
	v.ms_since_send = 60;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_BUSY);
}

Test(idle_background, request_waiting_for_its_answer_is_never_idle)
{
	struct socket_view v = answered();
	v.ms_since_send = 5000; /* sent 5 s ago ... */
	v.ms_since_recv = 9000; /* ... and nothing came back since */
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_BUSY);
}

Test(idle_background, unread_data_is_busy)
{
	struct socket_view v = answered();
	v.unread_bytes = 1;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_BUSY);
}

Test(idle_background, unacknowledged_data_is_busy)
{
	struct socket_view v = answered();
	v.unsent_bytes = 10;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_BUSY);
}

Test(idle_background, same_tick_send_and_receive_is_not_idle)
{
	/* The answer and the next request may share a kernel tick: never cut what may be waiting. */
	struct socket_view v = answered();
	v.ms_since_send = 500;
	v.ms_since_recv = 500;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_BUSY);
}

Test(idle_background, request_on_a_fresh_connection_never_answered_is_busy)
{
	/* Connected and sent in one tick: the receive stamp is the handshake's. */
	struct socket_view v = answered();
	v.bytes_received = 0;
	v.ms_since_send = 800;
	v.ms_since_recv = 800;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_BUSY);
	v.ms_since_recv = 801;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_BUSY);
}

Test(idle_background, tie_settled_by_a_recorded_send)
{
	struct socket_view v = answered();
	v.ms_since_send = 500;
	v.ms_since_recv = 500;
	struct send_record r = {.valid = true, .bytes_received_at_send = 250};
	cr_assert_eq(idle_background(&v, &r, 100), IDLE_READY);
}

Test(idle_background, nothing_ever_sent_is_ready_when_quiet)
{
	struct socket_view v = answered();
	v.bytes_sent = 0;
	v.bytes_received = 0;
	v.ms_since_send = 300;
	v.ms_since_recv = 300;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_READY);
}

Test(idle_background, server_greeting_only_is_ready)
{
	struct socket_view v = answered();
	v.bytes_sent = 0;
	v.ms_since_send = 900;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_READY);
}

Test(idle_background, recorded_send_without_answer_is_busy_even_on_a_tie)
{
	struct socket_view v = answered();
	v.ms_since_send = 500;
	v.ms_since_recv = 500;
	struct send_record r = {.valid = true, .bytes_received_at_send = 300};
	cr_assert_eq(idle_background(&v, &r, 100), IDLE_BUSY);
}

Test(idle_background, recorded_send_answered_is_ready)
{
	struct socket_view v = answered();
	struct send_record r = {.valid = true, .bytes_received_at_send = 200};
	cr_assert_eq(idle_background(&v, &r, 100), IDLE_READY);
}

Test(idle_background, peer_closed_is_gone)
{
	struct socket_view v = answered();
	v.tcp_state = TCP_CLOSE_WAIT;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_GONE);
	v.tcp_state = TCP_CLOSE;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_GONE);
}

Test(idle_background, connecting_is_busy_not_gone)
{
	struct socket_view v = answered();
	v.tcp_state = TCP_SYN_SENT;
	cr_assert_eq(idle_background(&v, &no_record, 100), IDLE_BUSY);
}

Test(idle_new_exchange, after_a_complete_exchange)
{
	struct socket_view v = answered();
	cr_assert(idle_new_exchange(&v, &no_record));
}

Test(idle_new_exchange, second_write_of_the_same_request_is_a_continuation)
{
	struct socket_view v = answered();
	v.ms_since_send = 0;
	v.ms_since_recv = 700;
	cr_assert_not(idle_new_exchange(&v, &no_record));
}

Test(idle_new_exchange, tie_lets_the_send_through)
{
	struct socket_view v = answered();
	v.ms_since_send = 500;
	v.ms_since_recv = 500;
	cr_assert_not(idle_new_exchange(&v, &no_record));
}

Test(idle_new_exchange, unread_answer_means_not_finished)
{
	struct socket_view v = answered();
	v.unread_bytes = 20;
	cr_assert_not(idle_new_exchange(&v, &no_record));
}

Test(idle_new_exchange, first_request_on_a_connection_is_never_failed)
{
	struct socket_view v = answered();
	v.bytes_sent = 0;
	v.bytes_received = 0;
	cr_assert_not(idle_new_exchange(&v, &no_record));
}

Test(idle_new_exchange, recorded_send_then_answer)
{
	struct socket_view v = answered();
	v.ms_since_send = 500;
	v.ms_since_recv = 500;
	struct send_record r = {.valid = true, .bytes_received_at_send = 250};
	cr_assert(idle_new_exchange(&v, &r));
	r.bytes_received_at_send = 300;
	cr_assert_not(idle_new_exchange(&v, &r));
}
