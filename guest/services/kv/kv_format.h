/* kv's on-disk format: two superblock copies, then two log regions of checksummed records.
 * Pure encoding and validation, no I/O: everything read from disk passes through here first.
 *
 *   block 0, 1      superblock copies; the valid one with the higher sb_seq is current
 *   region 0        blocks [2, 2 + region_blocks)
 *   region 1        blocks [2 + region_blocks, 2 + 2 * region_blocks)
 *
 * A region is a byte stream of records packed back to back from its start (a record may span
 * blocks). All integers are little-endian. */
#ifndef KV_FORMAT_H
#define KV_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define KV_BLOCK 4096u
#define KV_KEY_MAX 250u
#define KV_VALUE_MAX 65536u

/* ---- Records ----
 *   0 magic u32 "KVR1"   4 crc u32       8 store_id u64   16 seq u64   24 gen u64
 *  32 vlen u32          36 klen u16     38 type u8       39 reserved u8 (0)
 *  40 key[klen]  value[vlen]
 * crc covers the whole record except its own field. */
#define KV_REC_MAGIC 0x3152564bu /* "KVR1" */
#define KV_REC_HEADER 40u
#define KV_REC_MAX (KV_REC_HEADER + KV_KEY_MAX + KV_VALUE_MAX)
/* Blocks that any record can touch, wherever it starts in a block. */
#define KV_REC_SPAN_BLOCKS ((KV_REC_MAX + 2 * KV_BLOCK - 2) / KV_BLOCK)

enum kv_rec_type {
	KV_REC_PUT = 1,
	KV_REC_DEL = 2, /* vlen 0 */
};

struct kv_rec {
	uint64_t store_id; /* the store it was written for (stale stores' records never match) */
	uint64_t seq;	   /* position in the store's history: +1 per record */
	uint64_t gen;	   /* the superblock generation it was written under */
	uint32_t vlen;
	uint16_t klen;
	uint8_t type;	    /* enum kv_rec_type */
	uint32_t size;	    /* decode: KV_REC_HEADER + klen + vlen */
	const uint8_t *key; /* decode: into the buffer */
	const uint8_t *value;
};

enum kv_rec_result {
	KV_REC_OK,    /* a whole record, checksum good */
	KV_REC_SHORT, /* a sane header whose record ends beyond the bytes given */
	KV_REC_BAD,   /* not a record: bad magic, lengths, type or checksum */
};

/* Bytes of a record with these lengths. */
static inline uint32_t kv_rec_size(size_t klen, size_t vlen)
{
	return (uint32_t)(KV_REC_HEADER + klen + vlen);
}

/* Writes the record h (its key and value from key, value) at dst, which has kv_rec_size bytes. */
void kv_rec_encode(uint8_t *dst, const struct kv_rec *h, const void *key, const void *value);

/* Decodes the record at p, of which avail bytes are readable. Lengths are checked against the
 * format's limits before anything else is read, so any bytes are safe. OK fills *h (key and
 * value point into p); SHORT sets h->size (at most KV_REC_MAX) and nothing else. */
enum kv_rec_result kv_rec_decode(const uint8_t *p, size_t avail, struct kv_rec *h);

/* ---- Superblock (the first 64 bytes of blocks 0 and 1; the rest of the block is 0) ----
 *   0 magic u64 "DNKVSTOR"   8 crc u32 (bytes 0-63, itself as 0)   12 version u32 (1)
 *  16 sb_seq u64   24 store_id u64   32 gen u64   40 base_gen u64   48 first_seq u64
 *  56 region u32   60 region_blocks u32 */
#define KV_SB_MAGIC 0x524f54534b564e44ull /* "DNKVSTOR" */
#define KV_SB_VERSION 1u
#define KV_SB_BLOCKS 2u			/* the two copies */
#define KV_REGION_MIN_BLOCKS 64u	/* room for a few largest records */
#define KV_REGION_MAX_BLOCKS (1u << 24) /* 64 GiB: offsets stay far from overflow */

struct kv_sb {
	uint64_t sb_seq;    /* +1 per superblock written; copy sb_seq % 2 holds it */
	uint64_t store_id;  /* random at format */
	uint64_t gen;	    /* records appended now carry it; +1 per mount and compaction */
	uint64_t base_gen;  /* gen when the active region was started: older records are stale */
	uint64_t first_seq; /* seq of the active region's first record */
	uint32_t region;    /* the active region, 0 or 1 */
	uint32_t region_blocks; /* blocks per region */
};

/* Writes sb into block (KV_BLOCK bytes, zero-filled past the superblock). */
void kv_sb_encode(uint8_t *block, const struct kv_sb *sb);

/* Decodes block as a superblock for a disk of disk_blocks blocks. Returns 0 if it is a valid
 * one whose layout fits the disk, else -1. */
int kv_sb_decode(const uint8_t *block, uint64_t disk_blocks, struct kv_sb *sb);

/* Blocks per region for a disk of disk_blocks blocks; 0 if the disk is too small. */
uint32_t kv_layout_region_blocks(uint64_t disk_blocks);

/* The first block of region r. */
static inline uint64_t kv_region_first_block(const struct kv_sb *sb, uint32_t r)
{
	return KV_SB_BLOCKS + (uint64_t)r * sb->region_blocks;
}

#endif
