/* The Internet checksum (RFC 1071), summed over 32-bit words into a 64-bit accumulator. */

#include "net_internal.h"

/* Unaligned loads: the guest is built with -fno-builtin, which would turn every small memcpy
 * into a call; the explicit builtin is still inlined. */
#define LOAD(dst, p, n) __builtin_memcpy(dst, p, n)

uint64_t net_csum_add(uint64_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;
	/* One's-complement addition is independent of byte order as long as words are summed and
	 * stored in memory order; a 64-bit accumulator defers the carries. */
	while (len >= 16) {
		uint32_t w[4];
		LOAD(w, p, 16);
		sum += (uint64_t)w[0] + w[1] + w[2] + w[3];
		p += 16;
		len -= 16;
	}
	while (len >= 4) {
		uint32_t w;
		LOAD(&w, p, 4);
		sum += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w;
		LOAD(&w, p, 2);
		sum += w;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = {p[0], 0};
		uint16_t w;
		LOAD(&w, last, 2);
		sum += w;
	}
	return sum;
}

uint16_t net_csum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint64_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
	uint8_t ph[12];
	st32(ph, src);
	st32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = proto;
	st16(ph + 10, len);
	return net_csum_add(0, ph, sizeof(ph));
}
