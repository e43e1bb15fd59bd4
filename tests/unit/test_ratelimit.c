/* Token buckets on a fake clock: size, refill, one-time burst, large requests and large
 * values, and the pair of buckets of a ratelimit; and where devices enforce them: the switch
 * (fake clock), the network thread and the disk worker (real threads, real clock). */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ratelimit/token_bucket.h"
#include "unit.h"
#include "vcpu/vcpu_quota.h"
#include "vdisk/vdisk_dev.h"
#include "vdisk/vdisk_worker.h"
#include "vnet/vnet.h"
#include "vnet/vnet_switch.h"

#define MS 1000000ull
#define S 1000000000ull

/* How many single-token takes a bucket allows from t0 to t1 (exclusive), tried every step. */
static uint64_t count_takes(struct tbucket *b, uint64_t t0, uint64_t t1, uint64_t step)
{
	uint64_t n = 0, at;
	for (uint64_t t = t0; t < t1; t += step)
		while (tbucket_take(b, 1, t, &at))
			n++;
	return n;
}

START_TEST(starts_full_then_refills_at_size_per_refill_time)
{
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 100, .refill_ms = 1000}, 5 * S);
	uint64_t at = 0;
	for (int i = 0; i < 100; i++)
		ck_assert(tbucket_take(&b, 1, 5 * S, &at));
	ck_assert(!tbucket_take(&b, 1, 5 * S, &at));
	ck_assert_uint_eq(at, 5 * S + 10 * MS); /* one token every 10 ms */
	ck_assert(!tbucket_take(&b, 1, 5 * S + 10 * MS - 1, &at));
	ck_assert(tbucket_take(&b, 1, 5 * S + 10 * MS, &at));
	/* Ten seconds of takes tried every 1 ms: a token at each 10 ms mark, none early. */
	ck_assert_uint_eq(count_takes(&b, 5 * S + 10 * MS + 1, 15 * S + 10 * MS + 1, MS), 999);
	ck_assert_uint_eq(count_takes(&b, 15 * S + 10 * MS + 1, 15 * S + 20 * MS + 1, MS), 1);
}
END_TEST

START_TEST(refill_stops_at_size)
{
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 10, .refill_ms = 100}, 0);
	uint64_t at;
	ck_assert(tbucket_take(&b, 10, 0, &at));
	/* An hour idle gives back a full bucket, no more. */
	ck_assert_uint_eq(tbucket_available(&b, 3600 * S), 10);
	ck_assert(tbucket_take(&b, 10, 3600 * S, &at));
	ck_assert(!tbucket_take(&b, 1, 3600 * S, &at));
}
END_TEST

START_TEST(odd_rates_lose_no_fraction)
{
	/* 3 tokens per 1000 ms: a token every 333.33 ms, polled every 7 ms. */
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 3, .refill_ms = 1000}, 0);
	uint64_t n = count_takes(&b, 0, 100 * S, 7 * MS);
	/* 3 at the start, then 3 a second for 100 s (the last may fall just past the end). */
	ck_assert_uint_ge(n, 3 + 299);
	ck_assert_uint_le(n, 3 + 300);
}
END_TEST

START_TEST(one_time_burst_is_spent_first_and_never_refilled)
{
	struct tbucket b;
	tbucket_init(&b,
		     &(struct tbucket_config){.size = 10, .refill_ms = 1000, .one_time_burst = 50},
		     0);
	uint64_t at;
	ck_assert_uint_eq(tbucket_available(&b, 0), 60);
	ck_assert(tbucket_take(&b, 45, 0, &at));
	ck_assert_uint_eq(b.budget, 10);	 /* the burst paid all of it */
	ck_assert(tbucket_take(&b, 10, 0, &at)); /* 5 from the burst, 5 from the budget */
	ck_assert_uint_eq(b.burst, 0);
	ck_assert_uint_eq(b.budget, 5);
	ck_assert_uint_eq(tbucket_available(&b, 100 * S), 10);
	ck_assert_uint_eq(count_takes(&b, 100 * S, 110 * S + 1, MS), 10 + 100);
}
END_TEST

START_TEST(larger_than_size_goes_when_full_and_owes)
{
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 1000, .refill_ms = 1000}, 0);
	uint64_t at;
	ck_assert(tbucket_take(&b, 1, 0, &at));
	ck_assert(!tbucket_take(&b, 3000, 0, &at)); /* not full: waits to be full */
	ck_assert_uint_eq(at, 1 * MS);
	ck_assert(tbucket_take(&b, 3000, 1 * MS, &at));
	ck_assert_uint_eq(b.debt, 2000);
	/* It owes two seconds of refill, then one token takes 1 ms more. */
	ck_assert(!tbucket_take(&b, 1, 1 * MS, &at));
	ck_assert_uint_eq(at, 2001 * MS + 1 * MS);
	ck_assert(!tbucket_take(&b, 1, 2001 * MS, &at));
	ck_assert(tbucket_take(&b, 1, 2002 * MS, &at));
}
END_TEST

START_TEST(large_values_do_not_overflow)
{
	struct tbucket b;
	tbucket_init(&b,
		     &(struct tbucket_config){.size = TBUCKET_TOKENS_MAX,
					      .refill_ms = TBUCKET_REFILL_MS_MAX,
					      .one_time_burst = TBUCKET_TOKENS_MAX},
		     0);
	uint64_t at;
	ck_assert_uint_eq(tbucket_available(&b, 0), 2 * TBUCKET_TOKENS_MAX);
	ck_assert(tbucket_take(&b, TBUCKET_TOKENS_MAX, 0, &at));
	ck_assert(tbucket_take(&b, TBUCKET_TOKENS_MAX, 0, &at));
	ck_assert(!tbucket_take(&b, TBUCKET_TOKENS_MAX, 0, &at));
	ck_assert_uint_eq(at, TBUCKET_REFILL_MS_MAX * MS);
	/* Half the refill time gives half the bucket, exactly. */
	ck_assert_uint_eq(tbucket_available(&b, TBUCKET_REFILL_MS_MAX * MS / 2),
			  TBUCKET_TOKENS_MAX / 2);
	ck_assert(tbucket_take(&b, TBUCKET_TOKENS_MAX, TBUCKET_REFILL_MS_MAX * MS, &at));
	/* A request of 2^64-1 tokens waits for a full bucket, then owes; time near 2^64 ns. */
	ck_assert(!tbucket_take(&b, UINT64_MAX, UINT64_MAX - 1, &at) || b.debt > 0);

	/* A tiny bucket with a long refill: one token an hour; a day later it has one. */
	tbucket_init(&b, &(struct tbucket_config){.size = 1, .refill_ms = TBUCKET_REFILL_MS_MAX},
		     UINT64_MAX - 24 * 3600 * S);
	ck_assert(tbucket_take(&b, 1, UINT64_MAX - 24 * 3600 * S, &at));
	ck_assert_uint_eq(tbucket_available(&b, UINT64_MAX), 1);
}
END_TEST

START_TEST(zero_size_is_unlimited)
{
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 0, .refill_ms = 1000}, 0);
	uint64_t at;
	for (int i = 0; i < 1000; i++)
		ck_assert(tbucket_take(&b, UINT64_MAX, 0, &at));
	struct ratelimit rl;
	ratelimit_init(&rl, &(struct ratelimit_config){0}, 0);
	ck_assert(!rl.limited);
	ck_assert(ratelimit_take(&rl, UINT64_MAX, 0, &at));
}
END_TEST

START_TEST(ratelimit_takes_from_both_or_neither)
{
	/* 10 ops a second, 1000 bytes a second. */
	struct ratelimit rl;
	ratelimit_init(&rl,
		       &(struct ratelimit_config){.bandwidth = {.size = 1000, .refill_ms = 1000},
						  .ops = {.size = 10, .refill_ms = 1000}},
		       0);
	uint64_t at;
	ck_assert(ratelimit_take(&rl, 900, 0, &at));
	/* The ops bucket could give, the bytes bucket cannot: neither gives. */
	ck_assert(!ratelimit_take(&rl, 200, 0, &at));
	ck_assert_uint_eq(rl.ops.budget, 9);
	ck_assert_uint_eq(at, 100 * MS); /* 100 more bytes */
	ck_assert_uint_eq(rl.throttled, 1);
	ck_assert(!ratelimit_take(&rl, 200, 50 * MS, &at)); /* the same one: counted once */
	ck_assert_uint_eq(rl.throttled, 1);
	ck_assert(ratelimit_take(&rl, 200, 100 * MS, &at));
	ck_assert_uint_eq(rl.throttled_ns, 100 * MS);
	/* Small operations: the ops bucket decides. Ten seconds tried every ms. */
	uint64_t n = 0;
	for (uint64_t t = 100 * MS; t < 10100 * MS; t += MS)
		while (ratelimit_take(&rl, 1, t, &at))
			n++;
	ck_assert_uint_ge(n, 100 + 8 - 1);
	ck_assert_uint_le(n, 100 + 8 + 1);
}
END_TEST

/* ---- Where the limits are enforced ---- */
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static uint64_t wall_ns(void)
{
	return ratelimit_now();
}

/* A NIC window in plain memory (or over a RAM file for the network thread). */
struct nic {
	uint8_t *win;
	struct dn_nic *nic;
	uint8_t mac[6];
	int mem_fd, kick, wake;
};

static void nic_init(struct nic *n, uint8_t last, int with_file)
{
	memset(n, 0, sizeof(*n));
	n->mem_fd = n->kick = n->wake = -1;
	if (with_file) {
		n->mem_fd = memfd_create("rl-ram", MFD_CLOEXEC);
		ck_assert_int_ge(n->mem_fd, 0);
		ck_assert_int_eq(ftruncate(n->mem_fd, DN_GPA_IOWIN + DN_IOWIN_SIZE), 0);
		n->win = mmap(NULL, DN_IOWIN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, n->mem_fd,
			      DN_GPA_IOWIN);
		ck_assert(n->win != MAP_FAILED);
		n->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		n->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	} else {
		n->win = calloc(1, DN_IOWIN_SIZE);
		ck_assert_ptr_nonnull(n->win);
	}
	n->nic = (struct dn_nic *)(n->win + DN_IOWIN_NIC);
	uint8_t mac[6] = {0x02, 0, 0, 0, 0x7e, last};
	memcpy(n->mac, mac, 6);
}

static void nic_free(struct nic *n)
{
	if (n->mem_fd < 0) {
		free(n->win);
		return;
	}
	munmap(n->win, DN_IOWIN_SIZE);
	close(n->mem_fd), close(n->kick), close(n->wake);
}

/* Queues count frames of len bytes from n to dst. */
static void nic_send(struct nic *n, const uint8_t *dst, unsigned count, uint16_t len)
{
	for (unsigned i = 0; i < count; i++) {
		uint32_t a = n->nic->tx.avail;
		uint32_t off = DN_IOWIN_BUFS + (a % DN_NIC_RING_SIZE) * 2048;
		uint8_t *f = n->win + off;
		memcpy(f, dst, 6);
		memcpy(f + 6, n->mac, 6);
		f[12] = 0x08, f[13] = 0x00;
		n->nic->tx.desc[a % DN_NIC_RING_SIZE] = (struct dn_nic_desc){off, len, 0};
		__atomic_store_n(&n->nic->tx.avail, a + 1, __ATOMIC_RELEASE);
	}
}

static void nic_post_rx(struct nic *n, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		uint32_t a = n->nic->rx.avail;
		n->nic->rx.desc[a % DN_NIC_RING_SIZE] = (struct dn_nic_desc){
			DN_IOWIN_BUFS + 0x40000 + (a % DN_NIC_RING_SIZE) * 2048, 2048, 0};
		n->nic->rx.avail = a + 1;
	}
}

/* A switch on the fake clock, starting at now. */
static void switch_start(struct vnet_switch *sw, uint64_t now)
{
	fake_now = now;
	ck_assert_int_eq(vnet_switch_init(sw), 0);
	sw->clock = fake_clock;
}

/* A guest's NIC in plain memory (its MAC ending in last) on the switch, for service; its port. */
static int switch_add(struct vnet_switch *sw, unsigned service, struct nic *n, uint8_t last)
{
	nic_init(n, last, 0);
	int port = vnet_switch_add_guest(sw, service, n->mac, 0, VNET_NO_UPLINK, n->win);
	ck_assert_int_ge(port, 0);
	return port;
}

static const struct ratelimit_config ops_10_per_s = {.ops = {.size = 10, .refill_ms = 1000}};

START_TEST(switch_tx_limit_holds_frames_in_the_ring)
{
	/* a may send 10 frames a second to b; c, with no limit, sends to a (no RX buffers:
	 * dropped, but sent at once). */
	struct vnet_switch sw;
	switch_start(&sw, 1 * S);
	struct nic a, b, c;
	int pa = switch_add(&sw, 0, &a, 1);
	switch_add(&sw, 1, &b, 2);
	int pc = switch_add(&sw, 2, &c, 3);
	vnet_switch_set_limits(&sw, (unsigned)pa, NULL, &ops_10_per_s);
	nic_post_rx(&b, DN_NIC_RING_SIZE);
	nic_send(&a, b.mac, 100, 60);
	nic_send(&c, a.mac, 100, 60);
	int more;
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pa, 1000, &more), 10);
	ck_assert_int_eq(more, 0);
	ck_assert_uint_eq(sw.ports[pa].tx_ready_at, 1 * S + 100 * MS);
	ck_assert_uint_eq(a.nic->tx.used, 10); /* the rest wait in its ring: nothing dropped */
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pc, 1000, &more), 100);
	ck_assert_uint_eq(sw.ports[pc].tx_ready_at, 0);
	/* Tried again early: nothing goes, the frame is counted as throttled once. */
	fake_now += 99 * MS;
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pa, 1000, &more), 0);
	fake_now += 1 * MS;
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pa, 1000, &more), 1);
	/* A second at a time: ten frames each (the bucket holds no more), 89 in nine. */
	for (int i = 0; i < 9; i++) {
		fake_now += 1 * S;
		ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pa, 1000, &more),
				  i < 8 ? 10 : 9);
	}
	ck_assert_uint_eq(a.nic->tx.used, 100);
	ck_assert_uint_eq(a.nic->tx_dropped, 0);
	struct vnet_port_counters ca = vnet_switch_counters(&sw, (unsigned)pa);
	ck_assert_uint_eq(ca.tx_frames, 100);
	/* The 11th waited 100 ms, then the one after each batch a second, nine times. */
	ck_assert_uint_eq(ca.tx_throttled, 10);
	ck_assert_uint_eq(ca.tx_throttled_ns, 100 * MS + 9 * S);
	ck_assert_uint_eq(vnet_switch_counters(&sw, (unsigned)pc).tx_throttled, 0);
	vnet_switch_free(&sw);
	nic_free(&a), nic_free(&b), nic_free(&c);
}
END_TEST

START_TEST(switch_rx_limit_drops_and_counts)
{
	/* b takes 10 frames a second and 1000 bytes; a and c send to b and to d, which has no
	 * limit: d gets all of theirs. */
	struct vnet_switch sw;
	switch_start(&sw, 7 * S);
	struct nic a, b, d;
	int pa = switch_add(&sw, 0, &a, 1);
	int pb = switch_add(&sw, 1, &b, 2);
	int pd = switch_add(&sw, 3, &d, 4);
	struct ratelimit_config rx = {.bandwidth = {.size = 1000, .refill_ms = 1000},
				      .ops = {.size = 10, .refill_ms = 1000}};
	vnet_switch_set_limits(&sw, (unsigned)pb, &rx, NULL);
	nic_post_rx(&b, DN_NIC_RING_SIZE);
	nic_post_rx(&d, DN_NIC_RING_SIZE);
	nic_send(&a, b.mac, 20, 60);
	nic_send(&a, d.mac, 20, 60);
	int more;
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pa, 1000, &more), 40);
	struct vnet_port_counters cb = vnet_switch_counters(&sw, (unsigned)pb);
	ck_assert_uint_eq(cb.rx_frames, 10);
	ck_assert_uint_eq(cb.rx_throttled, 10);
	ck_assert_uint_eq(vnet_switch_counters(&sw, (unsigned)pd).rx_frames, 20);
	/* The bytes bucket: 1000 bytes a second lets 2 frames of 400 in after a second. */
	fake_now += 1 * S;
	nic_send(&a, b.mac, 3, 400);
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pa, 1000, &more), 3);
	cb = vnet_switch_counters(&sw, (unsigned)pb);
	ck_assert_uint_eq(cb.rx_frames, 12);
	ck_assert_uint_eq(cb.rx_throttled, 11);
	vnet_switch_free(&sw);
	nic_free(&a), nic_free(&b), nic_free(&d);
}
END_TEST

static int attach(struct vnet *vn, unsigned service, struct nic *n)
{
	char err[256];
	int rc = vnet_attach(vn, service, n->mem_fd, dup(n->kick), dup(n->wake), err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	return rc;
}

/* A guest's kick: one on the eventfd. */
static void kick(int fd)
{
	uint64_t one = 1;
	ck_assert_int_eq(write(fd, &one, sizeof(one)), sizeof(one));
}

/* Waits until the network thread has taken want frames from n's ring, or ms have passed. */
static void nic_wait_sent(struct nic *n, uint32_t want, int ms)
{
	for (int i = 0; i < ms && __atomic_load_n(&n->nic->tx.used, __ATOMIC_ACQUIRE) < want; i++)
		usleep(1000);
}

START_TEST(network_thread_comes_back_for_a_throttled_port)
{
	/* Through the network thread, on the real clock: service 0 may send 20 frames a second
	 * (a bucket of 10), service 1 has no limit; each puts 100 frames in its ring and kicks
	 * once. Service 1's go at once; service 0's go as tokens come back, without another kick,
	 * and never faster than the limit; none is dropped. */
	struct vnet_port_config port[3];
	memset(port, 0, sizeof(port));
	for (unsigned i = 0; i < 3; i++) {
		port[i].uplink = VNET_UPLINK_NONE;
		uint8_t mac[6] = {0x02, 0, 0, 0, 0x7e, (uint8_t)(i + 1)};
		memcpy(port[i].mac, mac, 6);
	}
	port[0].tx_limit.ops = (struct tbucket_config){.size = 10, .refill_ms = 500};
	char err[256];
	struct vnet *vn = vnet_create(err, sizeof(err));
	ck_assert_msg(vn != NULL, "%s", err);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_msg(vnet_add_port(vn, i, &port[i], err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(vnet_start(vn, err, sizeof(err)) == 0, "%s", err);
	struct nic n[3];
	for (unsigned i = 0; i < 3; i++) {
		nic_init(&n[i], (uint8_t)(i + 1), 1);
		attach(vn, i, &n[i]);
	}
	uint64_t t0 = wall_ns();
	nic_send(&n[0], n[2].mac, 100, 60);
	nic_send(&n[1], n[2].mac, 100, 60);
	kick(n[0].kick);
	kick(n[1].kick);
	nic_wait_sent(&n[1], 100, 10000);
	ck_assert_uint_eq(n[1].nic->tx.used, 100);
	/* Never early: at most the bucket and what refilled since t0 (plus one in flight). */
	uint64_t sent0 = __atomic_load_n(&n[0].nic->tx.used, __ATOMIC_ACQUIRE);
	ck_assert_uint_le(sent0, 10 + (wall_ns() - t0) * 20 / S + 1);
	ck_assert_uint_lt(sent0, 100);
	nic_wait_sent(&n[0], 100, 30000);
	ck_assert_uint_eq(n[0].nic->tx.used, 100); /* with no kick after the first */
	ck_assert_uint_ge(wall_ns() - t0, 90 * S / 20);
	printf("net thread: 100 frames at 20/s after a bucket of 10 in %llu ms\n",
	       (unsigned long long)((wall_ns() - t0) / MS));
	struct vnet_port_counters c0, c1;
	ck_assert_int_eq(vnet_counters(vn, 0, &c0), 0);
	ck_assert_int_eq(vnet_counters(vn, 1, &c1), 0);
	ck_assert_uint_eq(c0.tx_frames + c0.tx_dropped, 100);
	ck_assert_uint_ge(c0.tx_throttled, 1);
	ck_assert_uint_ge(c0.tx_throttled_ns, 90 * S / 20 / 2);
	ck_assert_uint_eq(c1.tx_throttled, 0);
	vnet_destroy(vn);
	for (unsigned i = 0; i < 3; i++)
		nic_free(&n[i]);
}
END_TEST

/* A disk over plain memory and an image in the test's folder. */
#define DISK_RAM (8u << 20)
#define DISK_BLOCKS 256u

struct disk {
	uint8_t *ram;
	struct dn_disk *shared;
	struct vdisk_dev dev;
	int kick_fd;
	unsigned raised, halted;
};

static void disk_raise(void *ctx)
{
	__atomic_add_fetch(&((struct disk *)ctx)->raised, 1, __ATOMIC_RELAXED);
}

static void disk_halt(void *ctx, const char *reason)
{
	(void)reason;
	((struct disk *)ctx)->halted++;
}

static void disk_open(struct disk *d, const char *name, const struct ratelimit_config *limit,
		      uint64_t (*clock)(void))
{
	memset(d, 0, sizeof(*d));
	d->ram = mmap(NULL, DISK_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(d->ram, MAP_FAILED);
	d->shared = (struct dn_disk *)(d->ram + DN_GPA_IOWIN + DN_IOWIN_DISK);
	d->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	char path[4096], err[512];
	snprintf(path, sizeof(path), "%s/%s", unit_tmpdir(), name);
	unlink(path);
	struct vdisk_dev_hooks hooks = {d, disk_raise, disk_halt, name};
	ck_assert_msg(vdisk_dev_open(&d->dev, path, DISK_BLOCKS * DN_DISK_BLOCK, 0, d->shared,
				     d->ram, DISK_RAM, d->kick_fd, &hooks, err, sizeof(err)) == 0,
		      "%s", err);
	d->dev.clock = clock;
	vdisk_dev_set_limit(&d->dev, limit);
}

static void disk_close(struct disk *d)
{
	vdisk_dev_close(&d->dev);
	close(d->kick_fd);
	munmap(d->ram, DISK_RAM);
}

/* Takes the completions the device has posted, as the guest does; returns how many, and counts
 * the failed ones in *failed. */
static unsigned disk_reap(struct disk *d, unsigned *failed)
{
	unsigned n = 0;
	uint32_t avail = __atomic_load_n(&d->shared->cq_avail, __ATOMIC_ACQUIRE);
	while (d->shared->cq_used != avail) {
		struct dn_disk_cpl c = d->shared->cq[d->shared->cq_used % DN_DISK_RING_SIZE];
		*failed += c.status != DN_DISK_OK;
		__atomic_store_n(&d->shared->cq_used, d->shared->cq_used + 1, __ATOMIC_RELEASE);
		n++;
	}
	return n;
}

/* Queues count reads of blocks blocks each. */
static void disk_submit(struct disk *d, unsigned count, uint32_t blocks)
{
	for (unsigned i = 0; i < count; i++) {
		uint32_t a = d->shared->sq_avail;
		d->shared->sq[a % DN_DISK_RING_SIZE] = (struct dn_disk_req){
			.id = a,
			.op = DN_DISK_READ,
			.block = a % DISK_BLOCKS,
			.count = a % DISK_BLOCKS + blocks > DISK_BLOCKS ? 1 : blocks,
			.buf = DN_GPA_IMAGE_BASE};
		__atomic_store_n(&d->shared->sq_avail, a + 1, __ATOMIC_RELEASE);
	}
}

START_TEST(disk_limit_leaves_requests_in_the_ring)
{
	fake_now = 3 * S;
	struct disk d;
	struct ratelimit_config limit = {
		.bandwidth = {.size = 16 * DN_DISK_BLOCK, .refill_ms = 1000},
		.ops = {.size = 5, .refill_ms = 1000}};
	disk_open(&d, "rl-fake.img", &limit, fake_clock);
	disk_submit(&d, 10, 1);
	vdisk_dev_kick(&d.dev);
	ck_assert_uint_eq(d.dev.sq_used, 5); /* five taken; five wait in the guest's ring */
	ck_assert_uint_eq(d.shared->sq_used, 5);
	ck_assert_uint_eq(d.dev.ready_at, 3 * S + 200 * MS);
	vdisk_dev_kick(&d.dev); /* early: nothing */
	ck_assert_uint_eq(d.dev.sq_used, 5);
	fake_now += 1 * S;
	vdisk_dev_kick(&d.dev);
	ck_assert_uint_eq(d.dev.sq_used, 10);
	ck_assert_uint_eq(d.dev.ready_at, 0);
	ck_assert_uint_eq(d.dev.stats.throttled, 1);
	ck_assert_uint_eq(d.dev.stats.throttled_ns, 1 * S);
	/* Bytes: 16 blocks a second. 10 reads of 4 blocks: the next ones wait for bytes. */
	fake_now += 10 * S;
	disk_submit(&d, 10, 4);
	vdisk_dev_kick(&d.dev);
	ck_assert_uint_eq(d.dev.sq_used, 14);
	ck_assert_uint_eq(d.dev.ready_at, fake_now + 250 * MS); /* 4 of 16 blocks */
	/* A request that will fail costs nothing and is not held back. */
	fake_now += 100 * S;
	vdisk_dev_kick(&d.dev);
	ck_assert_uint_eq(d.dev.sq_used, 18); /* 16 blocks */
	ck_assert_uint_eq(d.halted, 0);
	disk_close(&d);
}
END_TEST

START_TEST(disk_worker_serves_a_neighbour_while_one_waits)
{
	/* One worker, two disks: a may do 20 requests a second (a bucket of 5), b has no
	 * limit. Each queues 100 reads and kicks once. b's all finish while a waits; a's finish
	 * later, with no kick after the first (the worker's timer), never early, none failed. */
	struct vdisk_worker w;
	char err[256];
	ck_assert_msg(vdisk_worker_start(&w, err, sizeof(err)) == 0, "%s", err);
	struct disk a, b;
	struct ratelimit_config limit = {.ops = {.size = 5, .refill_ms = 250}};
	disk_open(&a, "rl-a.img", &limit, ratelimit_now);
	disk_open(&b, "rl-b.img", NULL, ratelimit_now);
	struct vdisk_port *pa = vdisk_worker_attach(&w, &a.dev, err, sizeof(err));
	struct vdisk_port *pb = vdisk_worker_attach(&w, &b.dev, err, sizeof(err));
	ck_assert(pa && pb);
	/* The guest's side: it takes completions as they come (room for more requests). */
	uint64_t t0 = wall_ns();
	unsigned done_a = 0, done_b = 0, failed = 0;
	disk_submit(&a, 100, 1);
	disk_submit(&b, 100, 1);
	kick(a.kick_fd);
	kick(b.kick_fd);
	uint64_t a_when_b_done = 0;
	for (int i = 0; i < 30000 && done_a < 100; i++) {
		done_a += disk_reap(&a, &failed);
		done_b += disk_reap(&b, &failed);
		if (done_b == 100 && !a_when_b_done) {
			a_when_b_done = done_a + 1;
			/* Never early: the bucket, and what refilled since t0, and one. */
			ck_assert_uint_le(done_a, 5 + (wall_ns() - t0) * 20 / S + 1);
		}
		usleep(1000);
	}
	ck_assert_uint_eq(done_b, 100);
	ck_assert_uint_eq(done_a, 100);
	ck_assert_uint_eq(failed, 0);
	ck_assert_uint_lt(a_when_b_done - 1, 100); /* b did not wait for a */
	ck_assert_uint_ge(wall_ns() - t0, 95 * S / 20);
	vdisk_worker_detach(pa);
	vdisk_worker_detach(pb);
	ck_assert_uint_ge(a.dev.stats.throttled, 1);
	ck_assert_uint_eq(b.dev.stats.throttled, 0);
	vdisk_worker_stop(&w);
	disk_close(&a);
	disk_close(&b);
}
END_TEST

/* ---- service.json ---- */
static const struct vmm_config_limits config_limits = {.ram_max = 64u << 20};

static int load(const char *name, const char *json, struct vmm_service_config *cfg, char *err,
		size_t errlen)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", unit_tmpdir(), name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
	return vmm_config_load(path, &config_limits, cfg, err, errlen);
}

/* The service file name holding json is refused: the error it gave. */
static const char *refused(const char *name, const char *json)
{
	static char err[512];
	struct vmm_service_config cfg;
	err[0] = '\0';
	ck_assert_int_eq(load(name, json, &cfg, err, sizeof(err)), -1);
	return err;
}

START_TEST(config_reads_every_limiter)
{
	char err[512] = "";
	struct vmm_service_config cfg;
	int rc = load("rl-good.json",
		      "{\"image\": \"h\", \"net\": {\"uplink\": \"none\","
		      " \"tx_rate_limiter\": {\"ops\": {\"size\": 100, \"refill_time_ms\": 1000},"
		      " \"bandwidth\": {\"size\": 1048576, \"refill_time_ms\": 100,"
		      " \"one_time_burst\": 4194304}},"
		      " \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 0}}},"
		      " \"disk\": {\"path\": \"rl-good.img\", \"size\": \"1M\","
		      " \"rate_limiter\": {\"ops\": {\"size\": 4611686018427387904,"
		      " \"refill_time_ms\": 3600000}}}}",
		      &cfg, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_uint_eq(cfg.net.tx_limit.ops.size, 100);
	ck_assert_uint_eq(cfg.net.tx_limit.ops.refill_ms, 1000);
	ck_assert_uint_eq(cfg.net.tx_limit.bandwidth.size, 1048576);
	ck_assert_uint_eq(cfg.net.tx_limit.bandwidth.one_time_burst, 4194304);
	ck_assert(ratelimit_config_limited(&cfg.net.tx_limit));
	ck_assert(!ratelimit_config_limited(&cfg.net.rx_limit));
	ck_assert_uint_eq(cfg.disk.limit.ops.size, TBUCKET_TOKENS_MAX);
	ck_assert_uint_eq(cfg.disk.limit.ops.refill_ms, TBUCKET_REFILL_MS_MAX);
	vmm_config_free(&cfg);
}
END_TEST

static const struct {
	const char *json; /* the "net" object's limiter, or the disk's */
	const char *expect;
} bad_limiters[] = {
	{"\"tx_rate_limiter\": 5", "key \"net.tx_rate_limiter\": expected an object"},
	{"\"tx_rate_limiter\": {\"frames\": {}}",
	 "key \"net.tx_rate_limiter.frames\": unknown key (known keys: bandwidth, ops)"},
	{"\"rx_rate_limiter\": {\"ops\": {\"size\": 10}}",
	 "key \"net.rx_rate_limiter.ops.refill_time_ms\": missing"},
	{"\"rx_rate_limiter\": {\"ops\": {\"refill_time_ms\": 10}}",
	 "key \"net.rx_rate_limiter.ops.size\": missing"},
	{"\"rx_rate_limiter\": {\"ops\": {\"size\": -1, \"refill_time_ms\": 10}}",
	 "key \"net.rx_rate_limiter.ops.size\": expected an integer from 0 to "
	 "4611686018427387904"},
	{"\"rx_rate_limiter\": {\"ops\": {\"size\": 4611686018427387905, \"refill_time_ms\": 1}}",
	 "expected an integer from 0 to 4611686018427387904"},
	{"\"rx_rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time_ms\": 0}}",
	 "key \"net.rx_rate_limiter.ops.refill_time_ms\": expected an integer from 1 to 3600000"},
	{"\"rx_rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time_ms\": 3600001}}",
	 "expected an integer from 1 to 3600000"},
	{"\"rx_rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time_ms\": 1.5}}",
	 "expected an integer from 1 to 3600000"},
	{"\"rx_rate_limiter\": {\"ops\": {\"size\": 0, \"one_time_burst\": 5}}",
	 "key \"net.rx_rate_limiter.ops.one_time_burst\": needs a size"},
	{"\"rx_rate_limiter\": {\"bandwidth\": {\"size\": 1, \"refill_time_ms\": 1, \"x\": 1}}",
	 "key \"net.rx_rate_limiter.bandwidth.x\": unknown key (known keys: size, "
	 "refill_time_ms, one_time_burst)"},
	{"\"rx_rate_limiter\": {\"bandwidth\": \"1M\"}",
	 "key \"net.rx_rate_limiter.bandwidth\": expected an object"},
};

START_TEST(config_refuses_bad_limiters)
{
	char json[1024], err[512];
	const char *why;
	struct vmm_service_config cfg;
	for (size_t i = 0; i < sizeof(bad_limiters) / sizeof(bad_limiters[0]); i++) {
		snprintf(json, sizeof(json),
			 "{\"image\": \"h\", \"net\": {\"uplink\": \"none\", %s}}",
			 bad_limiters[i].json);
		why = refused("rl-bad.json", json);
		ck_assert_msg(strstr(why, bad_limiters[i].expect) &&
				      strstr(why, "rl-bad.json: key"),
			      "case %zu: got \"%s\"", i, why);
		ck_assert_ptr_null(strchr(why, '\n'));
	}
	/* The disk's, named as disk.rate_limiter. */
	why = refused("rl-bad-disk.json",
		      "{\"image\": \"h\", \"disk\": {\"path\": \"rl-bad.img\", \"size\": \"1M\", "
		      "\"rate_limiter\": {\"ops\": {\"size\": 1}}}}");
	ck_assert_msg(strstr(why, "key \"disk.rate_limiter.ops.refill_time_ms\": missing"), "%s",
		      why);
	why = refused("rl-bad-disk.json",
		      "{\"image\": \"h\", \"disk\": {\"path\": \"rl-bad.img\", \"size\": \"1M\", "
		      "\"limit\": {}}}");
	ck_assert_msg(strstr(why, "key \"disk.limit\": unknown key (known keys: path, size, "
				  "readonly, rate_limiter)"),
		      "%s", why);
	/* cpu_limit. */
	static const struct {
		const char *json, *expect;
	} cpu[] = {
		{"{\"percent\": 0}",
		 "key \"cpu_limit.percent\": expected an integer from 1 to 100"},
		{"{\"percent\": 101}", "expected an integer from 1 to 100"},
		{"{\"percent\": \"25%\"}", "expected an integer from 1 to 100"},
		{"{}", "key \"cpu_limit.percent\": missing"},
		{"{\"percent\": 5, \"period_ms\": 9}",
		 "key \"cpu_limit.period_ms\": expected an integer from 10 to 1000"},
		{"{\"percent\": 5, \"period_ms\": 1001}", "expected an integer from 10 to 1000"},
		{"{\"percent\": 5, \"shares\": 2}",
		 "key \"cpu_limit.shares\": unknown key (known keys: percent, period_ms)"},
		{"25", "key \"cpu_limit\": expected an object"},
	};
	for (size_t i = 0; i < sizeof(cpu) / sizeof(cpu[0]); i++) {
		snprintf(json, sizeof(json), "{\"image\": \"h\", \"cpu_limit\": %s}", cpu[i].json);
		why = refused("rl-cpu.json", json);
		ck_assert_msg(strstr(why, cpu[i].expect), "cpu case %zu: got \"%s\"", i, why);
	}
	ck_assert_int_eq(load("rl-cpu.json", "{\"image\": \"h\", \"cpu_limit\": {\"percent\": 25}}",
			      &cfg, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(cfg.cpu_limit.percent, 25);
	ck_assert_uint_eq(cfg.cpu_limit.period_ms, VCPU_QUOTA_PERIOD_MS_DEFAULT);
	vmm_config_free(&cfg);
	ck_assert_int_eq(
		load("rl-cpu.json",
		     "{\"image\": \"h\", \"cpu_limit\": {\"percent\": 100, \"period_ms\": 10}}",
		     &cfg, err, sizeof(err)),
		0);
	ck_assert_uint_eq(cfg.cpu_limit.percent, 0); /* all of a CPU: no limit */
	vmm_config_free(&cfg);
}
END_TEST

/* ---- The CPU quota of a vcpu thread ---- */
static __thread volatile sig_atomic_t quota_kicked;

static void on_quota_kick(int signo)
{
	(void)signo;
	quota_kicked = 1;
}

struct spinner {
	unsigned percent;
	volatile sig_atomic_t stop;
	unsigned throttles_wanted;
	uint64_t kicks, cpu_ns, wall_ns, throttles, throttled_ns;
	int rc;
};

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

/* A guest that never exits on its own: it spins until the quota's kick (as KVM_RUN returns
 * only on a signal), then does what the vcpu loop does before entering again. */
static void *spinner_main(void *arg)
{
	struct spinner *sp = arg;
	struct vcpu_quota q = {0};
	sp->rc = vcpu_quota_start(&q, sp->percent, 100, SIGUSR2);
	uint64_t wall0 = clock_ns(CLOCK_MONOTONIC), cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	volatile uint64_t work = 0;
	while (!sp->stop && q.throttles < sp->throttles_wanted &&
	       clock_ns(CLOCK_MONOTONIC) - wall0 < 60 * S) {
		vcpu_quota_enforce(&q, &sp->stop);
		while (!quota_kicked && !sp->stop)
			work++;
		sp->kicks += quota_kicked;
		quota_kicked = 0;
	}
	sp->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	sp->wall_ns = clock_ns(CLOCK_MONOTONIC) - wall0;
	sp->throttles = q.throttles;
	sp->throttled_ns = q.throttled_ns;
	vcpu_quota_stop(&q);
	return NULL;
}

START_TEST(cpu_quota_holds_a_spinning_thread_to_its_share)
{
	/* 20% of a CPU in 100 ms periods: the thread is kicked out of its spin when it has used
	 * its share, and sleeps out the period. Counted over ten throttled periods (however long
	 * a loaded machine takes to give it that much CPU): it used at most its share of the
	 * wall time, plus what a kick can come late (a timer tick) each period. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_quota_kick;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
	struct spinner sp = {.percent = 20, .throttles_wanted = 10};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, spinner_main, &sp), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(sp.rc, 0);
	ck_assert_uint_eq(sp.throttles, 10);
	ck_assert_uint_ge(sp.kicks, 10);
	/* Ten periods at least passed in which it used 20 ms each. */
	ck_assert_uint_ge(sp.cpu_ns, 10 * 20 * MS);
	ck_assert_uint_le(sp.cpu_ns, sp.wall_ns * 20 / 100 + 11 * 15 * MS);
	ck_assert_uint_gt(sp.throttled_ns, 0);
	printf("cpu quota 20%%: %llu ms of CPU in %llu ms, %llu kicks, slept %llu ms\n",
	       (unsigned long long)(sp.cpu_ns / MS), (unsigned long long)(sp.wall_ns / MS),
	       (unsigned long long)sp.kicks, (unsigned long long)(sp.throttled_ns / MS));
	/* A stop ends a throttled sleep at once. */
	struct spinner stopped = {.percent = 1, .throttles_wanted = 1000};
	ck_assert_int_eq(pthread_create(&t, NULL, spinner_main, &stopped), 0);
	usleep(300000);
	stopped.stop = 1;
	pthread_kill(t, SIGUSR2);
	pthread_join(t, NULL);
	ck_assert_uint_lt(stopped.wall_ns, 30 * S);
	/* 100 percent (or 0) is no quota: nothing is created, nothing sleeps. */
	struct vcpu_quota q = {0};
	ck_assert_int_eq(vcpu_quota_start(&q, 100, 100, SIGUSR2), 0);
	ck_assert(!q.timer_created);
	vcpu_quota_enforce(&q, &stopped.stop);
	ck_assert_uint_eq(q.throttles, 0);
}
END_TEST

Suite *ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("bucket");
	tcase_add_test(tc, starts_full_then_refills_at_size_per_refill_time);
	tcase_add_test(tc, refill_stops_at_size);
	tcase_add_test(tc, odd_rates_lose_no_fraction);
	tcase_add_test(tc, one_time_burst_is_spent_first_and_never_refilled);
	tcase_add_test(tc, larger_than_size_goes_when_full_and_owes);
	tcase_add_test(tc, large_values_do_not_overflow);
	tcase_add_test(tc, zero_size_is_unlimited);
	tcase_add_test(tc, ratelimit_takes_from_both_or_neither);
	suite_add_tcase(s, tc);
	tc = tcase_create("service.json");
	tcase_add_test(tc, config_reads_every_limiter);
	tcase_add_test(tc, config_refuses_bad_limiters);
	suite_add_tcase(s, tc);
	tc = tcase_create("devices");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, switch_tx_limit_holds_frames_in_the_ring);
	tcase_add_test(tc, switch_rx_limit_drops_and_counts);
	tcase_add_test(tc, network_thread_comes_back_for_a_throttled_port);
	tcase_add_test(tc, disk_limit_leaves_requests_in_the_ring);
	tcase_add_test(tc, disk_worker_serves_a_neighbour_while_one_waits);
	tcase_add_test(tc, cpu_quota_holds_a_spinning_thread_to_its_share);
	suite_add_tcase(s, tc);
	return s;
}
