/* kv's index: every key in guest RAM with where its latest record is, in a fixed pool of
 * entries chained from a power-of-two bucket array. No allocation; the caller owns the memory. */
#ifndef KV_INDEX_H
#define KV_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "kv_format.h"

#define KV_INDEX_MAX 4096u /* entries: keys, and deletes not yet durable */
#define KV_INDEX_BUCKETS (2 * KV_INDEX_MAX)
#define KV_INDEX_NIL UINT32_MAX

struct kv_entry {
	uint64_t seq;	 /* the key's latest record */
	uint64_t loc;	 /* its byte offset in the active region */
	uint32_t size;	 /* its bytes */
	uint32_t next;	 /* the bucket's chain, or the free list */
	uint8_t deleted; /* the latest record is a DEL (kept until durable, then removed) */
	uint8_t klen;	 /* 0: a free entry */
	uint8_t key[KV_KEY_MAX];
};

struct kv_index {
	uint32_t cap;	 /* entries usable, at most KV_INDEX_MAX */
	uint32_t mask;	 /* buckets in use - 1: a power of two, at least 2 * cap */
	uint32_t used;	 /* entries in use, deleted ones included */
	uint32_t free;	 /* head of the free list */
	uint64_t secret; /* seeds the hash, so that clients cannot aim keys at one chain */
	uint32_t buckets[KV_INDEX_BUCKETS];
	struct kv_entry entries[KV_INDEX_MAX];
};

/* Empties ix with room for cap keys (capped at KV_INDEX_MAX). */
void kv_index_init(struct kv_index *ix, uint32_t cap, uint64_t secret);

/* The entry of key[0, klen), or NULL. */
struct kv_entry *kv_index_find(struct kv_index *ix, const void *key, size_t klen);

/* Adds key (1..KV_KEY_MAX bytes, not present) with its other fields 0. NULL if full. */
struct kv_entry *kv_index_insert(struct kv_index *ix, const void *key, size_t klen);

/* Removes e, which must be in ix. */
void kv_index_remove(struct kv_index *ix, struct kv_entry *e);

#endif
