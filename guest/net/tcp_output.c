/* TCP transmission: segments from the send buffer within the peer's window, SYN, FIN, ACKs and
 * resets. Every data segment carries the ACK and our current window. */
#include <string.h>

#include "net_internal.h"

uint32_t net_tcp_rcv_window(const struct net_tcp *c)
{
	uint32_t space = NET_TCP_RCVBUF - c->rcv_len;
	uint32_t thresh = NET_TCP_RCVBUF / 2 < c->mss ? NET_TCP_RCVBUF / 2 : c->mss;
	/* Offer no slivers (SWS), but never pull back an edge already advertised. */
	uint32_t wnd = space >= thresh ? space : 0;
	uint32_t promised = seq_lt(c->rcv_nxt, c->rcv_adv) ? c->rcv_adv - c->rcv_nxt : 0;
	if (wnd < promised)
		wnd = promised <= space ? promised : space;
	return wnd;
}

/* Builds and sends one segment; data comes from the send buffer at off bytes past snd_una. */
static void tcp_segment(struct net_tcp *c, uint32_t seq, uint8_t flags, uint32_t off, uint32_t len)
{
	struct net_stack *st = c->st;
	uint8_t *t = st->tx + NET_L4_OFF;
	size_t hlen = TCP_HLEN + ((flags & TCP_SYN) ? 4 : 0);
	uint32_t wnd = net_tcp_rcv_window(c);
	st16(t, c->lport);
	st16(t + 2, c->rport);
	st32(t + 4, seq);
	st32(t + 8, (flags & TCP_ACK) ? c->rcv_nxt : 0);
	t[12] = (uint8_t)(hlen / 4) << 4;
	t[13] = flags;
	st16(t + 14, (uint16_t)(flags & TCP_RST ? 0 : wnd));
	st32(t + 16, 0); /* checksum, urgent pointer */
	if (flags & TCP_SYN) {
		t[20] = 2; /* MSS */
		t[21] = 4;
		st16(t + 22, NET_TCP_MSS);
	}
	if (len) {
		uint32_t pos = (c->snd_head + off) & (NET_TCP_SNDBUF - 1);
		uint32_t first = NET_TCP_SNDBUF - pos;
		if (first > len)
			first = len;
		memcpy(t + hlen, c->sndbuf + pos, first);
		memcpy(t + hlen + first, c->sndbuf, len - first);
	}
	uint16_t sum = net_csum_fold(net_csum_add(
		net_csum_pseudo(st->cfg.ip, c->rip, IP_PROTO_TCP, (uint16_t)(hlen + len)), t,
		hlen + len));
	memcpy(t + 16, &sum, 2);
	if ((flags & TCP_ACK) && !(flags & TCP_RST)) {
		if (seq_lt(c->rcv_adv, c->rcv_nxt + wnd))
			c->rcv_adv = c->rcv_nxt + wnd;
		c->ack_now = 0;
		c->unacked_segs = 0;
		c->delack_at = 0;
	}
	st->stats.tcp_tx++;
	net_ipv4_output(st, c->rip, IP_PROTO_TCP, hlen + len);
}

void net_tcp_send_ctl(struct net_tcp *c, uint32_t seq, uint8_t flags)
{
	tcp_segment(c, seq, flags, 0, 0);
}

void net_tcp_send_syn(struct net_tcp *c)
{
	uint8_t flags = TCP_SYN | (c->state == NET_TCPS_SYN_RCVD ? TCP_ACK : 0);
	if (c->retries == 0) {
		/* Karn: only a SYN sent once gives an RTT sample. */
		c->rtt_active = 1;
		c->rtt_seq = c->iss;
		c->rtt_start = net_now(c->st);
	}
	tcp_segment(c, c->iss, flags, 0, 0);
	c->snd_nxt = c->iss + 1;
	if (seq_lt(c->snd_max, c->snd_nxt))
		c->snd_max = c->snd_nxt;
	c->rexmt_at = net_now(c->st) + c->rto;
}

static int tcp_sending_state(int state)
{
	switch (state) {
	case NET_TCPS_ESTABLISHED:
	case NET_TCPS_CLOSE_WAIT:
	case NET_TCPS_FIN_WAIT_1:
	case NET_TCPS_CLOSING:
	case NET_TCPS_LAST_ACK: return 1;
	default: return 0;
	}
}

void net_tcp_output(struct net_tcp *c)
{
	int sent = 0;
	if (tcp_sending_state(c->state)) {
		uint32_t data_end = c->snd_una + c->snd_len, wnd_end = c->snd_una + c->snd_wnd;
		int fin_due = c->fin_queued && !c->fin_acked;
		if (seq_lt(c->snd_nxt, c->snd_una))
			c->snd_nxt = c->snd_una;
		while (seq_lt(c->snd_nxt, data_end)) {
			uint32_t avail = data_end - c->snd_nxt;
			uint32_t room = seq_lt(c->snd_nxt, wnd_end) ? wnd_end - c->snd_nxt : 0;
			uint32_t n = avail < room ? avail : room;
			if (n > c->mss)
				n = c->mss;
			if (!n)
				break;
			/* Nagle: hold a final partial segment while data is unacknowledged (the
			 * ACK comes at once: the segment before it carries PSH). */
			if (n == avail && n < c->mss && !fin_due && c->snd_nxt != c->snd_una)
				break;
			uint8_t flags = TCP_ACK;
			if (n == avail)
				flags |= TCP_FIN & (fin_due ? 0xff : 0);
			if (avail - n < c->mss)
				flags |= TCP_PSH; /* the last segment of this burst */
			if (!c->rtt_active && c->snd_nxt == c->snd_max) {
				c->rtt_active = 1;
				c->rtt_seq = c->snd_nxt;
				c->rtt_start = net_now(c->st);
			}
			tcp_segment(c, c->snd_nxt, flags, c->snd_nxt - c->snd_una, n);
			c->snd_nxt += n + ((flags & TCP_FIN) ? 1 : 0);
			if (seq_lt(c->snd_max, c->snd_nxt))
				c->snd_max = c->snd_nxt;
			sent = 1;
		}
		if (fin_due && c->snd_nxt == data_end) {
			tcp_segment(c, data_end, TCP_FIN | TCP_ACK, 0, 0);
			c->snd_nxt = data_end + 1;
			if (seq_lt(c->snd_max, c->snd_nxt))
				c->snd_max = c->snd_nxt;
			sent = 1;
		}
		if (sent && !c->rexmt_at)
			net_tcp_arm_rexmt(c);
		/* Data waits behind a zero window with nothing outstanding: probe it (persist). */
		if (c->snd_wnd == 0 && c->snd_nxt == c->snd_una && seq_lt(c->snd_nxt, data_end)) {
			if (!c->persist_at) {
				c->persist_backoff = c->rto;
				c->persist_at = net_now(c->st) + c->persist_backoff;
			}
		} else {
			c->persist_at = 0;
		}
	}
	if (c->ack_now && !sent)
		tcp_segment(c, c->snd_nxt, TCP_ACK, 0, 0);
}

void net_tcp_send_reset(struct net_stack *st, uint32_t src, uint32_t dst, uint16_t sport,
			uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, size_t seglen)
{
	(void)dst;
	uint8_t *t = st->tx + NET_L4_OFF;
	st16(t, dport);
	st16(t + 2, sport);
	if (flags & TCP_ACK) {
		st32(t + 4, ack);
		st32(t + 8, 0);
		t[13] = TCP_RST;
	} else {
		st32(t + 4, 0);
		st32(t + 8, seq + (uint32_t)seglen);
		t[13] = TCP_RST | TCP_ACK;
	}
	t[12] = (TCP_HLEN / 4) << 4;
	st16(t + 14, 0);
	st32(t + 16, 0);
	uint16_t sum = net_csum_fold(net_csum_add(
		net_csum_pseudo(st->cfg.ip, src, IP_PROTO_TCP, TCP_HLEN), t, TCP_HLEN));
	memcpy(t + 16, &sum, 2);
	st->stats.tcp_tx++;
	st->stats.tcp_rst_sent++;
	net_ipv4_output(st, src, IP_PROTO_TCP, TCP_HLEN);
}
