/* kv's storage engine: a log-structured key-value store on an asynchronous block device
 * (kv_blockdev.h), with every key in an in-RAM index rebuilt by scanning the log at mount.
 * PUT and DEL complete once their record is written and flushed; records arriving while a
 * batch is being written share the next write and flush (group commit). A full log is
 * compacted into the other region, switched to by a superblock write. GET returns only durable
 * values. Portable C11: the unit tests run it on an in-memory disk that can crash. */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "kv_blockdev.h"
#include "kv_format.h"
#include "kv_index.h"
#include "kv_scan.h"

enum kv_status {
	KV_OK = 0,
	KV_PENDING,    /* kv_submit, kv_mount: the callback will run */
	KV_NOTFOUND,   /* no such key */
	KV_EINVAL,     /* a key of 0 or over KV_KEY_MAX bytes, a value over KV_VALUE_MAX */
	KV_EROFS,      /* PUT or DEL on a read-only disk */
	KV_ELOGFULL,   /* the live records leave no room in a region */
	KV_EINDEXFULL, /* every index entry holds a key */
	KV_EIO,	       /* the disk failed, or read back what was not written: the store stops */
	KV_ETOOSMALL,  /* mount: the disk cannot hold a store */
};

/* A short lower-case description of a status, for ERR lines and logs. */
const char *kv_status_str(int status);

enum kv_op_type { KV_OP_GET, KV_OP_PUT, KV_OP_DEL };

/* The bytes a GET reads its record into: the blocks any record can touch. */
#define KV_GET_BUF (KV_REC_SPAN_BLOCKS * KV_BLOCK)
/* GETs reading at once; more wait their turn. */
#define KV_READS_MAX 32u

struct kv_store;
struct kv_op;
typedef void (*kv_op_done_fn)(struct kv_op *op, int status);

/* One request, owned by the caller and left alone from kv_submit until done runs. */
struct kv_op {
	enum kv_op_type type;
	const uint8_t *key; /* 1..KV_KEY_MAX bytes */
	size_t klen;
	const uint8_t *value; /* PUT: 0..KV_VALUE_MAX bytes */
	size_t vlen;
	uint8_t *buf; /* GET: KV_GET_BUF bytes */
	kv_op_done_fn done;
	void *arg;
	const uint8_t *result; /* GET, KV_OK: the value, inside buf */
	size_t result_len;
	/* The store's. */
	struct kv_store *store;
	struct kv_op *next;
	uint64_t seq; /* PUT, DEL: the record's, once appended; GET: the one read */
	uint64_t loc;
	uint32_t size;
};

struct kv_config {
	uint32_t max_keys; /* index entries, at most KV_INDEX_MAX */
	uint64_t seed;	   /* randomness for the hash secret and a new store's id */
};

struct kv_stats {
	uint64_t keys;	      /* keys stored */
	uint64_t live_bytes;  /* bytes of their records */
	uint64_t log_bytes;   /* bytes of the active region in use */
	uint64_t capacity;    /* bytes of a region */
	uint64_t compactions; /* since mount */
	uint64_t records;     /* records in the active region: recovered, appended, copied */
	uint64_t batches;     /* write-and-flush rounds since mount */
	uint64_t gets, puts, dels;
	uint64_t recovered_records; /* mount: records scanned in the log */
	int formatted;		    /* mount: no store was found, a new one was made */
};

typedef void (*kv_mount_fn)(struct kv_store *s, int status, void *arg);

#define KV_BATCH_BLOCKS 32u /* a batch's buffer: a block of earlier records, then new ones */

/* A batch of records written together: buf mirrors the region from block on. */
struct kv_batch {
	uint64_t block;		   /* region block of buf[0] */
	size_t fill;		   /* bytes of buf that are log (the first block's head included) */
	uint64_t last_seq;	   /* its last record's seq */
	struct kv_op *head, *tail; /* the PUTs and DELs whose records it holds, in order */
	uint8_t buf[KV_BATCH_BLOCKS * KV_BLOCK];
};

enum kv_state {
	KV_ST_MOUNTING,
	KV_ST_READY,
	KV_ST_COMPACTING,
	KV_ST_BROKEN, /* a write failed or the mount did: every request fails */
};

/* The store. Its fields are the store's: use the functions below. Large (about 2 MiB): the
 * caller provides it (static storage in the guest). */
struct kv_store {
	struct kv_blockdev dev;
	struct kv_config cfg;
	enum kv_state state;
	int readonly;
	int compact_wanted; /* appends wait: compaction starts once nothing is in flight */
	struct kv_sb sb;    /* the durable superblock */
	uint64_t region_first_block, region_bytes;
	uint64_t tail;	      /* end of the last record appended */
	uint64_t next_seq;    /* the next record's seq */
	uint64_t durable_seq; /* every record up to it is durable */
	uint64_t live_bytes;
	struct kv_batch *acc;		       /* records being gathered */
	struct kv_batch *flight;	       /* the batch being written and flushed, or NULL */
	struct kv_op *waitq_head, *waitq_tail; /* requests that cannot run yet, in order */
	struct kv_op *durq_head, *durq_tail;   /* requests that must see durable state first */
	unsigned reads;			       /* GET reads in flight */
	kv_mount_fn mount_done;
	void *mount_arg;
	struct kv_sb next_sb; /* being written: the mount's or the compaction's */
	void (*sb_done)(struct kv_store *s, int status);
	uint64_t copy_seq; /* compaction: the next copied record's seq */
	uint64_t copied, copied_bytes;
	int compact_final; /* compaction: the output's last write is in flight */
	struct kv_stats stats;
	struct kv_batch batch[2];
	struct kv_scan scan;
	struct kv_index index;
	uint8_t sb_buf[KV_SB_BLOCKS * KV_BLOCK];
};

/* Mounts the store on dev: reads the superblocks, scans the log into the index, and (if dev is
 * writable) makes a new generation durable; a disk with no valid superblock is formatted
 * (read-only: served as empty). Returns KV_PENDING (done runs once mounted; KV_OK or an error)
 * or KV_ETOOSMALL at once. Requests submitted meanwhile wait for the mount. */
int kv_mount(struct kv_store *s, const struct kv_blockdev *dev, const struct kv_config *cfg,
	     kv_mount_fn done, void *arg);

/* Starts op. Returns a result at once (KV_NOTFOUND, KV_EINVAL, KV_EROFS, ...; done does not
 * run), or KV_PENDING: done(op, status) runs later from a device completion, never from here.
 * PUT and DEL are done once durable; GET waits for a value or delete not durable yet. */
int kv_submit(struct kv_store *s, struct kv_op *op);

/* The counters (keys, bytes, compactions...). */
const struct kv_stats *kv_stats(struct kv_store *s);

#endif
