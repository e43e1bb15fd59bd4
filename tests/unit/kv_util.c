/* Helpers of kv's unit tests (see kv_util.h). */
#include "kv_util.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void mounted(struct kv_store *s, int status, void *arg)
{
	(void)s;
	*(int *)arg = status;
}

int kvt_mount_into(struct kv_store *s, struct kv_disk *d, uint32_t max_keys)
{
	struct kv_config cfg = {.max_keys = max_keys, .seed = d->rng};
	int status = KV_PENDING;
	int r = kv_mount(s, &d->dev, &cfg, mounted, &status);
	if (r != KV_PENDING)
		return r;
	kv_disk_run(d);
	ck_assert_int_ne(status, KV_PENDING);
	return status;
}

struct kv_store *kvt_mount(struct kv_disk *d, uint32_t max_keys, int *status)
{
	struct kv_store *s = malloc(sizeof(*s));
	ck_assert_ptr_nonnull(s);
	*status = kvt_mount_into(s, d, max_keys);
	return s;
}

struct kv_store *kvt_mount_ok(struct kv_disk *d, uint32_t max_keys)
{
	int status;
	struct kv_store *s = kvt_mount(d, max_keys, &status);
	ck_assert_msg(status == KV_OK, "mount: %s", kv_status_str(status));
	return s;
}

struct sync_op {
	struct kv_op op;
	int status;
};

static void sync_done(struct kv_op *op, int status)
{
	((struct sync_op *)op->arg)->status = status;
}

static int run(struct kv_store *s, struct kv_disk *d, struct sync_op *o)
{
	o->op.done = sync_done;
	o->op.arg = o;
	o->status = KV_PENDING;
	int r = kv_submit(s, &o->op);
	if (r != KV_PENDING)
		return r;
	while (o->status == KV_PENDING && kv_disk_step(d))
		;
	ck_assert_int_ne(o->status, KV_PENDING);
	return o->status;
}

int kvt_put(struct kv_store *s, struct kv_disk *d, const char *key, const void *value, size_t vlen)
{
	struct sync_op o = {.op = {.type = KV_OP_PUT,
				   .key = (const uint8_t *)key,
				   .klen = strlen(key),
				   .value = value,
				   .vlen = vlen}};
	return run(s, d, &o);
}

int kvt_del(struct kv_store *s, struct kv_disk *d, const char *key)
{
	struct sync_op o = {
		.op = {.type = KV_OP_DEL, .key = (const uint8_t *)key, .klen = strlen(key)}};
	return run(s, d, &o);
}

int kvt_get(struct kv_store *s, struct kv_disk *d, const char *key, void *out, size_t *len)
{
	static uint8_t buf[KV_GET_BUF];
	struct sync_op o = {.op = {.type = KV_OP_GET,
				   .key = (const uint8_t *)key,
				   .klen = strlen(key),
				   .buf = buf}};
	int r = run(s, d, &o);
	if (r == KV_OK) {
		ck_assert_uint_le(o.op.result_len, KV_VALUE_MAX);
		ck_assert(o.op.result >= buf && o.op.result + o.op.result_len <= buf + sizeof(buf));
		memcpy(out, o.op.result, o.op.result_len);
		*len = o.op.result_len;
	}
	return r;
}

void kvt_value(uint8_t *out, size_t len, uint64_t id)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	for (size_t i = 0; i < len; i++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		out[i] = (uint8_t)(x >> 56);
	}
}
