/* Encoding and validation of kv's records and superblocks (see kv_format.h). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kv_crc32.h"
#include "kv_format.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* The checksum of a record or superblock of len bytes at p, its crc field (at 4 or 8) as 0. */
static uint32_t crc_skipping(const uint8_t *p, size_t len, size_t crc_at)
{
	static const uint8_t zero[4];
	uint32_t crc = kv_crc32(0, p, crc_at);
	crc = kv_crc32(crc, zero, 4);
	return kv_crc32(crc, p + crc_at + 4, len - crc_at - 4);
}

void kv_rec_encode(uint8_t *dst, const struct kv_rec *h, const void *key, const void *value)
{
	put32(dst, KV_REC_MAGIC);
	put64(dst + 8, h->store_id);
	put64(dst + 16, h->seq);
	put64(dst + 24, h->gen);
	put32(dst + 32, h->vlen);
	put16(dst + 36, h->klen);
	dst[38] = h->type;
	dst[39] = 0;
	memcpy(dst + KV_REC_HEADER, key, h->klen);
	if (h->vlen)
		memcpy(dst + KV_REC_HEADER + h->klen, value, h->vlen);
	put32(dst + 4, crc_skipping(dst, kv_rec_size(h->klen, h->vlen), 4));
}

enum kv_rec_result kv_rec_decode(const uint8_t *p, size_t avail, struct kv_rec *h)
{
	if (avail < KV_REC_HEADER)
		return avail >= 4 && get32(p) != KV_REC_MAGIC ? KV_REC_BAD : KV_REC_SHORT;
	uint32_t vlen = get32(p + 32);
	uint16_t klen = get16(p + 36);
	uint8_t type = p[38];
	if (get32(p) != KV_REC_MAGIC || klen == 0 || klen > KV_KEY_MAX || vlen > KV_VALUE_MAX ||
	    p[39] != 0 || (type != KV_REC_PUT && type != KV_REC_DEL) ||
	    (type == KV_REC_DEL && vlen != 0))
		return KV_REC_BAD;
	uint32_t size = kv_rec_size(klen, vlen);
	h->size = size;
	if (size > avail)
		return KV_REC_SHORT;
	if (crc_skipping(p, size, 4) != get32(p + 4))
		return KV_REC_BAD;
	h->store_id = get64(p + 8);
	h->seq = get64(p + 16);
	h->gen = get64(p + 24);
	h->vlen = vlen;
	h->klen = klen;
	h->type = type;
	h->key = p + KV_REC_HEADER;
	h->value = p + KV_REC_HEADER + klen;
	return KV_REC_OK;
}

#define KV_SB_SIZE 64u

void kv_sb_encode(uint8_t *block, const struct kv_sb *sb)
{
	memset(block, 0, KV_BLOCK);
	put64(block, KV_SB_MAGIC);
	put32(block + 12, KV_SB_VERSION);
	put64(block + 16, sb->sb_seq);
	put64(block + 24, sb->store_id);
	put64(block + 32, sb->gen);
	put64(block + 40, sb->base_gen);
	put64(block + 48, sb->first_seq);
	put32(block + 56, sb->region);
	put32(block + 60, sb->region_blocks);
	put32(block + 8, crc_skipping(block, KV_SB_SIZE, 8));
}

int kv_sb_decode(const uint8_t *block, uint64_t disk_blocks, struct kv_sb *sb)
{
	if (get64(block) != KV_SB_MAGIC || get32(block + 12) != KV_SB_VERSION ||
	    crc_skipping(block, KV_SB_SIZE, 8) != get32(block + 8))
		return -1;
	struct kv_sb s = {
		.sb_seq = get64(block + 16),
		.store_id = get64(block + 24),
		.gen = get64(block + 32),
		.base_gen = get64(block + 40),
		.first_seq = get64(block + 48),
		.region = get32(block + 56),
		.region_blocks = get32(block + 60),
	};
	/* A checksum proves only that someone wrote it: check that it makes sense too. */
	if (s.region > 1 || s.region_blocks < KV_REGION_MIN_BLOCKS ||
	    s.region_blocks > KV_REGION_MAX_BLOCKS ||
	    KV_SB_BLOCKS + 2 * (uint64_t)s.region_blocks > disk_blocks || s.base_gen == 0 ||
	    s.base_gen > s.gen || s.gen > UINT64_MAX / 2 || s.first_seq == 0 ||
	    s.first_seq > UINT64_MAX / 2 || s.sb_seq == 0 || s.sb_seq > UINT64_MAX / 2)
		return -1;
	*sb = s;
	return 0;
}

uint32_t kv_layout_region_blocks(uint64_t disk_blocks)
{
	if (disk_blocks < KV_SB_BLOCKS + 2 * (uint64_t)KV_REGION_MIN_BLOCKS)
		return 0;
	uint64_t r = (disk_blocks - KV_SB_BLOCKS) / 2;
	return r > KV_REGION_MAX_BLOCKS ? KV_REGION_MAX_BLOCKS : (uint32_t)r;
}
