/* The learning Ethernet switch: MAC table, reachability between guests and uplinks, flooding,
 * source-MAC enforcement, frames held for sleeping ports (and senders held back when that hold
 * is full), and the per-port counters. */
#include "vnet_switch.h"

#include <stdlib.h>
#include <string.h>

#include "guestmem.h"

#define TABLE_MIN 64u
#define LEARNED_MAX 4096u /* MACs learned from uplinks; beyond that, frames to new ones drop */

static uint64_t mac_key(const uint8_t *mac)
{
	uint64_t k = 0;
	for (int i = 0; i < 6; i++)
		k = k << 8 | mac[i];
	return k;
}

static uint32_t mac_hash(uint64_t k)
{
	k ^= k >> 29;
	k *= 0xbf58476d1ce4e5b9ull;
	k ^= k >> 32;
	return (uint32_t)k;
}

static struct vnet_mac_entry *table_find(const struct vnet_switch *sw, uint64_t mac)
{
	for (uint32_t i = mac_hash(mac) & sw->table_mask;; i = (i + 1) & sw->table_mask) {
		struct vnet_mac_entry *e = &sw->table[i];
		if (e->mac == mac || e->mac == 0)
			return e;
	}
}

static int table_grow(struct vnet_switch *sw)
{
	uint32_t size = (sw->table_mask + 1) * 2;
	struct vnet_mac_entry *old = sw->table;
	uint32_t old_size = sw->table_mask + 1;
	sw->table = calloc(size, sizeof(*sw->table));
	if (!sw->table) {
		sw->table = old;
		return -1;
	}
	sw->table_mask = size - 1;
	for (uint32_t i = 0; i < old_size; i++)
		if (old[i].mac)
			*table_find(sw, old[i].mac) = old[i];
	free(old);
	return 0;
}

/* Inserts or updates; the table stays at most half full so probes stay short. */
static int table_put(struct vnet_switch *sw, uint64_t mac, uint32_t port, int is_static)
{
	if ((sw->table_used + 1) * 2 > sw->table_mask + 1 && table_grow(sw) != 0)
		return -1;
	struct vnet_mac_entry *e = table_find(sw, mac);
	if (!e->mac)
		sw->table_used++;
	*e = (struct vnet_mac_entry){mac, port, (uint32_t)is_static};
	return 0;
}

/* Deletes with backward shift, so that no tombstones lengthen later probes. */
static void table_delete(struct vnet_switch *sw, struct vnet_mac_entry *e)
{
	uint32_t hole = (uint32_t)(e - sw->table);
	for (uint32_t i = (hole + 1) & sw->table_mask; sw->table[i].mac;
	     i = (i + 1) & sw->table_mask) {
		uint32_t home = mac_hash(sw->table[i].mac) & sw->table_mask;
		/* Move it into the hole if its home is not between the hole and it. */
		if (((i - home) & sw->table_mask) >= ((i - hole) & sw->table_mask)) {
			sw->table[hole] = sw->table[i];
			hole = i;
		}
	}
	sw->table[hole].mac = 0;
	sw->table_used--;
}

int vnet_switch_init(struct vnet_switch *sw)
{
	memset(sw, 0, sizeof(*sw));
	sw->table = calloc(TABLE_MIN, sizeof(*sw->table));
	if (!sw->table)
		return -1;
	sw->table_mask = TABLE_MIN - 1;
	for (int u = 0; u < VNET_UPLINKS_MAX; u++)
		sw->uplink_port[u] = -1;
	sw->clock = ratelimit_now;
	return 0;
}

void vnet_switch_set_limits(struct vnet_switch *sw, unsigned p, const struct ratelimit_config *rx,
			    const struct ratelimit_config *tx)
{
	static const struct ratelimit_config none;
	struct vnet_port *port = &sw->ports[p];
	uint64_t now = sw->clock();
	ratelimit_init(&port->rx_limit, rx ? rx : &none, now);
	ratelimit_init(&port->tx_limit, tx ? tx : &none, now);
	port->tx_ready_at = 0;
}

struct vnet_port_counters vnet_switch_counters(const struct vnet_switch *sw, unsigned p)
{
	const struct vnet_port *port = &sw->ports[p];
	struct vnet_port_counters c = port->count;
	c.ring_errors = port->ring.errors;
	c.tx_throttled = port->tx_limit.throttled;
	c.tx_throttled_ns = port->tx_limit.throttled_ns;
	return c;
}

/* What a held frame of len bytes costs against the bounds: its copy and its bookkeeping. */
static size_t held_cost(size_t len)
{
	return sizeof(struct vnet_held) + len;
}

static void free_held(struct vnet_switch *sw, struct vnet_port *port)
{
	while (port->held) {
		struct vnet_held *h = port->held;
		port->held = h->next;
		free(h);
	}
	sw->held_bytes -= port->held_cost;
	port->held_cost = 0;
	port->held_tail = NULL;
	port->nheld = 0;
}

void vnet_switch_free(struct vnet_switch *sw)
{
	for (unsigned i = 0; i < sw->nports; i++)
		free_held(sw, &sw->ports[i]);
	free(sw->ports);
	free(sw->dirty);
	free(sw->wakes);
	free(sw->backlog);
	free(sw->blocked);
	free(sw->ready);
	free(sw->table);
	memset(sw, 0, sizeof(*sw));
}

static int new_port(struct vnet_switch *sw)
{
	for (unsigned i = 0; i < sw->nports; i++)
		if (!sw->ports[i].in_use)
			return (int)i;
	if (sw->nports == sw->cap) {
		unsigned cap = sw->cap ? sw->cap * 2 : 16;
		struct vnet_port *p = realloc(sw->ports, cap * sizeof(*p));
		if (!p)
			return -1;
		sw->ports = p;
		unsigned *d = realloc(sw->dirty, cap * sizeof(*d));
		if (!d)
			return -1;
		sw->dirty = d;
		unsigned **lists[] = {&sw->wakes, &sw->backlog, &sw->blocked, &sw->ready};
		for (unsigned l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
			d = realloc(*lists[l], cap * sizeof(*d));
			if (!d)
				return -1;
			*lists[l] = d;
		}
		sw->cap = cap;
	}
	memset(&sw->ports[sw->nports], 0, sizeof(sw->ports[0]));
	return (int)sw->nports++;
}

int vnet_switch_add_guest(struct vnet_switch *sw, unsigned service, const uint8_t mac[6],
			  uint32_t ip, int uplink, uint8_t *win)
{
	uint64_t key = mac_key(mac);
	struct vnet_mac_entry *e = table_find(sw, key);
	if (e->mac && e->is_static)
		return -1;
	int p = new_port(sw);
	if (p < 0)
		return -1;
	if (table_put(sw, key, (uint32_t)p, 1) != 0) {
		sw->ports[p].in_use = 0; /* the slot stays free for the next port */
		return -1;
	}
	struct vnet_port *port = &sw->ports[p];
	memset(port, 0, sizeof(*port));
	port->in_use = 1;
	port->blocked_on = -1;
	port->uplink = uplink;
	port->service = service;
	port->ip = ip;
	memcpy(port->mac, mac, 6);
	vnet_ring_init(&port->ring, win);
	return p;
}

int vnet_switch_add_uplink(struct vnet_switch *sw, int uplink, vnet_uplink_send_fn send, void *ctx)
{
	if (uplink < 0 || uplink >= VNET_UPLINKS_MAX)
		return -1;
	int p = new_port(sw);
	if (p < 0)
		return -1;
	struct vnet_port *port = &sw->ports[p];
	memset(port, 0, sizeof(*port));
	port->in_use = 1;
	port->blocked_on = -1;
	port->is_uplink = 1;
	port->uplink = uplink;
	port->send = send;
	port->send_ctx = ctx;
	sw->uplink_port[uplink] = p;
	return p;
}

/* Takes port out of a list of ports (dirty, wakes, backlog, blocked, ready). Each list holds a
 * port at most once and never a free slot, so that it never needs more than cap entries. */
static void list_drop(unsigned *list, unsigned *n, unsigned port)
{
	for (unsigned i = 0; i < *n; i++)
		if (list[i] == port) {
			memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof(*list));
			(*n)--;
			return;
		}
}

/* Takes port p off the blocked list, if it is on it. */
static void unblock(struct vnet_switch *sw, unsigned p)
{
	if (sw->ports[p].blocked_on < 0)
		return;
	sw->ports[p].blocked_on = -1;
	list_drop(sw->blocked, &sw->nblocked, p);
}

/* Port dst woke or went: the senders that waited for it go on the ready list. */
static void release_waiters(struct vnet_switch *sw, unsigned dst)
{
	for (unsigned i = 0; i < sw->nblocked;) {
		unsigned p = sw->blocked[i];
		struct vnet_port *port = &sw->ports[p];
		if (port->blocked_on != (int)dst) {
			i++;
			continue;
		}
		unblock(sw, p); /* shifts the rest down: look again at i */
		if (!port->unblock_asked) {
			port->unblock_asked = 1;
			sw->ready[sw->nready++] = p;
		}
	}
}

void vnet_switch_remove(struct vnet_switch *sw, unsigned port)
{
	if (port >= sw->nports || !sw->ports[port].in_use)
		return;
	sw->ports[port].in_use = 0;
	free_held(sw, &sw->ports[port]);
	list_drop(sw->dirty, &sw->ndirty, port);
	list_drop(sw->wakes, &sw->nwakes, port);
	list_drop(sw->backlog, &sw->nbacklog, port);
	list_drop(sw->ready, &sw->nready, port);
	unblock(sw, port);
	release_waiters(sw, port);
	if (!sw->ports[port].is_uplink) {
		/* A guest port has one entry, its own MAC: nothing is learned behind a guest. */
		struct vnet_mac_entry *e = table_find(sw, mac_key(sw->ports[port].mac));
		if (e->mac && e->port == port)
			table_delete(sw, e);
		return;
	}
	if (sw->ports[port].uplink >= 0 && sw->ports[port].uplink < VNET_UPLINKS_MAX &&
	    sw->uplink_port[sw->ports[port].uplink] == (int)port)
		sw->uplink_port[sw->ports[port].uplink] = -1;
	for (uint32_t i = 0; i <= sw->table_mask;) {
		if (sw->table[i].mac && sw->table[i].port == port) {
			table_delete(sw, &sw->table[i]); /* shifted entries land at i: look again */
			sw->learned--;
		} else {
			i++;
		}
	}
}

unsigned vnet_switch_take_dirty(struct vnet_switch *sw, unsigned *out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < sw->ndirty; i++) {
		struct vnet_port *p = &sw->ports[sw->dirty[i]];
		if (p->in_use && p->rx_dirty && !p->asleep)
			out[n++] = sw->dirty[i];
		p->rx_dirty = 0;
	}
	sw->ndirty = 0;
	return n;
}

/* Guests reach each other; a guest and an uplink reach each other only if the guest chose it;
 * uplinks are never bridged to each other. */
static int reachable(const struct vnet_port *a, const struct vnet_port *b)
{
	if (a->is_uplink && b->is_uplink)
		return 0;
	if (!a->is_uplink && !b->is_uplink)
		return 1;
	return a->uplink == b->uplink;
}

/* A port got a frame or a ring error since the network thread last looked at it. */
static void mark(struct vnet_switch *sw, unsigned port)
{
	struct vnet_port *p = &sw->ports[port];
	if (!p->rx_dirty) {
		p->rx_dirty = 1;
		sw->dirty[sw->ndirty++] = port;
	}
}

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned ethertype(const struct vnet_frame *f)
{
	return (unsigned)f->hdr[12] << 8 | f->hdr[13];
}

/* The target address of an ARP request (Ethernet/IPv4), else 0. Read on the snapshot, which
 * holds the ARP target through byte 41. */
static uint32_t arp_request_target(const struct vnet_frame *f)
{
	const uint8_t *h = f->hdr;
	if (ethertype(f) == 0x0806 && f->hdr_len >= 42 && h[16] == 0x08 && h[17] == 0x00 &&
	    h[20] == 0 && h[21] == 1)
		return be32_at(h + 38);
	return 0;
}

/* An ARP request for port's own address: someone wants to reach it. */
static int arp_asks_for(const struct vnet_port *port, const struct vnet_frame *f)
{
	return port->ip && arp_request_target(f) == port->ip;
}

/* A guest whose address the switch knows answers ARP for no other: a request for another
 * address need not reach (and wake) it. With a thousand guests on a LAN, every new peer's
 * request would otherwise interrupt them all. */
static int arp_not_for(const struct vnet_port *port, uint32_t target)
{
	return target && !port->is_uplink && port->ip && port->ip != target;
}

/* Lists a sleeping port for a wake-up, once per sleep. */
static void ask_wake(struct vnet_switch *sw, unsigned port)
{
	struct vnet_port *p = &sw->ports[port];
	if (!p->wake_asked) {
		p->wake_asked = 1;
		sw->wakes[sw->nwakes++] = port;
	}
}

/* Room in port's hold for a frame of len bytes: within its share and the switch's. */
static int held_room(const struct vnet_switch *sw, const struct vnet_port *port, size_t len)
{
	size_t cost = held_cost(len);
	return port->held_cost + cost <= VNET_HELD_PORT_BYTES &&
	       cost <= VNET_HELD_BYTES_MAX - sw->held_bytes;
}

/* Appends a stable copy of f to what port dst holds, within the bounds. Returns 1 if kept. */
static int keep(struct vnet_switch *sw, struct vnet_port *dst, const struct vnet_frame *f)
{
	if (!held_room(sw, dst, f->len))
		return 0;
	struct vnet_held *h = malloc(sizeof(*h) + f->len);
	/* The sender's buffer may be unbacked (SIGBUS): then its frame is lost, as for an
	 * uplink. The checked header goes over the copy, as in every delivery. */
	if (!h || guestmem_copy(h->data, f->data, f->len) != 0) {
		free(h);
		return 0;
	}
	memcpy(h->data, f->hdr, f->hdr_len);
	h->next = NULL;
	h->len = f->len;
	if (dst->held_tail)
		dst->held_tail->next = h;
	else
		dst->held = h;
	dst->held_tail = h;
	dst->nheld++;
	dst->held_cost += held_cost(f->len);
	sw->held_bytes += held_cost(f->len);
	dst->count.held++;
	return 1;
}

/* Keeps a copy of f for a sleeping port, within the bounds. Returns 1 if held. */
static int hold(struct vnet_switch *sw, unsigned port, const struct vnet_frame *f)
{
	struct vnet_port *dst = &sw->ports[port];
	if ((f->hdr[0] & 1) && !arp_asks_for(dst, f)) {
		dst->count.asleep_ignored++; /* a broadcast it need not wake for: not a drop */
		return 0;
	}
	/* Even a frame dropped for room asks: its sender will try again once it is up. */
	ask_wake(sw, port);
	if (!keep(sw, dst, f)) {
		dst->count.held_dropped++;
		return 0;
	}
	return 1;
}

/* Puts f into awake guest port's RX ring. Returns 1 if delivered. */
static int ring_put(struct vnet_switch *sw, unsigned port, const struct vnet_frame *f)
{
	struct vnet_port *dst = &sw->ports[port];
	uint64_t errors = dst->ring.errors;
	int ok = vnet_ring_rx_put(&dst->ring, f);
	if (ok)
		dst->count.rx_frames++;
	else
		dst->count.rx_dropped++;
	if (ok || dst->ring.errors != errors)
		mark(sw, port); /* to be woken, or checked against the error limit */
	return ok;
}

/* Moves what awake guest port p holds into its RX ring, oldest first, as far as the ring has
 * buffers; what is left keeps it on the backlog list. Each turn takes one held frame: bounded
 * by what it holds. Returns how many were delivered. */
static unsigned deliver_held(struct vnet_switch *sw, unsigned p)
{
	struct vnet_port *port = &sw->ports[p];
	unsigned delivered = 0;
	uint64_t at;
	/* The RX limit holds them back too (the backlog is looked at again soon). */
	while (port->held && vnet_ring_rx_free(&port->ring) > 0 &&
	       (!port->rx_limit.limited ||
		ratelimit_take(&port->rx_limit, port->held->len, sw->clock(), &at))) {
		struct vnet_held *h = port->held;
		port->held = h->next;
		if (!port->held)
			port->held_tail = NULL;
		port->nheld--;
		port->held_cost -= held_cost(h->len);
		sw->held_bytes -= held_cost(h->len);
		struct vnet_frame f;
		vnet_frame_init(&f, h->data, h->len);
		delivered += (unsigned)ring_put(sw, p, &f);
		free(h);
	}
	if (port->held && !port->backlogged) {
		port->backlogged = 1;
		sw->backlog[sw->nbacklog++] = p;
	} else if (!port->held && port->backlogged) {
		port->backlogged = 0;
		list_drop(sw->backlog, &sw->nbacklog, p);
	}
	return delivered;
}

/* Whether guest port dst's RX limit lets a frame of len bytes in now (it takes the tokens).
 * A frame it refuses is dropped and counted: the switch never waits for one port. */
static int rx_allowed(struct vnet_switch *sw, struct vnet_port *dst, uint16_t len)
{
	uint64_t at;
	if (!dst->rx_limit.limited || ratelimit_take(&dst->rx_limit, len, sw->clock(), &at))
		return 1;
	dst->rx_limit.waiting = 0; /* dropped, not waiting: the next frame is another */
	dst->count.rx_throttled++;
	return 0;
}

static int deliver(struct vnet_switch *sw, unsigned port, const struct vnet_frame *f)
{
	struct vnet_port *dst = &sw->ports[port];
	if (dst->asleep)
		return hold(sw, port, f);
	if (dst->is_uplink) {
		/* One copy into a stable buffer with the checked header: the uplink parses it,
		 * and the sender must not change it underneath. */
		uint8_t buf[DN_NIC_FRAME_MAX];
		if (guestmem_copy(buf, f->data, f->len) != 0) {
			dst->count.rx_dropped++;
			return 0;
		}
		memcpy(buf, f->hdr, f->hdr_len);
		if (dst->send(dst->send_ctx, buf, f->len) != 0) {
			dst->count.rx_dropped++;
			return 0;
		}
		dst->count.rx_frames++;
		return 1;
	}
	/* Woken with more held than its ring took: what is held goes first, and f queues
	 * behind it (a receiver that does not keep up then loses frames, as on any NIC). */
	if (dst->held)
		deliver_held(sw, port);
	if (dst->held) {
		if (keep(sw, dst, f))
			return 1;
		dst->count.rx_dropped++;
		return 0;
	}
	if (!rx_allowed(sw, dst, f->len))
		return 0;
	return ring_put(sw, port, f);
}

/* Learned MACs live behind one uplink each: the key carries the uplink, so what one uplink
 * claims never hides a MAC from the guests of another. */
static uint64_t learned_key(uint64_t mac, int uplink)
{
	return mac | (uint64_t)(uplink + 1) << 48;
}

static void learn(struct vnet_switch *sw, const struct vnet_port *in, unsigned src, uint64_t mac)
{
	uint64_t key = learned_key(mac, in->uplink);
	struct vnet_mac_entry *e = table_find(sw, key);
	if (e->mac || sw->learned < LEARNED_MAX) {
		if (!e->mac)
			sw->learned++;
		table_put(sw, key, src, 0);
	}
}

/* An ARP or IPv4 frame must claim the port's own addresses: ARP's sender MAC and IPv4
 * address, IPv4's source. Checked on the snapshot. Frames too short to say are let through:
 * the receivers' own checks drop them. */
static int sources_ok(const struct vnet_port *in, const struct vnet_frame *f)
{
	unsigned type = ethertype(f);
	if (type == 0x0806 && f->hdr_len >= 42)
		return memcmp(f->hdr + 22, in->mac, 6) == 0 &&
		       (!in->ip || be32_at(f->hdr + 28) == in->ip);
	if (type == 0x0800 && f->hdr_len >= 30)
		return !in->ip || be32_at(f->hdr + 26) == in->ip;
	return 1;
}

/* Only ARP and IPv4 leave the LAN: what the source checks cover. */
static int may_leave(const struct vnet_frame *f)
{
	return ethertype(f) == 0x0800 || ethertype(f) == 0x0806;
}

static int uplink_port(const struct vnet_switch *sw, int uplink)
{
	return uplink >= 0 && uplink < VNET_UPLINKS_MAX ? sw->uplink_port[uplink] : -1;
}

/* The port a unicast frame from port src goes to: a guest's MAC, else one learned behind the
 * sender's uplink (a guest's unknown unicast can only be for the outside: its uplink alone);
 * -1 when it may go nowhere. */
static int unicast_to(const struct vnet_switch *sw, unsigned src, const struct vnet_frame *f)
{
	const struct vnet_port *in = &sw->ports[src];
	uint64_t dst = mac_key(f->hdr);
	int to = -1;
	const struct vnet_mac_entry *e = table_find(sw, dst);
	if (e->mac) {
		to = (int)e->port;
	} else if (!in->is_uplink) {
		e = table_find(sw, learned_key(dst, in->uplink));
		to = e->mac ? (int)e->port : uplink_port(sw, in->uplink);
	}
	if (to >= 0 && (unsigned)to != src && sw->ports[to].in_use &&
	    reachable(in, &sw->ports[to]) && (!sw->ports[to].is_uplink || may_leave(f)))
		return to;
	return -1;
}

enum dn_nic_status vnet_switch_forward(struct vnet_switch *sw, unsigned src,
				       const struct vnet_frame *f)
{
	struct vnet_port *in = &sw->ports[src];
	const uint8_t *dst_mac = f->hdr, *src_mac = f->hdr + 6;
	uint64_t from = mac_key(src_mac);
	unsigned delivered = 0;
	if (!in->is_uplink) {
		if (from != mac_key(in->mac) || !sources_ok(in, f)) {
			in->count.tx_spoofed++;
			return DN_NIC_DROPPED;
		}
	} else {
		/* A frame from outside that claims a guest's MAC is a lie: never deliver it. */
		const struct vnet_mac_entry *own = table_find(sw, from);
		if (own->mac && own->is_static) {
			sw->learn_refused++;
			in->count.tx_spoofed++;
			return DN_NIC_DROPPED;
		}
		if (from && !(src_mac[0] & 1))
			learn(sw, in, src, from);
	}
	if (!(dst_mac[0] & 1)) {
		int to = unicast_to(sw, src, f);
		if (to >= 0)
			delivered = (unsigned)deliver(sw, (unsigned)to, f);
		goto done;
	}
	/* Broadcast or multicast: every reachable port but the sender (an ARP request: but
	 * the guests it cannot be for). */
	sw->flooded++;
	uint32_t target = arp_request_target(f);
	for (unsigned p = 0; p < sw->nports; p++) {
		struct vnet_port *out = &sw->ports[p];
		if (p == src || !out->in_use || !reachable(in, out) ||
		    (out->is_uplink && !may_leave(f)))
			continue;
		if (arp_not_for(out, target))
			sw->arp_spared++;
		else
			delivered += (unsigned)deliver(sw, p, f);
	}
done:
	if (delivered) {
		in->count.tx_frames++;
		return DN_NIC_OK;
	}
	in->count.tx_dropped++;
	return DN_NIC_DROPPED;
}

/* The sleeping guest port whose hold has no room for a frame that guest port src may send to
 * it, or -1. Spoofed frames never wait: forwarding drops them. */
static int waits_for(const struct vnet_switch *sw, unsigned src, const struct vnet_frame *f)
{
	const struct vnet_port *in = &sw->ports[src];
	/* Nothing held anywhere: every hold has room (the common case, and the cheap test). */
	if (!sw->held_bytes || (f->hdr[0] & 1) || mac_key(f->hdr + 6) != mac_key(in->mac) ||
	    !sources_ok(in, f))
		return -1;
	int to = unicast_to(sw, src, f);
	if (to < 0 || !sw->ports[to].asleep || held_room(sw, &sw->ports[to], f->len))
		return -1;
	return to;
}

/* Guest port p's next TX frame waits for sleeping port dst: p goes on the blocked list (once),
 * and dst is asked to wake (its hold may be empty when the whole switch's is full). */
static void block(struct vnet_switch *sw, unsigned p, unsigned dst)
{
	struct vnet_port *port = &sw->ports[p];
	if (port->blocked_on < 0) {
		sw->blocked[sw->nblocked++] = p;
		port->count.tx_blocked++;
	}
	port->blocked_on = (int)dst;
	ask_wake(sw, dst);
}

unsigned vnet_switch_drain_tx(struct vnet_switch *sw, unsigned p, unsigned budget, int *more)
{
	struct vnet_port *port = &sw->ports[p];
	unsigned done = 0;
	*more = 0;
	if (port->asleep)
		return 0; /* no window to read */
	while (done < budget) {
		struct vnet_frame f;
		int got = vnet_ring_tx_take(&port->ring, &f);
		if (got < 0)
			return done;
		if (got == 0) {
			done++;
			continue; /* a bad descriptor, finished and counted */
		}
		int dst = waits_for(sw, p, &f);
		if (dst >= 0) {
			/* Left in its ring, not finished: it goes when dst wakes. */
			block(sw, p, (unsigned)dst);
			return done;
		}
		uint64_t at;
		if (port->tx_limit.limited &&
		    !ratelimit_take(&port->tx_limit, f.len, sw->clock(), &at)) {
			/* Left in its ring, not finished: backpressure, never a drop. */
			port->tx_ready_at = at;
			return done;
		}
		port->tx_ready_at = 0;
		unblock(sw, p); /* it waited, and need no longer */
		done++;
		vnet_ring_tx_finish(&port->ring, vnet_switch_forward(sw, p, &f));
	}
	*more = !vnet_ring_broken(&port->ring) && vnet_ring_tx_pending(&port->ring) != 0;
	return done;
}

int vnet_switch_lookup(const struct vnet_switch *sw, const uint8_t mac[6])
{
	const struct vnet_mac_entry *e = table_find(sw, mac_key(mac));
	for (int u = 0; !e->mac && u < VNET_UPLINKS_MAX; u++)
		e = table_find(sw, learned_key(mac_key(mac), u));
	return e->mac ? (int)e->port : -1;
}

void vnet_switch_sleep(struct vnet_switch *sw, unsigned p)
{
	if (p >= sw->nports || !sw->ports[p].in_use || sw->ports[p].is_uplink ||
	    sw->ports[p].asleep)
		return;
	struct vnet_port *port = &sw->ports[p];
	port->asleep = 1;
	port->wake_asked = 0;
	port->rx_dirty = 0; /* nothing left to tell it: its window is going */
	list_drop(sw->dirty, &sw->ndirty, p);
	if (port->backlogged) {
		port->backlogged = 0;
		list_drop(sw->backlog, &sw->nbacklog, p);
	}
	unblock(sw, p); /* what waits in its TX ring goes when it wakes */
	vnet_ring_rebind(&port->ring, NULL);
	if (port->held)
		ask_wake(sw, p); /* frames wait for it already */
}

unsigned vnet_switch_wake(struct vnet_switch *sw, unsigned p, uint8_t *win)
{
	if (p >= sw->nports || !sw->ports[p].in_use || !sw->ports[p].asleep)
		return 0;
	struct vnet_port *port = &sw->ports[p];
	vnet_ring_rebind(&port->ring, win);
	port->asleep = 0;
	port->wake_asked = 0;
	list_drop(sw->wakes, &sw->nwakes, p); /* up already: nobody need wake it */
	release_waiters(sw, p);
	return deliver_held(sw, p);
}

unsigned vnet_switch_flush_backlog(struct vnet_switch *sw)
{
	/* From the end: a port that has taken all leaves the list behind the cursor. */
	for (unsigned i = sw->nbacklog; i-- > 0;)
		deliver_held(sw, sw->backlog[i]);
	return sw->nbacklog;
}

unsigned vnet_switch_take_ready(struct vnet_switch *sw, unsigned *out)
{
	unsigned n = sw->nready;
	for (unsigned i = 0; i < n; i++) {
		out[i] = sw->ready[i];
		sw->ports[out[i]].unblock_asked = 0;
	}
	sw->nready = 0;
	return n;
}

unsigned vnet_switch_take_wakes(struct vnet_switch *sw, unsigned *out)
{
	unsigned n = sw->nwakes;
	if (n)
		memcpy(out, sw->wakes, n * sizeof(*out));
	sw->nwakes = 0;
	return n;
}
