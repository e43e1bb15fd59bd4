/* Reads a log region front to back and hands over each record that continues the log, for
 * recovery (which builds the index) and compaction (which copies the live records). Whatever is
 * on the disk, it reads only inside the region and stops at the first record that does not
 * continue the log: a bad checksum or length, another store's, a gen outside
 * [base_gen, max_gen] or below its predecessor's, or a seq that is not the next. */
#ifndef KV_SCAN_H
#define KV_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "kv_blockdev.h"
#include "kv_format.h"

#define KV_SCAN_BLOCKS 64u /* the read window: larger than any record plus a block */

struct kv_scan;

/* Each record that continues the log, at region offset loc; rec points into the window. Return
 * 0 to go on, or 1 to pause: kv_scan_resume later offers the same record again. */
typedef int (*kv_scan_record_fn)(struct kv_scan *sc, const struct kv_rec *rec, uint64_t loc,
				 void *arg);
/* The end: status 0 with sc->pos the end of the last record taken, or the device's failure. */
typedef void (*kv_scan_done_fn)(struct kv_scan *sc, int status, void *arg);

struct kv_scan_params {
	uint64_t first_block; /* the region's first block on the device */
	uint64_t limit;	      /* bytes of the region to scan */
	uint64_t store_id, base_gen, max_gen;
	uint64_t first_seq; /* the first record's seq */
};

struct kv_scan {
	const struct kv_blockdev *dev;
	struct kv_scan_params p;
	kv_scan_record_fn record;
	kv_scan_done_fn done;
	void *arg;
	uint64_t pos;	   /* region offset of the next record */
	uint64_t seq;	   /* the seq it must have */
	uint64_t gen;	   /* the last record's gen (base_gen before the first) */
	uint64_t records;  /* records taken */
	uint64_t buf_base; /* region offset of buf[0], block-aligned */
	size_t buf_len;	   /* bytes read into buf, whole blocks */
	uint8_t buf[KV_SCAN_BLOCKS * KV_BLOCK];
};

/* Starts scanning; record and done run from the device's completions (done also from here if
 * limit is 0). */
void kv_scan_start(struct kv_scan *sc, const struct kv_blockdev *dev,
		   const struct kv_scan_params *p, kv_scan_record_fn record, kv_scan_done_fn done,
		   void *arg);

/* Continues a paused scan. */
void kv_scan_resume(struct kv_scan *sc);

/* After done with status 0: the pos % KV_BLOCK bytes of pos's block that lie before pos. */
const uint8_t *kv_scan_tail_bytes(const struct kv_scan *sc);

#endif
