/* The key index (see kv_index.h): chained hashing over a fixed entry pool with a free list. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kv_index.h"

/* FNV-1a from a secret basis, then a 64-bit finaliser so that every bit reaches the bucket. */
static uint32_t bucket_of(const struct kv_index *ix, const void *key, size_t klen)
{
	const uint8_t *p = key;
	uint64_t h = 0xcbf29ce484222325ull ^ ix->secret;
	for (size_t i = 0; i < klen; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h & ix->mask;
}

void kv_index_init(struct kv_index *ix, uint32_t cap, uint64_t secret)
{
	ix->cap = cap > KV_INDEX_MAX ? KV_INDEX_MAX : cap;
	ix->used = 0;
	ix->secret = secret;
	uint32_t buckets = 2;
	while (buckets < 2 * ix->cap)
		buckets *= 2;
	ix->mask = buckets - 1;
	for (uint32_t b = 0; b < buckets; b++)
		ix->buckets[b] = KV_INDEX_NIL;
	ix->free = KV_INDEX_NIL;
	for (uint32_t i = ix->cap; i-- > 0;) {
		ix->entries[i].klen = 0;
		ix->entries[i].next = ix->free;
		ix->free = i;
	}
}

struct kv_entry *kv_index_find(struct kv_index *ix, const void *key, size_t klen)
{
	for (uint32_t i = ix->buckets[bucket_of(ix, key, klen)]; i != KV_INDEX_NIL;) {
		struct kv_entry *e = &ix->entries[i];
		if (e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e;
		i = e->next;
	}
	return NULL;
}

struct kv_entry *kv_index_insert(struct kv_index *ix, const void *key, size_t klen)
{
	if (ix->free == KV_INDEX_NIL || klen == 0 || klen > KV_KEY_MAX)
		return NULL;
	uint32_t i = ix->free;
	struct kv_entry *e = &ix->entries[i];
	ix->free = e->next;
	uint32_t b = bucket_of(ix, key, klen);
	memset(e, 0, offsetof(struct kv_entry, key));
	e->klen = (uint8_t)klen;
	memcpy(e->key, key, klen);
	e->next = ix->buckets[b];
	ix->buckets[b] = i;
	ix->used++;
	return e;
}

void kv_index_remove(struct kv_index *ix, struct kv_entry *e)
{
	uint32_t i = (uint32_t)(e - ix->entries);
	for (uint32_t *p = &ix->buckets[bucket_of(ix, e->key, e->klen)]; *p != KV_INDEX_NIL;
	     p = &ix->entries[*p].next)
		if (*p == i) {
			*p = e->next;
			break;
		}
	e->klen = 0;
	e->next = ix->free;
	ix->free = i;
	ix->used--;
}
