/* The echo service on the test wire (see wire_echo.h). */
#include "wire_echo.h"

#include <check.h>

#include "net_internal.h"

#define SEC 1000000000ull

/* The server: echoes what it reads, closes when the peer does or on errors. */
static void on_server(struct net_tcp *c, unsigned ev, void *arg)
{
	(void)arg;
	if (ev & NET_TCP_CLOSED) {
		net_tcp_close(c);
		return;
	}
	uint8_t buf[2048];
	size_t n;
	while ((n = net_tcp_read(c, buf, sizeof(buf))) > 0)
		net_tcp_write(c, buf, n);
	if (ev & NET_TCP_PEER_CLOSED)
		net_tcp_close(c);
}

static void on_accept(struct net_tcp *l, struct net_tcp *c, void *arg)
{
	(void)l;
	((struct wire_echo *)arg)->accepted++;
	net_tcp_set_callbacks(c, on_server, arg);
}

static void on_client(struct net_tcp *c, unsigned ev, void *arg)
{
	struct wire_echo *e = arg;
	if (ev & NET_TCP_CONNECTED)
		e->connected = 1;
	uint8_t buf[2048];
	while (net_tcp_read(c, buf, sizeof(buf)) > 0)
		;
}

static void on_udp(struct net_udp *u, uint32_t ip, uint16_t port, const void *d, size_t len,
		   void *arg)
{
	(void)arg;
	net_udp_sendto(u, ip, port, d, len);
}

static void on_echo(uint32_t src, uint16_t id, uint16_t seq, const void *d, size_t len, void *arg)
{
	(void)src, (void)id, (void)seq, (void)d, (void)len;
	((struct wire_echo *)arg)->pings++;
}

static int connected(void *arg)
{
	return ((struct wire_echo *)arg)->connected;
}

static int pinged(void *arg)
{
	return ((struct wire_echo *)arg)->pings > 0;
}

void wire_echo_listen(struct wire_echo *e)
{
	ck_assert_ptr_nonnull(net_tcp_listen(e->w->st[1], 80, on_accept, e));
	net_on_echo_reply(e->w->st[0], on_echo, e);
}

void wire_echo_serve(struct wire_echo *e)
{
	wire_echo_listen(e);
	ck_assert_ptr_nonnull(net_udp_bind(e->w->st[1], 7, on_udp, e));
}

void wire_echo_connect(struct wire_echo *e)
{
	e->connected = 0;
	e->client = net_tcp_connect(e->w->st[0], WIRE_IP_B, 80);
	ck_assert_ptr_nonnull(e->client);
	net_tcp_set_callbacks(e->client, on_client, e);
	ck_assert_msg(wire_run(e->w, connected, e, 10 * SEC), "a connects to b:80");
}

void wire_echo_check_invariants(const struct net_stack *st)
{
	for (int i = 0; i < NET_TCP_CONNS; i++) {
		const struct net_tcp *c = &st->tcp[i];
		if (c->state == NET_TCPS_FREE)
			continue;
		ck_assert_uint_le(c->state, NET_TCPS_LAST_ACK);
		ck_assert_uint_le(c->rcv_len, NET_TCP_RCVBUF);
		ck_assert_uint_le(c->snd_len, NET_TCP_SNDBUF);
		ck_assert_uint_lt(c->rcv_head, NET_TCP_RCVBUF);
		ck_assert_uint_lt(c->snd_head, NET_TCP_SNDBUF);
		ck_assert_uint_le(c->backlog, NET_TCP_BACKLOG);
		if (c->state >= NET_TCPS_ESTABLISHED) {
			ck_assert(seq_leq(c->snd_una, c->snd_nxt));
			ck_assert(seq_leq(c->snd_nxt, c->snd_max));
			ck_assert_uint_le(c->snd_max - c->snd_una, c->snd_len + 1);
			ck_assert_uint_ge(c->mss, 64);
			ck_assert_uint_le(c->mss, NET_TCP_MSS);
		}
	}
}

void wire_echo_check_alive(struct wire_echo *e)
{
	struct wire *w = e->w;
	w->loss_pm = w->dup_pm = w->reorder_pm = 0;
	wire_settle(w, 600 * SEC);
	wire_echo_check_invariants(w->st[0]);
	wire_echo_check_invariants(w->st[1]);
	e->pings = 0;
	ck_assert_int_eq(net_ping(w->st[0], WIRE_IP_B, 9, 9, "alive?", 6), 0);
	ck_assert_msg(wire_run(w, pinged, e, 10 * SEC), "b answers a ping");
	int accepted = e->accepted;
	wire_echo_connect(e);
	ck_assert_int_eq(e->accepted, accepted + 1);
	ck_assert_uint_eq(net_tcp_write(e->client, "still here", 10), 10);
	wire_settle(w, SEC);
	ck_assert_uint_eq(e->client->snd_len, 0); /* the echo acknowledged */
}
