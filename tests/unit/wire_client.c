/* A TCP client on side 0 of the in-memory wire. */
#include "wire_client.h"

#include <check.h>
#include <stdlib.h>

#include "fake_timers.h"

#define SEC 1000000000ull

void wire_client_write(struct wire_client *c)
{
	if (c->tx_off < c->tx_len)
		c->tx_off += net_tcp_write(c->tcp, c->tx + c->tx_off, c->tx_len - c->tx_off);
}

void wire_client_event(struct net_tcp *tcp, unsigned events, void *arg)
{
	struct wire_client *c = arg;
	if (events & (NET_TCP_CONNECTED | NET_TCP_WRITABLE))
		wire_client_write(c);
	if (events & (NET_TCP_READABLE | NET_TCP_PEER_CLOSED)) {
		size_t n;
		while (c->rx_len < c->rx_cap &&
		       (n = net_tcp_read(tcp, c->rx + c->rx_len, c->rx_cap - c->rx_len)) > 0)
			c->rx_len += n;
	}
	if (events & NET_TCP_PEER_CLOSED)
		c->peer_closed = 1;
	if (events & NET_TCP_CLOSED)
		c->closed = 1;
}

int wire_client_done(void *arg)
{
	struct wire_client *c = arg;
	return c->peer_closed || c->closed || (c->want && c->rx_len >= c->want);
}

struct wire_client *wire_client_connect(struct wire *w, uint16_t port, const char *tx, size_t len,
					size_t want, size_t rx_cap)
{
	struct wire_client *c = calloc(1, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	c->rx_cap = rx_cap;
	c->rx = malloc(c->rx_cap);
	ck_assert_ptr_nonnull(c->rx);
	c->tx = tx;
	c->tx_len = len;
	c->want = want;
	c->tcp = net_tcp_connect(w->st[0], WIRE_IP_B, port);
	ck_assert_ptr_nonnull(c->tcp);
	net_tcp_set_callbacks(c->tcp, wire_client_event, c);
	return c;
}

void wire_client_free(struct wire_client *c)
{
	if (!c->closed)
		net_tcp_abort(c->tcp);
	free(c->rx);
	free(c);
}

void wire_client_expect_idle_close(struct wire *w, struct wire_client *c, uint64_t idle_ns)
{
	wire_settle(w, idle_ns - 3 * SEC);
	ck_assert_int_eq(fake_timers_fire(), 0);
	wire_settle(w, 3 * SEC);
	ck_assert_int_eq(fake_timers_fire(), 1);
	wire_settle(w, SEC);
	ck_assert(c->peer_closed);
}
