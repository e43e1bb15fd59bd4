/* Network stack below TCP: checksum, ARP, IPv4 validation, ICMP echo, UDP. */
#include <string.h>

#include "net_internal.h"
#include "net_wire.h"
#include "unit.h"

START_TEST(test_csum_matches_reference)
{
	struct wire *w = wire_new(1);
	uint8_t buf[2000];
	for (int round = 0; round < 2000; round++) {
		size_t len = wire_rand(w) % sizeof(buf), off = wire_rand(w) % 8;
		if (off + len > sizeof(buf))
			len = sizeof(buf) - off;
		for (size_t i = 0; i < off + len; i++)
			buf[i] = (uint8_t)wire_rand(w);
		uint16_t ours = net_csum_fold(net_csum_add(0, buf + off, len));
		/* Ours is in memory order; the reference is a host-order value. */
		uint8_t b[2];
		memcpy(b, &ours, 2);
		ck_assert_uint_eq((unsigned)(b[0] << 8 | b[1]), wire_csum(buf + off, len, 0));
	}
	/* A correct packet sums to zero. */
	uint8_t pkt[40];
	memset(pkt, 0xab, sizeof(pkt));
	uint16_t s = net_csum_fold(net_csum_add(0, pkt, sizeof(pkt)));
	pkt[10] = pkt[11] = 0;
	s = net_csum_fold(net_csum_add(0, pkt, sizeof(pkt)));
	memcpy(pkt + 10, &s, 2);
	ck_assert_uint_eq(net_csum_fold(net_csum_add(0, pkt, sizeof(pkt))), 0);
	wire_free(w);
}
END_TEST

struct echo_log {
	int replies;
	uint32_t src;
	uint16_t id, seq;
	size_t len;
	uint8_t data[1500];
};

static void on_echo(uint32_t src, uint16_t id, uint16_t seq, const void *data, size_t len,
		    void *arg)
{
	struct echo_log *log = arg;
	log->replies++;
	log->src = src;
	log->id = id;
	log->seq = seq;
	log->len = len;
	memcpy(log->data, data, len < sizeof(log->data) ? len : sizeof(log->data));
}

static int have_reply(void *arg)
{
	return ((struct echo_log *)arg)->replies > 0;
}

START_TEST(test_ping_and_arp)
{
	struct wire *w = wire_new(2);
	struct echo_log log = {0};
	net_on_echo_reply(w->st[0], on_echo, &log);
	const char msg[] = "are you there?";
	ck_assert_int_eq(net_ping(w->st[0], WIRE_IP_B, 77, 3, msg, sizeof(msg)), 0);
	ck_assert(wire_run(w, have_reply, &log, 1000000000ull));
	ck_assert_int_eq(log.replies, 1);
	ck_assert_uint_eq(log.src, WIRE_IP_B);
	ck_assert_uint_eq(log.id, 77);
	ck_assert_uint_eq(log.seq, 3);
	ck_assert_uint_eq(log.len, sizeof(msg));
	ck_assert_mem_eq(log.data, msg, sizeof(msg));
	const struct net_stats *a = net_stats(w->st[0]), *b = net_stats(w->st[1]);
	ck_assert_uint_eq(a->arp_requests_sent, 1);
	ck_assert_uint_eq(b->arp_replies_sent, 1);
	ck_assert_uint_eq(b->arp_requests_sent, 0); /* b learnt a from the request */
	ck_assert_uint_eq(b->icmp_echo_replies_sent, 1);

	/* Cached: no new request. */
	log.replies = 0;
	ck_assert_int_eq(net_ping(w->st[0], WIRE_IP_B, 77, 4, msg, 1), 0);
	ck_assert(wire_run(w, have_reply, &log, 1000000000ull));
	ck_assert_uint_eq(a->arp_requests_sent, 1);
	ck_assert_uint_eq(log.seq, 4);

	/* Expired after NET_ARP_TTL_NS: asks again. */
	w->now += NET_ARP_TTL_NS + 1;
	net_poll(w->st[0]);
	log.replies = 0;
	ck_assert_int_eq(net_ping(w->st[0], WIRE_IP_B, 77, 5, msg, 1), 0);
	ck_assert(wire_run(w, have_reply, &log, 1000000000ull));
	ck_assert_uint_eq(a->arp_requests_sent, 2);

	/* A maximum-size echo. */
	uint8_t big[NET_MTU - 28];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	log.replies = 0;
	ck_assert_int_eq(net_ping(w->st[0], WIRE_IP_B, 1, 1, big, sizeof(big)), 0);
	ck_assert(wire_run(w, have_reply, &log, 1000000000ull));
	ck_assert_uint_eq(log.len, sizeof(big));
	ck_assert_mem_eq(log.data, big, sizeof(big));
	ck_assert_int_eq(net_ping(w->st[0], WIRE_IP_B, 1, 1, big, sizeof(big) + 1), -1);
	wire_free(w);
}
END_TEST

START_TEST(test_arp_retry_and_give_up)
{
	struct wire *w = wire_new(3);
	const struct net_stats *a = net_stats(w->st[0]);
	uint32_t nobody = 0x0a000063; /* 10.0.0.99 */
	for (int i = 0; i < NET_ARP_QUEUE; i++)
		ck_assert_int_eq(net_ping(w->st[0], nobody, 1, (uint16_t)i, "x", 1), 0);
	/* The queue is full: the next frame is dropped and counted at once. */
	ck_assert_int_eq(net_ping(w->st[0], nobody, 1, 99, "x", 1), -1);
	ck_assert_uint_eq(a->drop_arp_unresolved, 1);
	ck_assert_uint_eq(a->arp_requests_sent, 1);
	uint64_t t0 = w->now;
	ck_assert_uint_eq(net_next_deadline(w->st[0]), t0 + NET_ARP_RETRY_NS);
	wire_settle(w, 10ull * NET_ARP_RETRY_NS);
	ck_assert_uint_eq(a->arp_requests_sent, NET_ARP_TRIES);
	ck_assert_uint_eq(a->drop_arp_unresolved, 1 + NET_ARP_QUEUE);
	ck_assert_uint_eq(net_next_deadline(w->st[0]), UINT64_MAX);
	/* The queue is usable again. */
	ck_assert_int_eq(net_ping(w->st[0], nobody, 1, 100, "x", 1), 0);
	wire_free(w);
}
END_TEST

START_TEST(test_routing)
{
	struct wire *w = wire_new(4);
	const struct net_stats *a = net_stats(w->st[0]);
	/* Off-link without a gateway. */
	ck_assert_int_eq(net_ping(w->st[0], 0x08080808, 1, 1, "x", 1), -1);
	ck_assert_uint_eq(a->drop_no_route, 1);
	ck_assert_ptr_null(net_tcp_connect(w->st[0], 0x08080808, 80));
	ck_assert_ptr_null(net_tcp_connect(w->st[0], 0x0a0000ff, 80)); /* subnet broadcast */
	ck_assert_ptr_null(net_tcp_connect(w->st[0], 0xffffffff, 80));
	ck_assert_ptr_null(net_tcp_connect(w->st[0], WIRE_IP_A, 80)); /* ourselves */
	ck_assert_ptr_null(net_tcp_connect(w->st[0], WIRE_IP_B, 0));
	ck_assert_uint_eq(net_tcp_active(w->st[0]), 0);
	/* With one, the gateway's address is resolved. */
	w->st[0]->cfg.gateway = WIRE_IP_B;
	struct echo_log log = {0};
	net_on_echo_reply(w->st[0], on_echo, &log);
	ck_assert_int_eq(net_ping(w->st[0], 0x08080808, 1, 1, "x", 1), 0);
	wire_settle(w, 1000000000ull);
	ck_assert_uint_eq(a->arp_requests_sent, 1);
	/* b got a frame for 8.8.8.8 at its MAC: not for it. */
	ck_assert_uint_eq(net_stats(w->st[1])->drop_not_for_us, 1);
	ck_assert_int_eq(log.replies, 0);
	uint32_t ip;
	ck_assert_int_eq(net_parse_ip("10.0.0.2", &ip), 0);
	ck_assert_uint_eq(ip, WIRE_IP_B);
	ck_assert_int_eq(net_parse_ip("10.0.0", &ip), -1);
	ck_assert_int_eq(net_parse_ip("10.0.0.256", &ip), -1);
	ck_assert_int_eq(net_parse_ip("10.0.0.1x", &ip), -1);
	wire_free(w);
}
END_TEST

struct udp_log {
	int count;
	uint32_t ip;
	uint16_t port;
	size_t len;
	uint8_t data[1500];
	int echo;
};

static void on_udp(struct net_udp *s, uint32_t ip, uint16_t port, const void *data, size_t len,
		   void *arg)
{
	struct udp_log *log = arg;
	log->count++;
	log->ip = ip;
	log->port = port;
	log->len = len;
	memcpy(log->data, data, len < sizeof(log->data) ? len : sizeof(log->data));
	if (log->echo)
		net_udp_sendto(s, ip, port, data, len);
}

static int got_udp(void *arg)
{
	return ((struct udp_log *)arg)->count > 0;
}

START_TEST(test_udp_echo)
{
	struct wire *w = wire_new(5);
	struct udp_log server = {.echo = 1}, client = {0};
	struct net_udp *s = net_udp_bind(w->st[1], 7, on_udp, &server);
	struct net_udp *c = net_udp_bind(w->st[0], 5000, on_udp, &client);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_null(net_udp_bind(w->st[1], 7, on_udp, &server));
	ck_assert_int_eq(net_udp_sendto(c, WIRE_IP_B, 7, "hello, echo", 11), 0);
	ck_assert(wire_run(w, got_udp, &client, 1000000000ull));
	ck_assert_int_eq(server.count, 1);
	ck_assert_uint_eq(server.ip, WIRE_IP_A);
	ck_assert_uint_eq(server.port, 5000);
	ck_assert_int_eq(client.count, 1);
	ck_assert_uint_eq(client.port, 7);
	ck_assert_uint_eq(client.len, 11);
	ck_assert_mem_eq(client.data, "hello, echo", 11);
	/* Empty and maximal datagrams. */
	client.count = 0;
	ck_assert_int_eq(net_udp_sendto(c, WIRE_IP_B, 7, "", 0), 0);
	ck_assert(wire_run(w, got_udp, &client, 1000000000ull));
	ck_assert_uint_eq(client.len, 0);
	uint8_t big[1472];
	memset(big, 0x5a, sizeof(big));
	client.count = 0;
	ck_assert_int_eq(net_udp_sendto(c, WIRE_IP_B, 7, big, sizeof(big)), 0);
	ck_assert(wire_run(w, got_udp, &client, 1000000000ull));
	ck_assert_uint_eq(client.len, sizeof(big));
	ck_assert_int_eq(net_udp_sendto(c, WIRE_IP_B, 7, big, sizeof(big) + 1), -1);
	/* An unbound port. */
	ck_assert_int_eq(net_udp_sendto(c, WIRE_IP_B, 9, "x", 1), 0);
	wire_settle(w, 1000000000ull);
	ck_assert_uint_eq(net_stats(w->st[1])->drop_no_socket, 1);
	net_udp_close(s);
	ck_assert_int_eq(net_udp_sendto(c, WIRE_IP_B, 7, "x", 1), 0);
	wire_settle(w, 1000000000ull);
	ck_assert_uint_eq(net_stats(w->st[1])->drop_no_socket, 2);
	ck_assert_ptr_nonnull(net_udp_bind(w->st[1], 7, on_udp, &server));
	wire_free(w);
}
END_TEST

/* A frame to b's UDP port 7 and what happens to it. */
static void expect_rejected(struct wire *w, uint8_t *f, size_t len, const uint64_t *counter,
			    struct udp_log *log)
{
	uint64_t before = *counter;
	int count = log->count;
	net_input(w->st[1], f, len);
	ck_assert_uint_eq(*counter, before + 1);
	ck_assert_int_eq(log->count, count);
}

START_TEST(test_ipv4_rejections)
{
	struct wire *w = wire_new(6);
	struct udp_log log = {0};
	ck_assert_ptr_nonnull(net_udp_bind(w->st[1], 7, on_udp, &log));
	const struct net_stats *b = net_stats(w->st[1]);
	uint8_t good[128], f[128];
	size_t len = wire_udp_frame(good, 0, 1, 1000, 7, "payload!", 8);
	net_input(w->st[1], good, len);
	ck_assert_int_eq(log.count, 1);
	ck_assert_mem_eq(log.data, "payload!", 8);

	memcpy(f, good, len); /* IP header checksum */
	f[14 + 10] ^= 0x40;
	expect_rejected(w, f, len, &b->drop_bad_checksum, &log);
	memcpy(f, good, len); /* IHL 4 */
	f[14] = 0x44;
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_bad_header, &log);
	memcpy(f, good, len); /* version 6 */
	f[14] = 0x65;
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_bad_header, &log);
	memcpy(f, good, len); /* total length below the header */
	f[14 + 2] = 0;
	f[14 + 3] = 19;
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_bad_header, &log);
	memcpy(f, good, len); /* total length beyond the frame */
	f[14 + 3] = 200;
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_truncated, &log);
	expect_rejected(w, good, 14 + 19, &b->drop_truncated, &log); /* cut in the header */
	expect_rejected(w, good, 14 + 30, &b->drop_truncated, &log); /* cut in the datagram */
	expect_rejected(w, good, 10, &b->drop_truncated, &log);	     /* no Ethernet header */
	memcpy(f, good, len);					     /* more fragments */
	f[14 + 6] = 0x20;
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_fragment, &log);
	memcpy(f, good, len); /* a later fragment */
	f[14 + 6] = 0x00;
	f[14 + 7] = 0x10;
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_fragment, &log);
	memcpy(f, good, len); /* someone else's address */
	f[14 + 19] = 9;
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_not_for_us, &log);
	memcpy(f, good, len); /* someone else's MAC */
	f[5] = 9;
	expect_rejected(w, f, len, &b->drop_not_for_us, &log);
	memcpy(f, good, len); /* a broadcast source */
	memset(f + 14 + 12, 0xff, 4);
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_not_for_us, &log);
	memcpy(f, good, len); /* unknown protocol */
	f[14 + 9] = 99;
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_unknown_proto, &log);
	memcpy(f, good, len); /* unknown ethertype */
	f[12] = 0x86;
	f[13] = 0xdd;
	expect_rejected(w, f, len, &b->drop_unknown_proto, &log);
	memcpy(f, good, len); /* UDP checksum */
	f[14 + 20 + 8] ^= 1;
	expect_rejected(w, f, len, &b->drop_bad_checksum, &log);
	memcpy(f, good, len); /* UDP length beyond the IP payload */
	f[14 + 20 + 5] = 40;
	wire_fix_checksums(f, len);
	expect_rejected(w, f, len, &b->drop_truncated, &log);

	/* Still fine: padding after the datagram is ignored, a zero UDP checksum is "none", and
	 * a subnet broadcast is ours. */
	memcpy(f, good, len);
	f[14 + 20 + 6] = f[14 + 20 + 7] = 0;
	net_input(w->st[1], f, len);
	ck_assert_int_eq(log.count, 2);
	memcpy(f, good, len);
	memset(f, 0xff, 6);
	f[14 + 19] = 255;
	wire_fix_checksums(f, len);
	net_input(w->st[1], f, len);
	ck_assert_int_eq(log.count, 3);
	wire_free(w);
}
END_TEST

START_TEST(test_arp_rejections)
{
	struct wire *w = wire_new(7);
	const struct net_stats *b = net_stats(w->st[1]);
	uint8_t f[60] = {0};
	memset(f, 0xff, 6);
	memcpy(f + 6, wire_mac(0), 6);
	f[12] = 0x08;
	f[13] = 0x06;
	uint8_t *a = f + 14;
	a[1] = 1;
	a[2] = 8;
	a[4] = 6;
	a[5] = 4;
	a[7] = 1;
	memcpy(a + 8, wire_mac(0), 6);
	memcpy(a + 14, (uint8_t[]){10, 0, 0, 1}, 4);
	memcpy(a + 24, (uint8_t[]){10, 0, 0, 2}, 4);
	net_input(w->st[1], f, 60);
	ck_assert_uint_eq(b->arp_replies_sent, 1);
	net_input(w->st[1], f, 14 + 27);
	ck_assert_uint_eq(b->drop_truncated, 1);
	a[5] = 16;
	net_input(w->st[1], f, 60);
	ck_assert_uint_eq(b->drop_bad_header, 1);
	a[5] = 4;
	a[7] = 9; /* op */
	net_input(w->st[1], f, 60);
	ck_assert_uint_eq(b->drop_bad_header, 2);
	a[7] = 1;
	a[27] = 3; /* for someone else */
	net_input(w->st[1], f, 60);
	ck_assert_uint_eq(b->drop_not_for_us, 1);
	ck_assert_uint_eq(b->arp_replies_sent, 1);
	wire_free(w);
}
END_TEST

Suite *net_ip_suite(void)
{
	Suite *s = suite_create("net_ip");
	TCase *tc = tcase_create("ip");
	tcase_add_test(tc, test_csum_matches_reference);
	tcase_add_test(tc, test_ping_and_arp);
	tcase_add_test(tc, test_arp_retry_and_give_up);
	tcase_add_test(tc, test_routing);
	tcase_add_test(tc, test_udp_echo);
	tcase_add_test(tc, test_ipv4_rejections);
	tcase_add_test(tc, test_arp_rejections);
	suite_add_tcase(s, tc);
	return s;
}
