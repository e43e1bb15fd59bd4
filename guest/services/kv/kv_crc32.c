/* CRC-32 with a 256-entry table built on first use (the guest has no constructors to run). */
#include <stddef.h>
#include <stdint.h>

#include "kv_crc32.h"

#define KV_CRC32_POLY 0xedb88320u /* 0x04c11db7 bit-reversed */

static uint32_t table[256];
static int table_ready;

static void table_build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ KV_CRC32_POLY : c >> 1;
		table[i] = c;
	}
	table_ready = 1;
}

uint32_t kv_crc32(uint32_t crc, const void *data, size_t len)
{
	if (!table_ready)
		table_build();
	const uint8_t *p = data;
	crc = ~crc;
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}
