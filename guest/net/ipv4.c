/* IPv4: header validation on receive (no reassembly: fragments are dropped and counted), header
 * generation and next-hop choice on send. */
#include <string.h>

#include "net_internal.h"

#define IP_MF 0x2000
#define IP_DF 0x4000
#define IP_OFFMASK 0x1fff

static int ip_is_ours(const struct net_stack *st, uint32_t dst)
{
	if (dst == 0xffffffffu || (dst == st->cfg.ip && dst))
		return 1;
	/* The subnet's broadcast address (not for /31 and /32, which have none). */
	return st->cfg.prefix < 31 && dst == (st->cfg.ip | ~st->netmask);
}

void net_ipv4_input(struct net_stack *st, const uint8_t *p, size_t len)
{
	if (len < IP_HLEN) {
		st->stats.drop_truncated++;
		return;
	}
	size_t ihl = (size_t)(p[0] & 0x0f) * 4, total = ld16(p + 2);
	if (p[0] >> 4 != 4 || ihl < IP_HLEN || total < ihl) {
		st->stats.drop_bad_header++;
		return;
	}
	/* The frame may carry Ethernet padding beyond total, never less than total. */
	if (total > len) {
		st->stats.drop_truncated++;
		return;
	}
	if (net_csum_fold(net_csum_add(0, p, ihl)) != 0) {
		st->stats.drop_bad_checksum++;
		return;
	}
	if (ld16(p + 6) & (IP_MF | IP_OFFMASK)) {
		st->stats.drop_fragment++;
		return;
	}
	uint32_t src = ld32(p + 12), dst = ld32(p + 16);
	/* Never answer a broadcast, multicast or unspecified source. */
	if (!ip_is_ours(st, dst) || src == 0 || src == 0xffffffffu || (src >> 28) == 0xe ||
	    (st->cfg.prefix < 31 && src == (st->cfg.ip | ~st->netmask))) {
		st->stats.drop_not_for_us++;
		return;
	}
	const uint8_t *data = p + ihl;
	size_t dlen = total - ihl;
	switch (p[9]) {
	case IP_PROTO_ICMP: net_icmp_input(st, src, dst, data, dlen); break;
	case IP_PROTO_UDP: net_udp_input(st, src, dst, data, dlen); break;
	case IP_PROTO_TCP: net_tcp_input(st, src, dst, data, dlen); break;
	default: st->stats.drop_unknown_proto++; break;
	}
}

int net_ipv4_routable(const struct net_stack *st, uint32_t dst)
{
	if (dst == 0)
		return 0;
	if (dst == 0xffffffffu || ((dst ^ st->cfg.ip) & st->netmask) == 0)
		return 1;
	return st->cfg.gateway != 0;
}

int net_ipv4_output(struct net_stack *st, uint32_t dst, uint8_t proto, size_t len)
{
	if (len > NET_L4_MAX)
		return -1;
	if (!net_ipv4_routable(st, dst)) {
		st->stats.drop_no_route++;
		return -1;
	}
	uint8_t *ip = st->tx + ETH_HLEN;
	ip[0] = 0x45;
	ip[1] = 0;
	st16(ip + 2, (uint16_t)(IP_HLEN + len));
	st16(ip + 4, st->ip_id++);
	st16(ip + 6, IP_DF);
	ip[8] = IP_TTL;
	ip[9] = proto;
	st16(ip + 10, 0);
	st32(ip + 12, st->cfg.ip);
	st32(ip + 16, dst);
	uint16_t sum = net_csum_fold(net_csum_add(0, ip, IP_HLEN));
	memcpy(ip + 10, &sum, 2);
	uint32_t hop = dst;
	if (dst != 0xffffffffu && ((dst ^ st->cfg.ip) & st->netmask) != 0)
		hop = st->cfg.gateway;
	size_t flen = ETH_HLEN + IP_HLEN + len;
	if (flen < 60) {
		/* Ethernet minimum; the padding is outside the IP total length. */
		memset(st->tx + flen, 0, 60 - flen);
		flen = 60;
	}
	return net_arp_output(st, hop, st->tx, flen);
}
