/* TCP timers: RTT estimation and RTO (RFC 6298), retransmission with backoff and give-up,
 * persist probes, delayed ACKs, TIME_WAIT and FIN_WAIT_2 expiry. */
#include "net_internal.h"

#define RTO_GRANULARITY_NS 1000000ull /* G in RFC 6298: our clock is finer, 1 ms is safe */

void net_tcp_rtt_sample(struct net_tcp *c, uint64_t rtt)
{
	if (!c->rtt_valid) {
		c->srtt = rtt;
		c->rttvar = rtt / 2;
		c->rtt_valid = 1;
	} else {
		uint64_t err = c->srtt > rtt ? c->srtt - rtt : rtt - c->srtt;
		c->rttvar = (3 * c->rttvar + err) / 4;
		c->srtt = (7 * c->srtt + rtt) / 8;
	}
	uint64_t var = 4 * c->rttvar;
	uint64_t rto = c->srtt + (var > RTO_GRANULARITY_NS ? var : RTO_GRANULARITY_NS);
	if (rto < NET_TCP_RTO_MIN_NS)
		rto = NET_TCP_RTO_MIN_NS;
	if (rto > NET_TCP_RTO_MAX_NS)
		rto = NET_TCP_RTO_MAX_NS;
	c->rto = rto;
}

void net_tcp_arm_rexmt(struct net_tcp *c)
{
	c->rexmt_at = net_now(c->st) + c->rto;
}

static void tcp_rexmt(struct net_tcp *c)
{
	struct net_stack *st = c->st;
	c->rexmt_at = 0;
	if (c->snd_una == c->snd_max)
		return;
	int syn = c->state == NET_TCPS_SYN_SENT || c->state == NET_TCPS_SYN_RCVD;
	if (!syn && c->snd_wnd == 0 && c->snd_len) {
		/* The peer shut its window on data in flight: nothing can be resent into it, and a
		 * live peer must not be reset for that. Go back to snd_una and let the persist
		 * timer probe (for as long as the peer answers, as RFC 1122 asks). */
		c->snd_nxt = c->snd_una;
		c->rtt_active = 0;
		c->retries = 0;
		net_tcp_output(c);
		return;
	}
	if (++c->retries > (syn ? NET_TCP_SYN_RETRIES : NET_TCP_RETRIES)) {
		st->stats.tcp_timeouts++;
		if (c->state != NET_TCPS_SYN_SENT) {
			net_tcp_send_ctl(c, c->snd_nxt, TCP_RST | TCP_ACK);
			st->stats.tcp_rst_sent++;
		}
		net_tcp_set_closed(c, NET_TCP_ERR_TIMEOUT);
		net_tcp_notify(c, NET_TCP_CLOSED);
		return;
	}
	/* Exponential backoff; Karn: no RTT sample from a retransmitted segment. */
	c->rto = c->rto * 2 > NET_TCP_RTO_MAX_NS ? NET_TCP_RTO_MAX_NS : c->rto * 2;
	c->rtt_active = 0;
	c->dupacks = 0;
	st->stats.tcp_retransmits++;
	if (syn) {
		net_tcp_send_syn(c);
		return;
	}
	c->snd_nxt = c->snd_una;
	net_tcp_output(c);
	if (!c->rexmt_at)
		net_tcp_arm_rexmt(c);
}

static void tcp_persist(struct net_tcp *c)
{
	c->persist_at = 0;
	if (c->snd_wnd != 0 || c->snd_nxt != c->snd_una)
		return;
	/* An old sequence number is unacceptable to the receiver, which must answer with an ACK
	 * carrying its current window. */
	net_tcp_send_ctl(c, c->snd_una - 1, TCP_ACK);
	c->st->stats.tcp_persist_probes++;
	c->persist_backoff = c->persist_backoff * 2 > NET_TCP_RTO_MAX_NS ? NET_TCP_RTO_MAX_NS
									 : c->persist_backoff * 2;
	c->persist_at = net_now(c->st) + c->persist_backoff;
}

void net_tcp_poll(struct net_stack *st, uint64_t now)
{
	for (int i = 0; i < NET_TCP_CONNS; i++) {
		struct net_tcp *c = &st->tcp[i];
		if (c->state == NET_TCPS_FREE || c->state == NET_TCPS_CLOSED)
			continue;
		if (c->close_at && now >= c->close_at) {
			/* TIME_WAIT over, or FIN_WAIT_2 gave up; the application has let go. */
			net_tcp_set_closed(c, NET_TCP_ERR_NONE);
			continue;
		}
		if (c->rexmt_at && now >= c->rexmt_at) {
			tcp_rexmt(c);
			if (c->state == NET_TCPS_FREE || c->state == NET_TCPS_CLOSED)
				continue;
		}
		if (c->persist_at && now >= c->persist_at)
			tcp_persist(c);
		if (c->delack_at && now >= c->delack_at) {
			c->delack_at = 0;
			c->ack_now = 1;
			net_tcp_output(c);
		}
	}
}

static uint64_t earliest(uint64_t d, uint64_t t)
{
	return t && t < d ? t : d;
}

uint64_t net_tcp_deadline(const struct net_stack *st)
{
	uint64_t d = UINT64_MAX;
	for (int i = 0; i < NET_TCP_CONNS; i++) {
		const struct net_tcp *c = &st->tcp[i];
		if (c->state == NET_TCPS_FREE || c->state == NET_TCPS_CLOSED)
			continue;
		d = earliest(d, c->rexmt_at);
		d = earliest(d, c->persist_at);
		d = earliest(d, c->delack_at);
		d = earliest(d, c->close_at);
	}
	return d;
}
