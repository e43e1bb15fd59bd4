/* kv's compaction: the live records are copied, in log order, into the other region under a new
 * generation, flushed, and only then made current by a superblock write and flush. A crash
 * before that flush leaves the old region current and untouched; after it, the new one is
 * whole. Requests wait meanwhile. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kv_store.h"
#include "kv_store_internal.h"

static void compact_switched(struct kv_store *s, int status)
{
	if (status != 0) {
		kv_store_break(s);
		return;
	}
	struct kv_batch *out = &s->batch[0];
	kv_store_use_sb(s, &s->next_sb);
	s->next_seq = s->copy_seq;
	s->durable_seq = s->copy_seq - 1;
	s->live_bytes = s->copied_bytes;
	kv_store_set_tail(s, out, out->block * KV_BLOCK + out->fill, out->buf);
	s->stats.records = s->copied; /* the new region holds the live records only */
	s->stats.compactions++;
	s->state = KV_ST_READY;
	kv_store_dispatch(s);
}

static void compact_flushed(int status, void *arg)
{
	struct kv_store *s = arg;
	if (status != 0) {
		kv_store_break(s);
		return;
	}
	kv_store_write_sb(s, compact_switched);
}

static void out_written(int status, void *arg);

/* Writes the output's whole blocks, or (final) all of it, then flushes. */
static void out_write(struct kv_store *s, int final)
{
	struct kv_batch *out = &s->batch[0];
	size_t blocks = final ? (out->fill + KV_BLOCK - 1) / KV_BLOCK : out->fill / KV_BLOCK;
	s->compact_final = final;
	if (blocks == 0) {
		s->dev.submit(s->dev.ctx, KV_IO_FLUSH, 0, 0, NULL, compact_flushed, s);
		return;
	}
	if (final) /* the last block's rest on disk is stale: zeros instead */
		memset(out->buf + out->fill, 0, blocks * KV_BLOCK - out->fill);
	uint64_t first = kv_region_first_block(&s->next_sb, s->next_sb.region);
	s->dev.submit(s->dev.ctx, KV_IO_WRITE, first + out->block, (uint32_t)blocks, out->buf,
		      out_written, s);
}

/* The output's whole blocks are on disk: its partial block moves to the front. */
static void out_written(int status, void *arg)
{
	struct kv_store *s = arg;
	struct kv_batch *out = &s->batch[0];
	if (status != 0) {
		kv_store_break(s);
		return;
	}
	size_t whole = out->fill & ~(size_t)(KV_BLOCK - 1);
	memmove(out->buf, out->buf + whole, out->fill - whole);
	out->block += whole / KV_BLOCK;
	out->fill -= whole;
	if (s->compact_final)
		s->dev.submit(s->dev.ctx, KV_IO_FLUSH, 0, 0, NULL, compact_flushed, s);
	else
		kv_scan_resume(&s->scan);
}

/* A record of the old log: copied if it is its key's latest. */
static int compact_record(struct kv_scan *sc, const struct kv_rec *rec, uint64_t loc, void *arg)
{
	(void)sc, (void)loc;
	struct kv_store *s = arg;
	struct kv_entry *e = kv_index_find(&s->index, rec->key, rec->klen);
	if (rec->type != KV_REC_PUT || !e || e->deleted || e->seq != rec->seq)
		return 0; /* overwritten or deleted since */
	struct kv_batch *out = &s->batch[0];
	if (out->fill + rec->size > sizeof(out->buf)) {
		out_write(s, 0);
		return 1; /* again once the output has room */
	}
	struct kv_rec h = *rec;
	h.seq = s->copy_seq++;
	h.gen = s->next_sb.gen;
	kv_rec_encode(out->buf + out->fill, &h, rec->key, rec->value);
	e->seq = h.seq;
	e->loc = out->block * KV_BLOCK + out->fill;
	out->fill += rec->size;
	s->copied++;
	s->copied_bytes += rec->size;
	return 0;
}

static void compact_scanned(struct kv_scan *sc, int status, void *arg)
{
	struct kv_store *s = arg;
	/* Short of the tail, or a key missed: the log does not read back as it was written. */
	if (status != 0 || sc->pos != s->tail || s->copied != s->stats.keys) {
		kv_store_break(s);
		return;
	}
	out_write(s, 1);
}

void kv_compact_start(struct kv_store *s)
{
	s->state = KV_ST_COMPACTING;
	s->compact_wanted = 0;
	s->next_sb = s->sb;
	s->next_sb.sb_seq++;
	s->next_sb.gen++;
	s->next_sb.base_gen = s->next_sb.gen;
	s->next_sb.region = 1 - s->sb.region;
	s->next_sb.first_seq = s->next_seq;
	s->copy_seq = s->next_seq;
	s->copied = 0;
	s->copied_bytes = 0;
	struct kv_batch *out = &s->batch[0];
	out->block = 0;
	out->fill = 0;
	s->acc = out; /* empty: nothing was gathered */
	struct kv_scan_params p = {
		.first_block = s->region_first_block,
		.limit = s->tail,
		.store_id = s->sb.store_id,
		.base_gen = s->sb.base_gen,
		.max_gen = s->sb.gen,
		.first_seq = s->sb.first_seq,
	};
	kv_scan_start(&s->scan, &s->dev, &p, compact_record, compact_scanned, s);
}
