/* netclient: a test client of the guest network stack, one behaviour per argument:
 *   ping IP COUNT INTERVAL_MS      COUNT echo requests; prints replies and RTT p50/p99/max;
 *                                  exit 0 if at least MIN_PCT (argv[5], default 100) % came back.
 *                                  First a probe is repeated until IP answers once, so a target
 *                                  still booting (its NIC not yet up) costs no counted request
 *   udp-echo IP PORT COUNT         COUNT datagrams to an echo server, each must come back intact
 *   tcp-echo IP PORT BYTES         BYTES through a TCP echo server, compared on return
 *   tcp-send IP PORT BYTES         BYTES of the test pattern (byte i = (i * 31 + 7) & 0xff),
 *                                  then close; prints the time taken
 *   udp-flood IP PORT SECONDS      full-size datagrams as fast as the NIC takes them
 *   fuzz IP SECONDS                random and mutated ARP/IP/ICMP/UDP/TCP frames at IP
 *   tcp-sink IP PORT               count the bytes of one connection to PORT (IP is ignored)
 * Waits up to 30 s for anything; exits 1 on any failure, with a line saying what. */
#include <denali.h>
#include <net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull

static struct net_stack *st;
static int result = 1;
static uint64_t give_up;

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)((i * 31 + 7) & 0xff);
}

static void finish(int status)
{
	result = status;
	dn_loop_stop();
}

static struct dn_timer watchdog;
static void on_watchdog(void *arg)
{
	(void)arg;
	printf("netclient: gave up after 30 s\n");
	finish(1);
}

/* ---- ping ---- */
#define PING_MAX 1000
static uint32_t ping_ip;
static unsigned ping_count, ping_sent, ping_got, ping_min_pct;
static uint64_t ping_interval, ping_sent_at[PING_MAX], rtts[PING_MAX];
static struct dn_timer ping_timer;

static uint16_t probes_sent;
static int reached;

static void ping_report(void)
{
	/* Insertion sort: a thousand samples at most. */
	for (unsigned i = 1; i < ping_got; i++)
		for (unsigned j = i; j > 0 && rtts[j - 1] > rtts[j]; j--) {
			uint64_t t = rtts[j];
			rtts[j] = rtts[j - 1];
			rtts[j - 1] = t;
		}
	uint64_t p50 = ping_got ? rtts[ping_got / 2] : 0;
	uint64_t p99 = ping_got ? rtts[(ping_got * 99) / 100 < ping_got ? (ping_got * 99) / 100
									: ping_got - 1]
				: 0;
	uint64_t max = ping_got ? rtts[ping_got - 1] : 0;
	printf("ping: %u/%u replies, rtt p50 %llu us p99 %llu us max %llu us (%u probes before)\n",
	       ping_got, ping_count, (unsigned long long)(p50 / 1000),
	       (unsigned long long)(p99 / 1000), (unsigned long long)(max / 1000), probes_sent);
	finish(ping_got * 100 >= ping_count * ping_min_pct ? 0 : 1);
}

static void ping_next(void *arg);

/* The probe: one request every 200 ms until one is answered (ARP resolved on the way). */
#define PROBE_ID 0x4445
static void probe_next(void *arg)
{
	(void)arg;
	net_ping(st, ping_ip, PROBE_ID, probes_sent++, "probe", 5);
	dn_timer_start(&ping_timer, dn_time_ns() + 200 * MS, probe_next, NULL);
}

static void on_echo_reply(uint32_t src, uint16_t id, uint16_t seq, const void *data, size_t len,
			  void *arg)
{
	(void)data, (void)len, (void)arg;
	if (src == ping_ip && id == PROBE_ID && !reached) {
		reached = 1;
		dn_timer_cancel(&ping_timer);
		ping_next(NULL);
		return;
	}
	if (src != ping_ip || id != 0x4444 || seq >= ping_sent || ping_sent_at[seq] == 0)
		return;
	rtts[ping_got++] = dn_time_ns() - ping_sent_at[seq];
	ping_sent_at[seq] = 0;
	if (ping_got == ping_count)
		ping_report();
}

static void ping_next(void *arg)
{
	(void)arg;
	if (ping_sent == ping_count) {
		ping_report(); /* the last one had its interval to come back */
		return;
	}
	char payload[56];
	memset(payload, 'p', sizeof(payload));
	ping_sent_at[ping_sent] = dn_time_ns();
	net_ping(st, ping_ip, 0x4444, (uint16_t)ping_sent, payload, sizeof(payload));
	ping_sent++;
	dn_timer_start(&ping_timer,
		       dn_time_ns() + (ping_sent == ping_count ? 1000 * MS : ping_interval),
		       ping_next, NULL);
}

/* ---- UDP echo ---- */
static unsigned udp_count, udp_sent, udp_ok;
static uint32_t udp_ip;
static uint16_t udp_port;
static struct net_udp *udp;
static struct dn_timer udp_timer;

static void udp_send_next(void *arg)
{
	(void)arg;
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "datagram %u of %u", udp_sent, udp_count);
	net_udp_sendto(udp, udp_ip, udp_port, msg, (size_t)n);
	/* Resend the same one until it comes back: UDP may lose it (an ARP on the way). */
	dn_timer_start(&udp_timer, dn_time_ns() + 200 * MS, udp_send_next, NULL);
}

static void on_udp(struct net_udp *sock, uint32_t ip, uint16_t port, const void *data, size_t len,
		   void *arg)
{
	(void)sock, (void)arg;
	char want[64];
	int n = snprintf(want, sizeof(want), "datagram %u of %u", udp_sent, udp_count);
	if (ip != udp_ip || port != udp_port || len != (size_t)n || memcmp(data, want, len) != 0)
		return;
	udp_ok++;
	if (++udp_sent == udp_count) {
		printf("udp-echo: %u/%u datagrams came back intact\n", udp_ok, udp_count);
		finish(0);
		return;
	}
	udp_send_next(NULL);
}

/* ---- TCP echo and send ---- */
static uint64_t tcp_total, tcp_sent, tcp_recv, tcp_start;
static int tcp_echo, tcp_bad;
static struct net_tcp *conn;

static void tcp_fill(struct net_tcp *c)
{
	uint8_t buf[4096];
	while (tcp_sent < tcp_total) {
		size_t n = tcp_total - tcp_sent < sizeof(buf) ? (size_t)(tcp_total - tcp_sent)
							      : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(tcp_sent + i);
		size_t w = net_tcp_write(c, buf, n);
		tcp_sent += w;
		if (w < n)
			return; /* WRITABLE will say when there is room */
	}
	if (!tcp_echo) {
		net_tcp_close(c);
		conn = NULL;
		uint64_t us = (dn_time_ns() - tcp_start) / 1000;
		printf("tcp-send: %llu bytes queued in %llu ms; closed\n",
		       (unsigned long long)tcp_total, (unsigned long long)(us / 1000));
	}
}

static void on_tcp(struct net_tcp *c, unsigned events, void *arg)
{
	(void)arg;
	if (events & NET_TCP_CONNECTED)
		tcp_start = dn_time_ns();
	if (events & (NET_TCP_CONNECTED | NET_TCP_WRITABLE))
		if (conn)
			tcp_fill(c);
	if (tcp_echo && (events & NET_TCP_READABLE)) {
		uint8_t buf[4096];
		size_t n;
		while ((n = net_tcp_read(c, buf, sizeof(buf))) > 0) {
			for (size_t i = 0; i < n; i++)
				tcp_bad += buf[i] != pattern(tcp_recv + i);
			tcp_recv += n;
		}
		if (tcp_recv == tcp_total) {
			printf("tcp-echo: %llu bytes came back, %d wrong\n",
			       (unsigned long long)tcp_recv, tcp_bad);
			net_tcp_close(c);
			conn = NULL;
			finish(tcp_bad ? 1 : 0);
			return;
		}
	}
	if (events & NET_TCP_CLOSED) {
		int err = net_tcp_error(c);
		net_tcp_close(c);
		if (conn || err) {
			printf("tcp: connection closed early (error %d) after %llu bytes sent\n",
			       err, (unsigned long long)tcp_sent);
			conn = NULL;
			finish(1);
		}
	}
}

/* tcp-send ends when the stack has no connection left (the close handshake completed). */
static uint64_t send_done_poller(void *arg)
{
	(void)arg;
	if (!tcp_echo && !conn && tcp_sent == tcp_total && tcp_total && net_tcp_active(st) == 0)
		finish(0);
	return UINT64_MAX;
}

/* ---- TCP sink: counts what one peer sends until it closes ---- */
static uint64_t sink_bytes, sink_first, sink_last;

static void on_sink_conn(struct net_tcp *c, unsigned events, void *arg)
{
	(void)arg;
	uint8_t buf[8192];
	size_t n;
	while ((n = net_tcp_read(c, buf, sizeof(buf))) > 0) {
		if (!sink_bytes)
			sink_first = dn_time_ns();
		sink_bytes += n;
		sink_last = dn_time_ns();
	}
	if (events & (NET_TCP_PEER_CLOSED | NET_TCP_CLOSED)) {
		net_tcp_close(c);
		printf("tcp-sink: %llu bytes in %llu us\n", (unsigned long long)sink_bytes,
		       (unsigned long long)((sink_last - sink_first) / 1000));
		finish(0);
	}
}

static void on_sink_accept(struct net_tcp *listener, struct net_tcp *c, void *arg)
{
	(void)listener, (void)arg;
	net_tcp_set_callbacks(c, on_sink_conn, NULL);
}

/* ---- UDP flood ---- */
static uint64_t flood_end, flood_sent;
static uint64_t flood_poller(void *arg)
{
	(void)arg;
	static char payload[1400];
	while (dn_time_ns() < flood_end) {
		if (net_udp_sendto(udp, udp_ip, udp_port, payload, sizeof(payload)) != 0)
			return 0; /* the ring is full: go round, the loop kicks it */
		flood_sent++;
		if (flood_sent % 64 == 0)
			return 0;
	}
	printf("udp-flood: %llu datagrams sent\n", (unsigned long long)flood_sent);
	finish(0);
	return UINT64_MAX;
}

/* ---- fuzz: hostile frames at a target, through the switch ---- */
static uint64_t fuzz_end, fuzz_sent, rng = 0x243f6a8885a308d3ull;
static uint32_t fuzz_ip;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* A plausible frame of a random kind (ARP, ICMP, UDP, TCP, garbage) for the target, then
 * mutated: bytes flipped, cut short or padded. The source MAC stays ours (the switch drops
 * anything else); the destination is broadcast so no ARP is needed. */
static size_t fuzz_frame(uint8_t *f)
{
	const struct dn_boot_info *bi = dn_boot_info();
	size_t len = 14 + 20 + 8 + (rnd() % 64);
	memset(f, 0xff, 6);
	memcpy(f + 6, bi->mac, 6);
	unsigned kind = rnd() % 5;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)rnd();
	if (kind == 0) { /* ARP */
		put16(f + 12, 0x0806);
		put16(f + 14, 1), put16(f + 16, 0x0800), f[18] = 6, f[19] = 4, put16(f + 20, 1);
		memcpy(f + 22, bi->mac, 6), put32(f + 28, bi->ip), put32(f + 38, fuzz_ip);
		len = 42;
	} else if (kind < 4) { /* IPv4: ICMP, UDP or TCP */
		static const uint8_t proto[] = {1, 17, 6};
		put16(f + 12, 0x0800);
		f[14] = 0x45, f[15] = 0, put16(f + 16, (uint16_t)(len - 14)), put16(f + 18, 1);
		put16(f + 20, 0), f[22] = 64, f[23] = proto[kind - 1], put16(f + 24, 0);
		put32(f + 26, bi->ip), put32(f + 30, fuzz_ip);
		uint32_t sum = 0;
		for (int i = 14; i < 34; i += 2)
			sum += (uint32_t)(f[i] << 8 | f[i + 1]);
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		put16(f + 24, (uint16_t)~sum);
		put16(f + 36, 7); /* destination port of UDP and TCP: the echo service */
	} else {
		put16(f + 12, (uint16_t)rnd());
	}
	unsigned flips = rnd() % 4;
	for (unsigned i = 0; i < flips; i++)
		f[12 + rnd() % (len - 12)] ^= (uint8_t)(1u << (rnd() % 8));
	if (rnd() % 4 == 0)
		len = 14 + rnd() % (len - 13);
	return len;
}

static uint64_t fuzz_poller(void *arg)
{
	(void)arg;
	uint8_t frame[DN_NIC_FRAME_MAX];
	while (dn_time_ns() < fuzz_end) {
		size_t len = fuzz_frame(frame);
		if (dn_nic_send(frame, len) != DN_OK)
			return 0;
		if (++fuzz_sent % 32 == 0)
			return 0;
	}
	printf("fuzz: %llu hostile frames sent\n", (unsigned long long)fuzz_sent);
	finish(0);
	return UINT64_MAX;
}

static void on_stop(uint64_t events, void *arg)
{
	(void)events, (void)arg;
	printf("netclient: asked to stop\n");
	finish(0);
}

static int parse_target(char **argv, uint32_t *ip)
{
	if (net_parse_ip(argv[2], ip) != 0) {
		printf("netclient: bad address %s\n", argv[2]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	st = dn_net_start();
	if (!st || argc < 4) {
		printf("usage: netclient ping|udp-echo|tcp-echo|tcp-send|udp-flood IP ARGS (needs "
		       "a NIC)\n");
		return 2;
	}
	const char *cmd = argv[1];
	uint32_t ip;
	if (parse_target(argv, &ip) != 0)
		return 2;
	give_up = dn_time_ns() + 30000 * MS;
	if (strcmp(cmd, "ping") == 0) {
		ping_ip = ip;
		ping_count = (unsigned)atoi(argv[3]);
		ping_interval = (argc > 4 ? (uint64_t)atoi(argv[4]) : 100) * MS;
		ping_min_pct = argc > 5 ? (unsigned)atoi(argv[5]) : 100;
		if (ping_count == 0 || ping_count > PING_MAX)
			return 2;
		net_on_echo_reply(st, on_echo_reply, NULL);
		probe_next(NULL);
		give_up += ping_count * ping_interval;
	} else if (strcmp(cmd, "udp-echo") == 0 || strcmp(cmd, "udp-flood") == 0) {
		udp_ip = ip;
		udp_port = (uint16_t)atoi(argv[3]);
		udp = net_udp_bind(st, 40000, on_udp, NULL);
		if (cmd[4] == 'e') {
			udp_count = argc > 4 ? (unsigned)atoi(argv[4]) : 10;
			udp_send_next(NULL);
		} else {
			flood_end =
				dn_time_ns() + (argc > 4 ? (uint64_t)atoi(argv[4]) : 2) * 1000 * MS;
			dn_loop_add_poller(flood_poller, NULL);
		}
	} else if (strcmp(cmd, "tcp-echo") == 0 || strcmp(cmd, "tcp-send") == 0) {
		tcp_echo = cmd[4] == 'e';
		tcp_total = argc > 4 ? strtoul(argv[4], NULL, 10) : 1000;
		conn = net_tcp_connect(st, ip, (uint16_t)atoi(argv[3]));
		if (!conn)
			return 1;
		net_tcp_set_callbacks(conn, on_tcp, NULL);
		dn_loop_add_poller(send_done_poller, NULL);
		give_up += 120000 * MS;
	} else if (strcmp(cmd, "tcp-sink") == 0) {
		if (!net_tcp_listen(st, (uint16_t)atoi(argv[3]), on_sink_accept, NULL))
			return 1;
		give_up += 120000 * MS;
	} else if (strcmp(cmd, "fuzz") == 0) {
		fuzz_ip = ip;
		fuzz_end = dn_time_ns() + (uint64_t)atoi(argv[3]) * 1000 * MS;
		dn_loop_add_poller(fuzz_poller, NULL);
	} else {
		printf("netclient: unknown command %s\n", cmd);
		return 2;
	}
	dn_loop_on(DN_EV_STOP, on_stop, NULL);
	dn_timer_start(&watchdog, give_up, on_watchdog, NULL);
	dn_loop_run();
	return result;
}
