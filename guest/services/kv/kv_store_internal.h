/* What kv_store.c (requests, batches), kv_mount.c and kv_compact.c share. */
#ifndef KV_STORE_INTERNAL_H
#define KV_STORE_INTERNAL_H

#include <stdint.h>

#include "kv_store.h"

/* Runs the requests that waited and can run now, then starts the I/O that is due. */
void kv_store_dispatch(struct kv_store *s);

/* A write, a flush or the mount failed: fails every request, now and later. */
void kv_store_break(struct kv_store *s);

/* Makes sb the durable superblock: the active region's geometry follows it. */
void kv_store_use_sb(struct kv_store *s, const struct kv_sb *sb);

/* Starts appending at region offset tail in batch b, whose first block's head (tail % KV_BLOCK
 * bytes, the end of earlier records) is at head. */
void kv_store_set_tail(struct kv_store *s, struct kv_batch *b, uint64_t tail, const uint8_t *head);

/* Writes next_sb into its copy and flushes; then done(s, status). */
void kv_store_write_sb(struct kv_store *s, void (*done)(struct kv_store *s, int status));

/* Copies the live records into the other region and switches to it (kv_compact.c). Starts
 * once the store is idle: nothing gathered, written or read. */
void kv_compact_start(struct kv_store *s);

#endif
