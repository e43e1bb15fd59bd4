/* nettest: raw-frame tests of the virtual NIC and the switch, one behaviour per argument:
 *   send N PERIOD_MS [kick-each]  broadcast N test frames, one every PERIOD_MS (0: as fast
 *                        as the ring takes them, then print the time and kicks; kick-each:
 *                        kick the NIC after every frame instead of letting frames batch)
 *   recv N TIMEOUT_MS [timed]  wait for N test frames; print who sent them (and the time from
 *                        the first to the last); exit 0, or 1 on timeout
 *   spoof N PERIOD_MS    like send, but with a source MAC that is not ours
 *   bad-desc             publish TX descriptors outside the buffers until stopped
 *   bad-index            publish an avail counter far ahead of used until stopped
 *   bad-rx               keep the RX ring full of buffers outside the buffer area, moving
 *                        rx.avail up as fast as the device moves rx.used, until stopped
 *   flood SECONDS        send broadcast frames as fast as the ring takes them
 * Test frames use the local experimental EtherType 0x88b5 and carry the sender's name. */
#include <denali.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ETHERTYPE_TEST 0x88b5
#define MS 1000000ull

static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static size_t build(uint8_t *frame, const uint8_t *src, unsigned seq)
{
	memcpy(frame, broadcast, 6);
	memcpy(frame + 6, src, 6);
	frame[12] = ETHERTYPE_TEST >> 8;
	frame[13] = ETHERTYPE_TEST & 0xff;
	int n = snprintf((char *)frame + 14, 100, "%s #%u", dn_boot_info()->name, seq);
	return 14 + (size_t)n + 1;
}

static void sleep_until(uint64_t t)
{
	while (dn_time_ns() < t)
		dn_idle(t);
}

static int cmd_send(int argc, char **argv, int spoof)
{
	unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
	uint64_t period = (argc > 3 ? (uint64_t)atoi(argv[3]) : 20) * MS;
	int kick_each = argc > 4 && strcmp(argv[4], "kick-each") == 0;
	uint8_t src[6];
	memcpy(src, dn_nic_mac(), 6);
	if (spoof)
		src[5] ^= 0x55;
	uint8_t frame[128];
	if (!period)
		sleep_until(dn_time_ns() + 500 * MS); /* let the receivers connect first */
	uint64_t start = dn_time_ns();
	for (unsigned i = 0; i < n; i++) {
		size_t len = build(frame, src, i);
		while (dn_nic_send(frame, len) == DN_E_AGAIN)
			dn_idle(period ? dn_time_ns() + MS : 0);
		if (kick_each)
			dn_nic_kick(); /* the unbatched ablation: one kick per frame */
		if (period)
			sleep_until(dn_time_ns() + period); /* the idle sends it */
	}
	if (!period) {
		dn_nic_flush();
		printf("sent %u frames in %llu us, %llu kicks\n", n,
		       (unsigned long long)((dn_time_ns() - start) / 1000),
		       (unsigned long long)dn_nic_stats()->kicks);
		return 0;
	}
	printf("sent %u frames%s\n", n, spoof ? " with a spoofed source" : "");
	return 0;
}

struct recv_state {
	unsigned got;
	uint64_t first_ns, last_ns;
	char last[100];
};

static void on_frame(const void *frame, size_t len, void *arg)
{
	struct recv_state *st = arg;
	const uint8_t *f = frame;
	if (len < 15 || ((f[12] << 8) | f[13]) != ETHERTYPE_TEST)
		return;
	size_t text = len - 14 < sizeof(st->last) - 1 ? len - 14 : sizeof(st->last) - 1;
	memcpy(st->last, f + 14, text);
	st->last[text] = '\0';
	char *hash = strchr(st->last, ' ');
	if (hash)
		*hash = '\0';
	if (!st->got)
		st->first_ns = dn_time_ns();
	st->last_ns = dn_time_ns();
	st->got++;
}

static int cmd_recv(int argc, char **argv)
{
	unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
	uint64_t deadline = dn_time_ns() + (argc > 3 ? (uint64_t)atoi(argv[3]) : 5000) * MS;
	struct recv_state st = {0};
	while (st.got < n && dn_time_ns() < deadline) {
		/* No more than are still wanted: a loaded host can queue more than n by now, and
		 * the count printed must be exactly n. */
		unsigned want = n - st.got;
		dn_nic_receive(on_frame, &st, want < 64 ? want : 64);
		if (st.got < n)
			dn_idle(deadline);
	}
	printf("received %u test frames, the last from %s\n", st.got, st.got ? st.last : "nobody");
	if (argc > 4 && strcmp(argv[4], "timed") == 0)
		printf("received %u frames in %llu us\n", st.got,
		       (unsigned long long)((st.last_ns - st.first_ns) / 1000));
	return st.got >= n ? 0 : 1;
}

__attribute__((noreturn)) static void cmd_bad(int index)
{
	struct dn_nic *nic = (struct dn_nic *)(uintptr_t)dn_boot_info()->nic;
	for (uint32_t i = 0;; i++) {
		if (index) {
			nic->tx.avail = nic->tx.used + DN_NIC_RING_SIZE + 1 + i;
		} else {
			uint32_t a = nic->tx.avail;
			nic->tx.desc[a % DN_NIC_RING_SIZE].offset = 0x10; /* the vregs page */
			nic->tx.desc[a % DN_NIC_RING_SIZE].len = 64;
			nic->tx.avail = a + 1;
		}
		dn_nic_kick();
		dn_idle(dn_time_ns() + MS);
	}
}

/* What the network thread once chased for as long as the guest wrote, holding the switch. */
__attribute__((noreturn)) static void cmd_bad_rx(void)
{
	struct dn_nic *nic = (struct dn_nic *)(uintptr_t)dn_boot_info()->nic;
	for (;;) {
		for (unsigned i = 0; i < DN_NIC_RING_SIZE; i++) {
			nic->rx.desc[i].offset = 0x10; /* the vregs page */
			nic->rx.desc[i].len = 2048;
		}
		uint32_t used = __atomic_load_n(&nic->rx.used, __ATOMIC_ACQUIRE);
		__atomic_store_n(&nic->rx.avail, used + DN_NIC_RING_SIZE, __ATOMIC_RELEASE);
	}
}

static int cmd_flood(int argc, char **argv)
{
	uint64_t end = dn_time_ns() + (argc > 2 ? (uint64_t)atoi(argv[2]) : 2) * 1000 * MS;
	uint8_t frame[DN_NIC_FRAME_MAX];
	memset(frame, 0xab, sizeof(frame));
	size_t len = build(frame, dn_nic_mac(), 0);
	(void)len;
	uint64_t sent = 0;
	while (dn_time_ns() < end) {
		if (dn_nic_send(frame, sizeof(frame)) == DN_OK)
			sent++;
		else
			dn_idle(0);
	}
	printf("flooded %llu frames\n", (unsigned long long)sent);
	return 0;
}

int main(int argc, char **argv)
{
	if (dn_nic_init() != DN_OK) {
		printf("nettest: this service has no NIC\n");
		return 3;
	}
	const char *cmd = argc > 1 ? argv[1] : "";
	if (strcmp(cmd, "send") == 0)
		return cmd_send(argc, argv, 0);
	if (strcmp(cmd, "spoof") == 0)
		return cmd_send(argc, argv, 1);
	if (strcmp(cmd, "recv") == 0)
		return cmd_recv(argc, argv);
	if (strcmp(cmd, "bad-desc") == 0)
		cmd_bad(0);
	if (strcmp(cmd, "bad-index") == 0)
		cmd_bad(1);
	if (strcmp(cmd, "bad-rx") == 0)
		cmd_bad_rx();
	if (strcmp(cmd, "flood") == 0)
		return cmd_flood(argc, argv);
	printf("usage: nettest send|recv|spoof|bad-desc|bad-index|bad-rx|flood ARGS\n");
	return 2;
}
