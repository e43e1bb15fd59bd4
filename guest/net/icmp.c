/* ICMP: answers echo requests, and sends and reports echo for net_ping. Other types are
 * counted as unknown. */
#include <string.h>

#include "net_internal.h"

#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8

static int icmp_send(struct net_stack *st, uint32_t dst, uint8_t type, uint16_t id, uint16_t seq,
		     const void *data, size_t len)
{
	if (len > NET_L4_MAX - ICMP_HLEN)
		return -1;
	uint8_t *m = st->tx + NET_L4_OFF;
	m[0] = type;
	m[1] = 0;
	st16(m + 2, 0);
	st16(m + 4, id);
	st16(m + 6, seq);
	if (len) /* data may be NULL then */
		memmove(m + ICMP_HLEN, data, len);
	uint16_t sum = net_csum_fold(net_csum_add(0, m, ICMP_HLEN + len));
	memcpy(m + 2, &sum, 2);
	return net_ipv4_output(st, dst, IP_PROTO_ICMP, ICMP_HLEN + len);
}

void net_icmp_input(struct net_stack *st, uint32_t src, uint32_t dst, const uint8_t *m, size_t len)
{
	if (len < ICMP_HLEN) {
		st->stats.drop_truncated++;
		return;
	}
	if (net_csum_fold(net_csum_add(0, m, len)) != 0) {
		st->stats.drop_bad_checksum++;
		return;
	}
	uint16_t id = ld16(m + 4), seq = ld16(m + 6);
	if (m[0] == ICMP_ECHO_REQUEST && m[1] == 0) {
		/* Answering broadcasts would make us an amplifier. */
		if (dst != st->cfg.ip) {
			st->stats.drop_not_for_us++;
			return;
		}
		if (icmp_send(st, src, ICMP_ECHO_REPLY, id, seq, m + ICMP_HLEN, len - ICMP_HLEN) ==
		    0)
			st->stats.icmp_echo_replies_sent++;
	} else if (m[0] == ICMP_ECHO_REPLY && m[1] == 0) {
		if (st->on_echo)
			st->on_echo(src, id, seq, m + ICMP_HLEN, len - ICMP_HLEN, st->echo_arg);
	} else {
		st->stats.drop_unknown_proto++;
	}
}

int net_ping(struct net_stack *st, uint32_t ip, uint16_t id, uint16_t seq, const void *data,
	     size_t len)
{
	return icmp_send(st, ip, ICMP_ECHO_REQUEST, id, seq, data, len);
}

void net_on_echo_reply(struct net_stack *st, net_echo_fn fn, void *arg)
{
	st->on_echo = fn;
	st->echo_arg = arg;
}
