/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32): the checksum of kv's records and superblocks. */
#ifndef KV_CRC32_H
#define KV_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over data[0, len); kv_crc32(0, "123456789", 9) == 0xcbf43926. */
uint32_t kv_crc32(uint32_t crc, const void *data, size_t len);

#endif
