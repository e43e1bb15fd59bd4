/* kv's requests: GET reads a record back and checks it, PUT and DEL append records to the
 * gathering batch, and one batch at a time is written and flushed (group commit). Requests
 * that cannot run yet wait in order; those that would see a state not yet durable wait for
 * the next flush. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kv_store.h"
#include "kv_store_internal.h"

enum { KV_WAIT = -1 }; /* internal: the request cannot run yet */

const char *kv_status_str(int status)
{
	switch (status) {
	case KV_OK: return "ok";
	case KV_PENDING: return "pending";
	case KV_NOTFOUND: return "not found";
	case KV_EINVAL: return "bad key or value length";
	case KV_EROFS: return "read-only store";
	case KV_ELOGFULL: return "store full (no room on disk)";
	case KV_EINDEXFULL: return "store full (too many keys)";
	case KV_EIO: return "disk error";
	case KV_ETOOSMALL: return "disk too small";
	}
	return "unknown error";
}

const struct kv_stats *kv_stats(struct kv_store *s)
{
	s->stats.live_bytes = s->live_bytes;
	s->stats.log_bytes = s->tail;
	s->stats.capacity = s->region_bytes;
	return &s->stats;
}

static void queue_push(struct kv_op **head, struct kv_op **tail, struct kv_op *op)
{
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static struct kv_op *queue_take_all(struct kv_op **head, struct kv_op **tail)
{
	struct kv_op *all = *head;
	*head = *tail = NULL;
	return all;
}

static void finish(struct kv_op *op, int status)
{
	op->done(op, status);
}

/* Fails every request of the list with KV_EIO. */
static void fail_all(struct kv_op *op)
{
	while (op) {
		struct kv_op *next = op->next;
		finish(op, KV_EIO);
		op = next;
	}
}

void kv_store_break(struct kv_store *s)
{
	s->state = KV_ST_BROKEN;
	struct kv_op *lists[4] = {NULL, NULL, NULL, NULL};
	if (s->flight)
		lists[0] = queue_take_all(&s->flight->head, &s->flight->tail);
	s->flight = NULL;
	lists[1] = queue_take_all(&s->acc->head, &s->acc->tail);
	lists[2] = queue_take_all(&s->durq_head, &s->durq_tail);
	lists[3] = queue_take_all(&s->waitq_head, &s->waitq_tail);
	for (int i = 0; i < 4; i++)
		fail_all(lists[i]);
}

void kv_store_use_sb(struct kv_store *s, const struct kv_sb *sb)
{
	s->sb = *sb;
	s->region_first_block = kv_region_first_block(sb, sb->region);
	s->region_bytes = (uint64_t)sb->region_blocks * KV_BLOCK;
}

void kv_store_set_tail(struct kv_store *s, struct kv_batch *b, uint64_t tail, const uint8_t *head)
{
	b->block = tail / KV_BLOCK;
	b->fill = (size_t)(tail % KV_BLOCK);
	if (b->fill && head != b->buf)
		memmove(b->buf, head, b->fill);
	b->head = b->tail = NULL;
	s->acc = b;
	s->flight = NULL;
	s->tail = tail;
}

/* ---- superblock writes ---- */

static void sb_flushed(int status, void *arg)
{
	struct kv_store *s = arg;
	s->sb_done(s, status);
}

static void sb_written(int status, void *arg)
{
	struct kv_store *s = arg;
	if (status != 0) {
		s->sb_done(s, status);
		return;
	}
	s->dev.submit(s->dev.ctx, KV_IO_FLUSH, 0, 0, NULL, sb_flushed, s);
}

void kv_store_write_sb(struct kv_store *s, void (*done)(struct kv_store *s, int status))
{
	s->sb_done = done;
	kv_sb_encode(s->sb_buf, &s->next_sb);
	s->dev.submit(s->dev.ctx, KV_IO_WRITE, s->next_sb.sb_seq % KV_SB_BLOCKS, 1, s->sb_buf,
		      sb_written, s);
}

/* ---- batches: gather, write, flush, acknowledge ---- */

static void batch_flushed(int status, void *arg)
{
	struct kv_store *s = arg;
	if (status != 0) {
		kv_store_break(s);
		return;
	}
	struct kv_batch *b = s->flight;
	s->flight = NULL;
	s->durable_seq = b->last_seq;
	struct kv_op *op = queue_take_all(&b->head, &b->tail);
	while (op) {
		struct kv_op *next = op->next;
		if (op->type == KV_OP_DEL) {
			/* The delete is durable: its entry can go, unless a PUT came since. */
			struct kv_entry *e = kv_index_find(&s->index, op->key, op->klen);
			if (e && e->deleted && e->seq == op->seq)
				kv_index_remove(&s->index, e);
		}
		finish(op, KV_OK);
		op = next;
	}
	kv_store_dispatch(s);
}

static void batch_written(int status, void *arg)
{
	struct kv_store *s = arg;
	if (status != 0) {
		kv_store_break(s);
		return;
	}
	s->dev.submit(s->dev.ctx, KV_IO_FLUSH, 0, 0, NULL, batch_flushed, s);
}

/* Writes the gathered batch; the other buffer gathers on from the block holding the tail. */
static void batch_write(struct kv_store *s)
{
	struct kv_batch *b = s->acc;
	struct kv_batch *next = b == &s->batch[0] ? &s->batch[1] : &s->batch[0];
	size_t whole = b->fill & ~(size_t)(KV_BLOCK - 1);
	size_t blocks = (b->fill + KV_BLOCK - 1) / KV_BLOCK;
	next->block = b->block + whole / KV_BLOCK;
	next->fill = b->fill - whole;
	memcpy(next->buf, b->buf + whole, next->fill);
	next->head = next->tail = NULL;
	/* The last block's rest on disk is stale: write zeros there, not old buffer bytes. */
	memset(b->buf + b->fill, 0, blocks * KV_BLOCK - b->fill);
	s->flight = b;
	s->acc = next;
	s->stats.batches++;
	s->dev.submit(s->dev.ctx, KV_IO_WRITE, s->region_first_block + b->block, (uint32_t)blocks,
		      b->buf, batch_written, s);
}

/* Starts the I/O that is due: the gathered batch once none is in flight, compaction once the
 * store is idle. */
static void store_kick(struct kv_store *s)
{
	if (s->state != KV_ST_READY)
		return;
	if (!s->flight && s->acc->head)
		batch_write(s);
	if (s->compact_wanted && !s->flight && !s->acc->head && s->reads == 0)
		kv_compact_start(s);
}

/* Appends op's record (PUT, or DEL of e) to the gathering batch and updates the index. */
static int append(struct kv_store *s, struct kv_op *op, struct kv_entry *e)
{
	size_t vlen = op->type == KV_OP_PUT ? op->vlen : 0;
	uint32_t size = kv_rec_size(op->klen, vlen);
	if (s->tail + size > s->region_bytes) {
		/* Compaction must leave room for this record, and (for a PUT) a sixteenth of a
		 * region, so that a nearly full store is refused rather than compacted per put. */
		uint64_t reserve = op->type == KV_OP_PUT ? s->region_bytes / 16 : 0;
		if (s->live_bytes + size + reserve > s->region_bytes)
			return KV_ELOGFULL;
		s->compact_wanted = 1;
		return KV_WAIT;
	}
	struct kv_batch *b = s->acc;
	if (b->fill + size > sizeof(b->buf))
		return KV_WAIT; /* gathered in full: the next batch takes it */
	if (op->type == KV_OP_PUT) {
		int was_live = e && !e->deleted;
		if (!e && !(e = kv_index_insert(&s->index, op->key, op->klen)))
			return KV_EINDEXFULL;
		if (was_live)
			s->live_bytes -= e->size;
		else
			s->stats.keys++;
		s->live_bytes += size;
		e->deleted = 0;
		s->stats.puts++;
	} else {
		s->live_bytes -= e->size;
		s->stats.keys--;
		e->deleted = 1;
		s->stats.dels++;
	}
	op->seq = s->next_seq++;
	e->seq = op->seq;
	e->loc = s->tail;
	e->size = size;
	struct kv_rec h = {
		.store_id = s->sb.store_id,
		.seq = op->seq,
		.gen = s->sb.gen,
		.vlen = (uint32_t)vlen,
		.klen = (uint16_t)op->klen,
		.type = op->type == KV_OP_PUT ? KV_REC_PUT : KV_REC_DEL,
	};
	kv_rec_encode(b->buf + b->fill, &h, op->key, op->value);
	b->fill += size;
	b->last_seq = op->seq;
	s->tail += size;
	s->stats.records++;
	queue_push(&b->head, &b->tail, op);
	return KV_PENDING;
}

/* ---- GET ---- */

static void get_read_done(int status, void *arg)
{
	struct kv_op *op = arg;
	struct kv_store *s = op->store;
	s->reads--;
	int result = KV_EIO;
	struct kv_rec rec;
	const uint8_t *p = op->buf + op->loc % KV_BLOCK;
	/* The record read back must be the one indexed, whole: the disk is not trusted. */
	if (status == 0 && kv_rec_decode(p, op->size, &rec) == KV_REC_OK && rec.size == op->size &&
	    rec.type == KV_REC_PUT && rec.seq == op->seq && rec.store_id == s->sb.store_id &&
	    rec.klen == op->klen && memcmp(rec.key, op->key, op->klen) == 0) {
		op->result = rec.value;
		op->result_len = rec.vlen;
		result = KV_OK;
	}
	finish(op, result);
	kv_store_dispatch(s);
}

static int get_start(struct kv_store *s, struct kv_op *op, const struct kv_entry *e)
{
	if (s->reads >= KV_READS_MAX)
		return KV_WAIT;
	op->seq = e->seq;
	op->loc = e->loc;
	op->size = e->size;
	uint64_t first = e->loc / KV_BLOCK, last = (e->loc + e->size - 1) / KV_BLOCK;
	s->reads++;
	s->stats.gets++;
	s->dev.submit(s->dev.ctx, KV_IO_READ, s->region_first_block + first,
		      (uint32_t)(last - first + 1), op->buf, get_read_done, op);
	return KV_PENDING;
}

/* Runs op as far as it can now: a result, KV_PENDING (it is the store's), or KV_WAIT. */
static int store_try(struct kv_store *s, struct kv_op *op)
{
	if (s->state != KV_ST_READY || s->compact_wanted)
		return KV_WAIT;
	struct kv_entry *e = kv_index_find(&s->index, op->key, op->klen);
	if (op->type == KV_OP_PUT)
		return append(s, op, e);
	if (!e)
		return KV_NOTFOUND;
	if (e->seq > s->durable_seq) {
		/* What it would see is not durable yet: answer once it is. */
		queue_push(&s->durq_head, &s->durq_tail, op);
		return KV_PENDING;
	}
	if (e->deleted)
		return KV_NOTFOUND;
	return op->type == KV_OP_GET ? get_start(s, op, e) : append(s, op, e);
}

void kv_store_dispatch(struct kv_store *s)
{
	if (s->state == KV_ST_BROKEN)
		return;
	/* Those waiting for durability first; they may wait again. */
	struct kv_op *op = queue_take_all(&s->durq_head, &s->durq_tail);
	while (op) {
		struct kv_op *next = op->next;
		int r = store_try(s, op);
		if (r == KV_WAIT)
			queue_push(&s->waitq_head, &s->waitq_tail, op);
		else if (r != KV_PENDING)
			finish(op, r);
		op = next;
	}
	while ((op = s->waitq_head) && s->state == KV_ST_READY) {
		s->waitq_head = op->next;
		if (!s->waitq_head)
			s->waitq_tail = NULL;
		int r = store_try(s, op);
		if (r == KV_WAIT) {
			op->next = s->waitq_head; /* back in front: order is kept */
			s->waitq_head = op;
			if (!s->waitq_tail)
				s->waitq_tail = op;
			break;
		}
		if (r != KV_PENDING)
			finish(op, r);
	}
	store_kick(s);
}

int kv_submit(struct kv_store *s, struct kv_op *op)
{
	op->store = s;
	op->next = NULL;
	op->seq = 0;
	op->result = NULL;
	op->result_len = 0;
	if (op->klen == 0 || op->klen > KV_KEY_MAX ||
	    (op->type == KV_OP_PUT && op->vlen > KV_VALUE_MAX))
		return KV_EINVAL;
	if (op->type != KV_OP_GET && s->readonly)
		return KV_EROFS;
	if (s->state == KV_ST_BROKEN)
		return KV_EIO;
	/* Behind others that wait, so that requests run in the order they came. */
	int r = s->waitq_head ? KV_WAIT : store_try(s, op);
	if (r == KV_WAIT) {
		queue_push(&s->waitq_head, &s->waitq_tail, op);
		r = KV_PENDING;
	}
	store_kick(s);
	return r;
}
