/* The guest TCP/IP input path: two guest stacks on an in-memory wire with a fake clock
 * (tests/unit/net_wire.c), a connection a -> b:80 open and b echoing TCP and UDP
 * (tests/unit/wire_echo.c, shared with the net_fuzz unit suite). The input
 * is a script of frames sent to b as if from a, each after a flags byte and a length:
 *   flags bit 0: address the frame a -> b (MACs and IPv4 addresses), bit 1: fix the IPv4,
 *   TCP, UDP and ICMP checksums, bit 2: make the TCP sequence and acknowledgement numbers
 *   relative to the open connection (so that segments land in its window), bit 3: give a
 *   TCP segment the connection's ports, bits 4-7: let
 *   that many 100 ms pass after it (timers, retransmissions, the peer's answers).
 * After the script, b's connections must keep the stack's invariants, and after ten minutes
 * b must still answer a ping and accept, and echo on, a new connection. */
#include <string.h>

#include "fuzz.h"
#include "net_internal.h"
#include "net_wire.h"
#include "wire_echo.h"

#define MS 1000000ull

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Addresses the frame a -> b, and offsets a TCP segment's numbers by the connection's. */
static void shape(uint8_t *f, size_t len, unsigned flags, const struct net_tcp *client)
{
	if ((flags & 1) && len >= 14) {
		memcpy(f, wire_mac(1), 6);
		memcpy(f + 6, wire_mac(0), 6);
		if (len >= 34 && f[12] == 0x08 && f[13] == 0x00) {
			put32(f + 26, WIRE_IP_A);
			put32(f + 30, WIRE_IP_B);
		}
	}
	size_t ihl = len >= 34 ? (size_t)(f[14] & 15) * 4 : 0;
	if ((flags & 12) && client && ihl >= 20 && f[23] == 6 && len >= 14 + ihl + 20) {
		uint8_t *t = f + 14 + ihl;
		if (flags & 8) {
			uint16_t sport = client->lport;
			t[0] = (uint8_t)(sport >> 8), t[1] = (uint8_t)sport, t[2] = 0, t[3] = 80;
		}
		if (flags & 4) {
			put32(t + 4, get32(t + 4) + client->snd_nxt);
			put32(t + 8, get32(t + 8) + client->rcv_nxt);
		}
	}
	if (flags & 2)
		wire_fix_checksums(f, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_echo e = {.w = wire_new(1)};
	struct wire *w = e.w;
	wire_echo_serve(&e);
	wire_echo_connect(&e);

	struct fuzz_in in = {data, size};
	static uint8_t frame[NET_FRAME_MAX + 512];
	while (in.n) {
		unsigned flags = fuzz_u8(&in);
		size_t want = fuzz_u16(&in) % sizeof(frame), len;
		memcpy(frame, fuzz_bytes(&in, want, &len), len);
		/* The client's numbers as they are now; it is a connection slot, never freed. */
		shape(frame, len, flags, e.client);
		net_input(w->st[1], frame, len);
		wire_settle(w, (flags >> 4) * 100 * MS);
		wire_echo_check_invariants(w->st[1]);
	}

	wire_echo_check_alive(&e);
	wire_free(w);
	return 0;
}
