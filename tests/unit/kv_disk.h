/* An in-memory block device for kv's unit tests. Requests complete only when the test steps
 * the disk, one at a time, in a seeded random order the device's rules allow (a FLUSH waits for
 * everything before it, everything after it waits for the FLUSH). Writes are volatile until a
 * flush; a crash keeps a random subset of the volatile and in-flight block writes, each whole,
 * lost, or torn at 512-byte sectors, and forgets every request. */
#ifndef KV_DISK_H
#define KV_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "kv_blockdev.h"

#define KV_DISK_SECTOR 512u
#define KV_DISK_E_READONLY 4 /* as DN_DISK_E_READONLY */
#define KV_DISK_E_IO 5	     /* as DN_DISK_E_IO */

struct kv_disk_req {
	enum kv_io_op op;
	uint64_t block;
	uint32_t count;
	void *buf;
	kv_io_done_fn done;
	void *arg;
};

struct kv_disk_write {
	uint64_t block;
	uint8_t data[4096];
};

struct kv_disk {
	struct kv_blockdev dev; /* what the store is given */
	uint64_t blocks;
	uint8_t *durable;	   /* what survives a crash */
	uint8_t *current;	   /* what reads see */
	struct kv_disk_write *vol; /* completed writes not flushed yet, in order */
	size_t nvol, capvol;
	struct kv_disk_req *q; /* outstanding requests, in order */
	size_t nq, capq;
	uint64_t rng;
	int64_t fail_in; /* > 0: the fail_in-th WRITE or FLUSH from now on, and all after, fail */
	uint64_t reads, writes, flushes, max_outstanding;
};

/* A zero-filled disk of blocks blocks. */
struct kv_disk *kv_disk_new(uint64_t blocks, uint64_t seed);
void kv_disk_free(struct kv_disk *d);
uint64_t kv_disk_rand(struct kv_disk *d);

/* Completes one request (its callback runs). Returns 0 if none was outstanding. */
int kv_disk_step(struct kv_disk *d);
/* Steps until no request is outstanding. */
void kv_disk_run(struct kv_disk *d);

/* A power cut: see the top. The store that used the disk must be dropped, not called again. */
void kv_disk_crash(struct kv_disk *d);

/* The block's bytes as reads see them (tests corrupt images through it; call after a crash or
 * with nothing outstanding, and call kv_disk_sync after). */
uint8_t *kv_disk_block(struct kv_disk *d, uint64_t block);
/* Makes the current image the durable one. */
void kv_disk_sync(struct kv_disk *d);

#endif
