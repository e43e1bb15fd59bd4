/* The learning Ethernet switch that connects every service's NIC and the host uplinks. Pure
 * frame logic: no threads, no fds. Guest ports send only from their own MAC; uplink ports are
 * reachable only from the guests that chose them; every queue is bounded and every drop is
 * counted. A guest port may sleep (its service swapped out, its window unmapped): frames for
 * it are then held, bounded, until it wakes and its RX ring has taken them. A guest that sends
 * to a sleeping port whose hold is full is held back instead: its TX descriptor waits in its
 * ring until that port wakes. */
#ifndef VNET_SWITCH_H
#define VNET_SWITCH_H

#include <stddef.h>
#include <stdint.h>

#include "token_bucket.h"
#include "vnet_ring.h"

#define VNET_NO_UPLINK (-1)
#define VNET_UPLINKS_MAX 17 /* user, and up to 16 TAP devices */

/* What is held for a port while it sleeps (and after its wake, until its RX ring has taken it),
 * in bytes with each frame's bookkeeping: per port, and in the whole switch. A port's share is
 * far more than the TCP windows its peers may have in flight towards it while it sleeps (the
 * guest stack advertises 32 KiB a connection): flow control, not the switch, bounds that. */
#define VNET_HELD_PORT_BYTES (1024u * 1024)
#define VNET_HELD_BYTES_MAX (64u * 1024 * 1024)

/* How an uplink takes a frame: one contiguous, stable buffer. Returns 0 or -1 (dropped). */
typedef int (*vnet_uplink_send_fn)(void *ctx, const uint8_t *frame, size_t len);

struct vnet_port_counters {
	uint64_t tx_frames;    /* frames this port sent that were delivered somewhere */
	uint64_t tx_spoofed;   /* sent with a source MAC or IPv4 address not its own: dropped */
	uint64_t tx_dropped;   /* sent but delivered nowhere (no reachable destination) */
	uint64_t rx_frames;    /* frames delivered to this port */
	uint64_t rx_dropped;   /* frames for this port dropped: its queue was full */
	uint64_t ring_errors;  /* bad descriptors and counters (filled in by vnet_detach) */
	uint64_t held;	       /* frames kept for it while it slept (delivered as rx once awake) */
	uint64_t held_dropped; /* frames for it while it slept that found no room: dropped */
	uint64_t tx_blocked; /* times its TX ring waited for a sleeping port's hold to have room */
	uint64_t asleep_ignored; /* broadcasts and multicasts not given to it while it slept */
	/* Rate limits (filled in by vnet_switch_counters): */
	uint64_t tx_throttled;	  /* frames that waited in its TX ring for its TX limit */
	uint64_t tx_throttled_ns; /* time they waited */
	uint64_t rx_throttled;	  /* frames for it dropped by its RX limit */
};

/* A frame kept for a sleeping port, in a stable copy with the checked header laid over. */
struct vnet_held {
	struct vnet_held *next;
	uint16_t len;
	uint8_t data[];
};

struct vnet_port {
	int in_use;
	int is_uplink;
	int uplink;	/* guest: the uplink it may use (VNET_NO_UPLINK: none); uplink: its id */
	uint8_t mac[6]; /* guest: its only allowed source address */
	uint32_t ip;	/* guest: its only allowed IPv4 source (ARP and IP), 0 = not checked */
	/* guest ports */
	struct vnet_ring ring;
	unsigned service;
	int rx_dirty;	/* frames delivered (or ring errors) since the network thread looked */
	int asleep;	/* no window (ring.win is NULL): frames for it are held */
	int wake_asked; /* asleep: a frame came for it since it went to sleep */
	/* Held frames, oldest first (NULL: none): while it sleeps, and once awake those its RX
	 * ring had no room for yet (it is then on the backlog list). */
	struct vnet_held *held, *held_tail;
	unsigned nheld;
	size_t held_cost;  /* what its held frames cost: bytes with bookkeeping */
	int backlogged;	   /* awake, with held frames: on the backlog list */
	int blocked_on;	   /* its next TX frame waits for this sleeping port's room; -1: none */
	int unblock_asked; /* on the ready list: its TX ring may go on */
	/* Rate limits (guest ports; unlimited unless set): a frame it sends waits in its TX ring
	 * while tx_limit has no tokens for it, until tx_ready_at; a frame for it that rx_limit
	 * has no tokens for is dropped (rx_throttled), as for a full RX ring. */
	struct ratelimit tx_limit, rx_limit;
	uint64_t tx_ready_at; /* its TX waits for its limit until then; 0: it does not */
	/* uplink ports */
	vnet_uplink_send_fn send;
	void *send_ctx;
	struct vnet_port_counters count;
};

struct vnet_mac_entry {
	uint64_t mac; /* 48 bits; 0 = empty slot */
	uint32_t port;
	uint32_t is_static; /* a guest's own MAC: never replaced by learning */
};

struct vnet_switch {
	struct vnet_port *ports;
	unsigned nports; /* slots in use or free, below cap */
	unsigned cap;
	struct vnet_mac_entry *table;
	uint32_t table_mask;
	uint32_t table_used;
	unsigned *dirty; /* guest ports with rx_dirty set, in the order they got it */
	unsigned ndirty;
	unsigned *wakes; /* sleeping ports a frame came for, in the order it came, each once */
	unsigned nwakes;
	unsigned *backlog; /* awake guest ports with held frames, each once */
	unsigned nbacklog;
	unsigned *blocked; /* guest ports whose TX waits for a sleeping port, each once */
	unsigned nblocked;
	unsigned *ready; /* ports unblocked since the last vnet_switch_take_ready, each once */
	unsigned nready;
	size_t held_bytes;		   /* what every held frame costs (held_cost summed) */
	int uplink_port[VNET_UPLINKS_MAX]; /* by uplink id: its port, -1 if none */
	unsigned learned;		   /* table entries learned from uplinks */
	uint64_t flooded;		   /* frames sent to every reachable port */
	uint64_t arp_spared;	/* guest ports an ARP request skipped: it was for another address */
	uint64_t learn_refused; /* uplink frames claiming a guest's MAC */
	uint64_t (*clock)(void); /* monotonic ns for the rate limits: ratelimit_now, or a test's */
};

int vnet_switch_init(struct vnet_switch *sw);
void vnet_switch_free(struct vnet_switch *sw);

/* Adds a guest port over its mapped I/O window. It may send only from mac and, when ip is not
 * 0, only ARP and IPv4 with ip as the sender: no service can take another's address. Returns
 * the port number or -1 (out of memory, or its MAC is already some port's). */
int vnet_switch_add_guest(struct vnet_switch *sw, unsigned service, const uint8_t mac[6],
			  uint32_t ip, int uplink, uint8_t *win);
/* Gives guest port p its limits (NULL: none), full buckets from now. */
void vnet_switch_set_limits(struct vnet_switch *sw, unsigned p, const struct ratelimit_config *rx,
			    const struct ratelimit_config *tx);

/* Port p's counters, with its limits' figures filled in. */
struct vnet_port_counters vnet_switch_counters(const struct vnet_switch *sw, unsigned p);

/* Adds an uplink port; returns its port number or -1. */
int vnet_switch_add_uplink(struct vnet_switch *sw, int uplink, vnet_uplink_send_fn send, void *ctx);
/* Removes a port and every MAC that points at it, and frees what was held for it. */
void vnet_switch_remove(struct vnet_switch *sw, unsigned port);

/* Puts guest port p to sleep: the ring forgets its window (the caller unmaps it after) and
 * keeps its cursors and errors; the port keeps its MAC and counters, and leaves the dirty,
 * backlog and blocked lists (frames it still holds wait for its next wake, which is asked at
 * once). From now on unicast frames for it are held, and of the flooded frames only an ARP
 * request for its own IPv4 address (when it has one): a fleet must not wake for every
 * broadcast. The first frame for it (held, or dropped for room) puts it on the wake list.
 * Its TX ring must have been drained before: a sleeping port sends nothing. */
void vnet_switch_sleep(struct vnet_switch *sw, unsigned p);

/* Wakes sleeping port p over its window mapped again, and delivers what was held for it in
 * the order it came, as far as its RX ring has buffers: the rest stays held (the port is on
 * the backlog list) for vnet_switch_flush_backlog, and frames that come meanwhile queue behind
 * it. The senders whose TX waited for p go on the ready list. Returns how many were delivered. */
unsigned vnet_switch_wake(struct vnet_switch *sw, unsigned p, uint8_t *win);

/* Delivers what awake ports still hold into their RX rings, as far as they have buffers (a
 * port that has taken all leaves the backlog list). Returns how many ports still hold some. */
unsigned vnet_switch_flush_backlog(struct vnet_switch *sw);

/* Takes the list of guest ports whose TX waited for a sleeping port that has woken (or gone)
 * since the last call; returns how many were written to out (room for every port). Their TX
 * rings should be drained again. */
unsigned vnet_switch_take_ready(struct vnet_switch *sw, unsigned *out);

/* Takes the list of sleeping ports that a frame came for since the last call (each port is
 * listed once per sleep); returns how many were written to out (room for every port). */
unsigned vnet_switch_take_wakes(struct vnet_switch *sw, unsigned *out);

/* Forwards one frame that arrived on port src: unicast to its port, broadcast and multicast to
 * every reachable port, except that an ARP request skips the guests whose address the switch
 * knows and is not its target. Returns the TX status for the sender: OK when delivered to at
 * least one port, else DN_NIC_DROPPED. */
enum dn_nic_status vnet_switch_forward(struct vnet_switch *sw, unsigned src,
				       const struct vnet_frame *f);

/* Sends from guest port p's TX ring, taking at most budget descriptors, good or bad. Returns
 * how many were finished; *more is set when some are still waiting. A frame its TX limit has
 * no tokens for is left in the ring (not finished, *more clear), and tx_ready_at says when
 * to drain it again. A sleeping port, or one
 * whose ring is broken (vnet_ring_broken), sends nothing. A unicast frame for a sleeping guest
 * port whose hold has no room for it is left in the ring (not finished, *more clear) and p waits
 * on the blocked list until that port wakes or goes. */
unsigned vnet_switch_drain_tx(struct vnet_switch *sw, unsigned p, unsigned budget, int *more);

/* Takes the list of guest ports that received frames or made RX ring errors since the last
 * call (rx_dirty is cleared); returns how many were written to out (room for every port). */
unsigned vnet_switch_take_dirty(struct vnet_switch *sw, unsigned *out);

/* The port a MAC is known at (a guest's, or learned behind any uplink), or -1. */
int vnet_switch_lookup(const struct vnet_switch *sw, const uint8_t mac[6]);

#endif
