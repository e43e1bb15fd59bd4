/* TCP reception: demultiplexing, the LISTEN and SYN_SENT cases, and for synchronised states
 * the RFC 793 checks (with RFC 5961 challenge ACKs), ACK, window, data and FIN processing.
 * Out-of-order data is dropped (a duplicate ACK tells the sender); the sender goes back N. */
#include <string.h>

#include "net_internal.h"

struct seg {
	uint32_t src, seq, ack;
	uint16_t sport, dport, wnd, mss; /* mss: 0 if absent */
	uint8_t flags;
	const uint8_t *data;
	uint32_t dlen;
};

static uint16_t parse_mss(const uint8_t *t, size_t hlen)
{
	size_t i = TCP_HLEN;
	while (i < hlen) {
		uint8_t kind = t[i];
		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= hlen || t[i + 1] < 2 || i + t[i + 1] > hlen)
			break; /* malformed: ignore the rest */
		if (kind == 2 && t[i + 1] == 4)
			return ld16(t + i + 2);
		i += t[i + 1];
	}
	return 0;
}

static uint16_t clamp_mss(uint16_t mss)
{
	if (!mss)
		return 536;
	if (mss < 64)
		return 64; /* tiny MSS would turn a transfer into a flood of headers */
	return mss > NET_TCP_MSS ? NET_TCP_MSS : mss;
}

/* A SYN (or a stray segment) for listener l. iss: our ISN if it must not be the usual one (a
 * reopened TIME_WAIT), else NULL. */
static void listen_input(struct net_tcp *l, const struct seg *s, const uint32_t *iss)
{
	struct net_stack *st = l->st;
	if (s->flags & TCP_RST)
		return;
	if (s->flags & TCP_ACK) {
		net_tcp_send_reset(st, s->src, st->cfg.ip, s->sport, s->dport, s->seq, s->ack,
				   s->flags, s->dlen);
		return;
	}
	if (!(s->flags & TCP_SYN))
		return;
	struct net_tcp *c = l->backlog < NET_TCP_BACKLOG ? net_tcp_alloc(st) : NULL;
	if (!c) {
		st->stats.tcp_syn_dropped++;
		return;
	}
	l->backlog++;
	c->parent = l;
	c->state = NET_TCPS_SYN_RCVD;
	c->lport = l->lport;
	c->rport = s->sport;
	c->rip = s->src;
	c->irs = s->seq;
	c->rcv_nxt = c->rcv_adv = s->seq + 1;
	c->mss = clamp_mss(s->mss);
	c->iss = iss ? *iss : net_tcp_isn(st, s->src, c->lport, s->sport);
	c->snd_una = c->snd_max = c->iss;
	c->snd_wnd = s->wnd;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = c->iss;
	/* Data on the SYN is not kept: the peer sends it again. */
	net_tcp_send_syn(c);
}

static void syn_sent_input(struct net_tcp *c, const struct seg *s)
{
	int ack_ok = 0;
	if (s->flags & TCP_ACK) {
		if (seq_leq(s->ack, c->iss) || seq_lt(c->snd_max, s->ack)) {
			if (!(s->flags & TCP_RST))
				net_tcp_send_reset(c->st, s->src, c->st->cfg.ip, s->sport, s->dport,
						   s->seq, s->ack, s->flags, s->dlen);
			return;
		}
		ack_ok = 1;
	}
	if (s->flags & TCP_RST) {
		if (ack_ok) {
			net_tcp_set_closed(c, NET_TCP_ERR_REFUSED);
			net_tcp_notify(c, NET_TCP_CLOSED);
		}
		return;
	}
	if (!(s->flags & TCP_SYN))
		return;
	c->irs = s->seq;
	c->rcv_nxt = c->rcv_adv = s->seq + 1;
	c->mss = clamp_mss(s->mss);
	c->snd_wnd = s->wnd;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = s->ack;
	if (!ack_ok) {
		/* Simultaneous open. */
		c->state = NET_TCPS_SYN_RCVD;
		net_tcp_send_syn(c);
		return;
	}
	c->snd_una = s->ack;
	if (c->rtt_active) {
		net_tcp_rtt_sample(c, net_now(c->st) - c->rtt_start);
		c->rtt_active = 0;
	}
	c->retries = 0;
	c->rexmt_at = 0;
	c->state = NET_TCPS_ESTABLISHED;
	c->ack_now = 1;
	net_tcp_output(c);
	net_tcp_notify(c, NET_TCP_CONNECTED | NET_TCP_WRITABLE);
}

/* Answers a segment we will not take (out of window, bad ACK, RFC 5961 challenge) with an ACK,
 * at most once per NET_TCP_OOW_ACK_GAP_NS: two desynchronised ends (or an attacker) would
 * otherwise bounce ACKs forever. Zero-window probes come slower than that. */
static void oow_ack(struct net_tcp *c)
{
	uint64_t now = net_now(c->st);
	if (c->last_oow_ack && now - c->last_oow_ack < NET_TCP_OOW_ACK_GAP_NS) {
		c->st->stats.tcp_acks_limited++;
		return;
	}
	c->last_oow_ack = now;
	c->ack_now = 1;
	net_tcp_output(c);
}

/* RFC 793 segment acceptability against our receive window. */
static int acceptable(const struct net_tcp *c, const struct seg *s, uint32_t seglen)
{
	uint32_t wnd = NET_TCP_RCVBUF - c->rcv_len;
	if (s->seq == c->rcv_nxt && s->dlen == 0)
		return 1; /* includes a bare FIN when our buffer is full */
	if (seglen == 0)
		return wnd && seq_leq(c->rcv_nxt, s->seq) && seq_lt(s->seq, c->rcv_nxt + wnd);
	if (!wnd)
		return 0;
	uint32_t last = s->seq + seglen - 1;
	return (seq_leq(c->rcv_nxt, s->seq) && seq_lt(s->seq, c->rcv_nxt + wnd)) ||
	       (seq_leq(c->rcv_nxt, last) && seq_lt(last, c->rcv_nxt + wnd));
}

/* Processes the acknowledgment field. Returns the events it causes, or -1 if c is gone or the
 * segment must be dropped. */
static int ack_input(struct net_tcp *c, const struct seg *s)
{
	struct net_stack *st = c->st;
	unsigned events = 0;
	if (seq_lt(c->snd_max, s->ack)) {
		oow_ack(c); /* acknowledges what we never sent */
		return -1;
	}
	if (seq_lt(c->snd_una, s->ack)) {
		uint32_t acked = s->ack - c->snd_una, data = acked;
		if (c->fin_queued && !c->fin_acked && s->ack == c->snd_una + c->snd_len + 1) {
			c->fin_acked = 1;
			data = c->snd_len;
		}
		if (data > c->snd_len)
			data = c->snd_len;
		c->snd_head = (c->snd_head + data) & (NET_TCP_SNDBUF - 1);
		c->snd_len -= data;
		c->snd_una = s->ack;
		if (seq_lt(c->snd_nxt, c->snd_una))
			c->snd_nxt = c->snd_una;
		if (c->rtt_active && seq_lt(c->rtt_seq, s->ack)) {
			net_tcp_rtt_sample(c, net_now(st) - c->rtt_start);
			c->rtt_active = 0;
		}
		c->retries = 0;
		c->dupacks = 0;
		c->rexmt_at = 0;
		if (c->snd_una != c->snd_max)
			net_tcp_arm_rexmt(c);
		if (data)
			events |= NET_TCP_WRITABLE;
	} else if (s->ack == c->snd_una && s->dlen == 0 && !(s->flags & TCP_FIN) &&
		   s->wnd == c->snd_wnd && c->snd_una != c->snd_max) {
		if (++c->dupacks == 3) {
			/* Fast retransmit; the receiver keeps no out-of-order data: go back N. */
			c->snd_nxt = c->snd_una;
			c->rtt_active = 0;
			st->stats.tcp_retransmits++;
		}
	}
	/* RFC 793: take the window from the newest segment, and never from an old ACK. */
	if (seq_leq(c->snd_una, s->ack) &&
	    (seq_lt(c->snd_wl1, s->seq) || (c->snd_wl1 == s->seq && seq_leq(c->snd_wl2, s->ack)))) {
		c->snd_wnd = s->wnd;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
	}
	if (c->fin_acked) {
		switch (c->state) {
		case NET_TCPS_FIN_WAIT_1:
			c->state = NET_TCPS_FIN_WAIT_2;
			/* The application has closed: do not wait forever for the peer's FIN. */
			c->close_at = net_now(st) + NET_TCP_FIN_WAIT2_NS;
			break;
		case NET_TCPS_CLOSING: net_tcp_enter_time_wait(c); break;
		case NET_TCPS_LAST_ACK: net_tcp_set_closed(c, NET_TCP_ERR_NONE); return -1;
		default: break;
		}
	}
	return (int)events;
}

/* Takes in-order data and FIN. Returns the events caused. */
static unsigned data_input(struct net_tcp *c, const struct seg *s)
{
	unsigned events = 0;
	int fin = (s->flags & TCP_FIN) != 0;
	if (c->state != NET_TCPS_ESTABLISHED && c->state != NET_TCPS_FIN_WAIT_1 &&
	    c->state != NET_TCPS_FIN_WAIT_2)
		return 0; /* the peer has finished: anything is a retransmission */
	if (!s->dlen && !fin)
		return 0; /* a pure ACK: nothing to take, nothing to answer */
	if (seq_lt(c->rcv_nxt, s->seq)) {
		c->st->stats.tcp_out_of_order++;
		c->ack_now = 1;
		return 0;
	}
	uint32_t skip = c->rcv_nxt - s->seq, n = 0;
	if (skip <= s->dlen) {
		n = s->dlen - skip;
		uint32_t space = NET_TCP_RCVBUF - c->rcv_len;
		if (n > space) {
			n = space;
			fin = 0;
		}
	} else {
		fin = 0;
	}
	if (n) {
		if (c->owned) {
			uint32_t tail = (c->rcv_head + c->rcv_len) & (NET_TCP_RCVBUF - 1);
			uint32_t first = NET_TCP_RCVBUF - tail;
			if (first > n)
				first = n;
			memcpy(c->rcvbuf + tail, s->data + skip, first);
			memcpy(c->rcvbuf, s->data + skip + first, n - first);
			c->rcv_len += n;
			events |= NET_TCP_READABLE;
		}
		/* else: the application closed and cannot read; take and discard. */
		c->rcv_nxt += n;
		if (++c->unacked_segs >= 2 || (s->flags & TCP_PSH) || n < s->dlen - skip)
			c->ack_now = 1;
		else if (!c->delack_at)
			c->delack_at = net_now(c->st) + NET_TCP_DELACK_NS;
	} else if (s->dlen) {
		c->ack_now = 1; /* duplicate or no room: say where we are */
	}
	if (fin) {
		c->rcv_nxt++;
		c->ack_now = 1;
		events |= NET_TCP_PEER_CLOSED;
		switch (c->state) {
		case NET_TCPS_ESTABLISHED: c->state = NET_TCPS_CLOSE_WAIT; break;
		case NET_TCPS_FIN_WAIT_1: c->state = NET_TCPS_CLOSING; break;
		default: net_tcp_enter_time_wait(c); break;
		}
	}
	return events;
}

static void sync_input(struct net_tcp *c, const struct seg *s)
{
	struct net_stack *st = c->st;
	uint32_t seglen = s->dlen + !!(s->flags & TCP_SYN) + !!(s->flags & TCP_FIN);
	if (c->state == NET_TCPS_SYN_RCVD && (s->flags & TCP_SYN) && !(s->flags & TCP_ACK) &&
	    s->seq == c->irs) {
		net_tcp_send_syn(c); /* our SYN-ACK was lost */
		return;
	}
	if (!acceptable(c, s, seglen)) {
		if (!(s->flags & TCP_RST)) {
			st->stats.tcp_out_of_window++;
			if (c->state == NET_TCPS_TIME_WAIT && (s->flags & TCP_FIN))
				net_tcp_enter_time_wait(c); /* our last ACK was lost */
			oow_ack(c);
		}
		return;
	}
	if (s->flags & TCP_RST) {
		if (s->seq != c->rcv_nxt) {
			oow_ack(c); /* RFC 5961 challenge ACK */
			return;
		}
		if (c->parent) {
			net_tcp_set_closed(c, NET_TCP_ERR_RESET); /* never accepted: just forget */
			return;
		}
		net_tcp_set_closed(c, NET_TCP_ERR_RESET);
		net_tcp_notify(c, NET_TCP_CLOSED);
		return;
	}
	if (s->flags & TCP_SYN) {
		oow_ack(c); /* RFC 5961: a SYN in a synchronised state gets a challenge ACK */
		return;
	}
	if (!(s->flags & TCP_ACK))
		return;
	struct net_tcp *l = NULL; /* the listener to tell, once established */
	unsigned events = 0;
	if (c->state == NET_TCPS_SYN_RCVD) {
		if (!seq_lt(c->snd_una, s->ack) || seq_lt(c->snd_max, s->ack)) {
			net_tcp_send_reset(st, s->src, st->cfg.ip, s->sport, s->dport, s->seq,
					   s->ack, s->flags, s->dlen);
			return;
		}
		c->state = NET_TCPS_ESTABLISHED;
		c->snd_una = c->iss + 1; /* the SYN is acknowledged */
		c->snd_wnd = s->wnd;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		if (c->parent) {
			l = c->parent;
			l->backlog--;
			c->parent = NULL;
		} else {
			events = NET_TCP_CONNECTED | NET_TCP_WRITABLE; /* a simultaneous open */
		}
		c->owned = 1;
	}
	int ev = ack_input(c, s);
	if (ev < 0)
		return;
	events |= (unsigned)ev | data_input(c, s);
	if (l) {
		c->in_cb++;
		l->on_accept(l, c, l->arg);
		c->in_cb--;
	}
	/* Callbacks first: what they write goes out with the ACK we owe, in full segments. */
	if (net_tcp_notify(c, events))
		net_tcp_output(c);
}

/* Whether s opens a new connection over c, a TIME_WAIT for the same ports (RFC 1122 4.2.2.13):
 * a plain SYN above everything the old connection received. An older one is a duplicate: it
 * gets the usual ACK, and a peer that meant a new connection resets TIME_WAIT and retries. */
static int time_wait_reopen(const struct net_tcp *c, const struct seg *s)
{
	return c->state == NET_TCPS_TIME_WAIT &&
	       (s->flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN &&
	       seq_lt(c->rcv_nxt, s->seq);
}

void net_tcp_input(struct net_stack *st, uint32_t src, uint32_t dst, const uint8_t *t, size_t len)
{
	if (len < TCP_HLEN) {
		st->stats.drop_truncated++;
		return;
	}
	size_t hlen = (size_t)(t[12] >> 4) * 4;
	if (hlen < TCP_HLEN || hlen > len) {
		st->stats.drop_bad_header++;
		return;
	}
	if (dst != st->cfg.ip) {
		st->stats.drop_not_for_us++; /* TCP has no broadcast */
		return;
	}
	if (net_csum_fold(net_csum_add(net_csum_pseudo(src, dst, IP_PROTO_TCP, (uint16_t)len), t,
				       len)) != 0) {
		st->stats.drop_bad_checksum++;
		return;
	}
	st->stats.tcp_rx++;
	struct seg s = {
		.src = src,
		.sport = ld16(t),
		.dport = ld16(t + 2),
		.seq = ld32(t + 4),
		.ack = ld32(t + 8),
		.flags = t[13] & 0x3f,
		.wnd = ld16(t + 14),
		.data = t + hlen,
		.dlen = (uint32_t)(len - hlen),
	};
	if (s.flags & TCP_SYN)
		s.mss = parse_mss(t, hlen);
	if (!s.sport || !s.dport) {
		st->stats.drop_bad_header++;
		return;
	}
	struct net_tcp *c = NULL, *l = NULL;
	for (int i = 0; i < NET_TCP_CONNS; i++) {
		struct net_tcp *k = &st->tcp[i];
		if (k->state == NET_TCPS_FREE || k->state == NET_TCPS_CLOSED || k->lport != s.dport)
			continue;
		if (k->state == NET_TCPS_LISTEN)
			l = k;
		else if (!c && k->rport == s.sport && k->rip == src)
			c = k;
	}
	if (c && l && time_wait_reopen(c, &s)) {
		/* RFC 6191's rule without timestamps, as BSD and Linux do: our new ISN lies past
		 * everything the old connection sent, so its stray segments cannot be taken for
		 * the new one's. */
		uint32_t iss = c->snd_nxt + 65536;
		st->stats.tcp_tw_reopened++;
		net_tcp_set_closed(c, NET_TCP_ERR_NONE);
		listen_input(l, &s, &iss);
	} else if (c && c->state == NET_TCPS_SYN_SENT)
		syn_sent_input(c, &s);
	else if (c)
		sync_input(c, &s);
	else if (l)
		listen_input(l, &s, NULL);
	else {
		st->stats.drop_no_socket++;
		if (!(s.flags & TCP_RST))
			net_tcp_send_reset(st, src, dst, s.sport, s.dport, s.seq, s.ack, s.flags,
					   s.dlen + !!(s.flags & TCP_SYN) + !!(s.flags & TCP_FIN));
	}
}
