/* The guest TCP/IP input path: two guest stacks on an in-memory wire with a fake clock
 * (tests/unit/net_wire.c), a connection a -> b:80 open and b echoing TCP and UDP. The input
 * is a script of frames sent to b as if from a, each after a flags byte and a length:
 *   flags bit 0: address the frame a -> b (MACs and IPv4 addresses), bit 1: fix the IPv4,
 *   TCP, UDP and ICMP checksums, bit 2: make the TCP sequence and acknowledgement numbers
 *   relative to the open connection (so that segments land in its window), bit 3: give a
 *   TCP segment the connection's ports, bits 4-7: let
 *   that many 100 ms pass after it (timers, retransmissions, the peer's answers).
 * After the script, b's connections must keep the stack's invariants, and after ten minutes
 * b must still answer a ping and accept, and echo on, a new connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "net_internal.h"
#include "net_wire.h"

#define MS 1000000ull
#define SEC 1000000000ull

struct state {
	struct net_tcp *client;
	int connected, accepted, pings;
};

static void on_server(struct net_tcp *c, unsigned ev, void *arg)
{
	(void)arg;
	if (ev & NET_TCP_CLOSED) {
		net_tcp_close(c);
		return;
	}
	uint8_t buf[2048];
	size_t n;
	while ((n = net_tcp_read(c, buf, sizeof(buf))) > 0)
		net_tcp_write(c, buf, n);
	if (ev & NET_TCP_PEER_CLOSED)
		net_tcp_close(c);
}

static void on_accept(struct net_tcp *l, struct net_tcp *c, void *arg)
{
	(void)l;
	((struct state *)arg)->accepted++;
	net_tcp_set_callbacks(c, on_server, arg);
}

static void on_client(struct net_tcp *c, unsigned ev, void *arg)
{
	struct state *s = arg;
	if (ev & NET_TCP_CONNECTED)
		s->connected = 1;
	uint8_t buf[2048];
	while (net_tcp_read(c, buf, sizeof(buf)) > 0)
		;
}

static void on_udp(struct net_udp *u, uint32_t ip, uint16_t port, const void *d, size_t len,
		   void *arg)
{
	(void)arg;
	net_udp_sendto(u, ip, port, d, len);
}

static void on_echo(uint32_t src, uint16_t id, uint16_t seq, const void *d, size_t len, void *arg)
{
	(void)src, (void)id, (void)seq, (void)d, (void)len;
	((struct state *)arg)->pings++;
}

static int connected(void *arg)
{
	return ((struct state *)arg)->connected;
}

static int pinged(void *arg)
{
	return ((struct state *)arg)->pings > 0;
}

static void require(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_guest_tcpip: %s\n", what);
		abort();
	}
}

static void check_invariants(const struct net_stack *st)
{
	for (int i = 0; i < NET_TCP_CONNS; i++) {
		const struct net_tcp *c = &st->tcp[i];
		if (c->state == NET_TCPS_FREE)
			continue;
		require(c->state <= NET_TCPS_LAST_ACK, "state");
		require(c->rcv_len <= NET_TCP_RCVBUF && c->snd_len <= NET_TCP_SNDBUF, "buffers");
		require(c->rcv_head < NET_TCP_RCVBUF && c->snd_head < NET_TCP_SNDBUF, "heads");
		require(c->backlog <= NET_TCP_BACKLOG, "backlog");
		if (c->state >= NET_TCPS_ESTABLISHED) {
			require(seq_leq(c->snd_una, c->snd_nxt) && seq_leq(c->snd_nxt, c->snd_max),
				"send sequence");
			require(c->snd_max - c->snd_una <= c->snd_len + 1, "unacknowledged");
			require(c->mss >= 64 && c->mss <= NET_TCP_MSS, "mss");
		}
	}
}

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
	struct state s = {0};
	struct wire *w = wire_new(1);
	require(net_tcp_listen(w->st[1], 80, on_accept, &s) != NULL, "listen");
	require(net_udp_bind(w->st[1], 7, on_udp, &s) != NULL, "udp bind");
	net_on_echo_reply(w->st[0], on_echo, &s);
	s.client = net_tcp_connect(w->st[0], WIRE_IP_B, 80);
	net_tcp_set_callbacks(s.client, on_client, &s);
	require(wire_run(w, connected, &s, 10 * SEC), "first connection");

	struct fuzz_in in = {data, size};
	static uint8_t frame[NET_FRAME_MAX + 512];
	while (in.n) {
		unsigned flags = fuzz_u8(&in);
		size_t want = fuzz_u16(&in) % sizeof(frame), len;
		memcpy(frame, fuzz_bytes(&in, want, &len), len);
		/* The client's numbers as they are now; it is a connection slot, never freed. */
		shape(frame, len, flags, s.client);
		net_input(w->st[1], frame, len);
		wire_settle(w, (flags >> 4) * 100 * MS);
		check_invariants(w->st[1]);
	}

	wire_settle(w, 600 * SEC);
	check_invariants(w->st[0]);
	check_invariants(w->st[1]);
	require(net_ping(w->st[0], WIRE_IP_B, 9, 9, "alive?", 6) == 0, "ping sent");
	require(wire_run(w, pinged, &s, 10 * SEC), "b answers a ping");
	s.connected = 0;
	int accepted = s.accepted;
	s.client = net_tcp_connect(w->st[0], WIRE_IP_B, 80);
	require(s.client != NULL, "connect");
	net_tcp_set_callbacks(s.client, on_client, &s);
	require(wire_run(w, connected, &s, 10 * SEC), "b accepts a new connection");
	require(s.accepted == accepted + 1, "accepted once");
	require(net_tcp_write(s.client, "still here", 10) == 10, "write");
	wire_settle(w, SEC);
	require(s.client->snd_len == 0, "echo acknowledged");
	wire_free(w);
	return 0;
}
