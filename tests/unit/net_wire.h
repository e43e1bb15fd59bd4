/* Test harness for the network stack: two stacks joined by an in-memory wire with a fake clock,
 * optional latency, loss, duplication and reordering from a seeded PRNG, and raw frame
 * builders with an independent checksum. */
#ifndef NET_WIRE_H
#define NET_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define WIRE_QLEN 1024
#define WIRE_IP_A 0x0a000001u /* 10.0.0.1 */
#define WIRE_IP_B 0x0a000002u /* 10.0.0.2 */

struct wire;

struct wire_frame {
	uint64_t at; /* delivery time */
	uint16_t len;
	uint8_t data[NET_FRAME_MAX];
};

struct wire_queue {
	struct wire_frame f[WIRE_QLEN];
	unsigned head, count;
};

struct wire_end {
	struct wire *w;
	int side; /* 0 = a, 1 = b */
};

/* tap(w, from_side, frame, len, arg): return 0 to drop the frame on the wire. */
typedef int (*wire_tap_fn)(struct wire *w, int from, const uint8_t *frame, size_t len, void *arg);

struct wire {
	uint64_t now;
	struct net_stack *st[2];
	struct wire_queue q[2]; /* q[i]: frames travelling to st[i] */
	struct wire_end end[2];
	uint64_t rng;
	unsigned loss_pm, dup_pm, reorder_pm; /* per mille */
	uint64_t latency_ns;
	wire_tap_fn tap;
	void *tap_arg;
	uint64_t sent, lost, overflow;
};

/* A wire with stacks a (10.0.0.1/24) and b (10.0.0.2/24), time starting at 1 s. */
struct wire *wire_new(uint64_t seed);
void wire_free(struct wire *w);
uint64_t wire_rand(struct wire *w);

/* Delivers frames and runs timers until done(arg) is true with the wire idle, or until
 * limit_ns of fake time have passed, or nothing is left to do. Returns done(arg). */
int wire_run(struct wire *w, int (*done)(void *arg), void *arg, uint64_t limit_ns);
/* Runs until the wire is idle and no timer is due before now + ns. */
void wire_settle(struct wire *w, uint64_t ns);

/* The MAC of side 0 or 1. */
const uint8_t *wire_mac(int side);

/* Reference Internet checksum, 16 bits at a time (independent of the stack's). */
uint16_t wire_csum(const uint8_t *p, size_t len, uint32_t sum);

/* Raw frames from side `from` to side `to`. Return the frame length. */
size_t wire_ip_frame(uint8_t *buf, int from, int to, uint8_t proto, const void *payload,
		     size_t len);
size_t wire_udp_frame(uint8_t *buf, int from, int to, uint16_t sport, uint16_t dport,
		      const void *data, size_t len);
size_t wire_tcp_frame(uint8_t *buf, int from, int to, uint16_t sport, uint16_t dport, uint32_t seq,
		      uint32_t ack, uint8_t flags, uint16_t wnd, const void *data, size_t len);
/* Recomputes the IP header checksum and (if the frame is well-formed enough) the UDP/TCP/ICMP
 * one, in place. */
void wire_fix_checksums(uint8_t *frame, size_t len);

#endif
