/* kv: a persistent key-value store on the service's disk, served over TCP port 6000 (or the
 * port of argv[1]). The store is recovered from the disk before the network starts. */
#include <denali.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kv_blockdev.h"
#include "kv_server.h"
#include "kv_store.h"

#define KV_PORT 6000

_Static_assert(KV_BLOCK == DN_DISK_BLOCK, "kv's blocks are the disk's");
_Static_assert((int)KV_IO_READ == (int)DN_DISK_READ && (int)KV_IO_WRITE == (int)DN_DISK_WRITE &&
		       (int)KV_IO_FLUSH == (int)DN_DISK_FLUSH,
	       "kv's operations are the disk's");
_Static_assert(KV_IO_MAX < DN_DISK_RING_SIZE, "the store never fills the disk's ring");
_Static_assert(KV_IO_BLOCKS_MAX <= DN_DISK_REQ_BLOCKS_MAX, "kv's requests fit the disk's");

static struct kv_store store; /* about 2 MiB: the index, batch and scan buffers */

static void disk_submit(void *ctx, enum kv_io_op op, uint64_t block, uint32_t count, void *buf,
			kv_io_done_fn done, void *arg)
{
	(void)ctx;
	/* Cannot fail: the store keeps fewer requests outstanding than the ring holds. */
	if (dn_disk_submit((unsigned)op, block, count, buf, done, arg) != DN_OK)
		dn_abort("kv: the disk refused a request");
}

struct mount_result {
	int done;
	int status;
};

static void on_mounted(struct kv_store *s, int status, void *arg)
{
	(void)s;
	struct mount_result *m = arg;
	m->done = 1;
	m->status = status;
}

static void on_stop(uint64_t events, void *arg)
{
	(void)events, (void)arg;
	dn_loop_stop();
}

int main(int argc, char **argv)
{
	unsigned long port = KV_PORT;
	if (argc > 1) {
		char *end;
		port = strtoul(argv[1], &end, 10);
		if (*argv[1] == '\0' || *end != '\0' || port == 0 || port > 65535) {
			printf("kv: bad port '%s'\n", argv[1]);
			return 2;
		}
	}
	if (dn_disk_init() != DN_OK) {
		printf("kv: no disk: give the service one (\"disk\" in its service file)\n");
		dn_exit(1);
	}
	struct kv_blockdev dev = {
		.blocks = dn_disk_blocks(),
		.readonly = dn_disk_readonly(),
		.submit = disk_submit,
	};
	struct kv_config cfg = {
		.max_keys = KV_INDEX_MAX,
		.seed = dn_rdtsc() * 0x9e3779b97f4a7c15ull ^ dn_time_ns(),
	};
	struct mount_result m = {0, 0};
	int r = kv_mount(&store, &dev, &cfg, on_mounted, &m);
	if (r == KV_PENDING) {
		/* Each of the mount's completions submits its next request: drained means done. */
		dn_disk_drain();
		if (!m.done)
			dn_abort("kv: the mount stalled");
		r = m.status;
	}
	if (r != KV_OK) {
		printf("kv: cannot mount the store: %s\n", kv_status_str(r));
		dn_exit(1);
	}
	const struct kv_stats *st = kv_stats(&store);
	if (st->formatted)
		printf("kv: formatted a new store (%llu KiB per log region)\n",
		       (unsigned long long)(st->capacity / 1024));
	else
		printf("kv: recovered %llu keys from %llu records\n", (unsigned long long)st->keys,
		       (unsigned long long)st->recovered_records);
	if (dev.readonly)
		printf("kv: the disk is read-only: PUT and DEL are refused\n");
	struct net_stack *net = dn_net_start();
	if (!net) {
		printf("kv: no network interface\n");
		return 1;
	}
	if (kv_server_start(net, (uint16_t)port, &store) != 0) {
		printf("kv: cannot listen on port %lu\n", port);
		return 1;
	}
	dn_loop_on(DN_EV_STOP, on_stop, NULL);
	printf("kv: listening on port %lu\n", port);
	dn_loop_run();
	return 0;
}
