/* The log scanner (see kv_scan.h): a window of blocks slid along the region, records decoded in
 * place, the window refilled when a record runs past its end. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kv_scan.h"

static void scan_run(struct kv_scan *sc);

static void scan_read_done(int status, void *arg)
{
	struct kv_scan *sc = arg;
	if (status != 0) {
		sc->done(sc, status, sc->arg);
		return;
	}
	scan_run(sc);
}

/* Slides the window to the block holding pos and reads on. Returns 0 if the limit was read
 * already (nothing more to read), else 1: scan_run continues when the read is done. */
static int scan_read_more(struct kv_scan *sc)
{
	uint64_t end_block = (sc->p.limit + KV_BLOCK - 1) / KV_BLOCK;
	uint64_t next_block = (sc->buf_base + sc->buf_len) / KV_BLOCK;
	if (next_block >= end_block)
		return 0;
	uint64_t keep_from = sc->pos & ~(uint64_t)(KV_BLOCK - 1);
	size_t shift = (size_t)(keep_from - sc->buf_base);
	memmove(sc->buf, sc->buf + shift, sc->buf_len - shift);
	sc->buf_base = keep_from;
	sc->buf_len -= shift;
	/* What is kept is a part of one record and the block it starts in: the window has room. */
	uint64_t count = (sizeof(sc->buf) - sc->buf_len) / KV_BLOCK;
	if (count > end_block - next_block)
		count = end_block - next_block;
	if (count > KV_IO_BLOCKS_MAX)
		count = KV_IO_BLOCKS_MAX;
	uint8_t *into = sc->buf + sc->buf_len;
	sc->buf_len += (size_t)count * KV_BLOCK;
	sc->dev->submit(sc->dev->ctx, KV_IO_READ, sc->p.first_block + next_block, (uint32_t)count,
			into, scan_read_done, sc);
	return 1;
}

/* Whether rec, decoded at pos, continues the log. */
static int continues_log(const struct kv_scan *sc, const struct kv_rec *rec)
{
	return rec->store_id == sc->p.store_id && rec->seq == sc->seq && rec->gen >= sc->gen &&
	       rec->gen >= sc->p.base_gen && rec->gen <= sc->p.max_gen;
}

static void scan_run(struct kv_scan *sc)
{
	for (;;) {
		if (sc->pos >= sc->p.limit)
			break;
		size_t off = (size_t)(sc->pos - sc->buf_base);
		size_t avail = sc->buf_len - off;
		if (avail > sc->p.limit - sc->pos)
			avail = (size_t)(sc->p.limit - sc->pos);
		struct kv_rec rec = {.size = KV_REC_HEADER};
		enum kv_rec_result r = kv_rec_decode(sc->buf + off, avail, &rec);
		if (r == KV_REC_SHORT) {
			if (rec.size > sc->p.limit - sc->pos)
				break; /* it would run past the region's end */
			if (scan_read_more(sc))
				return;
			break;
		}
		if (r == KV_REC_BAD || !continues_log(sc, &rec))
			break;
		if (sc->record(sc, &rec, sc->pos, sc->arg))
			return; /* paused: this record again on resume */
		sc->pos += rec.size;
		sc->seq++;
		sc->gen = rec.gen;
		sc->records++;
	}
	sc->done(sc, 0, sc->arg);
}

void kv_scan_start(struct kv_scan *sc, const struct kv_blockdev *dev,
		   const struct kv_scan_params *p, kv_scan_record_fn record, kv_scan_done_fn done,
		   void *arg)
{
	sc->dev = dev;
	sc->p = *p;
	sc->record = record;
	sc->done = done;
	sc->arg = arg;
	sc->pos = 0;
	sc->seq = p->first_seq;
	sc->gen = p->base_gen;
	sc->records = 0;
	sc->buf_base = 0;
	sc->buf_len = 0;
	scan_run(sc);
}

void kv_scan_resume(struct kv_scan *sc)
{
	scan_run(sc);
}

const uint8_t *kv_scan_tail_bytes(const struct kv_scan *sc)
{
	return sc->buf + ((sc->pos & ~(uint64_t)(KV_BLOCK - 1)) - sc->buf_base);
}
