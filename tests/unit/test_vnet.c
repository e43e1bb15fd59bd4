/* The switch and the device side of the NIC rings, on windows in plain memory: hostile
 * descriptors, source-MAC enforcement, learning, flooding, reachability, bounded queues; and
 * sleeping ports, in the switch and through the network thread. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guestmem.h"
#include "unit.h"
#include "vnet/vnet.h"
#include "vnet/vnet_sanitize.h"
#include "vnet/vnet_slirp.h"
#include "vnet/vnet_switch.h"

struct guest {
	uint8_t *win;
	struct dn_nic *nic;
	uint8_t mac[6];
	uint32_t rx_seen;
	int fd; /* the file behind win (guest_init_file), else -1 */
};

static void guest_init(struct guest *g, uint8_t last)
{
	g->win = calloc(1, DN_IOWIN_SIZE);
	ck_assert_ptr_nonnull(g->win);
	g->nic = (struct dn_nic *)(g->win + DN_IOWIN_NIC);
	uint8_t mac[6] = {0x02, 0, 0, 0, 0, last};
	memcpy(g->mac, mac, 6);
	g->rx_seen = 0;
	g->fd = -1;
}

/* Maps g's window (again) from its file, as the switch would after a swap-in. */
static void guest_map(struct guest *g)
{
	g->win = mmap(NULL, DN_IOWIN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
	ck_assert(g->win != MAP_FAILED);
	g->nic = (struct dn_nic *)(g->win + DN_IOWIN_NIC);
}

/* A guest whose window is a file mapping, so that it can go away while the port sleeps:
 * then any access to it would fault. */
static void guest_init_file(struct guest *g, uint8_t last)
{
	guest_init(g, last);
	free(g->win);
	g->fd = memfd_create("vnet-window", MFD_CLOEXEC);
	ck_assert_int_ge(g->fd, 0);
	ck_assert_int_eq(ftruncate(g->fd, DN_IOWIN_SIZE), 0);
	guest_map(g);
}

static void guest_unmap(struct guest *g)
{
	ck_assert_int_eq(munmap(g->win, DN_IOWIN_SIZE), 0);
	g->win = NULL;
	g->nic = NULL;
}

static void guest_free(struct guest *g)
{
	if (g->fd < 0) {
		free(g->win);
		return;
	}
	if (g->win)
		guest_unmap(g);
	close(g->fd);
}

/* Publishes n RX buffers of cap bytes each. */
static void post_rx(struct guest *g, unsigned n, uint16_t cap)
{
	for (unsigned i = 0; i < n; i++) {
		uint32_t a = g->nic->rx.avail;
		g->nic->rx.desc[a % DN_NIC_RING_SIZE] = (struct dn_nic_desc){
			DN_IOWIN_BUFS + 0x40000 + (a % DN_NIC_RING_SIZE) * 2048, cap, 0};
		g->nic->rx.avail = a + 1;
	}
}

static void put_frame(struct guest *g, const uint8_t *dst, const uint8_t *src, const char *text)
{
	uint32_t a = g->nic->tx.avail;
	uint32_t off = DN_IOWIN_BUFS + (a % DN_NIC_RING_SIZE) * 2048;
	uint8_t *f = g->win + off;
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08; /* IPv4: the guests here have no address to check, and it may leave */
	f[13] = 0x00;
	size_t n = strlen(text) + 1;
	memcpy(f + 14, text, n);
	g->nic->tx.desc[a % DN_NIC_RING_SIZE] = (struct dn_nic_desc){off, (uint16_t)(14 + n), 0};
	g->nic->tx.avail = a + 1;
}

/* The frame put last in g's TX ring. */
static uint8_t *last_tx(struct guest *g)
{
	return g->win + g->nic->tx.desc[(g->nic->tx.avail - 1) % DN_NIC_RING_SIZE].offset;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Queues an ARP packet (oper 1: request, 2: reply) from g, about target_ip, to dst. */
static void put_arp(struct guest *g, const uint8_t *dst, unsigned oper, uint32_t target_ip)
{
	put_frame(g, dst, g->mac, "arp, padded to more than 42 bytes");
	uint8_t *f = last_tx(g);
	static const uint8_t head[8] = {0, 1, 0x08, 0x00, 6, 4, 0, 0};
	f[12] = 0x08, f[13] = 0x06;
	memcpy(f + 14, head, 8);
	f[21] = (uint8_t)oper;
	memcpy(f + 22, g->mac, 6);
	put_be32(f + 28, 0); /* the senders here have no address to check */
	memset(f + 32, 0, 6);
	put_be32(f + 38, target_ip);
}

/* The text of the next received frame, or NULL. */
static const char *take_rx(struct guest *g)
{
	if (g->rx_seen == g->nic->rx.used)
		return NULL;
	struct dn_nic_desc *d = &g->nic->rx.desc[g->rx_seen++ % DN_NIC_RING_SIZE];
	ck_assert_uint_eq(d->status, DN_NIC_OK);
	return (const char *)g->win + d->offset + 14;
}

static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct uplink_sink {
	unsigned frames;
	uint8_t last[DN_NIC_FRAME_MAX];
	size_t last_len;
};

static int sink_send(void *ctx, const uint8_t *frame, size_t len)
{
	struct uplink_sink *s = ctx;
	s->frames++;
	memcpy(s->last, frame, len);
	s->last_len = len;
	return 0;
}

static unsigned drain(struct vnet_switch *sw, int port)
{
	int more;
	return vnet_switch_drain_tx(sw, (unsigned)port, 1000, &more);
}

START_TEST(test_unicast_broadcast_and_spoofing)
{
	struct vnet_switch sw;
	ck_assert_int_eq(vnet_switch_init(&sw), 0);
	struct guest a, b, c;
	guest_init(&a, 1);
	guest_init(&b, 2);
	guest_init(&c, 3);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, VNET_NO_UPLINK, a.win);
	int pb = vnet_switch_add_guest(&sw, 1, b.mac, 0, VNET_NO_UPLINK, b.win);
	int pc = vnet_switch_add_guest(&sw, 2, c.mac, 0, VNET_NO_UPLINK, c.win);
	ck_assert(pa >= 0 && pb >= 0 && pc >= 0);
	ck_assert_int_eq(vnet_switch_add_guest(&sw, 3, a.mac, 0, VNET_NO_UPLINK, a.win), -1);
	post_rx(&a, 8, 2048);
	post_rx(&b, 8, 2048);
	post_rx(&c, 8, 2048);
	put_frame(&a, b.mac, a.mac, "to b");
	put_frame(&a, bcast, a.mac, "to all");
	uint8_t fake[6] = {0x02, 0, 0, 0, 0, 9};
	put_frame(&a, bcast, fake, "spoofed");
	ck_assert_uint_eq(drain(&sw, pa), 3);
	ck_assert_str_eq(take_rx(&b), "to b");
	ck_assert_str_eq(take_rx(&b), "to all");
	ck_assert_ptr_null(take_rx(&b));
	ck_assert_str_eq(take_rx(&c), "to all"); /* unicast to b never reached c */
	ck_assert_ptr_null(take_rx(&c));
	ck_assert_ptr_null(take_rx(&a)); /* no echo to the sender */
	ck_assert_uint_eq(sw.ports[pa].count.tx_spoofed, 1);
	ck_assert_uint_eq(sw.ports[pa].count.tx_frames, 2);
	ck_assert_uint_eq(a.nic->tx.desc[2].status, DN_NIC_DROPPED);
	ck_assert_uint_eq(a.nic->tx.used, 3);
	/* The receivers were marked for a wake-up, once each. */
	unsigned dirty[8];
	ck_assert_uint_eq(vnet_switch_take_dirty(&sw, dirty), 2);
	ck_assert_uint_eq(vnet_switch_take_dirty(&sw, dirty), 0);
	vnet_switch_free(&sw);
	free(a.win), free(b.win), free(c.win);
}
END_TEST

START_TEST(test_hostile_descriptors)
{
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b;
	guest_init(&a, 1);
	guest_init(&b, 2);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, VNET_NO_UPLINK, a.win);
	vnet_switch_add_guest(&sw, 1, b.mac, 0, VNET_NO_UPLINK, b.win);
	struct {
		uint32_t off;
		uint16_t len;
	} bad[] = {
		{0, 64},			       /* the vregs page */
		{DN_IOWIN_NIC, 64},		       /* the rings themselves */
		{DN_IOWIN_SIZE - 10, 64},	       /* runs off the end */
		{0xfffffff0u, 64},		       /* wraps */
		{DN_IOWIN_BUFS, 13},		       /* shorter than a header */
		{DN_IOWIN_BUFS, DN_NIC_FRAME_MAX + 1}, /* longer than the MTU */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t n = a.nic->tx.avail;
		a.nic->tx.desc[n % DN_NIC_RING_SIZE] =
			(struct dn_nic_desc){bad[i].off, bad[i].len, 0};
		a.nic->tx.avail = n + 1;
	}
	post_rx(&b, 1, 2048);
	ck_assert_uint_eq(drain(&sw, pa), 6);
	ck_assert_uint_eq(sw.ports[pa].ring.errors, 6);
	ck_assert_uint_eq(a.nic->errors, 6);
	for (unsigned i = 0; i < 6; i++)
		ck_assert_uint_eq(a.nic->tx.desc[i].status, DN_NIC_BAD_DESC);
	ck_assert_ptr_null(take_rx(&b));
	/* An avail counter far ahead: skipped and counted, nothing sent. */
	a.nic->tx.avail += DN_NIC_RING_SIZE + 5;
	ck_assert_uint_eq(drain(&sw, pa), 0);
	ck_assert_uint_eq(sw.ports[pa].ring.errors, 7);
	ck_assert_uint_eq(a.nic->tx.used, a.nic->tx.avail);
	/* A used counter the guest overwrote is not believed: ours is. */
	a.nic->tx.used = 12345;
	put_frame(&a, b.mac, a.mac, "after");
	a.nic->tx.used = 12345;
	ck_assert_uint_eq(drain(&sw, pa), 1);
	ck_assert_str_eq(take_rx(&b), "after");
	/* RX: a buffer outside the window or too small is skipped with BAD_DESC, the next used. */
	uint32_t r = b.nic->rx.avail;
	b.nic->rx.desc[r % DN_NIC_RING_SIZE] = (struct dn_nic_desc){0x100, 2048, 0};
	b.nic->rx.desc[(r + 1) % DN_NIC_RING_SIZE] = (struct dn_nic_desc){DN_IOWIN_BUFS, 8, 0};
	b.nic->rx.avail = r + 2;
	post_rx(&b, 1, 2048);
	b.rx_seen += 2;
	put_frame(&a, b.mac, a.mac, "into the good one");
	drain(&sw, pa);
	ck_assert_str_eq(take_rx(&b), "into the good one");
	ck_assert_uint_eq(sw.ports[1].ring.errors, 2);
	vnet_switch_free(&sw);
	free(a.win), free(b.win);
}
END_TEST

/* A hostile guest on its own vcpu: publishes bad RX buffers (outside the buffer area) as fast
 * as the device finishes them, keeping rx.avail a ring ahead of rx.used, until told to stop or
 * HOSTILE_MAX are published. */
#define HOSTILE_MAX 2000000u
struct hostile_rx {
	struct dn_nic *nic;
	int stop;
	uint32_t published; /* atomic */
	uint32_t beats;	    /* atomic: turns of its loop, to see it run */
};

static void *hostile_rx_main(void *arg)
{
	struct hostile_rx *h = arg;
	uint32_t avail = h->nic->rx.avail;
	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&h->published, __ATOMIC_RELAXED) < HOSTILE_MAX) {
		__atomic_add_fetch(&h->beats, 1, __ATOMIC_RELAXED);
		/* A full ring: spin, as a vcpu would, to be on hand when the device moves. */
		if (avail - __atomic_load_n(&h->nic->rx.used, __ATOMIC_ACQUIRE) >= DN_NIC_RING_SIZE)
			continue;
		h->nic->rx.desc[avail % DN_NIC_RING_SIZE] = (struct dn_nic_desc){0x100, 2048, 0};
		__atomic_store_n(&h->nic->rx.avail, ++avail, __ATOMIC_RELEASE);
		__atomic_add_fetch(&h->published, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(test_rx_put_bounded_against_a_running_guest)
{
	/* The guest keeps publishing bad RX buffers while a frame is put: each call takes at most
	 * one ring's worth of descriptors and returns while the guest is still writing, and the
	 * error limit holds inside the call: at DN_NIC_ERRORS_MAX no more is read. */
	struct guest g;
	guest_init(&g, 1);
	struct vnet_ring r;
	vnet_ring_init(&r, g.win);
	uint8_t buf[64] = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00};
	struct vnet_frame f;
	vnet_frame_init(&f, buf, sizeof(buf));
	struct hostile_rx h = {.nic = g.nic};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, hostile_rx_main, &h), 0);
	unit_cpus_apart(t);
	while (__atomic_load_n(&h.published, __ATOMIC_RELAXED) < DN_NIC_RING_SIZE)
		sched_yield();
	for (unsigned call = 0; call < 8; call++) {
		unit_wait_running(&h.beats);
		uint32_t before = r.rx_used;
		ck_assert_int_eq(vnet_ring_rx_put(&r, &f), 0);
		ck_assert_uint_le(r.rx_used - before, DN_NIC_RING_SIZE);
		ck_assert_uint_le(r.errors, DN_NIC_ERRORS_MAX);
		ck_assert_uint_lt(__atomic_load_n(&h.published, __ATOMIC_RELAXED), HOSTILE_MAX);
	}
	ck_assert(vnet_ring_broken(&r));
	ck_assert_uint_eq(r.errors, DN_NIC_ERRORS_MAX);
	ck_assert_uint_eq(r.rx_used, DN_NIC_ERRORS_MAX); /* one descriptor per error, then none */
	ck_assert_uint_eq(g.nic->rx_dropped, 8);
	__atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	/* A broken ring is not served: a good buffer now is not read either, nor its TX ring. */
	post_rx(&g, 1, 2048);
	ck_assert_int_eq(vnet_ring_rx_put(&r, &f), 0);
	put_frame(&g, g.mac, g.mac, "x");
	ck_assert_int_eq(vnet_ring_tx_take(&r, &f), -1);
	ck_assert_uint_eq(r.errors, DN_NIC_ERRORS_MAX);
	free(g.win);
}
END_TEST

START_TEST(test_bounded_queue_and_budget)
{
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b;
	guest_init(&a, 1);
	guest_init(&b, 2);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, VNET_NO_UPLINK, a.win);
	int pb = vnet_switch_add_guest(&sw, 1, b.mac, 0, VNET_NO_UPLINK, b.win);
	post_rx(&b, 4, 2048);
	for (int i = 0; i < 10; i++)
		put_frame(&a, b.mac, a.mac, "x");
	int more;
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pa, 6, &more), 6);
	ck_assert_int_eq(more, 1);
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pa, 6, &more), 4);
	ck_assert_int_eq(more, 0);
	/* b published 4 buffers: 4 delivered, 6 dropped and counted on both sides. */
	ck_assert_uint_eq(sw.ports[pb].count.rx_frames, 4);
	ck_assert_uint_eq(sw.ports[pb].count.rx_dropped, 6);
	ck_assert_uint_eq(b.nic->rx_dropped, 6);
	ck_assert_uint_eq(sw.ports[pa].count.tx_dropped, 6);
	vnet_switch_free(&sw);
	free(a.win), free(b.win);
}
END_TEST

START_TEST(test_uplinks_learning_and_reachability)
{
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b;
	guest_init(&a, 1);
	guest_init(&b, 2);
	struct uplink_sink nat = {0};
	int up = vnet_switch_add_uplink(&sw, 0, sink_send, &nat);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, 0, a.win);		 /* user uplink */
	int pb = vnet_switch_add_guest(&sw, 1, b.mac, 0, VNET_NO_UPLINK, b.win); /* none */
	post_rx(&a, 8, 2048);
	post_rx(&b, 8, 2048);
	/* A broadcast from b (no uplink) reaches a but not the NAT. */
	put_frame(&b, bcast, b.mac, "b all");
	drain(&sw, pb);
	ck_assert_uint_eq(nat.frames, 0);
	ck_assert_str_eq(take_rx(&a), "b all");
	/* From a, it reaches the NAT too, with the checked header. */
	put_frame(&a, bcast, a.mac, "a all");
	drain(&sw, pa);
	ck_assert_uint_eq(nat.frames, 1);
	ck_assert_int_eq(memcmp(nat.last + 6, a.mac, 6), 0);
	ck_assert_str_eq(take_rx(&b), "a all"); /* guests always reach each other */
	/* The NAT answers from its MAC: learned, and later unicast goes only to the uplink. */
	uint8_t natmac[6] = {0x52, 0x55, 10, 0, 0, 1};
	uint8_t frame[64] = {0};
	memcpy(frame, a.mac, 6);
	memcpy(frame + 6, natmac, 6);
	strcpy((char *)frame + 14, "from nat");
	struct vnet_frame f = {.data = frame, .len = 64};
	memcpy(f.hdr, frame, 14);
	ck_assert_int_eq(vnet_switch_forward(&sw, (unsigned)up, &f), DN_NIC_OK);
	ck_assert_str_eq(take_rx(&a), "from nat");
	ck_assert_int_eq(vnet_switch_lookup(&sw, natmac), up);
	unsigned flooded = (unsigned)sw.flooded;
	put_frame(&a, natmac, a.mac, "to nat");
	drain(&sw, pa);
	ck_assert_uint_eq(nat.frames, 2);
	ck_assert_uint_eq(sw.flooded, flooded);
	ck_assert_ptr_null(take_rx(&b));
	/* b cannot reach the NAT even by its MAC. */
	put_frame(&b, natmac, b.mac, "b to nat");
	drain(&sw, pb);
	ck_assert_uint_eq(nat.frames, 2);
	ck_assert_uint_eq(sw.ports[pb].count.tx_dropped, 1);
	/* An uplink frame claiming a guest's MAC does not move that MAC. */
	memcpy(frame + 6, b.mac, 6);
	memcpy(f.hdr, frame, 14);
	vnet_switch_forward(&sw, (unsigned)up, &f);
	ck_assert_int_eq(vnet_switch_lookup(&sw, b.mac), pb);
	ck_assert_uint_eq(sw.learn_refused, 1);
	/* Removing ports forgets their MACs, and a new guest may take the MAC over. */
	vnet_switch_remove(&sw, (unsigned)pb);
	ck_assert_int_eq(vnet_switch_lookup(&sw, b.mac), -1);
	vnet_switch_remove(&sw, (unsigned)up);
	ck_assert_int_eq(vnet_switch_lookup(&sw, natmac), -1);
	ck_assert_int_ge(vnet_switch_add_guest(&sw, 5, b.mac, 0, VNET_NO_UPLINK, b.win), 0);
	vnet_switch_free(&sw);
	free(a.win), free(b.win);
}
END_TEST

START_TEST(test_many_ports)
{
	/* The MAC table grows and deletes cleanly with thousands of ports. */
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	uint8_t *win = calloc(1, DN_IOWIN_SIZE);
	enum { N = 5000 };
	for (unsigned i = 0; i < N; i++) {
		uint8_t mac[6] = {0x02, 1, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
		ck_assert_int_eq(vnet_switch_add_guest(&sw, i, mac, 0, VNET_NO_UPLINK, win),
				 (int)i);
	}
	for (unsigned i = 0; i < N; i += 2)
		vnet_switch_remove(&sw, i);
	for (unsigned i = 0; i < N; i++) {
		uint8_t mac[6] = {0x02, 1, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
		ck_assert_int_eq(vnet_switch_lookup(&sw, mac), i % 2 ? (int)i : -1);
	}
	ck_assert_uint_eq(sw.table_used, N / 2);
	vnet_switch_free(&sw);
	free(win);
}
END_TEST

/* Sets the IPv4 header checksum of the frame f. */
static void ipv4_fix_checksum(uint8_t *f)
{
	f[24] = 0, f[25] = 0;
	uint32_t sum = 0;
	for (int i = 14; i < 34; i += 2)
		sum += (uint32_t)(f[i] << 8 | f[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	f[24] = (uint8_t)(~sum >> 8);
	f[25] = (uint8_t)~sum;
}

/* A valid Ethernet + IPv4 + payload frame of protocol proto with l4len bytes after the IP
 * header; the header checksum is right. */
static size_t ipv4_frame(uint8_t *f, uint8_t proto, size_t l4len)
{
	memset(f, 0, 14 + 20 + l4len);
	f[12] = 0x08;
	f[14] = 0x45;
	size_t total = 20 + l4len;
	f[16] = (uint8_t)(total >> 8);
	f[17] = (uint8_t)total;
	f[22] = 64;
	f[23] = proto;
	f[26] = 10, f[29] = 16, f[30] = 10, f[33] = 1;
	ipv4_fix_checksum(f);
	return 14 + total;
}

START_TEST(test_unknown_unicast_and_snapshot)
{
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b, c;
	guest_init(&a, 1);
	guest_init(&b, 2);
	guest_init(&c, 3);
	struct uplink_sink nat = {0}, tap = {0};
	vnet_switch_add_uplink(&sw, 0, sink_send, &nat);
	int tp = vnet_switch_add_uplink(&sw, 1, sink_send, &tap);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, 0, a.win); /* user */
	vnet_switch_add_guest(&sw, 1, b.mac, 0, 1, b.win);	    /* tap */
	vnet_switch_add_guest(&sw, 2, c.mac, 0, VNET_NO_UPLINK, c.win);
	post_rx(&b, 8, 2048);
	post_rx(&c, 8, 2048);
	/* A guest's unknown unicast goes to its own uplink only, never to other guests. */
	uint8_t stranger[6] = {0x02, 9, 9, 9, 9, 9};
	put_frame(&a, stranger, a.mac, "to a stranger");
	drain(&sw, pa);
	ck_assert_uint_eq(nat.frames, 1);
	ck_assert_uint_eq(tap.frames, 0);
	ck_assert_ptr_null(take_rx(&b));
	ck_assert_ptr_null(take_rx(&c));
	/* Other ethertypes stay on the LAN. */
	put_frame(&a, stranger, a.mac, "raw");
	uint8_t *f = a.win + a.nic->tx.desc[(a.nic->tx.avail - 1) % DN_NIC_RING_SIZE].offset;
	f[12] = 0x88, f[13] = 0xb5;
	drain(&sw, pa);
	ck_assert_uint_eq(nat.frames, 1);
	/* What the TAP side learns is not seen by user-uplink guests, and a frame from outside
	 * claiming a guest's MAC is dropped. */
	uint8_t frame[64] = {0};
	memcpy(frame, b.mac, 6);
	memcpy(frame + 6, stranger, 6);
	struct vnet_frame fr;
	vnet_frame_init(&fr, frame, 64);
	ck_assert_int_eq(vnet_switch_forward(&sw, (unsigned)tp, &fr), DN_NIC_OK);
	ck_assert_ptr_nonnull(take_rx(&b)); /* b reached from its own uplink */
	put_frame(&a, stranger, a.mac, "still unknown to a");
	drain(&sw, pa);
	ck_assert_uint_eq(nat.frames, 2);
	ck_assert_uint_eq(tap.frames, 0);
	memcpy(frame + 6, c.mac, 6);
	vnet_frame_init(&fr, frame, 64);
	ck_assert_int_eq(vnet_switch_forward(&sw, (unsigned)tp, &fr), DN_NIC_DROPPED);
	ck_assert_uint_eq(sw.learn_refused, 1);
	/* Delivery lays the checked snapshot over the copy: bytes changed after the check (here,
	 * in the sender's buffer between take and delivery) cannot change the header. */
	put_frame(&c, b.mac, c.mac, "0123456789012345678901234567890123456789");
	struct vnet_frame taken;
	int pc = vnet_switch_lookup(&sw, c.mac);
	ck_assert_int_eq(vnet_ring_tx_take(&sw.ports[pc].ring, &taken), 1);
	memset((uint8_t *)(uintptr_t)taken.data + 6, 0xee, 30); /* the sender rewrites itself */
	vnet_ring_tx_finish(&sw.ports[pc].ring, vnet_switch_forward(&sw, (unsigned)pc, &taken));
	const char *got = take_rx(&b);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(memcmp(got - 14 + 6, c.mac, 6), 0);
	ck_assert_int_eq(memcmp(got, "01234567890123456789012345678", 28), 0);
	vnet_switch_free(&sw);
	free(a.win), free(b.win), free(c.win);
}
END_TEST

START_TEST(test_ip_spoofing)
{
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b;
	guest_init(&a, 1);
	guest_init(&b, 2);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0x0a000010u, VNET_NO_UPLINK, a.win);
	vnet_switch_add_guest(&sw, 1, b.mac, 0x0a000011u, VNET_NO_UPLINK, b.win);
	post_rx(&b, 8, 2048);
	/* ARP and IPv4 frames claiming a's own address pass; claiming b's (or any other) do not. */
	static const struct {
		uint16_t type;
		unsigned offset; /* of the sender address after the Ethernet header */
		uint32_t ip;
		int passes;
	} cases[] = {
		{0x0806, 14, 0x0a000010u, 1}, {0x0806, 14, 0x0a000011u, 0},
		{0x0800, 12, 0x0a000010u, 1}, {0x0800, 12, 0x0a000011u, 0},
		{0x0800, 12, 0, 0},
	};
	unsigned spoofed = 0;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		put_frame(&a, bcast, a.mac, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		uint8_t *f =
			a.win + a.nic->tx.desc[(a.nic->tx.avail - 1) % DN_NIC_RING_SIZE].offset;
		f[12] = (uint8_t)(cases[i].type >> 8);
		f[13] = (uint8_t)cases[i].type;
		memcpy(f + 22, a.mac, 6); /* ARP's sender MAC: its own */
		uint8_t *ip = f + 14 + cases[i].offset;
		ip[0] = (uint8_t)(cases[i].ip >> 24), ip[1] = (uint8_t)(cases[i].ip >> 16);
		ip[2] = (uint8_t)(cases[i].ip >> 8), ip[3] = (uint8_t)cases[i].ip;
		drain(&sw, pa);
		spoofed += !cases[i].passes;
		ck_assert_uint_eq(sw.ports[pa].count.tx_spoofed, spoofed);
		ck_assert_uint_eq(b.nic->rx.used - b.rx_seen, cases[i].passes ? 1 : 0);
		b.rx_seen = b.nic->rx.used;
	}
	vnet_switch_free(&sw);
	free(a.win), free(b.win);
}
END_TEST

START_TEST(test_nat_sanitizer)
{
	uint8_t f[1600];
	size_t n = ipv4_frame(f, 6, 20);
	f[34 + 12] = 0x50; /* TCP data offset 5 */
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_PASS);
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n - 1), VNET_DROP_IP); /* total > frame */
	f[34 + 12] = 0xf0;						 /* offset past the end */
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_DROP_L4);
	f[34 + 12] = 0x40; /* offset below 5 */
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_DROP_L4);
	n = ipv4_frame(f, 17, 8);
	f[34 + 5] = 8;
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_PASS);
	f[34 + 5] = 9; /* UDP length past the packet */
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_DROP_L4);
	n = ipv4_frame(f, 1, 8);
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_PASS);
	f[24] ^= 1; /* checksum */
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_DROP_IP);
	n = ipv4_frame(f, 1, 8);
	f[14] = 0x44; /* IHL 4 */
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_DROP_IP);
	n = ipv4_frame(f, 47, 8); /* GRE */
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_DROP_L4);
	n = ipv4_frame(f, 1, 8);
	f[20] = 0x20; /* more fragments, with a checksum that matches */
	ipv4_fix_checksum(f);
	ck_assert_int_eq(vnet_sanitize_for_nat(f, n), VNET_DROP_FRAGMENT);
	/* ARP: request and reply pass, anything else not. */
	uint8_t arp[42] = {0};
	arp[12] = 0x08, arp[13] = 0x06, arp[15] = 1, arp[16] = 0x08, arp[18] = 6, arp[19] = 4;
	arp[21] = 1;
	ck_assert_int_eq(vnet_sanitize_for_nat(arp, 42), VNET_PASS);
	ck_assert_int_eq(vnet_sanitize_for_nat(arp, 41), VNET_DROP_ARP);
	arp[21] = 3;
	ck_assert_int_eq(vnet_sanitize_for_nat(arp, 42), VNET_DROP_ARP);
	arp[13] = 0xdd; /* IPv6 */
	ck_assert_int_eq(vnet_sanitize_for_nat(arp, 42), VNET_DROP_TYPE);
	ck_assert_int_eq(vnet_sanitize_for_nat(arp, 13), VNET_DROP_TYPE);
	/* Nothing out of bounds on random bytes of every length (ASan watches). */
	uint32_t x = 1;
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)round % 80;
		uint8_t *r = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++)
			r[i] = (uint8_t)(x = x * 1103515245u + 12345u) >> 3;
		if (len > 13)
			r[12] = round & 1 ? 0x08 : 0x08, r[13] = round & 2 ? 0x06 : 0x00;
		vnet_sanitize_for_nat(r, len);
		free(r);
	}
}
END_TEST

START_TEST(test_unbacked_window)
{
	/* A receiver whose window file cannot back its buffers (here: they lie past the end of
	 * the file, as on a full filesystem) costs it the frame and a ring error; the switch
	 * takes SIGBUS and goes on. */
	guestmem_sigbus_install();
	char path[4096];
	snprintf(path, sizeof(path), "%s/short-window", unit_tmpdir());
	FILE *file = fopen(path, "w+");
	ck_assert_ptr_nonnull(file);
	ck_assert_int_eq(ftruncate(fileno(file), DN_IOWIN_BUFS), 0); /* vregs and NIC pages only */
	uint8_t *short_win =
		mmap(NULL, DN_IOWIN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(file), 0);
	ck_assert(short_win != MAP_FAILED);
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b;
	guest_init(&a, 1);
	b.win = short_win;
	b.nic = (struct dn_nic *)(short_win + DN_IOWIN_NIC);
	b.mac[0] = 0x02, b.mac[1] = b.mac[2] = b.mac[3] = b.mac[4] = 0, b.mac[5] = 2;
	b.rx_seen = 0;
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, VNET_NO_UPLINK, a.win);
	int pb = vnet_switch_add_guest(&sw, 1, b.mac, 0, VNET_NO_UPLINK, b.win);
	post_rx(&b, 2, 2048);
	put_frame(&a, b.mac, a.mac, "into the void");
	drain(&sw, pa);
	ck_assert_uint_eq(sw.ports[pb].ring.errors, 1);
	ck_assert_uint_eq(sw.ports[pb].count.rx_dropped, 1);
	ck_assert_uint_eq(b.nic->rx.used, 0);
	ck_assert_ptr_nonnull(strstr(sw.ports[pb].ring.last_error, "could not be copied"));
	/* And a sender whose TX buffer is past the end: a bad descriptor, not a crash. */
	uint32_t n = b.nic->tx.avail;
	b.nic->tx.desc[n % DN_NIC_RING_SIZE] = (struct dn_nic_desc){DN_IOWIN_BUFS + 4096, 64, 0};
	b.nic->tx.avail = n + 1;
	ck_assert_uint_eq(drain(&sw, pb), 1);
	ck_assert_uint_eq(b.nic->tx.desc[n % DN_NIC_RING_SIZE].status, DN_NIC_BAD_DESC);
	vnet_switch_free(&sw);
	munmap(short_win, DN_IOWIN_SIZE);
	fclose(file);
	free(a.win);
}
END_TEST

START_TEST(test_sleep_holds_in_order)
{
	/* A sleeping port has no window (here unmapped: any access would fault); what comes
	 * for it is held and given to it in order when it wakes, into the ring where it
	 * stopped, whatever its shared counters say meanwhile. */
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b;
	guest_init(&a, 1);
	guest_init_file(&b, 2);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, VNET_NO_UPLINK, a.win);
	int pb = vnet_switch_add_guest(&sw, 1, b.mac, 0, VNET_NO_UPLINK, b.win);
	post_rx(&b, 4, 2048);
	put_frame(&a, b.mac, a.mac, "awake");
	drain(&sw, pa);
	ck_assert_str_eq(take_rx(&b), "awake");
	unsigned dirty[8];
	vnet_switch_take_dirty(&sw, dirty);
	vnet_switch_sleep(&sw, (unsigned)pb);
	ck_assert_ptr_null(sw.ports[pb].ring.win);
	guest_unmap(&b);
	const char *texts[] = {"one", "two", "three", "four"};
	for (unsigned i = 0; i < 4; i++)
		put_frame(&a, b.mac, a.mac, texts[i]);
	ck_assert_uint_eq(drain(&sw, pa), 4);
	for (unsigned i = 1; i < 5; i++)
		ck_assert_uint_eq(a.nic->tx.desc[i].status, DN_NIC_OK); /* held is delivered */
	ck_assert_uint_eq(sw.ports[pb].count.held, 4);
	ck_assert_uint_eq(sw.ports[pb].nheld, 4);
	ck_assert_uint_eq(sw.held_bytes, 4 * (sizeof(struct vnet_held) + 14) + 4 + 4 + 6 + 5);
	ck_assert_uint_eq(vnet_switch_take_dirty(&sw, dirty), 0); /* nothing to raise on it */
	int more = 1;
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pb, 100, &more), 0);
	ck_assert_int_eq(more, 0);
	/* Back, with its shared RX counter scribbled on while it slept. */
	guest_map(&b);
	b.nic->rx.used = 77;
	ck_assert_uint_eq(vnet_switch_wake(&sw, (unsigned)pb, b.win), 3);
	ck_assert_uint_eq(sw.ports[pb].ring.errors, 0);
	ck_assert_uint_eq(b.nic->rx.used, 4);
	ck_assert_str_eq(take_rx(&b), "one");
	ck_assert_str_eq(take_rx(&b), "two");
	ck_assert_str_eq(take_rx(&b), "three");
	ck_assert_ptr_null(take_rx(&b));
	ck_assert_uint_eq(sw.ports[pb].count.rx_frames, 4);
	ck_assert_uint_eq(sw.ports[pb].count.rx_dropped, 0);
	ck_assert_uint_eq(sw.ports[pb].nheld, 1); /* "four": no buffer yet, still held */
	ck_assert_uint_eq(sw.held_bytes, sizeof(struct vnet_held) + 14 + 5);
	ck_assert_uint_eq(vnet_switch_take_dirty(&sw, dirty), 1); /* to be told */
	ck_assert_uint_eq(dirty[0], (unsigned)pb);
	ck_assert_uint_eq(vnet_switch_flush_backlog(&sw), 1); /* no buffer: it waits */
	/* Awake, a frame for it queues behind what it holds, until it gives buffers back. */
	put_frame(&a, b.mac, a.mac, "after");
	drain(&sw, pa);
	ck_assert_ptr_null(take_rx(&b));
	ck_assert_uint_eq(sw.ports[pb].nheld, 2);
	post_rx(&b, 1, 2048);
	ck_assert_uint_eq(vnet_switch_flush_backlog(&sw), 1);
	ck_assert_str_eq(take_rx(&b), "four");
	post_rx(&b, 4, 2048);
	ck_assert_uint_eq(vnet_switch_flush_backlog(&sw), 0);
	ck_assert_str_eq(take_rx(&b), "after");
	ck_assert_ptr_null(sw.ports[pb].held);
	ck_assert_uint_eq(sw.held_bytes, 0);
	/* With nothing held, straight into its ring as before. */
	put_frame(&a, b.mac, a.mac, "straight");
	drain(&sw, pa);
	ck_assert_str_eq(take_rx(&b), "straight");
	ck_assert_uint_eq(sw.ports[pb].count.rx_dropped, 0);
	vnet_switch_free(&sw);
	guest_free(&a), guest_free(&b);
}
END_TEST

/* Forwards a frame of len bytes from uplink port up to dst. */
static enum dn_nic_status from_uplink(struct vnet_switch *sw, int up, const uint8_t *dst,
				      uint16_t len)
{
	static uint8_t frame[DN_NIC_FRAME_MAX];
	static const uint8_t outside[6] = {0x52, 0x55, 10, 0, 0, 1};
	memcpy(frame, dst, 6);
	memcpy(frame + 6, outside, 6);
	frame[12] = 0x08, frame[13] = 0x00;
	struct vnet_frame f;
	vnet_frame_init(&f, frame, len);
	return vnet_switch_forward(sw, (unsigned)up, &f);
}

START_TEST(test_sleep_bounds)
{
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct uplink_sink nat = {0};
	int up = vnet_switch_add_uplink(&sw, 0, sink_send, &nat);
	uint8_t *win = calloc(1, DN_IOWIN_SIZE);
	enum { PORTS = 100 };
	uint8_t mac[PORTS][6];
	for (unsigned i = 0; i < PORTS; i++) {
		uint8_t m[6] = {0x02, 1, 0, 0, 0, (uint8_t)i};
		memcpy(mac[i], m, 6);
		ck_assert_int_eq(vnet_switch_add_guest(&sw, i, m, 0, 0, win), (int)i + 1);
		vnet_switch_sleep(&sw, i + 1);
	}
	/* One port: its share, then drops, counted. */
	const size_t small = sizeof(struct vnet_held) + 64;
	const size_t big = sizeof(struct vnet_held) + DN_NIC_FRAME_MAX;
	const unsigned fit0 = (unsigned)(VNET_HELD_PORT_BYTES / small);
	for (unsigned n = 0; n < fit0 + 6; n++)
		ck_assert_int_eq(from_uplink(&sw, up, mac[0], 64),
				 n < fit0 ? DN_NIC_OK : DN_NIC_DROPPED);
	ck_assert_uint_eq(sw.ports[1].count.held, fit0);
	ck_assert_uint_eq(sw.ports[1].count.held_dropped, 6);
	ck_assert_uint_le(sw.ports[1].held_cost, VNET_HELD_PORT_BYTES);
	/* The whole switch: VNET_HELD_BYTES_MAX, then drops, counted. */
	const unsigned per_port = (unsigned)(VNET_HELD_PORT_BYTES / big);
	uint64_t held = 0, dropped = 0, want = 0, sent = 0;
	size_t left = VNET_HELD_BYTES_MAX - fit0 * small;
	for (unsigned i = 1; i < PORTS; i++) {
		/* Once the switch is full, a few frames a port show it (and keep the test fast). */
		unsigned send = left >= big ? per_port : 2;
		for (unsigned n = 0; n < send; n++)
			from_uplink(&sw, up, mac[i], DN_NIC_FRAME_MAX);
		unsigned k = left / big < send ? (unsigned)(left / big) : send;
		want += k;
		left -= k * big;
		sent += send;
	}
	for (unsigned i = 1; i < PORTS; i++) {
		held += sw.ports[i + 1].count.held;
		dropped += sw.ports[i + 1].count.held_dropped;
	}
	ck_assert_uint_eq(held, want);
	ck_assert_uint_eq(held + dropped, sent);
	ck_assert_uint_le(sw.held_bytes, VNET_HELD_BYTES_MAX);
	ck_assert_uint_eq(sw.ports[PORTS].count.held, 0); /* the last ones found no room */
	ck_assert_uint_eq(from_uplink(&sw, up, mac[PORTS - 1], DN_NIC_FRAME_MAX), DN_NIC_DROPPED);
	/* A port removed gives its room back. */
	vnet_switch_remove(&sw, 1);
	ck_assert_uint_eq(from_uplink(&sw, up, mac[PORTS - 1], 64), DN_NIC_OK);
	ck_assert_uint_eq(sw.ports[PORTS].count.held, 1);
	vnet_switch_free(&sw);
	free(win);
}
END_TEST

/* Queues a frame of len bytes from g to dst whose text is "frame N". */
static void put_sized(struct guest *g, const uint8_t *dst, unsigned n, uint16_t len)
{
	char text[32];
	snprintf(text, sizeof(text), "frame %u", n);
	put_frame(g, dst, g->mac, text);
	g->nic->tx.desc[(g->nic->tx.avail - 1) % DN_NIC_RING_SIZE].len = len;
}

START_TEST(test_sleep_backpressure)
{
	/* A guest sending to a sleeper whose hold is full waits: its TX descriptor stays in its
	 * ring, it asks nothing more of the switch until the sleeper wakes, and then every frame
	 * arrives, in order, none dropped, though far more than one RX ring's worth. */
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b, c;
	guest_init(&a, 1);
	guest_init(&b, 2);
	guest_init(&c, 3);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, VNET_NO_UPLINK, a.win);
	int pb = vnet_switch_add_guest(&sw, 1, b.mac, 0, VNET_NO_UPLINK, b.win);
	int pc = vnet_switch_add_guest(&sw, 2, c.mac, 0, VNET_NO_UPLINK, c.win);
	vnet_switch_sleep(&sw, (unsigned)pb);
	unsigned sent = 0, list[8];
	int more = 1;
	for (int round = 0; round < 100 && sw.ports[pa].blocked_on < 0; round++) {
		while (a.nic->tx.avail - a.nic->tx.used < DN_NIC_RING_SIZE)
			put_sized(&a, b.mac, sent++, DN_NIC_FRAME_MAX);
		vnet_switch_drain_tx(&sw, (unsigned)pa, 1000, &more);
	}
	ck_assert_int_eq(sw.ports[pa].blocked_on, pb);
	ck_assert_int_eq(more, 0);
	ck_assert_uint_eq(sw.ports[pa].count.tx_blocked, 1);
	ck_assert_uint_eq(sw.ports[pb].count.held_dropped, 0);
	ck_assert_uint_le(sw.ports[pb].held_cost, VNET_HELD_PORT_BYTES);
	uint32_t waiting = a.nic->tx.avail - a.nic->tx.used;
	ck_assert_uint_gt(waiting, 0);
	ck_assert_uint_eq(a.nic->tx.desc[a.nic->tx.used % DN_NIC_RING_SIZE].status, 0);
	/* Looked at again (a kick), it still waits, counted once; a frame for another port
	 * behind it waits too: the ring goes in order. */
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pa, 1000, &more), 0);
	ck_assert_uint_eq(sw.ports[pa].count.tx_blocked, 1);
	ck_assert_uint_eq(vnet_switch_take_ready(&sw, list), 0);
	ck_assert_uint_eq(vnet_switch_take_wakes(&sw, list), 1);
	ck_assert_uint_eq(list[0], (unsigned)pb);
	/* b wakes: a is ready; b takes what it held, ring by ring, then a's rest. */
	post_rx(&b, DN_NIC_RING_SIZE, 2048);
	ck_assert_uint_eq(vnet_switch_wake(&sw, (unsigned)pb, b.win), DN_NIC_RING_SIZE);
	ck_assert_uint_eq(vnet_switch_take_ready(&sw, list), 1);
	ck_assert_uint_eq(list[0], (unsigned)pa);
	ck_assert_int_eq(sw.ports[pa].blocked_on, -1);
	unsigned got = 0;
	for (int round = 0; round < 1000 && got < sent; round++) {
		const char *text;
		while ((text = take_rx(&b)) != NULL) {
			char want[32];
			snprintf(want, sizeof(want), "frame %u", got++);
			ck_assert_str_eq(text, want);
		}
		post_rx(&b, DN_NIC_RING_SIZE - (b.nic->rx.avail - b.nic->rx.used), 2048);
		vnet_switch_flush_backlog(&sw);
		vnet_switch_drain_tx(&sw, (unsigned)pa, 1000, &more);
	}
	ck_assert_uint_eq(got, sent);
	ck_assert_uint_eq(a.nic->tx.used, a.nic->tx.avail);
	ck_assert_uint_eq(sw.ports[pb].count.rx_dropped, 0);
	ck_assert_uint_eq(sw.ports[pb].count.held_dropped, 0);
	ck_assert_uint_eq(sw.ports[pa].count.tx_dropped, 0);
	ck_assert_uint_eq(sw.held_bytes, 0);
	/* A sender waiting for a sleeper that is removed goes on (its frame then has nowhere
	 * to go); one that sleeps itself leaves the list. */
	vnet_switch_sleep(&sw, (unsigned)pb);
	sw.ports[pb].held_cost = VNET_HELD_PORT_BYTES; /* as good as full */
	sw.held_bytes += VNET_HELD_PORT_BYTES;	       /* the switch counts what ports hold */
	put_sized(&c, b.mac, 0, 100);
	vnet_switch_drain_tx(&sw, (unsigned)pc, 1000, &more);
	ck_assert_int_eq(sw.ports[pc].blocked_on, pb);
	vnet_switch_sleep(&sw, (unsigned)pc);
	ck_assert_uint_eq(sw.nblocked, 0);
	vnet_switch_wake(&sw, (unsigned)pc, c.win);
	vnet_switch_drain_tx(&sw, (unsigned)pc, 1000, &more);
	ck_assert_int_eq(sw.ports[pc].blocked_on, pb);
	sw.ports[pb].held_cost = 0;
	vnet_switch_remove(&sw, (unsigned)pb);
	ck_assert_uint_eq(vnet_switch_take_ready(&sw, list), 1);
	ck_assert_uint_eq(list[0], (unsigned)pc);
	ck_assert_uint_eq(vnet_switch_drain_tx(&sw, (unsigned)pc, 1000, &more), 1);
	ck_assert_uint_eq(sw.ports[pc].count.tx_dropped, 1);
	vnet_switch_free(&sw);
	guest_free(&a), guest_free(&b), guest_free(&c);
}
END_TEST

START_TEST(test_sleep_broadcast_policy)
{
	/* A sleeping port takes unicast for it and an ARP request for its own address; every
	 * other broadcast and multicast passes it by, uncounted as a drop (an ARP request for
	 * another's address does not even reach a port whose address is known). */
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b, c, d;
	guest_init(&a, 1);
	guest_init(&b, 2);
	guest_init(&c, 3);
	guest_init(&d, 4);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, VNET_NO_UPLINK, a.win);
	int pb = vnet_switch_add_guest(&sw, 1, b.mac, 0x0a000011u, VNET_NO_UPLINK, b.win);
	int pc = vnet_switch_add_guest(&sw, 2, c.mac, 0x0a000012u, VNET_NO_UPLINK, c.win);
	int pd = vnet_switch_add_guest(&sw, 3, d.mac, 0, VNET_NO_UPLINK, d.win); /* no IPv4 */
	vnet_switch_sleep(&sw, (unsigned)pb);
	vnet_switch_sleep(&sw, (unsigned)pd);
	post_rx(&c, 8, 2048);
	uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0, 0, 1};
	put_frame(&a, bcast, a.mac, "broadcast");
	put_frame(&a, mcast, a.mac, "multicast");
	put_arp(&a, bcast, 1, 0x0a000012u); /* who has c's address */
	put_arp(&a, bcast, 2, 0x0a000011u); /* a reply (gratuitous) about b's: not a request */
	drain(&sw, pa);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_ptr_nonnull(take_rx(&c)); /* the awake port got them all */
	unsigned wakes[8];
	ck_assert_uint_eq(vnet_switch_take_wakes(&sw, wakes), 0);
	ck_assert_uint_eq(sw.ports[pb].count.asleep_ignored, 3);
	ck_assert_uint_eq(sw.ports[pd].count.asleep_ignored, 4);
	ck_assert_uint_eq(sw.arp_spared, 1); /* b, for c's address */
	put_arp(&a, bcast, 1, 0x0a000011u);  /* who has b's address: b must wake for it */
	drain(&sw, pa);
	ck_assert_uint_eq(sw.ports[pb].count.held, 1);
	ck_assert_uint_eq(sw.ports[pd].count.held, 0);
	ck_assert_uint_eq(sw.ports[pd].count.asleep_ignored, 5);
	ck_assert_uint_eq(sw.arp_spared, 2); /* c, for b's: it did not get it */
	ck_assert_uint_eq(vnet_switch_take_wakes(&sw, wakes), 1);
	ck_assert_uint_eq(wakes[0], (unsigned)pb);
	put_frame(&a, d.mac, a.mac, "unicast");
	drain(&sw, pa);
	ck_assert_uint_eq(sw.ports[pd].count.held, 1);
	ck_assert_uint_eq(vnet_switch_take_wakes(&sw, wakes), 1);
	ck_assert_uint_eq(wakes[0], (unsigned)pd);
	for (int p = 0; p < 4; p++) {
		ck_assert_uint_eq(sw.ports[p].count.rx_dropped, 0);
		ck_assert_uint_eq(sw.ports[p].count.held_dropped, 0);
	}
	ck_assert_uint_eq(sw.ports[pa].count.tx_dropped, 0);
	ck_assert_uint_eq(sw.ports[pc].count.rx_frames, 4);
	vnet_switch_free(&sw);
	guest_free(&a), guest_free(&b), guest_free(&c), guest_free(&d);
}
END_TEST

START_TEST(test_arp_request_reaches_its_target)
{
	/* Awake or not, a guest with a known address gets only the ARP requests for it; one
	 * without an address and the uplink get them all. */
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct uplink_sink sink = {0};
	int up = vnet_switch_add_uplink(&sw, 0, sink_send, &sink);
	struct guest a, b, c, d;
	guest_init(&a, 1);
	guest_init(&b, 2);
	guest_init(&c, 3);
	guest_init(&d, 4);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, 0, a.win);
	int pb = vnet_switch_add_guest(&sw, 1, b.mac, 0x0a000011u, 0, b.win);
	int pc = vnet_switch_add_guest(&sw, 2, c.mac, 0x0a000012u, 0, c.win);
	int pd = vnet_switch_add_guest(&sw, 3, d.mac, 0, 0, d.win);
	ck_assert_int_ge(up, 0);
	post_rx(&b, 8, 2048), post_rx(&c, 8, 2048), post_rx(&d, 8, 2048);
	put_arp(&a, bcast, 1, 0x0a000012u); /* who has c's address */
	put_arp(&a, bcast, 1, 0x0a000001u); /* who has the gateway's: no guest's */
	put_frame(&a, bcast, a.mac, "broadcast");
	drain(&sw, pa);
	ck_assert_uint_eq(sw.ports[pb].count.rx_frames, 1); /* the plain broadcast only */
	ck_assert_uint_eq(sw.ports[pc].count.rx_frames, 2);
	ck_assert_uint_eq(sw.ports[pd].count.rx_frames, 3);
	ck_assert_uint_eq(sink.frames, 3);
	ck_assert_uint_eq(sw.arp_spared, 3); /* b twice, c once */
	/* From the outside too: a request for b's address reaches b alone of the guests. */
	uint8_t frame[60] = {0};
	memset(frame, 0xff, 6);
	static const uint8_t outside[6] = {0x02, 0x99, 0, 0, 0, 1};
	memcpy(frame + 6, outside, 6);
	frame[12] = 0x08, frame[13] = 0x06, frame[15] = 1, frame[16] = 0x08, frame[18] = 6;
	frame[19] = 4, frame[21] = 1;
	put_be32(frame + 38, 0x0a000011u);
	struct vnet_frame f;
	vnet_frame_init(&f, frame, sizeof(frame));
	ck_assert_int_eq(vnet_switch_forward(&sw, (unsigned)up, &f), DN_NIC_OK);
	ck_assert_uint_eq(sw.ports[pb].count.rx_frames, 2);
	ck_assert_uint_eq(sw.ports[pc].count.rx_frames, 2);
	ck_assert_uint_eq(sw.ports[pd].count.rx_frames, 4);
	vnet_switch_free(&sw);
	guest_free(&a), guest_free(&b), guest_free(&c), guest_free(&d);
}
END_TEST

START_TEST(test_sleep_wake_list)
{
	/* A sleeping port is listed once per sleep, at the first frame for it; never once it is
	 * awake again or gone. */
	struct vnet_switch sw;
	vnet_switch_init(&sw);
	struct guest a, b;
	guest_init(&a, 1);
	guest_init(&b, 2);
	int pa = vnet_switch_add_guest(&sw, 0, a.mac, 0, VNET_NO_UPLINK, a.win);
	int pb = vnet_switch_add_guest(&sw, 1, b.mac, 0, VNET_NO_UPLINK, b.win);
	unsigned wakes[8];
	put_frame(&a, b.mac, a.mac, "awake");
	drain(&sw, pa);
	ck_assert_uint_eq(vnet_switch_take_wakes(&sw, wakes), 0);
	for (int sleep = 0; sleep < 2; sleep++) {
		vnet_switch_sleep(&sw, (unsigned)pb);
		put_frame(&a, b.mac, a.mac, "first");
		put_frame(&a, b.mac, a.mac, "second");
		drain(&sw, pa);
		ck_assert_uint_eq(vnet_switch_take_wakes(&sw, wakes), 1);
		ck_assert_uint_eq(wakes[0], (unsigned)pb);
		put_frame(&a, b.mac, a.mac, "third");
		drain(&sw, pa);
		ck_assert_uint_eq(vnet_switch_take_wakes(&sw, wakes), 0);
		vnet_switch_wake(&sw, (unsigned)pb, b.win);
	}
	/* Woken before the list was taken: not listed. */
	vnet_switch_sleep(&sw, (unsigned)pb);
	put_frame(&a, b.mac, a.mac, "x");
	drain(&sw, pa);
	vnet_switch_wake(&sw, (unsigned)pb, b.win);
	ck_assert_uint_eq(vnet_switch_take_wakes(&sw, wakes), 0);
	/* Removed before: neither, and what it held is freed (ASan watches). */
	vnet_switch_sleep(&sw, (unsigned)pb);
	put_frame(&a, b.mac, a.mac, "y");
	drain(&sw, pa);
	vnet_switch_remove(&sw, (unsigned)pb);
	ck_assert_uint_eq(vnet_switch_take_wakes(&sw, wakes), 0);
	ck_assert_uint_eq(sw.held_bytes, 0);
	/* Freeing the switch frees what sleeping ports still hold. */
	pb = vnet_switch_add_guest(&sw, 1, b.mac, 0, VNET_NO_UPLINK, b.win);
	vnet_switch_sleep(&sw, (unsigned)pb);
	put_frame(&a, b.mac, a.mac, "z");
	drain(&sw, pa);
	ck_assert_uint_eq(sw.ports[pb].nheld, 1);
	vnet_switch_free(&sw);
	guest_free(&a), guest_free(&b);
}
END_TEST

/* A service's NIC as a cell hands it over: the RAM file (only its window part here), and the
 * kick and wake eventfds, of which the switch gets copies. */
struct cell_nic {
	int mem_fd;
	int kick, wake; /* ours */
	struct guest g; /* our mapping of the window */
};

static void cell_nic_init(struct cell_nic *n, uint8_t last)
{
	guest_init(&n->g, last);
	free(n->g.win);
	n->mem_fd = memfd_create("vnet-ram", MFD_CLOEXEC);
	ck_assert_int_ge(n->mem_fd, 0);
	ck_assert_int_eq(ftruncate(n->mem_fd, DN_GPA_IOWIN + DN_IOWIN_SIZE), 0);
	n->g.win = mmap(NULL, DN_IOWIN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, n->mem_fd,
			DN_GPA_IOWIN);
	ck_assert(n->g.win != MAP_FAILED);
	n->g.nic = (struct dn_nic *)(n->g.win + DN_IOWIN_NIC);
	n->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	n->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert(n->kick >= 0 && n->wake >= 0);
}

static int cell_nic_attach(struct vnet *vn, unsigned service, struct cell_nic *n)
{
	char err[256];
	int rc = vnet_attach(vn, service, n->mem_fd, dup(n->kick), dup(n->wake), err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "%s\n", err);
	return rc;
}

static void kick(struct cell_nic *n)
{
	uint64_t one = 1;
	ck_assert_int_eq(write(n->kick, &one, sizeof(one)), sizeof(one));
}

/* 1 if fd is readable within ms milliseconds (and reads it), else 0. */
static int readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return 0;
	uint64_t v;
	return read(fd, &v, sizeof(v)) == sizeof(v);
}

/* Waits up to 2 s for the network thread to finish n's TX ring. */
static void wait_sent(struct cell_nic *n)
{
	for (int i = 0; i < 2000 && n->g.nic->tx.used != n->g.nic->tx.avail; i++)
		usleep(1000);
	ck_assert_uint_eq(n->g.nic->tx.used, n->g.nic->tx.avail);
}

/* Mappings of n's RAM file in this process, and open fds: what the switch holds of it. */
static unsigned mappings_of(const struct cell_nic *n)
{
	struct stat st;
	ck_assert_int_eq(fstat(n->mem_fd, &st), 0);
	FILE *maps = fopen("/proc/self/maps", "r");
	ck_assert_ptr_nonnull(maps);
	char line[512];
	unsigned count = 0;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long inode = 0;
		if (sscanf(line, "%*s %*s %*s %*s %lu", &inode) == 1 && inode == st.st_ino)
			count++;
	}
	fclose(maps);
	return count;
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(d);
	unsigned count = 0;
	while (readdir(d))
		count++;
	closedir(d);
	return count;
}

START_TEST(test_vnet_port_config_is_its_own)
{
	/* The network keeps its own copy of each port's configuration: the caller's may change
	 * or go once vnet_add_port returns, and a port is added once. A NIC for a service that
	 * has no port is refused. */
	struct vnet_port_config port[2];
	memset(port, 0, sizeof(port));
	for (unsigned i = 0; i < 2; i++) {
		snprintf(port[i].name, sizeof(port[i].name), "svc%u", i);
		port[i].uplink = VNET_UPLINK_NONE;
		uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(i + 1)};
		memcpy(port[i].mac, mac, 6);
	}
	char err[256];
	struct vnet *vn = vnet_create(err, sizeof(err));
	ck_assert_msg(vn != NULL, "%s", err);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_msg(vnet_add_port(vn, i, &port[i], err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(vnet_add_port(vn, 1, &port[1], err, sizeof(err)), -1);
	ck_assert_str_eq(err, "network: service 1 added twice");
	memset(port, 0xff, sizeof(port)); /* no MAC the switch would let through */
	ck_assert_msg(vnet_start(vn, err, sizeof(err)) == 0, "%s", err);
	struct cell_nic a, b, c;
	cell_nic_init(&a, 1);
	cell_nic_init(&b, 2);
	cell_nic_init(&c, 3);
	ck_assert_int_eq(vnet_attach(vn, 2, c.mem_fd, dup(c.kick), dup(c.wake), err, sizeof(err)),
			 -1);
	ck_assert_str_eq(err, "network: unexpected NIC for service 2");
	ck_assert_int_eq(cell_nic_attach(vn, 0, &a), 0);
	ck_assert_int_eq(cell_nic_attach(vn, 1, &b), 0);
	post_rx(&b.g, 4, 2048);
	/* a's frame passes the source check against the MAC its port was added with. */
	put_frame(&a.g, b.g.mac, a.g.mac, "from the copy");
	kick(&a);
	wait_sent(&a);
	for (int i = 0; i < 2000 && b.g.nic->rx.used == 0; i++)
		usleep(1000);
	struct vnet_port_counters counters;
	ck_assert_int_eq(vnet_counters(vn, 0, &counters), 0);
	ck_assert_uint_eq(counters.tx_spoofed, 0);
	ck_assert_uint_eq(counters.tx_frames, 1);
	const char *got = take_rx(&b.g);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, "from the copy");
	vnet_destroy(vn);
	guest_unmap(&a.g), guest_unmap(&b.g), guest_unmap(&c.g);
	close(a.mem_fd), close(a.kick), close(a.wake);
	close(b.mem_fd), close(b.kick), close(b.wake);
	close(c.mem_fd), close(c.kick), close(c.wake);
}
END_TEST

START_TEST(test_vnet_sleep_and_wake)
{
	/* Through the network thread: a port put to sleep sends its last frames, lets go of its
	 * window and fds, has frames held and asks once to be woken; attached again, it gets
	 * them in order and is told. */
	struct vnet_port_config port[2];
	memset(port, 0, sizeof(port));
	for (unsigned i = 0; i < 2; i++) {
		struct vnet_port_config *net = &port[i];
		snprintf(port[i].name, sizeof(port[i].name), "svc%u", i);
		net->uplink = VNET_UPLINK_NONE;
		uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(i + 1)};
		memcpy(net->mac, mac, 6);
	}
	char err[256];
	struct vnet *vn = vnet_create(err, sizeof(err));
	ck_assert_msg(vn != NULL, "%s", err);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_msg(vnet_add_port(vn, i, &port[i], err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(vnet_start(vn, err, sizeof(err)) == 0, "%s", err);
	struct cell_nic a, b;
	cell_nic_init(&a, 1);
	cell_nic_init(&b, 2);
	ck_assert_int_eq(cell_nic_attach(vn, 0, &a), 0);
	ck_assert_int_eq(cell_nic_attach(vn, 1, &b), 0);
	post_rx(&a.g, 16, 2048);
	post_rx(&b.g, 16, 2048);
	/* b's last words, queued without a kick, are sent by the sleep itself. */
	put_frame(&b.g, a.g.mac, b.g.mac, "last words");
	put_frame(&b.g, a.g.mac, b.g.mac, "really last");
	ck_assert_uint_eq(mappings_of(&b), 2);
	unsigned fds = open_fds();
	ck_assert_int_eq(vnet_sleep(vn, 1), 0);
	ck_assert_uint_eq(b.g.nic->tx.used, 2);
	ck_assert_str_eq(take_rx(&a.g), "last words");
	ck_assert_str_eq(take_rx(&a.g), "really last");
	ck_assert_uint_eq(mappings_of(&b), 1); /* ours only */
	ck_assert_uint_eq(open_fds(), fds - 2);
	ck_assert_int_eq(vnet_sleep(vn, 1), -1);
	ck_assert_int_eq(vnet_sleep(vn, 2), -1);
	/* Frames for it are held, and the first asks for a wake-up. */
	put_frame(&a.g, b.g.mac, a.g.mac, "one");
	put_frame(&a.g, b.g.mac, a.g.mac, "two");
	kick(&a);
	ck_assert(readable(vnet_wake_fd(vn), 2000));
	unsigned service = 99;
	ck_assert_int_eq(vnet_take_wake(vn, &service), 1);
	ck_assert_uint_eq(service, 1);
	ck_assert_int_eq(vnet_take_wake(vn, &service), 0);
	wait_sent(&a);
	put_frame(&a.g, b.g.mac, a.g.mac, "three");
	kick(&a);
	wait_sent(&a);
	ck_assert_int_eq(vnet_take_wake(vn, &service), 0); /* once per sleep */
	ck_assert(!readable(vnet_wake_fd(vn), 0));
	ck_assert_uint_eq(b.g.nic->rx.used, 0); /* nothing was written into its window */
	/* Attached again: what was held is in its ring, in order, and it is told. */
	struct dn_vregs *vr = (struct dn_vregs *)(b.g.win + DN_IOWIN_VREGS);
	vr->pending = 0;
	ck_assert(!readable(b.wake, 0));
	ck_assert_int_eq(cell_nic_attach(vn, 1, &b), 0);
	ck_assert_str_eq(take_rx(&b.g), "one");
	ck_assert_str_eq(take_rx(&b.g), "two");
	ck_assert_str_eq(take_rx(&b.g), "three");
	ck_assert_ptr_null(take_rx(&b.g));
	ck_assert(vr->pending & DN_EV_NET);
	ck_assert(readable(b.wake, 0));
	ck_assert_int_eq(vnet_attach(vn, 1, b.mem_fd, dup(b.kick), dup(b.wake), err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "unexpected NIC")); /* awake already */
	/* It sends again, from where its ring was. */
	put_frame(&b.g, a.g.mac, b.g.mac, "good morning");
	kick(&b);
	wait_sent(&b);
	ck_assert_str_eq(take_rx(&a.g), "good morning");
	/* A second sleep asks again; detached asleep, its held frame is freed (ASan). */
	ck_assert_int_eq(vnet_sleep(vn, 1), 0);
	put_frame(&a.g, b.g.mac, a.g.mac, "four");
	kick(&a);
	ck_assert(readable(vnet_wake_fd(vn), 2000));
	ck_assert_int_eq(vnet_take_wake(vn, &service), 1);
	ck_assert_uint_eq(service, 1);
	struct vnet_port_counters c;
	vnet_detach(vn, 1, &c);
	ck_assert_uint_eq(c.held, 4);
	ck_assert_uint_eq(c.held_dropped, 0);
	ck_assert_uint_eq(c.rx_frames, 3);
	ck_assert_uint_eq(c.tx_frames, 3);
	ck_assert_int_eq(vnet_sleep(vn, 1), -1);
	vnet_destroy(vn);
	guest_unmap(&b.g);
	guest_unmap(&a.g);
	close(a.mem_fd), close(a.kick), close(a.wake);
	close(b.mem_fd), close(b.kick), close(b.wake);
}
END_TEST

START_TEST(test_vnet_wake_list_skips_the_awake)
{
	/* A service woken, or detached, before its wake-up is taken is not reported; asleep
	 * again, it is. */
	struct vnet_port_config port[2];
	memset(port, 0, sizeof(port));
	for (unsigned i = 0; i < 2; i++) {
		port[i].uplink = VNET_UPLINK_NONE;
		uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(i + 1)};
		memcpy(port[i].mac, mac, 6);
	}
	char err[256];
	struct vnet *vn = vnet_create(err, sizeof(err));
	ck_assert_msg(vn != NULL, "%s", err);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_msg(vnet_add_port(vn, i, &port[i], err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(vnet_start(vn, err, sizeof(err)) == 0, "%s", err);
	struct cell_nic a, b;
	cell_nic_init(&a, 1);
	cell_nic_init(&b, 2);
	ck_assert_int_eq(cell_nic_attach(vn, 0, &a), 0);
	ck_assert_int_eq(cell_nic_attach(vn, 1, &b), 0);
	post_rx(&b.g, 16, 2048);
	unsigned service;
	/* Woken with nothing held, it is still told to look at its rings. */
	ck_assert_int_eq(vnet_sleep(vn, 1), 0);
	struct dn_vregs *vr = (struct dn_vregs *)(b.g.win + DN_IOWIN_VREGS);
	vr->pending = 0;
	ck_assert_int_eq(cell_nic_attach(vn, 1, &b), 0);
	ck_assert(vr->pending & DN_EV_NET);
	ck_assert(readable(b.wake, 0));
	ck_assert_int_eq(vnet_take_wake(vn, &service), 0);
	ck_assert_int_eq(vnet_sleep(vn, 1), 0);
	put_frame(&a.g, b.g.mac, a.g.mac, "one");
	kick(&a);
	ck_assert(readable(vnet_wake_fd(vn), 2000));
	ck_assert_int_eq(cell_nic_attach(vn, 1, &b), 0);
	ck_assert_int_eq(vnet_take_wake(vn, &service), 0);
	ck_assert_int_eq(vnet_sleep(vn, 1), 0);
	put_frame(&a.g, b.g.mac, a.g.mac, "two");
	kick(&a);
	ck_assert(readable(vnet_wake_fd(vn), 2000));
	vnet_detach(vn, 1, NULL);
	ck_assert_int_eq(vnet_take_wake(vn, &service), 0);
	/* Connected afresh, then asleep with a frame: reported. */
	ck_assert_int_eq(cell_nic_attach(vn, 1, &b), 0);
	ck_assert_int_eq(vnet_sleep(vn, 1), 0);
	put_frame(&a.g, b.g.mac, a.g.mac, "three");
	kick(&a);
	ck_assert(readable(vnet_wake_fd(vn), 2000));
	ck_assert_int_eq(vnet_take_wake(vn, &service), 1);
	ck_assert_uint_eq(service, 1);
	vnet_destroy(vn); /* frees what b holds */
	guest_unmap(&b.g);
	guest_unmap(&a.g);
	close(a.mem_fd), close(a.kick), close(a.wake);
	close(b.mem_fd), close(b.kick), close(b.wake);
}
END_TEST

/* Connections the kernel completed on the host side of a forward that nothing accepts yet:
 * libslirp's own backlog of 1 holds 2, and drops the other clients' SYNs (a 1 s retry each). */
START_TEST(test_slirp_forward_backlog)
{
	char err[160];
	struct vnet_slirp *s = vnet_slirp_create(err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	int probe = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	ck_assert_int_eq(bind(probe, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(probe, (struct sockaddr *)&a, &alen), 0);
	close(probe);
	struct vnet_forward f = {
		.host_addr = 0x7f000001u, .host_port = ntohs(a.sin_port), .guest_port = 80};
	ck_assert_msg(vnet_slirp_add_forward(s, &f, 0x0a00000au, err, sizeof(err)) == 0, "%s", err);
	enum { CLIENTS = 8 };
	struct pollfd p[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		p[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		p[i].events = POLLOUT;
		int r = connect(p[i].fd, (struct sockaddr *)&a, sizeof(a));
		ck_assert(r == 0 || errno == EINPROGRESS);
	}
	/* A dropped SYN is retried after 1 s, into a queue that is still full: the count is the
	 * same however long this waits. */
	int connected = 0;
	for (int round = 0; round < 20 && connected < CLIENTS; round++) {
		poll(p, CLIENTS, 50);
		connected = 0;
		for (int i = 0; i < CLIENTS; i++) {
			int e = -1;
			socklen_t elen = sizeof(e);
			getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &e, &elen);
			struct sockaddr_in peer;
			socklen_t plen = sizeof(peer);
			connected += e == 0 &&
				     getpeername(p[i].fd, (struct sockaddr *)&peer, &plen) == 0;
		}
	}
	ck_assert_int_eq(connected, CLIENTS);
	for (int i = 0; i < CLIENTS; i++)
		close(p[i].fd);
	vnet_slirp_remove_forward(s, &f);
	vnet_slirp_destroy(s);
}
END_TEST

/* Guests that keep their TX rings full of good frames (to a peer without RX buffers) and kick,
 * so that the network thread never runs out of work, until told to stop: one thread plays
 * them all. Their frames are written beforehand (flooder_init): it only publishes. */
#define FLOODERS 4
struct flooder {
	struct cell_nic *n[FLOODERS];
	int stop;
};

static void flooder_init(struct cell_nic *n, const uint8_t *to)
{
	for (unsigned i = 0; i < DN_NIC_RING_SIZE; i++)
		put_frame(&n->g, to, n->g.mac, "flood");
	n->g.nic->tx.avail = 0; /* descriptor i names buffer i: written, not yet published */
}

/* Publishes one more frame on n's ring, and kicks now and then; 0 if the ring is full. */
static int flood_one(struct cell_nic *n)
{
	struct dn_nic *nic = n->g.nic;
	uint32_t avail = nic->tx.avail;
	uint64_t one = 1;
	int full = avail - __atomic_load_n(&nic->tx.used, __ATOMIC_ACQUIRE) >= DN_NIC_RING_SIZE;
	if (!full)
		__atomic_store_n(&nic->tx.avail, ++avail, __ATOMIC_RELEASE);
	if ((full || avail % 32 == 0) && write(n->kick, &one, sizeof(one)) < 0)
		return 0;
	return !full;
}

static void *flooder_main(void *arg)
{
	struct flooder *fl = arg;
	while (!__atomic_load_n(&fl->stop, __ATOMIC_ACQUIRE)) {
		int published = 0;
		for (unsigned i = 0; i < FLOODERS; i++)
			published |= flood_one(fl->n[i]);
		if (!published)
			sched_yield();
	}
	return NULL;
}

START_TEST(test_vnet_callers_not_starved_by_busy_guests)
{
	/* While guests keep the network thread busy turn after turn, the supervisor's calls
	 * (stats here) get the switch's lock within one port's TX budget: the thread gives way
	 * between ports, not only between turns. */
	struct vnet_port_config port[1 + FLOODERS];
	memset(port, 0, sizeof(port));
	for (unsigned i = 0; i < 1 + FLOODERS; i++) {
		port[i].uplink = VNET_UPLINK_NONE;
		uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(i + 1)};
		memcpy(port[i].mac, mac, 6);
	}
	char err[256];
	struct vnet *vn = vnet_create(err, sizeof(err));
	ck_assert_msg(vn != NULL, "%s", err);
	for (unsigned i = 0; i < 1 + FLOODERS; i++)
		ck_assert_msg(vnet_add_port(vn, i, &port[i], err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(vnet_start(vn, err, sizeof(err)) == 0, "%s", err);
	struct cell_nic nics[1 + FLOODERS];
	struct flooder fl = {.stop = 0};
	for (unsigned i = 0; i < 1 + FLOODERS; i++) {
		cell_nic_init(&nics[i], (uint8_t)(i + 1));
		if (i > 0) {
			flooder_init(&nics[i], nics[0].g.mac);
			fl.n[i - 1] = &nics[i];
		}
		ck_assert_int_eq(cell_nic_attach(vn, i, &nics[i]), 0);
	}
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, flooder_main, &fl), 0);
	while (__atomic_load_n(&nics[1].g.nic->tx.used, __ATOMIC_ACQUIRE) < 4 * DN_NIC_RING_SIZE)
		sched_yield();
	struct vnet_port_counters c;
	for (unsigned i = 0; i < 2000; i++) {
		usleep(20); /* calls come now and then, as the main loop's do */
		ck_assert_int_eq(vnet_counters(vn, 0, &c), 0);
	}
	ck_assert_uint_ge(c.rx_dropped, 4 * DN_NIC_RING_SIZE); /* the thread was busy */
	ck_assert_uint_le(vnet_caller_wait_max(vn), 1);
	__atomic_store_n(&fl.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	vnet_destroy(vn);
	for (unsigned i = 0; i < 1 + FLOODERS; i++) {
		guest_unmap(&nics[i].g);
		close(nics[i].mem_fd), close(nics[i].kick), close(nics[i].wake);
	}
}
END_TEST

Suite *vnet_suite(void)
{
	Suite *s = suite_create("vnet");
	TCase *tc = tcase_create("switch");
	tcase_add_test(tc, test_unicast_broadcast_and_spoofing);
	tcase_add_test(tc, test_hostile_descriptors);
	tcase_add_test(tc, test_rx_put_bounded_against_a_running_guest);
	tcase_add_test(tc, test_bounded_queue_and_budget);
	tcase_add_test(tc, test_uplinks_learning_and_reachability);
	tcase_add_test(tc, test_many_ports);
	tcase_add_test(tc, test_nat_sanitizer);
	tcase_add_test(tc, test_ip_spoofing);
	tcase_add_test(tc, test_unknown_unicast_and_snapshot);
	tcase_add_test(tc, test_unbacked_window);
	tcase_add_test(tc, test_sleep_holds_in_order);
	tcase_add_test(tc, test_sleep_bounds);
	tcase_add_test(tc, test_sleep_backpressure);
	tcase_add_test(tc, test_sleep_broadcast_policy);
	tcase_add_test(tc, test_arp_request_reaches_its_target);
	tcase_add_test(tc, test_sleep_wake_list);
	suite_add_tcase(s, tc);
	tc = tcase_create("network thread");
	tcase_add_test(tc, test_vnet_port_config_is_its_own);
	tcase_add_test(tc, test_vnet_sleep_and_wake);
	tcase_add_test(tc, test_vnet_wake_list_skips_the_awake);
	tcase_add_test(tc, test_vnet_callers_not_starved_by_busy_guests);
	suite_add_tcase(s, tc);
	tc = tcase_create("user uplink");
	tcase_add_test(tc, test_slirp_forward_backlog);
	suite_add_tcase(s, tc);
	return s;
}
