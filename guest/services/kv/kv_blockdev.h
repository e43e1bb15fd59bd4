/* The block device kv's store runs on: asynchronous READ, WRITE and FLUSH of KV_BLOCK-byte
 * blocks with a completion callback. The guest binds it to dn_disk_submit, the unit tests to an
 * in-memory disk that can crash. */
#ifndef KV_BLOCKDEV_H
#define KV_BLOCKDEV_H

#include <stdint.h>

enum kv_io_op {
	KV_IO_READ = 1,
	KV_IO_WRITE = 2,
	KV_IO_FLUSH = 3, /* done once every write completed before it was made is durable */
};

/* Requests the store keeps outstanding at most: the device must accept this many. */
#define KV_IO_MAX 48u
/* Blocks per READ or WRITE at most. */
#define KV_IO_BLOCKS_MAX 256u

/* status: 0 or the device's non-zero failure. Never called from within submit. */
typedef void (*kv_io_done_fn)(int status, void *arg);

struct kv_blockdev {
	uint64_t blocks; /* the disk's size */
	int readonly;	 /* writes fail */
	/* Queues op on count blocks at block to or from buf (left alone until done runs); FLUSH
	 * has block 0, count 0 and buf NULL. Always accepted (up to KV_IO_MAX outstanding). */
	void (*submit)(void *ctx, enum kv_io_op op, uint64_t block, uint32_t count, void *buf,
		       kv_io_done_fn done, void *arg);
	void *ctx;
};

#endif
