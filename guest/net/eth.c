/* Ethernet: receive demultiplexing by type, and framing for transmission. */
#include <string.h>

#include "net_internal.h"

static const uint8_t broadcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

void net_input(struct net_stack *st, const void *frame, size_t len)
{
	const uint8_t *f = frame;
	st->stats.rx_frames++;
	if (!f || len < ETH_HLEN) {
		st->stats.drop_truncated++;
		return;
	}
	if (memcmp(f, st->cfg.mac, 6) != 0 && memcmp(f, broadcast_mac, 6) != 0) {
		st->stats.drop_not_for_us++;
		return;
	}
	switch (ld16(f + 12)) {
	case ETH_TYPE_IPV4: net_ipv4_input(st, f + ETH_HLEN, len - ETH_HLEN); break;
	case ETH_TYPE_ARP: net_arp_input(st, f + ETH_HLEN, len - ETH_HLEN); break;
	default: st->stats.drop_unknown_proto++; break;
	}
}

void net_eth_send(struct net_stack *st, uint8_t *frame, size_t len, const uint8_t dst[6],
		  uint16_t type)
{
	memcpy(frame, dst, 6);
	memcpy(frame + 6, st->cfg.mac, 6);
	st16(frame + 12, type);
	if (st->drv.tx(st->drv.ctx, frame, len) < 0) {
		st->stats.tx_dropped++;
		return;
	}
	st->stats.tx_frames++;
}
