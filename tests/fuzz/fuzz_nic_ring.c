/* The NIC rings and the switch: three guest ports and an uplink on one switch, each guest's
 * I/O window a mapping of its own. The input is a script of what the guests and the outside
 * do, one op at a time (its low nibble the op, its high nibble the port):
 *   0 TX: a descriptor (its offset either in the buffers or any value) and a frame written
 *     there, then tx.avail++        1 RX: publish buffers (how many, their capacity)
 *   2 poke: any 32-bit value anywhere in the port's struct dn_nic (counters, descriptors)
 *   3 the device drains the port's TX ring (a budget)     4 sleep or wake the port
 *   5 a frame from the uplink      6 backlog flush and the switch's lists
 *   7 race: a writer thread keeps applying a script of pokes to the port's ring and frame
 *     buffers while the device drains that ring and delivers: the device reads every guest
 *     field once, so whatever the writer does, nothing is read or written outside a window.
 * A sleeping port's window is mapped PROT_NONE: the switch must not touch it then. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz.h"
#include "vnet/vnet_switch.h"

#define GUESTS 3
#define POKES_MAX 8

struct poke {
	uint32_t offset; /* into the window */
	uint32_t value;
};

static struct {
	uint8_t *win[GUESTS];
	int port[GUESTS], asleep[GUESTS];
	int uplink;
	/* The race: the writer applies pokes[0, npokes) to win until stop. */
	pthread_t writer;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int go;
	atomic_int stop, done;
	uint8_t *target;
	struct poke pokes[POKES_MAX];
	unsigned npokes;
} h;

static int sink(void *ctx, const uint8_t *frame, size_t len)
{
	(void)ctx, (void)frame, (void)len;
	return 0;
}

static void *writer_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&h.lock);
		while (!h.go)
			pthread_cond_wait(&h.cond, &h.lock);
		h.go = 0;
		pthread_mutex_unlock(&h.lock);
		/* At least one round, then on until the device is done. */
		do {
			for (unsigned i = 0; i < h.npokes; i++)
				__atomic_store_n((uint32_t *)(h.target + h.pokes[i].offset),
						 h.pokes[i].value, __ATOMIC_RELAXED);
		} while (!atomic_load(&h.stop));
		atomic_store(&h.done, 1);
	}
	return NULL;
}

static void setup(void)
{
	for (int g = 0; g < GUESTS; g++) {
		h.win[g] = mmap(NULL, DN_IOWIN_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (h.win[g] == MAP_FAILED)
			abort();
	}
	pthread_mutex_init(&h.lock, NULL);
	pthread_cond_init(&h.cond, NULL);
	if (pthread_create(&h.writer, NULL, writer_main, NULL) != 0)
		abort();
}

static struct dn_nic *nic_of(int g)
{
	return (struct dn_nic *)(h.win[g] + DN_IOWIN_NIC);
}

/* A poke at a 4-byte aligned place in the nic struct or the first frame buffers. */
static struct poke take_poke(struct fuzz_in *in)
{
	uint32_t where = fuzz_u16(in);
	uint32_t span = where & 0x8000 ? 16384u : (uint32_t)sizeof(struct dn_nic);
	uint32_t base = where & 0x8000 ? DN_IOWIN_BUFS : DN_IOWIN_NIC;
	return (struct poke){base + ((where & 0x7fff) * 4) % span, fuzz_u32(in)};
}

static void op_tx(struct fuzz_in *in, int g)
{
	struct dn_nic *nic = nic_of(g);
	uint16_t where = fuzz_u16(in);
	uint32_t offset = where == 0xffff ? fuzz_u32(in) : DN_IOWIN_BUFS + (where % 480u) * 2048u;
	uint16_t len = fuzz_u16(in);
	size_t got;
	const uint8_t *frame = fuzz_bytes(in, len % (DN_NIC_FRAME_MAX + 1), &got);
	if (offset >= DN_IOWIN_BUFS && offset <= DN_IOWIN_SIZE - got) {
		memcpy(h.win[g] + offset, frame, got);
		/* A frame from the port's own address, unless the input says otherwise. */
		if (got >= 12 && !(len & 0x8000)) {
			uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(g + 1)};
			memcpy(h.win[g] + offset + 6, mac, 6);
		}
	}
	uint32_t avail = nic->tx.avail;
	nic->tx.desc[avail % DN_NIC_RING_SIZE] = (struct dn_nic_desc){offset, len & 0x7fff, 0};
	nic->tx.avail = avail + 1;
}

static void op_rx(struct fuzz_in *in, int g)
{
	struct dn_nic *nic = nic_of(g);
	unsigned n = fuzz_u8(in) % 16 + 1;
	uint16_t cap = fuzz_u16(in);
	for (unsigned i = 0; i < n; i++) {
		uint32_t avail = nic->rx.avail;
		uint32_t offset = DN_IOWIN_BUFS + 0x40000u + (avail % DN_NIC_RING_SIZE) * 2048u;
		nic->rx.desc[avail % DN_NIC_RING_SIZE] =
			(struct dn_nic_desc){offset, cap ? cap : 2048, 0};
		nic->rx.avail = avail + 1;
	}
}

static void op_race(struct vnet_switch *sw, struct fuzz_in *in, int g)
{
	h.npokes = fuzz_u8(in) % POKES_MAX + 1;
	for (unsigned i = 0; i < h.npokes; i++)
		h.pokes[i] = take_poke(in);
	h.target = h.win[g];
	atomic_store(&h.stop, 0);
	atomic_store(&h.done, 0);
	pthread_mutex_lock(&h.lock);
	h.go = 1;
	pthread_cond_signal(&h.cond);
	pthread_mutex_unlock(&h.lock);
	int more;
	vnet_switch_drain_tx(sw, (unsigned)h.port[g], DN_NIC_RING_SIZE, &more);
	vnet_switch_flush_backlog(sw);
	atomic_store(&h.stop, 1);
	while (!atomic_load(&h.done))
		sched_yield(); /* the writer may wait for a core: give it this one */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!h.win[0])
		setup();
	struct vnet_switch sw;
	if (vnet_switch_init(&sw) != 0)
		abort();
	for (int g = 0; g < GUESTS; g++) {
		memset(h.win[g], 0, DN_IOWIN_SIZE);
		uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(g + 1)};
		h.port[g] = vnet_switch_add_guest(&sw, (unsigned)g, mac, 0x0a000002u + (uint32_t)g,
						  g == 2 ? VNET_NO_UPLINK : 0, h.win[g]);
		h.asleep[g] = 0;
		if (h.port[g] < 0)
			abort();
	}
	h.uplink = vnet_switch_add_uplink(&sw, 0, sink, NULL);
	if (h.uplink < 0)
		abort();
	unsigned list[16];
	struct fuzz_in in = {data, size};
	while (in.n) {
		uint8_t op = fuzz_u8(&in);
		int g = (op >> 4) % GUESTS, more;
		switch (op & 7) {
		case 0:
			if (!h.asleep[g])
				op_tx(&in, g);
			break;
		case 1:
			if (!h.asleep[g])
				op_rx(&in, g);
			break;
		case 2: {
			struct poke p = take_poke(&in);
			if (!h.asleep[g])
				memcpy(h.win[g] + p.offset, &p.value, 4);
			break;
		}
		case 3:
			if (!h.asleep[g])
				vnet_switch_drain_tx(&sw, (unsigned)h.port[g], fuzz_u8(&in), &more);
			break;
		case 4:
			if (h.asleep[g]) {
				mprotect(h.win[g], DN_IOWIN_SIZE, PROT_READ | PROT_WRITE);
				vnet_switch_wake(&sw, (unsigned)h.port[g], h.win[g]);
			} else {
				/* A sleeping port's TX ring was drained first. */
				while (vnet_switch_drain_tx(&sw, (unsigned)h.port[g],
							    DN_NIC_RING_SIZE, &more) &&
				       more)
					;
				vnet_switch_sleep(&sw, (unsigned)h.port[g]);
				mprotect(h.win[g], DN_IOWIN_SIZE, PROT_NONE);
			}
			h.asleep[g] = !h.asleep[g];
			break;
		case 5: {
			size_t got;
			uint16_t len = fuzz_u16(&in) % (DN_NIC_FRAME_MAX + 1);
			const uint8_t *p = fuzz_bytes(&in, len, &got);
			if (got >= DN_NIC_FRAME_MIN) {
				static uint8_t frame[DN_NIC_FRAME_MAX];
				memcpy(frame, p, got);
				struct vnet_frame f;
				vnet_frame_init(&f, frame, (uint16_t)got);
				vnet_switch_forward(&sw, (unsigned)h.uplink, &f);
			}
			break;
		}
		case 6:
			vnet_switch_flush_backlog(&sw);
			vnet_switch_take_dirty(&sw, list);
			vnet_switch_take_ready(&sw, list);
			vnet_switch_take_wakes(&sw, list);
			break;
		case 7:
			if (!h.asleep[g])
				op_race(&sw, &in, g);
			break;
		}
	}
	for (int g = 0; g < GUESTS; g++)
		if (h.asleep[g])
			mprotect(h.win[g], DN_IOWIN_SIZE, PROT_READ | PROT_WRITE);
	vnet_switch_free(&sw);
	return 0;
}
