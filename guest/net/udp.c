/* UDP: a fixed table of bound ports; checksums verified when present and always generated. */
#include <string.h>

#include "net_internal.h"

void net_udp_input(struct net_stack *st, uint32_t src, uint32_t dst, const uint8_t *u, size_t len)
{
	if (len < UDP_HLEN) {
		st->stats.drop_truncated++;
		return;
	}
	size_t ulen = ld16(u + 4);
	if (ulen < UDP_HLEN || ulen > len) {
		st->stats.drop_truncated++;
		return;
	}
	if (ld16(u + 6) != 0 &&
	    net_csum_fold(net_csum_add(net_csum_pseudo(src, dst, IP_PROTO_UDP, (uint16_t)ulen), u,
				       ulen)) != 0) {
		st->stats.drop_bad_checksum++;
		return;
	}
	uint16_t sport = ld16(u), dport = ld16(u + 2);
	for (int i = 0; i < NET_UDP_SOCKETS; i++) {
		struct net_udp *s = &st->udp[i];
		if (s->port && s->port == dport) {
			st->stats.udp_rx++;
			s->recv(s, src, sport, u + UDP_HLEN, ulen - UDP_HLEN, s->arg);
			return;
		}
	}
	st->stats.drop_no_socket++;
}

struct net_udp *net_udp_bind(struct net_stack *st, uint16_t port, net_udp_recv_fn recv, void *arg)
{
	struct net_udp *slot = NULL;
	if (!port || !recv)
		return NULL;
	for (int i = 0; i < NET_UDP_SOCKETS; i++) {
		if (st->udp[i].port == port)
			return NULL;
		if (!st->udp[i].port && !slot)
			slot = &st->udp[i];
	}
	if (slot) {
		slot->port = port;
		slot->recv = recv;
		slot->arg = arg;
	}
	return slot;
}

int net_udp_sendto(struct net_udp *sock, uint32_t ip, uint16_t port, const void *data, size_t len)
{
	struct net_stack *st = sock->st;
	if (!sock->port || len > NET_L4_MAX - UDP_HLEN)
		return -1;
	uint8_t *u = st->tx + NET_L4_OFF;
	size_t ulen = UDP_HLEN + len;
	st16(u, sock->port);
	st16(u + 2, port);
	st16(u + 4, (uint16_t)ulen);
	st16(u + 6, 0);
	if (len) /* data may be NULL then */
		memmove(u + UDP_HLEN, data, len);
	uint16_t sum = net_csum_fold(net_csum_add(
		net_csum_pseudo(st->cfg.ip, ip, IP_PROTO_UDP, (uint16_t)ulen), u, ulen));
	if (sum == 0)
		sum = 0xffff; /* 0 means "no checksum" */
	memcpy(u + 6, &sum, 2);
	if (net_ipv4_output(st, ip, IP_PROTO_UDP, ulen) < 0)
		return -1;
	st->stats.udp_tx++;
	return 0;
}

void net_udp_close(struct net_udp *sock)
{
	sock->port = 0;
	sock->recv = NULL;
}
