/* TCP between two stacks on the test wire: handshake, bulk transfers with and without loss,
 * flow control, every close path, resets, timeouts and pool limits. */
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "net_wire.h"
#include "unit.h"

#define PORT 80
#define SEC 1000000000ull

struct xfer {
	struct wire *w;
	struct net_tcp *listener, *client, *server;
	size_t total, sent, received, server_sent, client_received;
	uint64_t hash_sent, hash_recv;
	int connected, accepted, server_reads, close_when_sent, close_on_peer_close;
	int client_close_called, server_close_called, server_peer_closed, client_closed,
		server_closed;
	int client_err, server_err;
	uint64_t closed_at;
	uint8_t buf[16384];
};

static uint8_t pattern(size_t i)
{
	return (uint8_t)((i * 131) ^ (i >> 9) ^ (i >> 17));
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static void client_pump(struct xfer *x)
{
	while (x->sent < x->total && !x->client_close_called) {
		size_t n = net_tcp_writable(x->client), left = x->total - x->sent;
		if (n > sizeof(x->buf))
			n = sizeof(x->buf);
		if (n > left)
			n = left;
		if (!n)
			break;
		for (size_t i = 0; i < n; i++)
			x->buf[i] = pattern(x->sent + i);
		size_t put = net_tcp_write(x->client, x->buf, n);
		ck_assert_uint_eq(put, n);
		x->hash_sent = fnv(x->hash_sent, x->buf, n);
		x->sent += n;
	}
	if (x->sent == x->total && x->close_when_sent && !x->client_close_called) {
		x->client_close_called = 1;
		ck_assert_int_eq(net_tcp_close(x->client), 0);
	}
}

static void on_client(struct net_tcp *c, unsigned ev, void *arg)
{
	struct xfer *x = arg;
	ck_assert_ptr_eq(c, x->client);
	if (ev & NET_TCP_CONNECTED)
		x->connected = 1;
	if (ev & NET_TCP_READABLE) {
		uint8_t tmp[4096];
		size_t n;
		while ((n = net_tcp_read(c, tmp, sizeof(tmp))) > 0)
			x->client_received += n;
	}
	if (ev & NET_TCP_CLOSED) {
		x->client_closed = 1;
		x->client_err = net_tcp_error(c);
		x->closed_at = x->w->now;
		return;
	}
	if (ev & (NET_TCP_CONNECTED | NET_TCP_WRITABLE))
		client_pump(x);
}

static void server_drain(struct xfer *x)
{
	uint8_t tmp[16384];
	size_t n;
	while ((n = net_tcp_read(x->server, tmp, sizeof(tmp))) > 0) {
		x->hash_recv = fnv(x->hash_recv, tmp, n);
		x->received += n;
	}
}

static void on_server(struct net_tcp *c, unsigned ev, void *arg)
{
	struct xfer *x = arg;
	if ((ev & NET_TCP_READABLE) && x->server_reads)
		server_drain(x);
	if (ev & NET_TCP_CLOSED) {
		x->server_closed = 1;
		x->server_err = net_tcp_error(c);
		return;
	}
	if (ev & NET_TCP_PEER_CLOSED) {
		x->server_peer_closed = 1;
		if (x->close_on_peer_close) {
			server_drain(x);
			x->server_close_called = 1;
			net_tcp_close(c);
		}
	}
}

static void on_accept(struct net_tcp *l, struct net_tcp *c, void *arg)
{
	struct xfer *x = arg;
	ck_assert_ptr_eq(l, x->listener);
	x->accepted++;
	x->server = c;
	net_tcp_set_callbacks(c, on_server, x);
}

static struct xfer *xfer_new(uint64_t seed)
{
	struct xfer *x = calloc(1, sizeof(*x));
	x->w = wire_new(seed);
	x->hash_sent = x->hash_recv = 0xcbf29ce484222325ull;
	x->server_reads = 1;
	x->listener = net_tcp_listen(x->w->st[1], PORT, on_accept, x);
	ck_assert_ptr_nonnull(x->listener);
	return x;
}

static void xfer_free(struct xfer *x)
{
	wire_free(x->w);
	free(x);
}

static int is_connected(void *arg)
{
	struct xfer *x = arg;
	return x->connected && x->accepted;
}

static void xfer_connect(struct xfer *x)
{
	x->client = net_tcp_connect(x->w->st[0], WIRE_IP_B, PORT);
	ck_assert_ptr_nonnull(x->client);
	net_tcp_set_callbacks(x->client, on_client, x);
	ck_assert(wire_run(x->w, is_connected, x, 120 * SEC));
}

static int all_done(void *arg)
{
	struct xfer *x = arg;
	return x->client_close_called && x->server_close_called &&
	       net_tcp_active(x->w->st[0]) == 0 && net_tcp_active(x->w->st[1]) == 1;
}

/* The state of the connection slot for (lport, rport) in st, NET_TCPS_FREE if none. */
static int slot_state(struct net_stack *st, uint16_t lport, uint16_t rport)
{
	for (int i = 0; i < NET_TCP_CONNS; i++)
		if (st->tcp[i].state != NET_TCPS_FREE && st->tcp[i].state != NET_TCPS_LISTEN &&
		    st->tcp[i].lport == lport && st->tcp[i].rport == rport)
			return st->tcp[i].state;
	return NET_TCPS_FREE;
}

START_TEST(test_tcp_handshake)
{
	struct xfer *x = xfer_new(10);
	xfer_connect(x);
	ck_assert_int_eq(x->accepted, 1);
	ck_assert_int_eq(net_tcp_state(x->client), NET_TCPS_ESTABLISHED);
	ck_assert_int_eq(net_tcp_state(x->server), NET_TCPS_ESTABLISHED);
	ck_assert_uint_eq(net_tcp_peer_ip(x->server), WIRE_IP_A);
	ck_assert_uint_eq(net_tcp_peer_port(x->server), x->client->lport);
	ck_assert_uint_ge(x->client->lport, 49152);
	ck_assert_uint_eq(x->client->mss, NET_TCP_MSS);
	ck_assert_uint_eq(x->server->mss, NET_TCP_MSS);
	ck_assert_uint_eq(net_tcp_writable(x->client), NET_TCP_SNDBUF);
	ck_assert_uint_eq(x->listener->backlog, 0);
	/* Server to client. */
	ck_assert_uint_eq(net_tcp_write(x->server, "hello", 5), 5);
	wire_settle(x->w, SEC);
	ck_assert_uint_eq(x->client_received, 5);
	/* Data written before the handshake completes waits for it. */
	struct net_tcp *first = x->server;
	struct net_tcp *early = net_tcp_connect(x->w->st[0], WIRE_IP_B, PORT);
	ck_assert_uint_eq(net_tcp_write(early, "early", 5), 5);
	x->client_received = 0;
	x->received = 0;
	ck_assert_int_eq(net_tcp_state(early), NET_TCPS_SYN_SENT);
	wire_settle(x->w, SEC);
	ck_assert_int_eq(x->accepted, 2);
	ck_assert_uint_eq(x->received, 5);
	ck_assert_uint_eq(early->snd_len, 0);
	net_tcp_abort(early);
	wire_settle(x->w, SEC);
	ck_assert_int_eq(x->server_err, NET_TCP_ERR_RESET);
	ck_assert_int_eq(net_tcp_state(x->server), NET_TCPS_CLOSED);
	net_tcp_close(x->server); /* releases the slot */
	x->server = first;
	ck_assert_uint_eq(net_tcp_active(x->w->st[0]), 1);
	ck_assert_uint_eq(net_tcp_active(x->w->st[1]), 2);
	ck_assert_uint_eq(net_tcp_write(x->client, "hello", 5), 5);
	wire_settle(x->w, SEC);
	ck_assert_uint_eq(x->received, 10);
	ck_assert_int_eq(net_tcp_state(x->server), NET_TCPS_ESTABLISHED);
	/* Nothing left to time. */
	ck_assert_uint_eq(net_next_deadline(x->w->st[0]), UINT64_MAX);
	ck_assert_uint_eq(net_next_deadline(x->w->st[1]), UINT64_MAX);
	ck_assert_uint_eq(net_stats(x->w->st[0])->tcp_retransmits, 0);
	xfer_free(x);
}
END_TEST

static void run_transfer(uint64_t seed, size_t total, unsigned loss, unsigned reorder, unsigned dup,
			 uint64_t latency)
{
	struct xfer *x = xfer_new(seed);
	x->w->latency_ns = latency;
	xfer_connect(x);
	x->w->loss_pm = loss;
	x->w->reorder_pm = reorder;
	x->w->dup_pm = dup;
	x->total = total;
	x->close_when_sent = 1;
	x->close_on_peer_close = 1;
	client_pump(x);
	ck_assert_msg(wire_run(x->w, all_done, x, 3600 * SEC),
		      "sent %zu received %zu, closes %d %d, active %u %u", x->sent, x->received,
		      x->client_close_called, x->server_close_called, net_tcp_active(x->w->st[0]),
		      net_tcp_active(x->w->st[1]));
	ck_assert_uint_eq(x->received, total);
	ck_assert_uint_eq(x->hash_recv, x->hash_sent);
	ck_assert(x->server_peer_closed);
	ck_assert(!x->server_closed); /* no events after our own close */
	const struct net_stats *a = net_stats(x->w->st[0]), *b = net_stats(x->w->st[1]);
	if (!loss && !reorder && !dup) {
		/* Full-size segments, and about one ACK per two of them. */
		ck_assert_uint_le(a->tcp_tx, total / NET_TCP_MSS + 20);
		ck_assert_uint_le(b->tcp_tx, a->tcp_tx * 6 / 10);
		ck_assert_uint_eq(a->tcp_retransmits, 0);
	} else if (loss) {
		ck_assert_uint_gt(a->tcp_retransmits, 0);
	}
	ck_assert_uint_eq(a->tcp_timeouts + b->tcp_timeouts, 0);
	xfer_free(x);
}

START_TEST(test_tcp_1mib)
{
	run_transfer(11, 1 << 20, 0, 0, 0, 0);
}
END_TEST

START_TEST(test_tcp_10mib)
{
	run_transfer(12, 10 << 20, 0, 0, 0, 0);
}
END_TEST

START_TEST(test_tcp_1mib_lossy)
{
	run_transfer(13, 1 << 20, 50, 50, 10, 0);
}
END_TEST

START_TEST(test_tcp_10mib_lossy)
{
	run_transfer(14, 10 << 20, 50, 50, 0, 0);
}
END_TEST

START_TEST(test_tcp_latency_rtt)
{
	struct xfer *x = xfer_new(15);
	x->w->latency_ns = 20000000;					    /* 20 ms each way */
	ck_assert_int_eq(net_ping(x->w->st[0], WIRE_IP_B, 1, 1, "", 0), 0); /* ARP first */
	wire_settle(x->w, SEC);
	xfer_connect(x);
	/* The handshake gave a sample of 40 ms. */
	ck_assert_uint_eq(x->client->srtt, 40000000);
	ck_assert_uint_eq(x->client->rto, NET_TCP_RTO_MIN_NS);
	x->total = 256 << 10;
	client_pump(x);
	wire_settle(x->w, 60 * SEC);
	ck_assert_uint_eq(x->received, x->total);
	ck_assert_uint_ge(x->client->srtt, 40000000);
	ck_assert_uint_le(x->client->srtt, 40000000 + NET_TCP_DELACK_NS);
	ck_assert_uint_eq(net_stats(x->w->st[0])->tcp_retransmits, 0);
	xfer_free(x);
}
END_TEST

START_TEST(test_tcp_rto_estimator)
{
	struct net_tcp *c = calloc(1, sizeof(*c));
	net_tcp_rtt_sample(c, 100000000);
	ck_assert_uint_eq(c->srtt, 100000000);
	ck_assert_uint_eq(c->rttvar, 50000000);
	ck_assert_uint_eq(c->rto, 300000000);
	net_tcp_rtt_sample(c, 100000000);
	ck_assert_uint_eq(c->rttvar, 37500000);
	ck_assert_uint_eq(c->rto, 250000000);
	net_tcp_rtt_sample(c, 500000000);
	ck_assert_uint_eq(c->srtt, 150000000);
	ck_assert_uint_eq(c->rttvar, 128125000);
	ck_assert_uint_eq(c->rto, 150000000 + 4 * 128125000ull);
	for (int i = 0; i < 50; i++)
		net_tcp_rtt_sample(c, 1000);
	ck_assert_uint_eq(c->rto, NET_TCP_RTO_MIN_NS);
	for (int i = 0; i < 5; i++)
		net_tcp_rtt_sample(c, 100 * SEC);
	ck_assert_uint_eq(c->rto, NET_TCP_RTO_MAX_NS);
	free(c);
}
END_TEST

static int received_all(void *arg)
{
	struct xfer *x = arg;
	return x->received == x->total;
}

START_TEST(test_tcp_zero_window)
{
	struct xfer *x = xfer_new(16);
	xfer_connect(x);
	x->server_reads = 0;
	x->total = 200 << 10;
	client_pump(x);
	wire_settle(x->w, 30 * SEC);
	const struct net_stats *a = net_stats(x->w->st[0]);
	ck_assert_uint_eq(net_tcp_readable(x->server), NET_TCP_RCVBUF);
	ck_assert_uint_eq(x->client->snd_wnd, 0);
	ck_assert_uint_eq(x->sent, NET_TCP_RCVBUF + NET_TCP_SNDBUF);
	ck_assert_uint_ge(a->tcp_persist_probes, 3);
	ck_assert_int_eq(net_tcp_state(x->client), NET_TCPS_ESTABLISHED);
	ck_assert_uint_eq(a->tcp_timeouts, 0);
	/* Still probing: the persist timer is armed. */
	ck_assert_uint_ne(net_next_deadline(x->w->st[0]), UINT64_MAX);
	/* The application reads: the window update restarts the flow. */
	x->server_reads = 1;
	server_drain(x);
	ck_assert(wire_run(x->w, received_all, x, 60 * SEC));
	ck_assert_uint_eq(x->hash_recv, x->hash_sent);

	/* Again with the window update lost: the persist probe finds the open window. */
	x->server_reads = 0;
	x->total += 100 << 10;
	client_pump(x);
	wire_settle(x->w, 5 * SEC);
	ck_assert_uint_eq(x->client->snd_wnd, 0);
	x->w->loss_pm = 1000;
	x->server_reads = 1;
	server_drain(x);
	x->w->loss_pm = 0;
	uint64_t probes = a->tcp_persist_probes;
	ck_assert(wire_run(x->w, received_all, x, 600 * SEC));
	ck_assert_uint_gt(a->tcp_persist_probes, probes);
	ck_assert_uint_eq(x->hash_recv, x->hash_sent);
	xfer_free(x);
}
END_TEST

START_TEST(test_tcp_close_states)
{
	struct xfer *x = xfer_new(17);
	xfer_connect(x);
	uint16_t cport = x->client->lport;
	struct net_stack *a = x->w->st[0], *b = x->w->st[1];
	ck_assert_uint_eq(net_tcp_write(x->client, "request", 7), 7);
	ck_assert_int_eq(net_tcp_close(x->client), 0);
	x->client_close_called = 1;
	ck_assert_int_eq(slot_state(a, cport, PORT), NET_TCPS_FIN_WAIT_1);
	wire_settle(x->w, SEC / 10);
	ck_assert_int_eq(slot_state(a, cport, PORT), NET_TCPS_FIN_WAIT_2);
	ck_assert_int_eq(slot_state(b, PORT, cport), NET_TCPS_CLOSE_WAIT);
	ck_assert(x->server_peer_closed);
	ck_assert_uint_eq(x->received, 7);
	/* Half-closed: the server may still send (the closed client discards it). */
	ck_assert_uint_eq(net_tcp_write(x->server, "response", 8), 8);
	wire_settle(x->w, SEC / 10);
	ck_assert_int_eq(slot_state(a, cport, PORT), NET_TCPS_FIN_WAIT_2);
	ck_assert_uint_eq(x->client_received, 0);
	net_tcp_close(x->server);
	x->server_close_called = 1;
	ck_assert_int_eq(slot_state(b, PORT, cport), NET_TCPS_LAST_ACK);
	uint64_t t0 = x->w->now; /* no latency: the FIN arrives now */
	ck_assert(!wire_run(x->w, NULL, NULL, SEC / 10));
	ck_assert_int_eq(slot_state(b, PORT, cport), NET_TCPS_FREE);
	ck_assert_int_eq(slot_state(a, cport, PORT), NET_TCPS_TIME_WAIT);
	/* TIME_WAIT lasts 2 MSL. */
	ck_assert_uint_eq(net_next_deadline(a), t0 + 2 * NET_TCP_MSL_NS);
	wire_settle(x->w, t0 + 2 * NET_TCP_MSL_NS - 1 - x->w->now);
	ck_assert_int_eq(slot_state(a, cport, PORT), NET_TCPS_TIME_WAIT);
	wire_settle(x->w, 1);
	ck_assert_int_eq(slot_state(a, cport, PORT), NET_TCPS_FREE);
	ck_assert_uint_eq(net_tcp_active(a), 0);
	ck_assert_uint_eq(net_tcp_active(b), 1);
	ck_assert_uint_eq(net_next_deadline(a), UINT64_MAX);
	xfer_free(x);
}
END_TEST

static int both_time_wait(void *arg)
{
	struct xfer *x = arg;
	return slot_state(x->w->st[0], x->client->lport, PORT) == NET_TCPS_TIME_WAIT &&
	       slot_state(x->w->st[1], PORT, x->client->lport) == NET_TCPS_TIME_WAIT;
}

START_TEST(test_tcp_simultaneous_close)
{
	struct xfer *x = xfer_new(18);
	xfer_connect(x);
	uint16_t cport = x->client->lport;
	net_tcp_close(x->client);
	net_tcp_close(x->server);
	ck_assert_int_eq(slot_state(x->w->st[0], cport, PORT), NET_TCPS_FIN_WAIT_1);
	ck_assert_int_eq(slot_state(x->w->st[1], PORT, cport), NET_TCPS_FIN_WAIT_1);
	ck_assert(wire_run(x->w, both_time_wait, x, SEC));
	wire_settle(x->w, 3 * SEC);
	ck_assert_uint_eq(net_tcp_active(x->w->st[0]), 0);
	ck_assert_uint_eq(net_tcp_active(x->w->st[1]), 1);
	xfer_free(x);
}
END_TEST

static int client_closed(void *arg)
{
	return ((struct xfer *)arg)->client_closed;
}

START_TEST(test_tcp_refused)
{
	struct xfer *x = xfer_new(19);
	x->client = net_tcp_connect(x->w->st[0], WIRE_IP_B, PORT + 1);
	net_tcp_set_callbacks(x->client, on_client, x);
	ck_assert(wire_run(x->w, client_closed, x, SEC));
	ck_assert_int_eq(x->client_err, NET_TCP_ERR_REFUSED);
	ck_assert_int_eq(net_tcp_state(x->client), NET_TCPS_CLOSED);
	ck_assert_uint_eq(net_tcp_write(x->client, "x", 1), 0);
	const struct net_stats *b = net_stats(x->w->st[1]);
	ck_assert_uint_eq(b->drop_no_socket, 1);
	ck_assert_uint_eq(b->tcp_rst_sent, 1);
	/* The handle stays until released. */
	ck_assert_uint_eq(net_tcp_active(x->w->st[0]), 1);
	net_tcp_close(x->client);
	ck_assert_uint_eq(net_tcp_active(x->w->st[0]), 0);
	xfer_free(x);
}
END_TEST

/* Drops every frame a sends once armed. */
static int drop_from_a(struct wire *w, int from, const uint8_t *f, size_t len, void *arg)
{
	(void)w, (void)f, (void)len;
	return !(from == 0 && *(int *)arg);
}

START_TEST(test_tcp_connect_timeout)
{
	struct xfer *x = xfer_new(20);
	int armed = 0;
	x->w->tap = drop_from_a;
	x->w->tap_arg = &armed;
	/* Resolve ARP first, then lose every SYN. */
	ck_assert_int_eq(net_ping(x->w->st[0], WIRE_IP_B, 1, 1, "", 0), 0);
	wire_settle(x->w, SEC);
	armed = 1;
	uint64_t t0 = x->w->now;
	x->client = net_tcp_connect(x->w->st[0], WIRE_IP_B, PORT);
	net_tcp_set_callbacks(x->client, on_client, x);
	ck_assert(wire_run(x->w, client_closed, x, 600 * SEC));
	ck_assert_int_eq(x->client_err, NET_TCP_ERR_TIMEOUT);
	const struct net_stats *a = net_stats(x->w->st[0]);
	ck_assert_uint_eq(a->tcp_retransmits, NET_TCP_SYN_RETRIES);
	ck_assert_uint_eq(a->tcp_timeouts, 1);
	/* Exponential backoff from 1 s: 1 + 2 + 4 + 8 + 16 + 32 s. */
	ck_assert_uint_eq(x->closed_at - t0, 63 * SEC);
	net_tcp_close(x->client);
	ck_assert_uint_eq(net_tcp_active(x->w->st[0]), 0);
	xfer_free(x);
}
END_TEST

START_TEST(test_tcp_data_timeout)
{
	struct xfer *x = xfer_new(21);
	int armed = 0;
	x->w->tap = drop_from_a;
	x->w->tap_arg = &armed;
	xfer_connect(x);
	armed = 1;
	ck_assert_uint_eq(net_tcp_write(x->client, "lost", 4), 4);
	ck_assert(wire_run(x->w, client_closed, x, 3600 * SEC));
	ck_assert_int_eq(x->client_err, NET_TCP_ERR_TIMEOUT);
	const struct net_stats *a = net_stats(x->w->st[0]);
	ck_assert_uint_eq(a->tcp_retransmits, NET_TCP_RETRIES);
	ck_assert_uint_eq(a->tcp_rst_sent, 1);
	/* Doubled at each retransmission (the cap is tested with the estimator). */
	ck_assert_uint_eq(x->client->rto, NET_TCP_RTO_MIN_NS << NET_TCP_RETRIES);
	net_tcp_close(x->client);
	xfer_free(x);
}
END_TEST

START_TEST(test_tcp_simultaneous_open)
{
	struct xfer *x = xfer_new(28);
	int armed = 0;
	x->w->tap = drop_from_a;
	x->w->tap_arg = &armed;
	ck_assert_int_eq(net_ping(x->w->st[0], WIRE_IP_B, 1, 1, "", 0), 0);
	wire_settle(x->w, SEC);
	armed = 1; /* a's SYN and SYN-ACK never reach b: we play b by hand */
	x->client = net_tcp_connect(x->w->st[0], WIRE_IP_B, 7000);
	net_tcp_set_callbacks(x->client, on_client, x);
	struct net_tcp *c = x->client;
	uint8_t f[128];
	size_t len = wire_tcp_frame(f, 1, 0, 7000, c->lport, 5000, 0, TCP_SYN, 8192, NULL, 0);
	net_input(x->w->st[0], f, len);
	ck_assert_int_eq(net_tcp_state(c), NET_TCPS_SYN_RCVD);
	ck_assert(!x->connected);
	len = wire_tcp_frame(f, 1, 0, 7000, c->lport, 5001, c->iss + 1, TCP_ACK, 8192, NULL, 0);
	net_input(x->w->st[0], f, len);
	ck_assert_int_eq(net_tcp_state(c), NET_TCPS_ESTABLISHED);
	ck_assert(x->connected);
	ck_assert_uint_eq(c->rcv_nxt, 5001);
	net_tcp_abort(c);
	xfer_free(x);
}
END_TEST

static int drop_from_b(struct wire *w, int from, const uint8_t *f, size_t len, void *arg)
{
	(void)w, (void)f, (void)len, (void)arg;
	return from != 1;
}

START_TEST(test_tcp_backlog_full)
{
	struct xfer *x = xfer_new(22);
	x->w->tap = drop_from_b;
	struct net_stack *b = x->w->st[1];
	uint8_t f[128];
	for (int i = 0; i < NET_TCP_BACKLOG + 3; i++) {
		size_t len = wire_tcp_frame(f, 0, 1, (uint16_t)(2000 + i), PORT,
					    1000u * (unsigned)i, 0, TCP_SYN, 8192, NULL, 0);
		net_input(b, f, len);
	}
	ck_assert_uint_eq(net_stats(b)->tcp_syn_dropped, 3);
	ck_assert_uint_eq(net_tcp_active(b), 1 + NET_TCP_BACKLOG);
	ck_assert_uint_eq(x->listener->backlog, NET_TCP_BACKLOG);
	/* Unanswered SYN-ACKs give up and free the slots; nothing was accepted. */
	wire_settle(x->w, 600 * SEC);
	ck_assert_uint_eq(net_tcp_active(b), 1);
	ck_assert_uint_eq(x->listener->backlog, 0);
	ck_assert_int_eq(x->accepted, 0);
	/* Room again. */
	size_t len = wire_tcp_frame(f, 0, 1, 3000, PORT, 1, 0, TCP_SYN, 8192, NULL, 0);
	net_input(b, f, len);
	ck_assert_uint_eq(net_tcp_active(b), 2);
	/* Closing the listener resets its half-open connections. */
	net_tcp_close(x->listener);
	ck_assert_uint_eq(net_tcp_active(b), 0);
	xfer_free(x);
}
END_TEST

START_TEST(test_tcp_pool_full)
{
	struct xfer *x = xfer_new(23);
	struct net_stack *a = x->w->st[0];
	for (int i = 0; i < NET_TCP_CONNS; i++)
		ck_assert_ptr_nonnull(net_tcp_connect(a, WIRE_IP_B, PORT));
	ck_assert_ptr_null(net_tcp_connect(a, WIRE_IP_B, PORT));
	ck_assert_ptr_null(net_tcp_listen(a, 99, on_accept, x));
	/* b has 63 free slots for 64 connections (and takes at most NET_TCP_BACKLOG SYNs at a
	 * time): the last one is dropped every time it is tried, and times out. */
	wire_settle(x->w, 300 * SEC);
	ck_assert_uint_eq(net_tcp_active(x->w->st[1]), NET_TCP_CONNS);
	ck_assert_uint_ge(net_stats(x->w->st[1])->tcp_syn_dropped, 1 + NET_TCP_SYN_RETRIES);
	int established = 0, closed = 0;
	for (int i = 0; i < NET_TCP_CONNS; i++) {
		established += a->tcp[i].state == NET_TCPS_ESTABLISHED;
		closed += a->tcp[i].state == NET_TCPS_CLOSED &&
			  a->tcp[i].error == NET_TCP_ERR_TIMEOUT;
	}
	ck_assert_int_eq(established, NET_TCP_CONNS - 1);
	ck_assert_int_eq(closed, 1);
	ck_assert_int_eq(x->accepted, NET_TCP_CONNS - 1);
	xfer_free(x);
}
END_TEST

static int accepted_twice(void *arg)
{
	struct xfer *x = arg;
	return x->connected && x->accepted == 2;
}

START_TEST(test_tcp_time_wait_reuse)
{
	/* The server closes first and holds TIME_WAIT; the client's next connection from the same
	 * port (hosts, and slirp's forwards, reuse ports quickly) must open at once: a SYN above
	 * the old connection's sequence space reopens the 4-tuple (RFC 1122 4.2.2.13). */
	struct xfer *x = xfer_new(30);
	struct net_stack *a = x->w->st[0], *b = x->w->st[1];
	x->w->latency_ns = 100000;
	xfer_connect(x);
	uint16_t cport = x->client->lport;
	ck_assert_uint_eq(net_tcp_write(x->client, "request", 7), 7);
	wire_settle(x->w, SEC / 100);
	net_tcp_close(x->server);
	x->server_close_called = 1;
	wire_settle(x->w, SEC / 100);
	net_tcp_close(x->client);
	x->client_close_called = 1;
	wire_settle(x->w, SEC / 100);
	ck_assert_int_eq(slot_state(b, PORT, cport), NET_TCPS_TIME_WAIT);
	ck_assert_int_eq(slot_state(a, cport, PORT), NET_TCPS_FREE);
	struct net_tcp *tw = NULL;
	for (int i = 0; i < NET_TCP_CONNS; i++)
		if (b->tcp[i].state == NET_TCPS_TIME_WAIT)
			tw = &b->tcp[i];
	/* An old duplicate SYN (not above rcv_nxt) does not: it gets an ACK, TIME_WAIT stays. */
	x->w->tap = drop_from_b;
	uint8_t f[128];
	size_t len =
		wire_tcp_frame(f, 0, 1, cport, PORT, tw->rcv_nxt - 1, 0, TCP_SYN, 8192, NULL, 0);
	net_input(b, f, len);
	wire_settle(x->w, SEC / 100);
	ck_assert_int_eq(slot_state(b, PORT, cport), NET_TCPS_TIME_WAIT);
	ck_assert_int_eq(x->accepted, 1);
	x->w->tap = NULL;
	/* A new one does, with no SYN retry and no reset. */
	uint64_t retx = net_stats(a)->tcp_retransmits, rst = net_stats(a)->tcp_rst_sent;
	a->next_port = cport;
	x->connected = 0;
	x->client = net_tcp_connect(a, WIRE_IP_B, PORT);
	ck_assert_ptr_nonnull(x->client);
	ck_assert_uint_eq(x->client->lport, cport);
	net_tcp_set_callbacks(x->client, on_client, x);
	uint64_t t0 = x->w->now;
	ck_assert(wire_run(x->w, accepted_twice, x, 10 * SEC));
	ck_assert_uint_lt(x->w->now - t0, SEC / 100);
	ck_assert_uint_eq(net_stats(a)->tcp_retransmits, retx);
	ck_assert_uint_eq(net_stats(a)->tcp_rst_sent, rst);
	ck_assert_int_eq(slot_state(b, PORT, cport), NET_TCPS_ESTABLISHED);
	ck_assert_uint_eq(net_stats(b)->tcp_tw_reopened, 1);
	ck_assert_uint_eq(net_tcp_active(b), 2);
	ck_assert_uint_eq(x->listener->backlog, 0);
	xfer_free(x);
}
END_TEST

START_TEST(test_tcp_rfc5961)
{
	struct xfer *x = xfer_new(24);
	xfer_connect(x);
	struct net_stack *b = x->w->st[1];
	struct net_tcp *s = x->server;
	uint16_t cport = x->client->lport;
	uint8_t f[128];
	const struct net_stats *bs = net_stats(b);
	uint64_t tx = bs->tcp_tx;
	/* An in-window RST that is not exactly rcv_nxt: challenge ACK, connection lives. */
	size_t len = wire_tcp_frame(f, 0, 1, cport, PORT, s->rcv_nxt + 100, 0, TCP_RST, 0, NULL, 0);
	net_input(b, f, len);
	x->w->now += SEC; /* past the challenge-ACK rate limit */
	ck_assert_int_eq(net_tcp_state(s), NET_TCPS_ESTABLISHED);
	ck_assert_uint_eq(bs->tcp_tx, tx + 1);
	/* An out-of-window RST: silently ignored. */
	len = wire_tcp_frame(f, 0, 1, cport, PORT, s->rcv_nxt + 1000000, 0, TCP_RST, 0, NULL, 0);
	net_input(b, f, len);
	x->w->now += SEC; /* past the challenge-ACK rate limit */
	ck_assert_uint_eq(bs->tcp_tx, tx + 1);
	/* Out-of-window data: ACKed and dropped. */
	len = wire_tcp_frame(f, 0, 1, cport, PORT, s->rcv_nxt + 1000000, s->snd_nxt, TCP_ACK, 8192,
			     "junk", 4);
	net_input(b, f, len);
	x->w->now += SEC; /* past the challenge-ACK rate limit */
	ck_assert_uint_eq(bs->tcp_out_of_window, 1);
	ck_assert_uint_eq(bs->tcp_tx, tx + 2);
	ck_assert_uint_eq(net_tcp_readable(s), 0);
	/* Data beyond rcv_nxt but in the window: dropped, duplicate ACK. */
	len = wire_tcp_frame(f, 0, 1, cport, PORT, s->rcv_nxt + 10, s->snd_nxt, TCP_ACK, 8192,
			     "junk", 4);
	net_input(b, f, len);
	x->w->now += SEC; /* past the challenge-ACK rate limit */
	ck_assert_uint_eq(bs->tcp_out_of_order, 1);
	ck_assert_uint_eq(bs->tcp_tx, tx + 3);
	/* An ACK for data never sent: ACKed and dropped. */
	len = wire_tcp_frame(f, 0, 1, cport, PORT, s->rcv_nxt, s->snd_nxt + 5000, TCP_ACK, 8192,
			     "junk", 4);
	net_input(b, f, len);
	x->w->now += SEC; /* past the challenge-ACK rate limit */
	ck_assert_uint_eq(net_tcp_readable(s), 0);
	ck_assert_uint_eq(bs->tcp_tx, tx + 4);
	/* A SYN on the connection: challenge ACK. */
	len = wire_tcp_frame(f, 0, 1, cport, PORT, s->rcv_nxt, 0, TCP_SYN, 8192, NULL, 0);
	net_input(b, f, len);
	x->w->now += SEC; /* past the challenge-ACK rate limit */
	ck_assert_int_eq(net_tcp_state(s), NET_TCPS_ESTABLISHED);
	ck_assert_uint_eq(bs->tcp_tx, tx + 5);
	/* A good segment is still taken. */
	len = wire_tcp_frame(f, 0, 1, cport, PORT, s->rcv_nxt, s->snd_nxt, TCP_ACK | TCP_PSH, 8192,
			     "good", 4);
	net_input(b, f, len);
	x->w->now += SEC; /* past the challenge-ACK rate limit */
	ck_assert_uint_eq(x->received, 4);
	/* The exact RST kills it. */
	len = wire_tcp_frame(f, 0, 1, cport, PORT, s->rcv_nxt, 0, TCP_RST, 0, NULL, 0);
	net_input(b, f, len);
	x->w->now += SEC; /* past the challenge-ACK rate limit */
	ck_assert(x->server_closed);
	ck_assert_int_eq(x->server_err, NET_TCP_ERR_RESET);
	net_tcp_close(s);
	ck_assert_uint_eq(net_tcp_active(b), 1);
	/* The client's next segment draws a RST, which closes it too. */
	net_tcp_write(x->client, "x", 1);
	ck_assert(wire_run(x->w, client_closed, x, SEC));
	ck_assert_int_eq(x->client_err, NET_TCP_ERR_RESET);
	net_tcp_close(x->client);
	xfer_free(x);
}
END_TEST

struct capture {
	int count;
	size_t max_payload;
	int synack_mss;
	uint32_t synack_seq;
};

static int capture_b(struct wire *w, int from, const uint8_t *f, size_t len, void *arg)
{
	(void)w;
	struct capture *cap = arg;
	if (from != 1 || len < 54 || f[23] != 6)
		return 1;
	const uint8_t *t = f + 34;
	size_t hlen = (size_t)(t[12] >> 4) * 4, total = (size_t)(f[16] << 8 | f[17]);
	if (t[13] & TCP_SYN) {
		cap->synack_seq = ld32(t + 4);
		if (hlen >= 24 && t[20] == 2 && t[21] == 4)
			cap->synack_mss = ld16(t + 22);
	}
	size_t payload = total - 20 - hlen;
	if (payload > cap->max_payload)
		cap->max_payload = payload;
	cap->count++;
	return 0; /* a is not part of this test */
}

static void send_30k(struct net_tcp *l, struct net_tcp *c, void *arg)
{
	(void)l, (void)arg;
	static uint8_t data[30000];
	ck_assert_uint_eq(net_tcp_write(c, data, sizeof(data)), sizeof(data));
}

START_TEST(test_tcp_mss_option)
{
	struct wire *w = wire_new(25);
	struct capture cap = {0};
	w->tap_arg = &cap;
	struct net_stack *b = w->st[1];
	ck_assert_ptr_nonnull(net_tcp_listen(b, PORT, send_30k, NULL));
	/* b learns a's MAC from its ARP request; then a is taken off the wire. */
	ck_assert_int_eq(net_ping(w->st[0], WIRE_IP_B, 1, 1, "", 0), 0);
	wire_settle(w, SEC);
	w->tap = capture_b;
	/* A SYN with NOP, a window-scale option and MSS 536. */
	uint8_t t[32] = {0x10, 0x00,   0,	PORT, 0,    0,	  0x10, 0, 0, 0, 0,
			 0,    8 << 4, TCP_SYN, 0xff, 0xff, 0,	  0,	0, 0, 1, 3,
			 3,    7,      2,	4,    0x02, 0x18, 0,	0, 0, 0};
	uint8_t f[128];
	size_t len = wire_ip_frame(f, 0, 1, 6, t, sizeof(t));
	net_input(b, f, len);
	ck_assert_int_eq(cap.synack_mss, NET_TCP_MSS);
	len = wire_tcp_frame(f, 0, 1, 0x1000, PORT, 0x1001, cap.synack_seq + 1, TCP_ACK, 65535,
			     NULL, 0);
	net_input(b, f, len);
	ck_assert_uint_eq(cap.max_payload, 536);
	/* A window of 65535 lets it send 30000 bytes at once. */
	ck_assert_int_ge(cap.count, 1 + 30000 / 536);
	wire_free(w);
}
END_TEST

/* Both directions at once: the server echoes, so each end's ACKs ride on its data, and a
 * server whose send buffer is full stops reading, which closes the client's window. */
struct echo {
	struct wire *w;
	struct net_tcp *c, *s;
	size_t total, sent, got;
	uint64_t h_sent, h_got;
	uint8_t buf[8192];
};

static void echo_server(struct net_tcp *c, unsigned ev, void *arg)
{
	struct echo *e = arg;
	(void)ev;
	for (;;) {
		size_t n = net_tcp_writable(c), r = net_tcp_readable(c);
		n = n < r ? n : r;
		n = n < sizeof(e->buf) ? n : sizeof(e->buf);
		if (!n)
			break;
		ck_assert_uint_eq(net_tcp_read(c, e->buf, n), n);
		ck_assert_uint_eq(net_tcp_write(c, e->buf, n), n);
	}
}

static void echo_accept(struct net_tcp *l, struct net_tcp *c, void *arg)
{
	(void)l;
	((struct echo *)arg)->s = c;
	net_tcp_set_callbacks(c, echo_server, arg);
}

static void echo_client(struct net_tcp *c, unsigned ev, void *arg)
{
	struct echo *e = arg;
	(void)ev;
	uint8_t tmp[8192];
	size_t n;
	while ((n = net_tcp_read(c, tmp, sizeof(tmp))) > 0) {
		e->h_got = fnv(e->h_got, tmp, n);
		e->got += n;
	}
	while (e->sent < e->total) {
		n = net_tcp_writable(c);
		n = n < sizeof(tmp) ? n : sizeof(tmp);
		n = n < e->total - e->sent ? n : e->total - e->sent;
		if (!n)
			break;
		for (size_t i = 0; i < n; i++)
			tmp[i] = pattern(e->sent + i);
		ck_assert_uint_eq(net_tcp_write(c, tmp, n), n);
		e->h_sent = fnv(e->h_sent, tmp, n);
		e->sent += n;
	}
}

static int echo_done(void *arg)
{
	struct echo *e = arg;
	return e->got == e->total;
}

START_TEST(test_tcp_bidirectional_echo)
{
	struct echo *e = calloc(1, sizeof(*e));
	e->w = wire_new(26 + (uint64_t)_i);
	e->total = 2 << 20;
	e->h_sent = e->h_got = 0xcbf29ce484222325ull;
	ck_assert_ptr_nonnull(net_tcp_listen(e->w->st[1], PORT, echo_accept, e));
	e->c = net_tcp_connect(e->w->st[0], WIRE_IP_B, PORT);
	net_tcp_set_callbacks(e->c, echo_client, e);
	e->w->loss_pm = _i ? 20 : 0;
	e->w->reorder_pm = _i ? 20 : 0;
	ck_assert(wire_run(e->w, echo_done, e, 3600 * SEC));
	ck_assert_uint_eq(e->h_got, e->h_sent);
	ck_assert_uint_eq(net_stats(e->w->st[0])->tcp_timeouts, 0);
	wire_free(e->w);
	free(e);
}
END_TEST

Suite *net_tcp_suite(void)
{
	Suite *s = suite_create("net_tcp");
	TCase *tc = tcase_create("tcp");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_tcp_handshake);
	tcase_add_test(tc, test_tcp_1mib);
	tcase_add_test(tc, test_tcp_10mib);
	tcase_add_test(tc, test_tcp_1mib_lossy);
	tcase_add_test(tc, test_tcp_10mib_lossy);
	tcase_add_test(tc, test_tcp_latency_rtt);
	tcase_add_test(tc, test_tcp_rto_estimator);
	tcase_add_test(tc, test_tcp_zero_window);
	tcase_add_test(tc, test_tcp_close_states);
	tcase_add_test(tc, test_tcp_simultaneous_close);
	tcase_add_test(tc, test_tcp_refused);
	tcase_add_test(tc, test_tcp_connect_timeout);
	tcase_add_test(tc, test_tcp_data_timeout);
	tcase_add_test(tc, test_tcp_backlog_full);
	tcase_add_test(tc, test_tcp_pool_full);
	tcase_add_test(tc, test_tcp_time_wait_reuse);
	tcase_add_test(tc, test_tcp_rfc5961);
	tcase_add_test(tc, test_tcp_mss_option);
	tcase_add_test(tc, test_tcp_simultaneous_open);
	tcase_add_loop_test(tc, test_tcp_bidirectional_echo, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}
