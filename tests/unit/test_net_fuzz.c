/* Hostile input: random and mutated frames must not crash, hang or corrupt the stack, which
 * must still answer a ping and accept a connection afterwards (run under ASan/UBSan). */
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "net_wire.h"
#include "unit.h"
#include "wire_echo.h"

#define SEC 1000000000ull
#define CORPUS 128

struct fuzz {
	struct wire_echo echo; /* b's echo service, a's connection to it */
	size_t corpus_len[CORPUS];
	uint8_t corpus[CORPUS][NET_FRAME_MAX];
	int ncorpus;
};

/* Records every frame on the wire as a seed for mutation. */
static int record(struct wire *w, int from, const uint8_t *f, size_t len, void *arg)
{
	(void)w, (void)from;
	struct fuzz *z = arg;
	if (z->ncorpus < CORPUS) {
		memcpy(z->corpus[z->ncorpus], f, len);
		z->corpus_len[z->ncorpus++] = len;
	}
	return 1;
}

static void on_udp_sink(struct net_udp *s, uint32_t ip, uint16_t port, const void *d, size_t len,
			void *arg)
{
	(void)s, (void)ip, (void)port, (void)d, (void)len, (void)arg;
}

/* Sets up a connection a -> b:80 with some traffic, recording frames. */
static struct fuzz *fuzz_setup(uint64_t seed)
{
	struct fuzz *z = calloc(1, sizeof(*z));
	struct wire *w = z->echo.w = wire_new(seed);
	w->tap = record;
	w->tap_arg = z;
	wire_echo_serve(&z->echo);
	ck_assert_int_eq(net_ping(w->st[0], WIRE_IP_B, 1, 1, "ping", 4), 0);
	struct net_udp *u = net_udp_bind(w->st[0], 5000, on_udp_sink, z);
	ck_assert_int_eq(net_udp_sendto(u, WIRE_IP_B, 7, "udp!", 4), 0);
	wire_echo_connect(&z->echo);
	static uint8_t data[5000];
	net_tcp_write(z->echo.client, data, sizeof(data));
	wire_settle(w, SEC);
	w->tap = NULL;
	ck_assert_int_ge(z->ncorpus, 10);
	return z;
}

/* Up to most of time passes at once (timers fire late), then the wire settles; both stacks
 * keep their invariants. */
static void time_jumps(struct wire *w, uint64_t most)
{
	w->now += wire_rand(w) % most;
	wire_settle(w, SEC / 100);
	wire_echo_check_invariants(w->st[0]);
	wire_echo_check_invariants(w->st[1]);
}

/* After the storm: b must still serve (wire_echo_check_alive); then z is freed. */
static void fuzz_finish(struct fuzz *z)
{
	wire_echo_check_alive(&z->echo);
	wire_free(z->echo.w);
	free(z);
}

static void mutate(struct wire *w, uint8_t *f, size_t *len)
{
	size_t n = *len;
	switch (wire_rand(w) % 6) {
	case 0: /* flip bytes */
	case 1:
		for (int k = 1 + (int)(wire_rand(w) % 4); k > 0; k--)
			f[wire_rand(w) % n] ^= (uint8_t)(1 + wire_rand(w) % 255);
		break;
	case 2: /* truncate */ n = wire_rand(w) % (n + 1); break;
	case 3: /* extend with junk */
		for (size_t add = wire_rand(w) % 600; add > 0 && n < 2000; add--)
			f[n++] = (uint8_t)wire_rand(w);
		break;
	case 4: { /* interesting values in the headers */
		static const uint8_t vals[] = {0, 1, 0x7f, 0x80, 0xfe, 0xff, 5, 0x45, 0x50, 0xf0};
		size_t pos = wire_rand(w) % (n < 80 ? n : 80);
		f[pos] = vals[wire_rand(w) % sizeof(vals)];
		break;
	}
	default: /* random bytes after the Ethernet header */
		n = 14 + wire_rand(w) % 1600;
		for (size_t i = 14; i < n; i++)
			f[i] = (uint8_t)wire_rand(w);
		f[12] = wire_rand(w) & 1 ? 0x08 : 0x86;
		f[13] = wire_rand(w) & 1 ? 0x00 : 0x06;
		break;
	}
	*len = n;
}

START_TEST(test_fuzz_mutated_frames)
{
	struct fuzz *z = fuzz_setup(100 + (uint64_t)_i);
	struct wire *w = z->echo.w;
	w->loss_pm = 20;
	w->reorder_pm = 20;
	w->dup_pm = 20;
	static uint8_t f[2048];
	for (int iter = 0; iter < 8000; iter++) {
		int k = (int)(wire_rand(w) % (uint64_t)z->ncorpus);
		size_t len = z->corpus_len[k];
		memcpy(f, z->corpus[k], len);
		mutate(w, f, &len);
		if (wire_rand(w) % 4)
			wire_fix_checksums(f, len); /* get past the checksums to the parsers */
		int to = wire_rand(w) % 8 ? 1 : 0;
		net_input(w->st[to], f, len);
		wire_echo_check_invariants(w->st[to]);
		if (iter % 64 == 0)
			time_jumps(w, SEC / 4);
	}
	/* The mutations got past each check to the layers behind it. */
	const struct net_stats *b = net_stats(w->st[1]);
	ck_assert_uint_gt(b->drop_truncated, 100);
	ck_assert_uint_gt(b->drop_bad_header, 100);
	ck_assert_uint_gt(b->drop_bad_checksum, 100);
	ck_assert_uint_gt(b->drop_fragment, 10);
	ck_assert_uint_gt(b->drop_unknown_proto, 100);
	ck_assert_uint_gt(b->tcp_rx, 500);
	ck_assert_uint_gt(b->udp_rx, 50);
	ck_assert_uint_gt(b->icmp_echo_replies_sent, 50);
	ck_assert_uint_gt(b->arp_replies_sent, 50);
	fuzz_finish(z);
}
END_TEST

/* Well-formed segments with random fields on the live connection: the state machine's turn. */
START_TEST(test_fuzz_tcp_segments)
{
	struct fuzz *z = fuzz_setup(200);
	struct wire *w = z->echo.w;
	struct net_tcp *s = NULL;
	for (int i = 0; i < NET_TCP_CONNS; i++)
		if (w->st[1]->tcp[i].state == NET_TCPS_ESTABLISHED)
			s = &w->st[1]->tcp[i];
	ck_assert_ptr_nonnull(s);
	uint16_t cport = z->echo.client->lport;
	uint32_t seq0 = s->rcv_nxt, ack0 = s->snd_nxt;
	static uint8_t f[2048], data[1460];
	for (int iter = 0; iter < 12000; iter++) {
		uint32_t r = (uint32_t)wire_rand(w);
		/* Mostly near the real sequence numbers, sometimes anywhere. */
		uint32_t seq = r & 1 ? seq0 + (uint32_t)(wire_rand(w) % 70000) - 35000
				     : (uint32_t)wire_rand(w);
		uint32_t ack = r & 2 ? ack0 + (uint32_t)(wire_rand(w) % 70000) - 35000
				     : (uint32_t)wire_rand(w);
		uint8_t flags = (uint8_t)(wire_rand(w) & 0x3f);
		if (r & 4)
			flags &= (uint8_t) ~(TCP_RST | TCP_SYN);
		size_t dlen = r & 8 ? wire_rand(w) % sizeof(data) : 0;
		for (size_t i = 0; i < dlen; i += 7)
			data[i] = (uint8_t)wire_rand(w);
		uint16_t sport = r & 16 ? cport : (uint16_t)wire_rand(w);
		size_t len = wire_tcp_frame(f, 0, 1, sport, r & 32 ? 80 : (uint16_t)wire_rand(w),
					    seq, ack, flags, (uint16_t)wire_rand(w), data, dlen);
		net_input(w->st[1], f, len);
		wire_echo_check_invariants(w->st[1]);
		if (iter % 32 == 0)
			time_jumps(w, SEC / 2);
	}
	fuzz_finish(z);
}
END_TEST

START_TEST(test_fuzz_random_frames)
{
	struct wire *w = wire_new(300);
	static uint8_t f[4096 + 8];
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = wire_rand(w) % 4096;
		for (size_t i = 0; i < len; i += 8) {
			uint64_t r = wire_rand(w);
			memcpy(f + i, &r, 8);
		}
		if (len >= 14 && wire_rand(w) % 2) {
			memcpy(f, wire_mac(1), 6);
			f[12] = wire_rand(w) & 1 ? 0x08 : 0x86;
			f[13] = wire_rand(w) & 1 ? 0x00 : 0x06;
			if (len >= 34 && wire_rand(w) % 2) {
				f[14] = 0x45;
				memcpy(f + 30, (uint8_t[]){10, 0, 0, 2}, 4);
				wire_fix_checksums(f, len);
			}
		}
		net_input(w->st[1], f, len);
		wire_echo_check_invariants(w->st[1]);
	}
	net_input(w->st[1], NULL, 0);
	ck_assert_uint_eq(net_stats(w->st[1])->rx_frames, 20001);
	struct wire_echo e = {.w = w};
	wire_echo_listen(&e);
	wire_echo_check_alive(&e);
	wire_free(w);
}
END_TEST

Suite *net_fuzz_suite(void)
{
	Suite *s = suite_create("net_fuzz");
	TCase *tc = tcase_create("fuzz");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_fuzz_mutated_frames, 0, 3);
	tcase_add_test(tc, test_fuzz_tcp_segments);
	tcase_add_test(tc, test_fuzz_random_frames);
	suite_add_tcase(s, tc);
	return s;
}
