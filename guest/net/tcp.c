/* TCP: the connection pool, life cycle (alloc, close, free), ISNs and the application API. */
#include <string.h>

#include "net_internal.h"

_Static_assert((NET_TCP_SNDBUF & (NET_TCP_SNDBUF - 1)) == 0, "send buffer: power of two");
_Static_assert((NET_TCP_RCVBUF & (NET_TCP_RCVBUF - 1)) == 0, "receive buffer: power of two");
_Static_assert(NET_TCP_RCVBUF <= 65535, "no window scaling: the window must fit 16 bits");

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

uint32_t net_tcp_isn(struct net_stack *st, uint32_t rip, uint16_t lport, uint16_t rport)
{
	/* RFC 6528: a keyed hash of the connection id plus a 4 us clock, so ISNs are unguessable
	 * off-path yet increase for a reused id. */
	uint64_t id = (uint64_t)rip << 32 | (uint32_t)lport << 16 | rport;
	uint64_t h = mix64(st->cfg.secret ^ mix64(id ^ ((uint64_t)st->cfg.ip << 16)));
	return (uint32_t)h + (uint32_t)(net_now(st) >> 12);
}

/* The TIME_WAIT connection that would end first, NULL if none. */
static struct net_tcp *tcp_oldest_time_wait(struct net_stack *st)
{
	struct net_tcp *old = NULL;
	for (int i = 0; i < NET_TCP_CONNS; i++) {
		struct net_tcp *c = &st->tcp[i];
		if (c->state == NET_TCPS_TIME_WAIT && !c->in_cb &&
		    (!old || c->close_at < old->close_at))
			old = c;
	}
	return old;
}

struct net_tcp *net_tcp_alloc(struct net_stack *st)
{
	struct net_tcp *c = NULL;
	for (int i = 0; i < NET_TCP_CONNS && !c; i++)
		if (st->tcp[i].state == NET_TCPS_FREE)
			c = &st->tcp[i];
	if (!c) {
		/* A server that closes first keeps every connection in TIME_WAIT for 2 MSL: at a
		 * few hundred connections a second those would fill the pool and every new SYN
		 * would be dropped. TIME_WAIT holds no data and the application has let go, so
		 * the oldest one gives way, as Linux does past tcp_max_tw_buckets. */
		c = tcp_oldest_time_wait(st);
		if (!c)
			return NULL;
		st->stats.tcp_tw_recycled++;
	}
	/* The buffers need no clearing: only bytes written are read. */
	memset(c, 0, offsetof(struct net_tcp, sndbuf));
	c->st = st;
	c->state = NET_TCPS_CLOSED;
	c->mss = 536; /* RFC 1122 default until the peer says otherwise */
	c->rto = NET_TCP_RTO_INIT_NS;
	return c;
}

static void tcp_free(struct net_tcp *c)
{
	if (c->in_cb) {
		c->free_me = 1;
		return;
	}
	if (c->parent && c->parent->backlog)
		c->parent->backlog--;
	c->parent = NULL;
	c->on_event = NULL;
	c->state = NET_TCPS_FREE;
}

void net_tcp_set_closed(struct net_tcp *c, uint8_t error)
{
	c->state = NET_TCPS_CLOSED;
	c->error = error;
	c->rexmt_at = c->persist_at = c->delack_at = c->close_at = 0;
	if (!c->owned)
		tcp_free(c);
}

int net_tcp_notify(struct net_tcp *c, unsigned events)
{
	if (events && c->owned && c->on_event && c->state != NET_TCPS_FREE) {
		c->in_cb++;
		c->on_event(c, events, c->arg);
		c->in_cb--;
	}
	if (c->free_me) {
		if (c->in_cb)
			return 0;
		c->free_me = 0;
		tcp_free(c);
	}
	return c->state != NET_TCPS_FREE && c->state != NET_TCPS_CLOSED;
}

void net_tcp_enter_time_wait(struct net_tcp *c)
{
	c->state = NET_TCPS_TIME_WAIT;
	c->rexmt_at = c->persist_at = 0;
	c->close_at = net_now(c->st) + 2 * NET_TCP_MSL_NS;
}

static int port_in_use(const struct net_stack *st, uint16_t port)
{
	for (int i = 0; i < NET_TCP_CONNS; i++)
		if (st->tcp[i].state != NET_TCPS_FREE && st->tcp[i].lport == port)
			return 1;
	return 0;
}

struct net_tcp *net_tcp_listen(struct net_stack *st, uint16_t port, net_tcp_accept_fn accept,
			       void *arg)
{
	if (!port || !accept)
		return NULL;
	for (int i = 0; i < NET_TCP_CONNS; i++)
		if (st->tcp[i].state == NET_TCPS_LISTEN && st->tcp[i].lport == port)
			return NULL;
	struct net_tcp *l = net_tcp_alloc(st);
	if (!l)
		return NULL;
	l->state = NET_TCPS_LISTEN;
	l->owned = 1;
	l->lport = port;
	l->on_accept = accept;
	l->arg = arg;
	return l;
}

struct net_tcp *net_tcp_connect(struct net_stack *st, uint32_t ip, uint16_t port)
{
	if (!port || !net_ipv4_routable(st, ip) || ip == 0xffffffffu || ip == st->cfg.ip ||
	    (st->cfg.prefix < 31 && ip == (st->cfg.ip | ~st->netmask)))
		return NULL; /* no broadcast TCP, and no loopback */
	uint16_t lport = 0;
	for (int tries = 0; tries < 16384 && !lport; tries++) {
		uint16_t p = st->next_port;
		st->next_port = p >= 65535 ? 49152 : (uint16_t)(p + 1);
		if (!port_in_use(st, p))
			lport = p;
	}
	struct net_tcp *c = lport ? net_tcp_alloc(st) : NULL;
	if (!c)
		return NULL;
	c->owned = 1;
	c->state = NET_TCPS_SYN_SENT;
	c->lport = lport;
	c->rport = port;
	c->rip = ip;
	c->iss = net_tcp_isn(st, ip, lport, port);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	net_tcp_send_syn(c);
	return c;
}

void net_tcp_set_callbacks(struct net_tcp *c, net_tcp_event_fn fn, void *arg)
{
	c->on_event = fn;
	c->arg = arg;
}

size_t net_tcp_readable(const struct net_tcp *c)
{
	return c->rcv_len;
}

size_t net_tcp_read(struct net_tcp *c, void *buf, size_t len)
{
	size_t n = len < c->rcv_len ? len : c->rcv_len;
	if (!n)
		return 0;
	size_t first = NET_TCP_RCVBUF - c->rcv_head;
	if (first > n)
		first = n;
	memcpy(buf, c->rcvbuf + c->rcv_head, first);
	memcpy((uint8_t *)buf + first, c->rcvbuf, n - first);
	c->rcv_head = (uint32_t)((c->rcv_head + n) & (NET_TCP_RCVBUF - 1));
	c->rcv_len -= (uint32_t)n;
	/* Tell the peer the window opened (receiver-side SWS avoidance: not byte by byte). */
	if (c->state == NET_TCPS_ESTABLISHED || c->state == NET_TCPS_FIN_WAIT_1 ||
	    c->state == NET_TCPS_FIN_WAIT_2) {
		uint32_t wnd = net_tcp_rcv_window(c), edge = c->rcv_nxt + wnd;
		uint32_t adv = seq_lt(c->rcv_nxt, c->rcv_adv) ? c->rcv_adv - c->rcv_nxt : 0;
		uint32_t step = 2u * c->mss < NET_TCP_RCVBUF / 2 ? 2u * c->mss : NET_TCP_RCVBUF / 2;
		/* Every two segments' worth, or at once if the sender may be stalled. */
		if (seq_leq(c->rcv_adv + step, edge) || (adv < c->mss && wnd >= c->mss)) {
			c->ack_now = 1;
			net_tcp_output(c);
		}
	}
	return n;
}

static int tcp_can_write(const struct net_tcp *c)
{
	switch (c->state) {
	case NET_TCPS_SYN_SENT:
	case NET_TCPS_SYN_RCVD:
	case NET_TCPS_ESTABLISHED:
	case NET_TCPS_CLOSE_WAIT: return !c->fin_queued;
	default: return 0;
	}
}

size_t net_tcp_writable(const struct net_tcp *c)
{
	return tcp_can_write(c) ? NET_TCP_SNDBUF - c->snd_len : 0;
}

size_t net_tcp_write(struct net_tcp *c, const void *buf, size_t len)
{
	size_t room = net_tcp_writable(c), n = len < room ? len : room;
	if (!n)
		return 0;
	size_t tail = (c->snd_head + c->snd_len) & (NET_TCP_SNDBUF - 1);
	size_t first = NET_TCP_SNDBUF - tail;
	if (first > n)
		first = n;
	memcpy(c->sndbuf + tail, buf, first);
	memcpy(c->sndbuf, (const uint8_t *)buf + first, n - first);
	c->snd_len += (uint32_t)n;
	net_tcp_output(c);
	return n;
}

/* Aborts the listener's connections that were never accepted. */
static void tcp_drop_children(struct net_tcp *l)
{
	for (int i = 0; i < NET_TCP_CONNS; i++) {
		struct net_tcp *c = &l->st->tcp[i];
		if (c->state != NET_TCPS_FREE && c->parent == l) {
			net_tcp_send_ctl(c, c->snd_nxt, TCP_RST | TCP_ACK);
			c->st->stats.tcp_rst_sent++;
			tcp_free(c);
		}
	}
}

int net_tcp_close(struct net_tcp *c)
{
	c->owned = 0;
	c->on_event = NULL;
	switch (c->state) {
	case NET_TCPS_LISTEN: tcp_drop_children(c); /* fall through */
	case NET_TCPS_CLOSED:
	case NET_TCPS_SYN_SENT:
		c->state = NET_TCPS_CLOSED;
		tcp_free(c);
		break;
	case NET_TCPS_SYN_RCVD: net_tcp_abort(c); break; /* our SYN is not even acknowledged */
	case NET_TCPS_ESTABLISHED:
		c->fin_queued = 1;
		c->state = NET_TCPS_FIN_WAIT_1;
		net_tcp_output(c);
		break;
	case NET_TCPS_CLOSE_WAIT:
		c->fin_queued = 1;
		c->state = NET_TCPS_LAST_ACK;
		net_tcp_output(c);
		break;
	default: break; /* already closing */
	}
	return 0;
}

void net_tcp_abort(struct net_tcp *c)
{
	switch (c->state) {
	case NET_TCPS_LISTEN: tcp_drop_children(c); break;
	case NET_TCPS_SYN_RCVD:
	case NET_TCPS_ESTABLISHED:
	case NET_TCPS_FIN_WAIT_1:
	case NET_TCPS_FIN_WAIT_2:
	case NET_TCPS_CLOSING:
	case NET_TCPS_CLOSE_WAIT:
	case NET_TCPS_LAST_ACK:
		net_tcp_send_ctl(c, c->snd_nxt, TCP_RST | TCP_ACK);
		c->st->stats.tcp_rst_sent++;
		break;
	default: break;
	}
	c->owned = 0;
	c->on_event = NULL;
	c->state = NET_TCPS_CLOSED;
	c->rexmt_at = c->persist_at = c->delack_at = c->close_at = 0;
	tcp_free(c);
}

int net_tcp_state(const struct net_tcp *c)
{
	return c->state;
}

int net_tcp_error(const struct net_tcp *c)
{
	return c->error;
}

uint32_t net_tcp_peer_ip(const struct net_tcp *c)
{
	return c->rip;
}

uint16_t net_tcp_peer_port(const struct net_tcp *c)
{
	return c->rport;
}

unsigned net_tcp_active(const struct net_stack *st)
{
	unsigned n = 0;
	for (int i = 0; i < NET_TCP_CONNS; i++)
		n += st->tcp[i].state != NET_TCPS_FREE;
	return n;
}
