/* Helpers of kv's unit tests: a store mounted on a kv_disk, and requests run to completion. */
#ifndef KV_UTIL_H
#define KV_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "kv_disk.h"
#include "kv_store.h"

/* Mounts s on d (the disk run until the mount is done); returns its result. */
int kvt_mount_into(struct kv_store *s, struct kv_disk *d, uint32_t max_keys);
/* The same on a new store (to free); *status gets its result. */
struct kv_store *kvt_mount(struct kv_disk *d, uint32_t max_keys, int *status);
/* Mounts and asserts KV_OK. */
struct kv_store *kvt_mount_ok(struct kv_disk *d, uint32_t max_keys);

/* A request run to completion (the disk stepped until it is done): its status. */
int kvt_put(struct kv_store *s, struct kv_disk *d, const char *key, const void *value, size_t vlen);
int kvt_del(struct kv_store *s, struct kv_disk *d, const char *key);
/* GET: the value goes to out (KV_VALUE_MAX bytes), its length to *len. */
int kvt_get(struct kv_store *s, struct kv_disk *d, const char *key, void *out, size_t *len);

/* The deterministic test value number id of len bytes. */
void kvt_value(uint8_t *out, size_t len, uint64_t id);

#endif
