/* The user uplink's gate: only well-formed ARP and IPv4 frames reach libslirp. */
#include "vnet_sanitize.h"

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static int ipv4_checksum_ok(const uint8_t *h, size_t len)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i += 2)
		sum += be16(h + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static enum vnet_verdict check_arp(const uint8_t *a, size_t len)
{
	if (len < 28 || be16(a) != 1 || be16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4)
		return VNET_DROP_ARP;
	unsigned op = be16(a + 6);
	return op == 1 || op == 2 ? VNET_PASS : VNET_DROP_ARP;
}

static enum vnet_verdict check_ipv4(const uint8_t *ip, size_t len)
{
	if (len < 20 || (ip[0] >> 4) != 4)
		return VNET_DROP_IP;
	size_t ihl = (size_t)(ip[0] & 15) * 4, total = be16(ip + 2);
	if (ihl < 20 || total < ihl || total > len || !ipv4_checksum_ok(ip, ihl))
		return VNET_DROP_IP;
	if (be16(ip + 6) & 0x3fff) /* more-fragments or an offset */
		return VNET_DROP_FRAGMENT;
	const uint8_t *l4 = ip + ihl;
	size_t l4len = total - ihl;
	switch (ip[9]) {
	case 1: /* ICMP */ return l4len >= 8 ? VNET_PASS : VNET_DROP_L4;
	case 17: /* UDP */
		if (l4len < 8 || be16(l4 + 4) < 8 || be16(l4 + 4) > l4len)
			return VNET_DROP_L4;
		return VNET_PASS;
	case 6: { /* TCP */
		if (l4len < 20)
			return VNET_DROP_L4;
		size_t doff = (size_t)(l4[12] >> 4) * 4;
		return doff >= 20 && doff <= l4len ? VNET_PASS : VNET_DROP_L4;
	}
	default: return VNET_DROP_L4;
	}
}

enum vnet_verdict vnet_sanitize_for_nat(const uint8_t *frame, size_t len)
{
	if (len < 14)
		return VNET_DROP_TYPE;
	switch (be16(frame + 12)) {
	case 0x0806: return check_arp(frame + 14, len - 14);
	case 0x0800: return check_ipv4(frame + 14, len - 14);
	default: return VNET_DROP_TYPE;
	}
}
