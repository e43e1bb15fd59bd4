/* The crashable in-memory disk of kv's unit tests (see kv_disk.h). */
#include "kv_disk.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 4096u

uint64_t kv_disk_rand(struct kv_disk *d)
{
	/* xorshift64* */
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return d->rng * 2685821657736338717ull;
}

static void disk_submit(void *ctx, enum kv_io_op op, uint64_t block, uint32_t count, void *buf,
			kv_io_done_fn done, void *arg)
{
	struct kv_disk *d = ctx;
	if (op == KV_IO_FLUSH) {
		ck_assert(block == 0 && count == 0 && buf == NULL);
	} else {
		ck_assert(op == KV_IO_READ || op == KV_IO_WRITE);
		ck_assert_uint_ge(count, 1);
		ck_assert_uint_le(count, KV_IO_BLOCKS_MAX);
		ck_assert_uint_le(block, d->blocks);
		ck_assert_uint_le(count, d->blocks - block);
		ck_assert_ptr_nonnull(buf);
	}
	ck_assert_uint_lt(d->nq, KV_IO_MAX);
	if (d->nq == d->capq) {
		d->capq = d->capq ? 2 * d->capq : 16;
		d->q = realloc(d->q, d->capq * sizeof(*d->q));
		ck_assert_ptr_nonnull(d->q);
	}
	d->q[d->nq++] = (struct kv_disk_req){op, block, count, buf, done, arg};
	if (d->nq > d->max_outstanding)
		d->max_outstanding = d->nq;
}

struct kv_disk *kv_disk_new(uint64_t blocks, uint64_t seed)
{
	struct kv_disk *d = calloc(1, sizeof(*d));
	ck_assert_ptr_nonnull(d);
	d->blocks = blocks;
	d->durable = calloc(blocks, BLOCK);
	d->current = calloc(blocks, BLOCK);
	ck_assert(d->durable && d->current);
	d->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	d->dev = (struct kv_blockdev){.blocks = blocks, .submit = disk_submit, .ctx = d};
	return d;
}

void kv_disk_free(struct kv_disk *d)
{
	free(d->durable);
	free(d->current);
	free(d->vol);
	free(d->q);
	free(d);
}

static void remember_write(struct kv_disk *d, uint64_t block, const uint8_t *data)
{
	if (d->nvol == d->capvol) {
		d->capvol = d->capvol ? 2 * d->capvol : 64;
		d->vol = realloc(d->vol, d->capvol * sizeof(*d->vol));
		ck_assert_ptr_nonnull(d->vol);
	}
	d->vol[d->nvol].block = block;
	memcpy(d->vol[d->nvol].data, data, BLOCK);
	d->nvol++;
}

/* Whether the next WRITE or FLUSH fails (and so every one after it). */
static int write_fails(struct kv_disk *d)
{
	if (d->fail_in <= 0)
		return 0;
	if (d->fail_in > 1) {
		d->fail_in--;
		return 0;
	}
	return 1;
}

static int perform(struct kv_disk *d, const struct kv_disk_req *r)
{
	uint8_t *at = d->current + r->block * BLOCK;
	switch (r->op) {
	case KV_IO_READ:
		d->reads++;
		memcpy(r->buf, at, (size_t)r->count * BLOCK);
		return 0;
	case KV_IO_WRITE:
		if (d->dev.readonly)
			return KV_DISK_E_READONLY;
		if (write_fails(d))
			return KV_DISK_E_IO;
		d->writes++;
		memcpy(at, r->buf, (size_t)r->count * BLOCK);
		for (uint32_t i = 0; i < r->count; i++)
			remember_write(d, r->block + i,
				       (const uint8_t *)r->buf + (size_t)i * BLOCK);
		return 0;
	case KV_IO_FLUSH:
		if (write_fails(d))
			return KV_DISK_E_IO;
		d->flushes++;
		for (size_t i = 0; i < d->nvol; i++)
			memcpy(d->durable + d->vol[i].block * BLOCK, d->vol[i].data, BLOCK);
		d->nvol = 0;
		return 0;
	}
	ck_abort_msg("bad op %d", (int)r->op);
	return -1;
}

int kv_disk_step(struct kv_disk *d)
{
	if (d->nq == 0)
		return 0;
	/* Any request before the first FLUSH may finish next; a FLUSH only once it is first. */
	size_t eligible = 0;
	while (eligible < d->nq && d->q[eligible].op != KV_IO_FLUSH)
		eligible++;
	size_t i = eligible == 0 ? 0 : (size_t)(kv_disk_rand(d) % eligible);
	struct kv_disk_req r = d->q[i];
	memmove(&d->q[i], &d->q[i + 1], (d->nq - i - 1) * sizeof(*d->q));
	d->nq--;
	int status = perform(d, &r);
	r.done(status, r.arg);
	return 1;
}

void kv_disk_run(struct kv_disk *d)
{
	while (kv_disk_step(d))
		;
}

/* Puts the block write data in the durable image whole, not at all, or sector by sector. */
static void maybe_persist(struct kv_disk *d, uint64_t block, const uint8_t *data)
{
	uint8_t *at = d->durable + block * BLOCK;
	switch (kv_disk_rand(d) % 3) {
	case 0: break;
	case 1: memcpy(at, data, BLOCK); break;
	default:
		for (size_t s = 0; s < BLOCK; s += KV_DISK_SECTOR)
			if (kv_disk_rand(d) & 1)
				memcpy(at + s, data + s, KV_DISK_SECTOR);
	}
}

void kv_disk_crash(struct kv_disk *d)
{
	for (size_t i = 0; i < d->nvol; i++)
		maybe_persist(d, d->vol[i].block, d->vol[i].data);
	/* A write not completed may have reached the disk too, all or part of it. */
	for (size_t i = 0; i < d->nq; i++)
		if (d->q[i].op == KV_IO_WRITE && !d->dev.readonly)
			for (uint32_t b = 0; b < d->q[i].count; b++)
				maybe_persist(d, d->q[i].block + b,
					      (const uint8_t *)d->q[i].buf + (size_t)b * BLOCK);
	d->nvol = 0;
	d->nq = 0;
	memcpy(d->current, d->durable, (size_t)d->blocks * BLOCK);
}

uint8_t *kv_disk_block(struct kv_disk *d, uint64_t block)
{
	ck_assert_uint_lt(block, d->blocks);
	return d->current + block * BLOCK;
}

void kv_disk_sync(struct kv_disk *d)
{
	d->nvol = 0;
	memcpy(d->durable, d->current, (size_t)d->blocks * BLOCK);
}
