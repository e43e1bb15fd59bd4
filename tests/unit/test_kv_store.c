/* kv's storage engine on the in-memory disk: formats, requests, group commit, recovery after a
 * restart, compaction, the limits, read-only disks, failing disks and hostile images. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_crc32.h"
#include "kv_disk.h"
#include "kv_format.h"
#include "kv_store.h"
#include "kv_util.h"
#include "unit.h"

#define SMALL_DISK (KV_SB_BLOCKS + 2 * KV_REGION_MIN_BLOCKS) /* the smallest: 520 KiB */

static uint8_t value_buf[KV_VALUE_MAX + 1], got_buf[KV_VALUE_MAX];

/* GET key must return exactly the value number id of len bytes. */
static void expect_value(struct kv_store *s, struct kv_disk *d, const char *key, size_t len,
			 uint64_t id)
{
	size_t got_len = 0;
	int r = kvt_get(s, d, key, got_buf, &got_len);
	ck_assert_msg(r == KV_OK, "GET %s: %s", key, kv_status_str(r));
	ck_assert_uint_eq(got_len, len);
	kvt_value(value_buf, len, id);
	ck_assert_msg(memcmp(got_buf, value_buf, len) == 0, "GET %s: wrong bytes", key);
}

static void expect_absent(struct kv_store *s, struct kv_disk *d, const char *key)
{
	size_t len;
	ck_assert_int_eq(kvt_get(s, d, key, got_buf, &len), KV_NOTFOUND);
}

static int put_value(struct kv_store *s, struct kv_disk *d, const char *key, size_t len,
		     uint64_t id)
{
	kvt_value(value_buf, len, id);
	return kvt_put(s, d, key, value_buf, len);
}

START_TEST(test_kv_crc32)
{
	ck_assert_uint_eq(kv_crc32(0, "123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(kv_crc32(0, "", 0), 0);
	ck_assert_uint_eq(kv_crc32(kv_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
	static const uint8_t zeros[32];
	ck_assert_uint_eq(kv_crc32(0, zeros, 32), 0x190a55adu);
}
END_TEST

START_TEST(test_kv_record_format)
{
	static uint8_t rec[KV_REC_MAX];
	struct kv_rec h = {
		.store_id = 7, .seq = 42, .gen = 3, .vlen = 5, .klen = 3, .type = KV_REC_PUT};
	kv_rec_encode(rec, &h, "abc", "hello");
	size_t size = kv_rec_size(3, 5);
	struct kv_rec d;
	ck_assert_int_eq(kv_rec_decode(rec, size, &d), KV_REC_OK);
	ck_assert_uint_eq(d.store_id, 7);
	ck_assert_uint_eq(d.seq, 42);
	ck_assert_uint_eq(d.gen, 3);
	ck_assert_uint_eq(d.size, size);
	ck_assert_int_eq(memcmp(d.key, "abc", 3), 0);
	ck_assert_int_eq(memcmp(d.value, "hello", 5), 0);
	/* short of the whole record, of the header, of the magic */
	ck_assert_int_eq(kv_rec_decode(rec, size - 1, &d), KV_REC_SHORT);
	ck_assert_uint_eq(d.size, size);
	ck_assert_int_eq(kv_rec_decode(rec, 10, &d), KV_REC_SHORT);
	ck_assert_int_eq(kv_rec_decode(rec, 2, &d), KV_REC_SHORT);
	/* every single-bit flip is caught */
	for (size_t i = 0; i < size * 8; i++) {
		rec[i / 8] ^= (uint8_t)(1u << (i % 8));
		enum kv_rec_result r = kv_rec_decode(rec, size, &d);
		ck_assert_msg(r != KV_REC_OK, "flip of bit %zu not caught", i);
		rec[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	/* lengths out of bounds are refused before the checksum is even looked at */
	struct kv_rec bad = h;
	bad.klen = 0;
	kv_rec_encode(rec, &bad, "", "hello");
	ck_assert_int_eq(kv_rec_decode(rec, KV_REC_MAX, &d), KV_REC_BAD);
	memset(rec, 0xff, KV_REC_HEADER);
	memcpy(rec, "KVR1", 4);
	ck_assert_int_eq(kv_rec_decode(rec, KV_REC_MAX, &d), KV_REC_BAD);
	bad = h;
	bad.type = KV_REC_DEL; /* a DEL with a value */
	kv_rec_encode(rec, &bad, "abc", "hello");
	ck_assert_int_eq(kv_rec_decode(rec, KV_REC_MAX, &d), KV_REC_BAD);
	/* the largest record */
	static uint8_t key[KV_KEY_MAX];
	memset(key, 'k', sizeof(key));
	kvt_value(value_buf, KV_VALUE_MAX, 1);
	struct kv_rec big = {.store_id = 1,
			     .seq = 1,
			     .gen = 1,
			     .vlen = KV_VALUE_MAX,
			     .klen = KV_KEY_MAX,
			     .type = KV_REC_PUT};
	kv_rec_encode(rec, &big, key, value_buf);
	ck_assert_int_eq(kv_rec_decode(rec, KV_REC_MAX, &d), KV_REC_OK);
	ck_assert_uint_eq(d.size, KV_REC_MAX);
}
END_TEST

START_TEST(test_kv_superblock_format)
{
	static uint8_t block[KV_BLOCK];
	struct kv_sb sb = {.sb_seq = 5,
			   .store_id = 99,
			   .gen = 9,
			   .base_gen = 4,
			   .first_seq = 100,
			   .region = 1,
			   .region_blocks = 100};
	kv_sb_encode(block, &sb);
	struct kv_sb d;
	ck_assert_int_eq(kv_sb_decode(block, 202, &d), 0);
	ck_assert_int_eq(memcmp(&d, &sb, sizeof(sb)), 0);
	ck_assert_int_eq(kv_sb_decode(block, 201, &d), -1); /* the disk is too small for it */
	block[20] ^= 1;
	ck_assert_int_eq(kv_sb_decode(block, 202, &d), -1);
	/* a checksum is not enough: the fields must make sense */
	struct kv_sb bad[] = {sb, sb, sb, sb};
	bad[0].region = 2;
	bad[1].base_gen = 10;
	bad[2].region_blocks = KV_REGION_MIN_BLOCKS - 1;
	bad[3].first_seq = 0;
	for (size_t i = 0; i < 4; i++) {
		kv_sb_encode(block, &bad[i]);
		ck_assert_int_eq(kv_sb_decode(block, 1u << 20, &d), -1);
	}
	ck_assert_uint_eq(kv_layout_region_blocks(SMALL_DISK - 1), 0);
	ck_assert_uint_eq(kv_layout_region_blocks(SMALL_DISK), KV_REGION_MIN_BLOCKS);
	ck_assert_uint_eq(kv_layout_region_blocks(16384), 8191);
}
END_TEST

START_TEST(test_kv_basics)
{
	struct kv_disk *d = kv_disk_new(16384, 1);
	struct kv_store *s = kvt_mount_ok(d, KV_INDEX_MAX);
	ck_assert_int_eq(kv_stats(s)->formatted, 1);
	ck_assert_uint_eq(kv_stats(s)->keys, 0);
	expect_absent(s, d, "nothing");
	ck_assert_int_eq(kvt_del(s, d, "nothing"), KV_NOTFOUND);
	ck_assert_int_eq(put_value(s, d, "a", 10, 1), KV_OK);
	ck_assert_int_eq(put_value(s, d, "b", 0, 2), KV_OK);
	expect_value(s, d, "a", 10, 1);
	expect_value(s, d, "b", 0, 2);
	ck_assert_int_eq(put_value(s, d, "a", 5000, 3), KV_OK); /* overwrite, across blocks */
	expect_value(s, d, "a", 5000, 3);
	ck_assert_uint_eq(kv_stats(s)->keys, 2);
	ck_assert_int_eq(kvt_del(s, d, "b"), KV_OK);
	expect_absent(s, d, "b");
	ck_assert_int_eq(kvt_del(s, d, "b"), KV_NOTFOUND);
	ck_assert_uint_eq(kv_stats(s)->keys, 1);
	ck_assert_uint_eq(kv_stats(s)->live_bytes, kv_rec_size(1, 5000));

	/* the limits */
	char key[KV_KEY_MAX + 2];
	memset(key, 'k', sizeof(key));
	key[KV_KEY_MAX] = '\0';
	ck_assert_int_eq(put_value(s, d, key, KV_VALUE_MAX, 4), KV_OK);
	expect_value(s, d, key, KV_VALUE_MAX, 4);
	key[KV_KEY_MAX] = 'k';
	key[KV_KEY_MAX + 1] = '\0';
	ck_assert_int_eq(put_value(s, d, key, 1, 5), KV_EINVAL);
	ck_assert_int_eq(put_value(s, d, "", 1, 5), KV_EINVAL);
	ck_assert_int_eq(put_value(s, d, "c", KV_VALUE_MAX + 1, 5), KV_EINVAL);
	ck_assert_int_eq(kvt_get(s, d, key, got_buf, &(size_t){0}), KV_EINVAL);

	/* binary keys and values: any byte */
	uint8_t bin[256];
	for (int i = 0; i < 256; i++)
		bin[i] = (uint8_t)i;
	ck_assert_int_eq(kvt_put(s, d, "\x01\xff bin", bin, sizeof(bin)), KV_OK);
	size_t len;
	ck_assert_int_eq(kvt_get(s, d, "\x01\xff bin", got_buf, &len), KV_OK);
	ck_assert_uint_eq(len, 256);
	ck_assert_int_eq(memcmp(got_buf, bin, 256), 0);
	ck_assert_uint_le(d->max_outstanding, KV_IO_MAX);
	free(s);
	kv_disk_free(d);
}
END_TEST

START_TEST(test_kv_restart)
{
	struct kv_disk *d = kv_disk_new(4096, 2);
	struct kv_store *s = kvt_mount_ok(d, KV_INDEX_MAX);
	char key[32];
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		ck_assert_int_eq(put_value(s, d, key, (size_t)(i * 37 % 3000), (uint64_t)i), KV_OK);
	}
	for (int i = 0; i < 300; i += 3) {
		snprintf(key, sizeof(key), "key-%d", i);
		ck_assert_int_eq(kvt_del(s, d, key), KV_OK);
	}
	for (int i = 1; i < 300; i += 3) {
		snprintf(key, sizeof(key), "key-%d", i);
		ck_assert_int_eq(put_value(s, d, key, 77, 1000u + (unsigned)i), KV_OK);
	}
	uint64_t records = kv_stats(s)->records;
	uint64_t log_bytes = kv_stats(s)->log_bytes;
	free(s);
	for (int round = 0; round < 3; round++) {
		s = kvt_mount_ok(d, KV_INDEX_MAX);
		ck_assert_int_eq(kv_stats(s)->formatted, 0);
		ck_assert_uint_eq(kv_stats(s)->recovered_records, records);
		/* STATS's records: the log's, so the recovered ones count (not 0 after a mount) */
		ck_assert_uint_eq(kv_stats(s)->records, records);
		ck_assert_uint_eq(kv_stats(s)->log_bytes, log_bytes);
		ck_assert_uint_eq(kv_stats(s)->keys, 200);
		for (int i = 0; i < 300; i++) {
			snprintf(key, sizeof(key), "key-%d", i);
			if (i % 3 == 0)
				expect_absent(s, d, key);
			else if (i % 3 == 1)
				expect_value(s, d, key, 77, 1000u + (unsigned)i);
			else
				expect_value(s, d, key, (size_t)(i * 37 % 3000), (uint64_t)i);
		}
		/* appends after a remount continue the log */
		snprintf(key, sizeof(key), "round-%d", round);
		ck_assert_int_eq(put_value(s, d, key, 100, 5000u + (unsigned)round), KV_OK);
		ck_assert_int_eq(put_value(s, d, key, 100, 6000u + (unsigned)round), KV_OK);
		records += 2;
		log_bytes += 2 * kv_rec_size(strlen(key), 100);
		ck_assert_uint_eq(kv_stats(s)->records, records);
		free(s);
		s = kvt_mount_ok(d, KV_INDEX_MAX);
		expect_value(s, d, key, 100, 6000u + (unsigned)round);
		ck_assert_int_eq(kvt_del(s, d, key), KV_OK);
		records++;
		log_bytes += kv_rec_size(strlen(key), 0);
		free(s);
	}
	kv_disk_free(d);
}
END_TEST

struct async_op {
	struct kv_op op;
	int status;
	int order;
	uint8_t buf[KV_GET_BUF];
};
static int done_count;

static void async_done(struct kv_op *op, int status)
{
	struct async_op *a = op->arg;
	a->status = status;
	a->order = ++done_count;
}

static void async_init(struct async_op *a, enum kv_op_type type, const char *key, const void *value,
		       size_t vlen)
{
	memset(&a->op, 0, sizeof(a->op));
	a->op.type = type;
	a->op.key = (const uint8_t *)key;
	a->op.klen = strlen(key);
	a->op.value = value;
	a->op.vlen = vlen;
	a->op.buf = a->buf;
	a->op.done = async_done;
	a->op.arg = a;
	a->status = KV_PENDING;
	a->order = 0;
}

START_TEST(test_kv_group_commit)
{
	struct kv_disk *d = kv_disk_new(4096, 3);
	struct kv_store *s = kvt_mount_ok(d, KV_INDEX_MAX);
	static struct async_op ops[20];
	static char keys[20][16];
	uint64_t flushes = d->flushes, batches = kv_stats(s)->batches;
	done_count = 0;
	for (int i = 0; i < 20; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		async_init(&ops[i], KV_OP_PUT, keys[i], keys[i], strlen(keys[i]));
		ck_assert_int_eq(kv_submit(s, &ops[i].op), KV_PENDING);
		ck_assert_int_eq(ops[i].status, KV_PENDING); /* never done from kv_submit */
	}
	kv_disk_run(d);
	/* The first put went alone; the 19 that came while it was written shared one flush. */
	ck_assert_uint_eq(d->flushes - flushes, 2);
	ck_assert_uint_eq(kv_stats(s)->batches - batches, 2);
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(ops[i].status, KV_OK);
		ck_assert_int_eq(ops[i].order, i + 1); /* acknowledged in order */
	}

	/* A GET of a value not durable yet waits for it; so does a DEL's NOTFOUND. */
	static uint8_t v1[100], v2[100];
	kvt_value(v1, sizeof(v1), 1);
	kvt_value(v2, sizeof(v2), 2);
	static struct async_op put1, get1, put2, del1, del2, get2;
	done_count = 0;
	async_init(&put1, KV_OP_PUT, "x", v1, sizeof(v1));
	async_init(&get1, KV_OP_GET, "x", NULL, 0);
	async_init(&put2, KV_OP_PUT, "x", v2, sizeof(v2));
	async_init(&del1, KV_OP_DEL, "x", NULL, 0);
	async_init(&del2, KV_OP_DEL, "x", NULL, 0);
	async_init(&get2, KV_OP_GET, "x", NULL, 0);
	ck_assert_int_eq(kv_submit(s, &put1.op), KV_PENDING);
	ck_assert_int_eq(kv_submit(s, &get1.op), KV_PENDING);
	kv_disk_run(d);
	ck_assert_int_eq(put1.status, KV_OK);
	ck_assert_int_eq(get1.status, KV_OK);
	ck_assert_int_lt(put1.order, get1.order);
	ck_assert_uint_eq(get1.op.result_len, sizeof(v1));
	ck_assert_int_eq(memcmp(get1.op.result, v1, sizeof(v1)), 0);
	ck_assert_int_eq(kv_submit(s, &put2.op), KV_PENDING);
	ck_assert_int_eq(kv_submit(s, &del1.op), KV_PENDING);
	ck_assert_int_eq(kv_submit(s, &del2.op), KV_PENDING); /* "x" is deleted, not durably */
	ck_assert_int_eq(kv_submit(s, &get2.op), KV_PENDING);
	kv_disk_run(d);
	ck_assert_int_eq(put2.status, KV_OK);
	ck_assert_int_eq(del1.status, KV_OK);
	ck_assert_int_eq(del2.status, KV_NOTFOUND);
	ck_assert_int_eq(get2.status, KV_NOTFOUND);
	ck_assert_int_gt(del2.order, del1.order);
	ck_assert_int_gt(get2.order, del1.order);
	free(s);
	kv_disk_free(d);
}
END_TEST

START_TEST(test_kv_index_full)
{
	struct kv_disk *d = kv_disk_new(4096, 4);
	struct kv_store *s = kvt_mount_ok(d, 8);
	char key[16];
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_int_eq(put_value(s, d, key, 10, (uint64_t)i), KV_OK);
	}
	ck_assert_int_eq(put_value(s, d, "k8", 10, 8), KV_EINDEXFULL);
	ck_assert_int_eq(put_value(s, d, "k3", 10, 33), KV_OK); /* an overwrite needs no entry */
	ck_assert_int_eq(kvt_del(s, d, "k0"), KV_OK);
	ck_assert_int_eq(put_value(s, d, "k8", 10, 8), KV_OK);
	expect_value(s, d, "k8", 10, 8);
	expect_value(s, d, "k3", 10, 33);
	free(s);
	/* a store with more keys than the index holds does not mount */
	int status;
	s = kvt_mount(d, 4, &status);
	ck_assert_int_eq(status, KV_EINDEXFULL);
	size_t len;
	ck_assert_int_eq(kvt_get(s, d, "k8", got_buf, &len), KV_EIO);
	free(s);
	s = kvt_mount_ok(d, 8);
	expect_value(s, d, "k8", 10, 8);
	free(s);
	kv_disk_free(d);
}
END_TEST

START_TEST(test_kv_compaction)
{
	struct kv_disk *d = kv_disk_new(SMALL_DISK, 5);
	struct kv_store *s = kvt_mount_ok(d, KV_INDEX_MAX);
	uint64_t capacity = kv_stats(s)->capacity;
	ck_assert_uint_eq(capacity, KV_REGION_MIN_BLOCKS * KV_BLOCK);
	ck_assert_int_eq(put_value(s, d, "keep", 3000, 1), KV_OK);
	/* 200 overwrites of 10 KiB: 2 MB through a 256 KiB region */
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(put_value(s, d, "hot", 10000, 100u + (unsigned)i), KV_OK);
	ck_assert_uint_ge(kv_stats(s)->compactions, 5);
	ck_assert_uint_le(kv_stats(s)->log_bytes, capacity);
	/* The region's records: the live ones copied at the last compaction and those since,
	 * far fewer than the 201 appended (a 10 KiB record fills 2.5 blocks of 64). */
	ck_assert_uint_le(kv_stats(s)->records, capacity / 10000 + 2);
	expect_value(s, d, "hot", 10000, 299);
	expect_value(s, d, "keep", 3000, 1);
	ck_assert_int_eq(kvt_del(s, d, "keep"), KV_OK);
	uint64_t in_log = kv_stats(s)->records;
	free(s);
	s = kvt_mount_ok(d, KV_INDEX_MAX);
	ck_assert_uint_eq(kv_stats(s)->records, in_log); /* as the scan found them */
	expect_value(s, d, "hot", 10000, 299);
	expect_absent(s, d, "keep");
	ck_assert_uint_eq(kv_stats(s)->keys, 1);

	/* Fill with distinct keys until the store refuses: nothing acknowledged is lost. */
	char key[16];
	int n = 0;
	int r;
	while ((r = put_value(s, d, (snprintf(key, sizeof(key), "f%d", n), key), 20000,
			      (uint64_t)n)) == KV_OK)
		n++;
	ck_assert_int_eq(r, KV_ELOGFULL);
	ck_assert_int_ge(n, 8);
	ck_assert_uint_le(kv_stats(s)->live_bytes, capacity);
	/* a full store still takes deletes, and then puts again */
	ck_assert_int_eq(kvt_del(s, d, "f0"), KV_OK);
	ck_assert_int_eq(kvt_del(s, d, "f1"), KV_OK);
	ck_assert_int_eq(put_value(s, d, "after", 20000, 7777), KV_OK);
	free(s);
	s = kvt_mount_ok(d, KV_INDEX_MAX);
	for (int i = 2; i < n; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		expect_value(s, d, key, 20000, (uint64_t)i);
	}
	expect_absent(s, d, "f0");
	expect_value(s, d, "after", 20000, 7777);
	expect_value(s, d, "hot", 10000, 299);
	free(s);
	kv_disk_free(d);
}
END_TEST

START_TEST(test_kv_readonly)
{
	/* a blank read-only disk: an empty store */
	struct kv_disk *d = kv_disk_new(4096, 6);
	d->dev.readonly = 1;
	struct kv_store *s = kvt_mount_ok(d, KV_INDEX_MAX);
	expect_absent(s, d, "a");
	ck_assert_int_eq(put_value(s, d, "a", 1, 1), KV_EROFS);
	free(s);
	/* a store made writable, then served read-only */
	d->dev.readonly = 0;
	s = kvt_mount_ok(d, KV_INDEX_MAX);
	ck_assert_int_eq(put_value(s, d, "a", 100, 1), KV_OK);
	ck_assert_int_eq(put_value(s, d, "b", 100, 2), KV_OK);
	free(s);
	d->dev.readonly = 1;
	uint64_t writes = d->writes;
	s = kvt_mount_ok(d, KV_INDEX_MAX);
	expect_value(s, d, "a", 100, 1);
	expect_value(s, d, "b", 100, 2);
	ck_assert_int_eq(put_value(s, d, "a", 1, 1), KV_EROFS);
	ck_assert_int_eq(kvt_del(s, d, "a"), KV_EROFS);
	ck_assert_uint_eq(d->writes, writes);
	free(s);
	kv_disk_free(d);
}
END_TEST

START_TEST(test_kv_small_and_failing_disks)
{
	struct kv_disk *d = kv_disk_new(SMALL_DISK - 1, 7);
	int status;
	struct kv_store *s = kvt_mount(d, KV_INDEX_MAX, &status);
	ck_assert_int_eq(status, KV_ETOOSMALL);
	free(s);
	kv_disk_free(d);

	/* a write that fails stops the store: that request and all later ones fail */
	d = kv_disk_new(4096, 8);
	s = kvt_mount_ok(d, KV_INDEX_MAX);
	ck_assert_int_eq(put_value(s, d, "a", 100, 1), KV_OK);
	d->fail_in = 2; /* the PUT's write passes, its flush fails */
	ck_assert_int_eq(put_value(s, d, "b", 100, 2), KV_EIO);
	ck_assert_int_eq(put_value(s, d, "c", 100, 3), KV_EIO);
	size_t len;
	ck_assert_int_eq(kvt_get(s, d, "a", got_buf, &len), KV_EIO);
	free(s);
	d->fail_in = 0;
	s = kvt_mount_ok(d, KV_INDEX_MAX);
	expect_value(s, d, "a", 100, 1);
	free(s);
	/* a mount whose superblock write fails */
	d->fail_in = 1;
	s = kvt_mount(d, KV_INDEX_MAX, &status);
	ck_assert_int_eq(status, KV_EIO);
	free(s);
	kv_disk_free(d);
}
END_TEST

START_TEST(test_kv_stale_records_past_tail)
{
	/* A crash during a batch of b, c, d keeps d's block and loses b's and c's. The log ends
	 * before b, and new records b2, c2 of the same sizes end exactly where the stale d starts,
	 * with the seq d expects. d was never acknowledged, and the mount that followed the crash
	 * showed key-e absent: d must never count, whatever comes before it. */
	struct kv_disk *d = kv_disk_new(4096, 11);
	struct kv_store *s = kvt_mount_ok(d, KV_INDEX_MAX);
	size_t half = KV_BLOCK / 2 - KV_REC_HEADER - 5; /* records of half a block */
	const char *keys[] = {"key-a", "key-b", "key-c", "key-d", "key-e"};
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(put_value(s, d, keys[i], half, (uint64_t)i), KV_OK);
	uint64_t region = s->region_first_block;
	free(s);
	memset(kv_disk_block(d, region + 1), 0, KV_BLOCK); /* b and c lost, d kept */
	kv_disk_sync(d);
	s = kvt_mount_ok(d, KV_INDEX_MAX);
	ck_assert_uint_eq(kv_stats(s)->keys, 2);
	expect_absent(s, d, "key-e");
	ck_assert_int_eq(put_value(s, d, "key-c", half, 12), KV_OK);
	ck_assert_int_eq(put_value(s, d, "key-d", half, 13), KV_OK);
	free(s);
	for (int round = 0; round < 2; round++) {
		s = kvt_mount_ok(d, KV_INDEX_MAX);
		expect_value(s, d, "key-c", half, 12);
		expect_value(s, d, "key-d", half, 13);
		expect_absent(s, d, "key-e");
		ck_assert_uint_eq(kv_stats(s)->keys, 4);
		free(s);
	}
	kv_disk_free(d);
}
END_TEST

/* After any mount of a damaged image, every key holds a value it was given. */
static void check_values_were_given(struct kv_store *s, struct kv_disk *d, int nkeys)
{
	char key[16];
	for (int i = 0; i < nkeys; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		size_t len;
		int r = kvt_get(s, d, key, got_buf, &len);
		ck_assert(r == KV_OK || r == KV_NOTFOUND || r == KV_EIO);
		if (r != KV_OK)
			continue;
		kvt_value(value_buf, len, (uint64_t)i);
		ck_assert_msg(len == (size_t)(i * 131 % 5000) &&
				      memcmp(got_buf, value_buf, len) == 0,
			      "key%d holds a value never given", i);
	}
}

START_TEST(test_kv_hostile_images)
{
	/* Random garbage: formatted as a new store, which then works. */
	for (uint64_t seed = 1; seed <= 5; seed++) {
		struct kv_disk *d = kv_disk_new(SMALL_DISK, seed);
		for (uint64_t b = 0; b < d->blocks; b++)
			for (size_t i = 0; i < KV_BLOCK; i += 8) {
				uint64_t x = kv_disk_rand(d);
				memcpy(kv_disk_block(d, b) + i, &x, 8);
			}
		kv_disk_sync(d);
		struct kv_store *s = kvt_mount_ok(d, KV_INDEX_MAX);
		ck_assert_int_eq(kv_stats(s)->formatted, 1);
		ck_assert_int_eq(put_value(s, d, "a", 1000, 1), KV_OK);
		expect_value(s, d, "a", 1000, 1);
		free(s);
		s = kvt_mount_ok(d, KV_INDEX_MAX);
		expect_value(s, d, "a", 1000, 1);
		free(s);
		kv_disk_free(d);
	}

	/* A good store, then damage: flipped bytes anywhere, lengths and records forged with
	 * good checksums. Mounts never crash and never make up a value. */
	struct kv_disk *good = kv_disk_new(SMALL_DISK, 9);
	struct kv_store *s = kvt_mount_ok(good, KV_INDEX_MAX);
	char key[16];
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		ck_assert_int_eq(put_value(s, good, key, (size_t)(i * 131 % 5000), (uint64_t)i),
				 KV_OK);
	}
	struct kv_sb sb = s->sb;
	uint64_t tail = s->tail;
	free(s);
	size_t image = (size_t)good->blocks * KV_BLOCK;
	struct kv_disk *d = kv_disk_new(SMALL_DISK, 10);
	uint64_t region = kv_region_first_block(&sb, sb.region);
	for (int iter = 0; iter < 300; iter++) {
		memcpy(d->current, good->current, image);
		uint8_t *base = kv_disk_block(d, region);
		int kind = iter % 4;
		if (kind == 0) {
			/* flip bytes in the superblocks and the log */
			for (int k = 0; k < 1 + iter % 7; k++) {
				uint64_t at = kv_disk_rand(d) % (region * KV_BLOCK + tail + 64);
				d->current[at] ^= (uint8_t)(1 + kv_disk_rand(d) % 255);
			}
		} else if (kind == 1) {
			/* a forged header with hostile lengths and a matching checksum, at a
			 * record boundary or anywhere */
			uint64_t at = kv_disk_rand(d) % tail;
			struct kv_rec h = {.store_id = sb.store_id,
					   .seq = kv_disk_rand(d) % 100,
					   .gen = sb.gen,
					   .vlen = (uint32_t)kv_disk_rand(d),
					   .klen = (uint16_t)kv_disk_rand(d),
					   .type = (uint8_t)(1 + kv_disk_rand(d) % 2)};
			uint8_t hdr[KV_REC_HEADER];
			if (h.klen > KV_KEY_MAX || h.vlen > KV_VALUE_MAX) {
				/* encode a sane one, then lie about the lengths */
				struct kv_rec ok = h;
				ok.klen = 1;
				ok.vlen = 0;
				ok.type = KV_REC_DEL;
				static uint8_t rec[KV_REC_HEADER + 1];
				kv_rec_encode(rec, &ok, "x", NULL);
				memcpy(hdr, rec, KV_REC_HEADER);
				memcpy(hdr + 32, &h.vlen, 4);
				memcpy(hdr + 36, &h.klen, 2);
				memcpy(base + at, hdr,
				       tail - at < KV_REC_HEADER ? tail - at : KV_REC_HEADER);
			} else {
				/* a whole valid record that runs past the region's end */
				uint64_t size = kv_rec_size(h.klen, h.vlen);
				uint64_t room = KV_REGION_MIN_BLOCKS * KV_BLOCK;
				at = room > size ? room - size + 1 + kv_disk_rand(d) % 64 : 0;
				if (at + KV_REC_HEADER <= room) {
					static uint8_t rec[KV_REC_MAX], fill[KV_VALUE_MAX];
					memset(fill, 'v', sizeof(fill));
					kv_rec_encode(rec, &h, fill, fill);
					memcpy(base + at, rec, room - at);
				}
			}
		} else if (kind == 2) {
			/* a superblock that points at the other region, which is garbage */
			struct kv_sb forged = sb;
			forged.sb_seq += 10;
			forged.region = 1 - sb.region;
			kv_sb_encode(kv_disk_block(d, forged.sb_seq % 2), &forged);
			uint8_t *other =
				kv_disk_block(d, kv_region_first_block(&sb, forged.region));
			for (size_t i = 0; i < 4 * KV_BLOCK; i++)
				other[i] = (uint8_t)kv_disk_rand(d);
		} else {
			/* truncate: zero the log from a random point */
			uint64_t at = kv_disk_rand(d) % tail;
			memset(base + at, 0, tail - at);
		}
		kv_disk_sync(d);
		d->dev.readonly = iter & 1;
		int status;
		s = kvt_mount(d, KV_INDEX_MAX, &status);
		ck_assert_int_eq(status, KV_OK);
		check_values_were_given(s, d, 40);
		if (!d->dev.readonly) {
			/* and the store goes on working */
			ck_assert_int_eq(put_value(s, d, "key1", 131, 1), KV_OK);
			free(s);
			s = kvt_mount_ok(d, KV_INDEX_MAX);
			expect_value(s, d, "key1", 131, 1);
			check_values_were_given(s, d, 40);
		}
		free(s);
	}
	kv_disk_free(d);
	kv_disk_free(good);
}
END_TEST

Suite *kv_store_suite(void)
{
	Suite *s = suite_create("kv_store");
	TCase *tc = tcase_create("store");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kv_crc32);
	tcase_add_test(tc, test_kv_record_format);
	tcase_add_test(tc, test_kv_superblock_format);
	tcase_add_test(tc, test_kv_basics);
	tcase_add_test(tc, test_kv_restart);
	tcase_add_test(tc, test_kv_group_commit);
	tcase_add_test(tc, test_kv_index_full);
	tcase_add_test(tc, test_kv_compaction);
	tcase_add_test(tc, test_kv_readonly);
	tcase_add_test(tc, test_kv_small_and_failing_disks);
	tcase_add_test(tc, test_kv_stale_records_past_tail);
	tcase_add_test(tc, test_kv_hostile_images);
	suite_add_tcase(s, tc);
	return s;
}
