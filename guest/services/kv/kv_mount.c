/* kv's mount: the newer valid superblock names the active region, the scan of its log rebuilds
 * the index, and a new generation is made durable before the first append, so that records a
 * crash left past the tail can never be taken for the log's continuation. A disk without a
 * valid superblock is formatted (served as empty if read-only). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kv_store.h"
#include "kv_store_internal.h"

/* splitmix64: spreads a seed into independent-looking 64-bit values. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void mount_finish(struct kv_store *s, int status)
{
	if (status == KV_OK)
		s->state = KV_ST_READY;
	else
		kv_store_break(s);
	s->mount_done(s, status, s->mount_arg);
	if (status == KV_OK)
		kv_store_dispatch(s);
}

static void mount_sb_durable(struct kv_store *s, int status)
{
	if (status != 0) {
		mount_finish(s, KV_EIO);
		return;
	}
	kv_store_use_sb(s, &s->next_sb);
	mount_finish(s, KV_OK);
}

/* A record of the log, in order: the index follows it. */
static int mount_record(struct kv_scan *sc, const struct kv_rec *rec, uint64_t loc, void *arg)
{
	(void)sc;
	struct kv_store *s = arg;
	struct kv_entry *e = kv_index_find(&s->index, rec->key, rec->klen);
	if (rec->type == KV_REC_DEL) {
		if (e) {
			s->live_bytes -= e->size;
			s->stats.keys--;
			kv_index_remove(&s->index, e);
		}
		return 0;
	}
	if (e) {
		s->live_bytes -= e->size;
	} else if ((e = kv_index_insert(&s->index, rec->key, rec->klen))) {
		s->stats.keys++;
	} else {
		mount_finish(s, KV_EINDEXFULL); /* the scan stays paused for good */
		return 1;
	}
	e->seq = rec->seq;
	e->loc = loc;
	e->size = rec->size;
	e->deleted = 0;
	s->live_bytes += rec->size;
	return 0;
}

static void mount_scanned(struct kv_scan *sc, int status, void *arg)
{
	struct kv_store *s = arg;
	if (status != 0) {
		mount_finish(s, KV_EIO);
		return;
	}
	s->stats.recovered_records = sc->records;
	s->stats.records = sc->records; /* the log goes on from them */
	s->next_seq = sc->seq;
	s->durable_seq = sc->seq - 1;
	kv_store_set_tail(s, &s->batch[0], sc->pos, kv_scan_tail_bytes(sc));
	if (s->readonly) {
		mount_finish(s, KV_OK);
		return;
	}
	s->next_sb = s->sb;
	s->next_sb.sb_seq++;
	s->next_sb.gen++;
	kv_store_write_sb(s, mount_sb_durable);
}

static void mount_format(struct kv_store *s)
{
	uint64_t seed = s->cfg.seed ^ 0x6b7673746f7265ull; /* not the index secret's stream */
	s->next_sb = (struct kv_sb){
		.sb_seq = 1,
		.store_id = next_random(&seed),
		.gen = 1,
		.base_gen = 1,
		.first_seq = 1,
		.region = 0,
		.region_blocks = kv_layout_region_blocks(s->dev.blocks),
	};
	s->next_seq = 1;
	s->durable_seq = 0;
	s->stats.formatted = 1;
	kv_store_write_sb(s, mount_sb_durable);
}

static void mount_sb_read(int status, void *arg)
{
	struct kv_store *s = arg;
	if (status != 0) {
		mount_finish(s, KV_EIO);
		return;
	}
	struct kv_sb sb[KV_SB_BLOCKS];
	int best = -1;
	for (int i = 0; i < (int)KV_SB_BLOCKS; i++)
		if (kv_sb_decode(s->sb_buf + (size_t)i * KV_BLOCK, s->dev.blocks, &sb[i]) == 0 &&
		    (best < 0 || sb[i].sb_seq > sb[best].sb_seq))
			best = i;
	if (best < 0) {
		if (s->readonly)
			mount_finish(s, KV_OK); /* nothing to serve, nothing to write */
		else
			mount_format(s);
		return;
	}
	kv_store_use_sb(s, &sb[best]);
	struct kv_scan_params p = {
		.first_block = s->region_first_block,
		.limit = s->region_bytes,
		.store_id = s->sb.store_id,
		.base_gen = s->sb.base_gen,
		.max_gen = s->sb.gen,
		.first_seq = s->sb.first_seq,
	};
	kv_scan_start(&s->scan, &s->dev, &p, mount_record, mount_scanned, s);
}

int kv_mount(struct kv_store *s, const struct kv_blockdev *dev, const struct kv_config *cfg,
	     kv_mount_fn done, void *arg)
{
	memset(s, 0, offsetof(struct kv_store, batch));
	s->dev = *dev;
	s->cfg = *cfg;
	s->readonly = dev->readonly;
	s->state = KV_ST_MOUNTING;
	s->mount_done = done;
	s->mount_arg = arg;
	uint64_t seed = cfg->seed;
	kv_index_init(&s->index, cfg->max_keys, next_random(&seed));
	kv_store_set_tail(s, &s->batch[0], 0, NULL);
	s->batch[1].head = s->batch[1].tail = NULL;
	if (kv_layout_region_blocks(dev->blocks) == 0) {
		s->state = KV_ST_BROKEN;
		return KV_ETOOSMALL;
	}
	dev->submit(dev->ctx, KV_IO_READ, 0, KV_SB_BLOCKS, s->sb_buf, mount_sb_read, s);
	return KV_PENDING;
}
