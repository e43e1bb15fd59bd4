/* kv's crash consistency: clients run random PUTs, DELs and GETs (overwrites and compactions
 * included) on the in-memory disk, which is cut off at a random point; a random subset of the
 * unflushed block writes survives, each whole, lost or torn at 512-byte sectors. After
 * recovery the store must hold exactly the state after some prefix of its history that
 * contains every acknowledged request: nothing acknowledged is lost, no key holds a value it
 * was never given or an older one, and deletes are never undone. Each disk goes through
 * several crashes, so records left past the tail by one crash meet the next (half the seeds use
 * records of exactly half a block, so that stale records start on block boundaries; the exact
 * alignment of stale and new records is test_kv_stale_records_past_tail's). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_disk.h"
#include "kv_format.h"
#include "kv_store.h"
#include "kv_util.h"
#include "unit.h"

#define DISK_BLOCKS (KV_SB_BLOCKS + 2 * KV_REGION_MIN_BLOCKS)
#define NKEYS 12
#define NCLIENTS 6
#define MAXV 16000
#define MAXHIST 4096
#define ROUNDS 10
#define STEPS_MAX 800

struct key_state {
	int present;
	uint64_t id; /* the value: kvt_value(len, id) */
	size_t len;
};

/* One PUT or DEL of the history since the last recovery. */
struct hop {
	int key;
	int del;
	uint64_t id;
	size_t len;
	uint64_t seq; /* its record's (0: it never had one) */
	int acked;
};

struct client {
	struct kv_op op;
	int busy;
	int hop; /* its history entry, -1 for a GET */
	int key;
	char name[16];
	uint8_t value[MAXV];
	uint8_t buf[KV_GET_BUF];
};

struct coverage {
	uint64_t crashes, in_mount, in_compaction, with_unacked, compactions, acked, refused;
};

static struct {
	struct kv_disk *d;
	struct kv_store *store; /* one allocation, mounted again and again */
	struct kv_store *s;
	int mounted;
	struct key_state base[NKEYS];
	struct hop hist[MAXHIST];
	int nhist;
	struct client cl[NCLIENTS];
	uint64_t next_id;
	int uniform; /* every value of one size */
	struct coverage cov;
} T;

static void key_name(char *out, size_t size, int key)
{
	snprintf(out, size, "key-%c", 'a' + key); /* all of one length */
}

/* Whether bytes[0, len) is the value id of length vlen. */
static int is_value(const uint8_t *bytes, size_t len, uint64_t id, size_t vlen)
{
	static uint8_t want[MAXV];
	if (len != vlen)
		return 0;
	/* A value's first bytes depend on its id alone: a cheap test before the whole one. */
	size_t head = len < 16 ? len : 16;
	kvt_value(want, head, id);
	if (memcmp(bytes, want, head) != 0)
		return 0;
	kvt_value(want, vlen, id);
	return memcmp(bytes, want, len) == 0;
}

/* The id of the value bytes[0, len) among those key was ever given; fails if none. */
static uint64_t value_id(int key, const uint8_t *bytes, size_t len)
{
	if (T.base[key].present && is_value(bytes, len, T.base[key].id, T.base[key].len))
		return T.base[key].id;
	for (int i = 0; i < T.nhist; i++)
		if (T.hist[i].key == key && !T.hist[i].del &&
		    is_value(bytes, len, T.hist[i].id, T.hist[i].len))
			return T.hist[i].id;
	ck_abort_msg("key-%c holds a value it was never given (%zu bytes)", 'a' + key, len);
	return 0;
}

static void client_done(struct kv_op *op, int status)
{
	struct client *c = op->arg;
	c->busy = 0;
	if (c->hop < 0) {
		ck_assert_msg(status == KV_OK || status == KV_NOTFOUND, "GET: %s",
			      kv_status_str(status));
		if (status == KV_OK)
			value_id(c->key, op->result, op->result_len);
		return;
	}
	struct hop *h = &T.hist[c->hop];
	h->seq = op->seq;
	if (status == KV_OK) {
		ck_assert_uint_ne(op->seq, 0);
		h->acked = 1;
		T.cov.acked++;
	} else {
		ck_assert_msg(status == KV_NOTFOUND || status == KV_ELOGFULL, "%s: %s",
			      h->del ? "DEL" : "PUT", kv_status_str(status));
		ck_assert_uint_eq(op->seq, 0);
		T.cov.refused += status == KV_ELOGFULL;
	}
}

static size_t random_length(void)
{
	if (T.uniform) /* records of exactly half a block: stale ones start on block boundaries */
		return KV_BLOCK / 2 - KV_REC_HEADER - strlen("key-a");
	uint64_t r = kv_disk_rand(T.d) % 100;
	if (r < 50)
		return (size_t)(kv_disk_rand(T.d) % 100);
	if (r < 90)
		return (size_t)(100 + kv_disk_rand(T.d) % 6000);
	return (size_t)(6000 + kv_disk_rand(T.d) % (MAXV - 6000));
}

static void client_start(struct client *c)
{
	uint64_t r = kv_disk_rand(T.d) % 100;
	c->key = (int)(kv_disk_rand(T.d) % NKEYS);
	key_name(c->name, sizeof(c->name), c->key);
	memset(&c->op, 0, sizeof(c->op));
	c->op.key = (const uint8_t *)c->name;
	c->op.klen = strlen(c->name);
	c->op.buf = c->buf;
	c->op.done = client_done;
	c->op.arg = c;
	c->hop = -1;
	if (r < 60) {
		ck_assert_int_lt(T.nhist, MAXHIST);
		struct hop *h = &T.hist[T.nhist];
		*h = (struct hop){.key = c->key, .del = r >= 45 && !T.uniform};
		c->hop = T.nhist++;
		if (h->del) {
			c->op.type = KV_OP_DEL;
		} else {
			h->id = T.next_id++;
			h->len = random_length();
			kvt_value(c->value, h->len, h->id);
			c->op.type = KV_OP_PUT;
			c->op.value = c->value;
			c->op.vlen = h->len;
		}
	} else {
		c->op.type = KV_OP_GET;
	}
	c->busy = 1;
	int s = kv_submit(T.s, &c->op);
	if (s != KV_PENDING)
		client_done(&c->op, s);
}

static void mounted(struct kv_store *s, int status, void *arg)
{
	(void)s, (void)arg;
	ck_assert_msg(status == KV_OK, "mount: %s", kv_status_str(status));
	T.mounted = 1;
}

/* Runs clients on a fresh mount until a crash after a random number of steps. */
static void run_until_crash(void)
{
	T.s = T.store;
	T.mounted = 0;
	struct kv_config cfg = {.max_keys = NKEYS, .seed = kv_disk_rand(T.d)};
	ck_assert_int_eq(kv_mount(T.s, &T.d->dev, &cfg, mounted, NULL), KV_PENDING);
	uint64_t compactions = 0;
	/* Mostly anywhere; but mounts and compactions are a few steps each, so aim at them too. */
	uint64_t mode = kv_disk_rand(T.d) % 8;
	uint64_t steps = mode == 0 ? kv_disk_rand(T.d) % 16 : kv_disk_rand(T.d) % STEPS_MAX;
	int in_compaction = mode <= 2 ? 0 : -1;
	for (uint64_t i = 0; i < steps; i++) {
		for (int c = 0; c < NCLIENTS && T.mounted; c++)
			if (!T.cl[c].busy && (kv_disk_rand(T.d) & 1))
				client_start(&T.cl[c]);
		kv_disk_step(T.d);
		if (T.mounted)
			compactions = kv_stats(T.s)->compactions;
		if (in_compaction == 0 && T.s->state == KV_ST_COMPACTING) {
			in_compaction = 1;
			steps = i + 1 + kv_disk_rand(T.d) % 8;
		}
	}
	T.cov.crashes++;
	T.cov.in_mount += !T.mounted;
	T.cov.in_compaction += T.s->state == KV_ST_COMPACTING;
	T.cov.compactions += compactions;
	for (int c = 0; c < NCLIENTS; c++)
		if (T.cl[c].busy) {
			if (T.cl[c].hop >= 0)
				T.hist[T.cl[c].hop].seq = T.cl[c].op.seq;
			T.cov.with_unacked += T.cl[c].hop >= 0 && T.cl[c].op.seq != 0;
			T.cl[c].busy = 0;
		}
	kv_disk_crash(T.d);
	T.s = NULL; /* dropped, as by a power cut */
}

static int cmp_seq(const void *a, const void *b)
{
	uint64_t x = (*(const struct hop *const *)a)->seq, y = (*(const struct hop *const *)b)->seq;
	return x < y ? -1 : x > y;
}

static void apply(struct key_state *st, const struct hop *h)
{
	st[h->key] = h->del ? (struct key_state){0}
			    : (struct key_state){.present = 1, .id = h->id, .len = h->len};
}

static int same_state(const struct key_state *a, const struct key_state *b)
{
	for (int k = 0; k < NKEYS; k++)
		if (a[k].present != b[k].present ||
		    (a[k].present && (a[k].len != b[k].len || (a[k].len && a[k].id != b[k].id))))
			return 0; /* empty values are all the same value */
	return 1;
}

/* Recovers, and checks the state against the prefixes of the history. */
static void recover_and_check(uint64_t seed, int round)
{
	struct kv_store *s = T.store;
	int status = kvt_mount_into(s, T.d, NKEYS);
	ck_assert_msg(status == KV_OK, "seed %llu round %d: mount: %s", (unsigned long long)seed,
		      round, kv_status_str(status));
	struct key_state got[NKEYS];
	static uint8_t buf[KV_VALUE_MAX];
	uint64_t present = 0;
	for (int k = 0; k < NKEYS; k++) {
		char name[16];
		size_t len = 0;
		key_name(name, sizeof(name), k);
		int r = kvt_get(s, T.d, name, buf, &len);
		ck_assert_msg(r == KV_OK || r == KV_NOTFOUND, "seed %llu round %d: GET: %s",
			      (unsigned long long)seed, round, kv_status_str(r));
		got[k] = (struct key_state){0};
		if (r == KV_OK) {
			got[k] = (struct key_state){
				.present = 1, .id = value_id(k, buf, len), .len = len};
			present++;
		}
	}
	ck_assert_uint_eq(kv_stats(s)->keys, present);

	static struct hop *order[MAXHIST];
	int n = 0, acked = 0;
	for (int i = 0; i < T.nhist; i++)
		if (T.hist[i].seq) {
			order[n++] = &T.hist[i];
			acked += T.hist[i].acked;
		}
	qsort(order, (size_t)n, sizeof(order[0]), cmp_seq);
	struct key_state st[NKEYS];
	memcpy(st, T.base, sizeof(st));
	for (int i = 0; i < n; i++) {
		/* acknowledgements come in log order: the acknowledged are a prefix */
		ck_assert_msg(order[i]->acked == (i < acked), "seed %llu round %d: ack order",
			      (unsigned long long)seed, round);
		if (i < acked)
			apply(st, order[i]);
	}
	int found = same_state(st, got);
	for (int i = acked; i < n && !found; i++) {
		apply(st, order[i]);
		found = same_state(st, got);
	}
	ck_assert_msg(found,
		      "seed %llu round %d: recovered state is no prefix of the history holding the "
		      "%d acknowledged requests (of %d)",
		      (unsigned long long)seed, round, acked, n);
	memcpy(T.base, got, sizeof(got));
	T.nhist = 0;
}

static void crash_seed(uint64_t seed)
{
	memset(T.base, 0, sizeof(T.base));
	T.nhist = 0;
	T.d = kv_disk_new(DISK_BLOCKS, seed);
	T.uniform = seed % 2;
	for (int round = 0; round < ROUNDS; round++) {
		run_until_crash();
		recover_and_check(seed, round);
	}
	kv_disk_free(T.d);
}

START_TEST(test_kv_crash_points)
{
	memset(&T.cov, 0, sizeof(T.cov));
	T.store = malloc(sizeof(*T.store));
	ck_assert_ptr_nonnull(T.store);
	/* KV_CRASH_SEED=n reruns the seed a failure names, alone. */
	const char *only = getenv("KV_CRASH_SEED");
	if (only) {
		crash_seed(strtoull(only, NULL, 10));
		free(T.store);
		return;
	}
	for (uint64_t seed = 1; seed <= 120; seed++)
		crash_seed(seed);
	/* The crashes hit every phase often enough to mean something. */
	fprintf(stderr,
		"kv crash: %llu crashes, %llu in mount, %llu in compaction, %llu with unacked "
		"records, %llu compactions, %llu acked, %llu refused\n",
		(unsigned long long)T.cov.crashes, (unsigned long long)T.cov.in_mount,
		(unsigned long long)T.cov.in_compaction, (unsigned long long)T.cov.with_unacked,
		(unsigned long long)T.cov.compactions, (unsigned long long)T.cov.acked,
		(unsigned long long)T.cov.refused);
	ck_assert_uint_ge(T.cov.in_mount, 25);
	ck_assert_uint_ge(T.cov.in_compaction, 100);
	ck_assert_uint_ge(T.cov.with_unacked, 1000);
	ck_assert_uint_ge(T.cov.compactions, 1000);
	free(T.store);
}
END_TEST

Suite *kv_crash_suite(void)
{
	Suite *s = suite_create("kv_crash");
	TCase *tc = tcase_create("crash");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_kv_crash_points);
	suite_add_tcase(s, tc);
	return s;
}
