/* The NAT process's link: the message format against hostile input, the batched transport over
 * a real socketpair, and the supervisor's side (vnet_nat.c) against the real denali-nat (its
 * path in DENALI_NAT, set by the build): frames both ways, forwards, a death and its restart. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "unit.h"
#include "vnet/nat_proto.h"
#include "vnet/vnet_nat.h"

/* Parses a message of type with body (len bytes), as received (truncated or not). */
static int parse(uint32_t type, const void *body, size_t len, int truncated, struct nat_msg *m,
		 const char **why)
{
	static uint8_t buf[NAT_MSG_MAX + 64];
	memcpy(buf, &type, sizeof(type));
	if (len)
		memcpy(buf + sizeof(type), body, len);
	return nat_msg_parse(buf, sizeof(type) + len, truncated, m, why);
}

START_TEST(test_nat_parse_hostile)
{
	struct nat_msg m;
	const char *why = NULL;
	uint8_t frame[DN_NIC_FRAME_MAX + 1] = {0};
	/* Shorter than its type, and empty. */
	for (size_t short_len = 0; short_len < 4; short_len++)
		ck_assert_int_eq(nat_msg_parse(frame, short_len, 0, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "shorter"));
	/* Unknown types. */
	ck_assert_int_eq(parse(0, frame, 60, 0, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "unknown"));
	ck_assert_int_eq(parse(99, frame, 60, 0, &m, &why), -1);
	/* Frames: shorter than a header, longer than the MTU, cut by the receive. */
	ck_assert_int_eq(parse(NAT_MSG_FRAME, frame, 13, 0, &m, &why), -1);
	ck_assert_int_eq(parse(NAT_MSG_FRAME, frame, DN_NIC_FRAME_MAX + 1, 0, &m, &why), -1);
	ck_assert_int_eq(parse(NAT_MSG_FRAME, frame, 60, 1, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "longer"));
	ck_assert_int_eq(parse(NAT_MSG_FRAME, frame, 14, 0, &m, &why), 0);
	ck_assert_uint_eq(m.len, 14);
	ck_assert_int_eq(parse(NAT_MSG_FRAME, frame, DN_NIC_FRAME_MAX, 0, &m, &why), 0);
	ck_assert_uint_eq(m.len, DN_NIC_FRAME_MAX);
	ck_assert_int_eq(m.type, NAT_MSG_FRAME);
	/* Forwards: the right size and fields only. */
	struct nat_forward good = {.seq = 7,
				   .host_addr = 0x7f000001,
				   .guest_addr = 0x0a000010,
				   .host_port = 8080,
				   .guest_port = 80};
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_ADD, &good, sizeof(good), 0, &m, &why), 0);
	ck_assert_uint_eq(m.fwd.seq, 7);
	ck_assert_uint_eq(m.fwd.host_port, 8080);
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_ADD, &good, sizeof(good) - 1, 0, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "wrong size"));
	uint8_t longer[sizeof(good) + 1] = {0};
	memcpy(longer, &good, sizeof(good));
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_REMOVE, longer, sizeof(longer), 0, &m, &why), -1);
	struct nat_forward bad = good;
	bad.udp = 2;
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_ADD, &bad, sizeof(bad), 0, &m, &why), -1);
	bad = good;
	bad.host_port = 0;
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_ADD, &bad, sizeof(bad), 0, &m, &why), -1);
	bad = good;
	bad.guest_port = 0;
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_ADD, &bad, sizeof(bad), 0, &m, &why), -1);
	bad = good;
	bad.reserved[2] = 1;
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_ADD, &bad, sizeof(bad), 0, &m, &why), -1);
	/* Answers. */
	struct nat_forward_done done = {.seq = 7, .ok = 1};
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_DONE, &done, sizeof(done), 0, &m, &why), 0);
	ck_assert_uint_eq(m.done.seq, 7);
	done.ok = 2;
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_DONE, &done, sizeof(done), 0, &m, &why), -1);
	ck_assert_int_eq(parse(NAT_MSG_FORWARD_DONE, &done, 4, 0, &m, &why), -1);
}
END_TEST

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
			 0);
}

START_TEST(test_nat_transport_batches)
{
	int sv[2];
	pair(sv);
	static uint8_t frames[NAT_BATCH][100];
	struct iovec iov[NAT_BATCH + 10];
	for (unsigned i = 0; i < NAT_BATCH + 10; i++) {
		if (i < NAT_BATCH)
			memset(frames[i], (int)i, sizeof(frames[0]));
		iov[i] = (struct iovec){frames[i % NAT_BATCH], 20 + i};
	}
	/* One call sends at most a batch. */
	ck_assert_int_eq(nat_send_frames(sv[0], iov, NAT_BATCH + 10), NAT_BATCH);
	ck_assert_int_eq(nat_send_frames(sv[0], iov, 0), 0);
	static struct nat_rx rx;
	/* One call takes a batch, each message whole and in order. */
	ck_assert_int_eq(nat_recv(sv[1], &rx), NAT_BATCH);
	for (unsigned i = 0; i < NAT_BATCH; i++) {
		struct nat_msg m;
		const char *why;
		ck_assert_int_eq(nat_msg_parse(rx.buf[i], rx.len[i], rx.truncated[i], &m, &why), 0);
		ck_assert_int_eq(m.type, NAT_MSG_FRAME);
		ck_assert_uint_eq(m.len, 20 + i);
		ck_assert_uint_eq(m.frame[0], (uint8_t)i);
		ck_assert_uint_eq(m.frame[m.len - 1], (uint8_t)i);
	}
	ck_assert_int_eq(nat_recv(sv[1], &rx), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* A full socket takes what it has room for and says how many: the count is exact. */
	int small = 4096;
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	unsigned sent = 0, calls = 0;
	int got;
	while ((got = nat_send_frames(sv[0], iov, NAT_BATCH)) == (int)NAT_BATCH && calls < 1000)
		sent += (unsigned)got, calls++;
	ck_assert_int_ge(got, 0);
	ck_assert_int_lt(got, NAT_BATCH);
	sent += (unsigned)got;
	ck_assert_int_eq(nat_send_frames(sv[0], iov, NAT_BATCH), 0); /* full: none, no error */
	unsigned received = 0;
	while ((got = nat_recv(sv[1], &rx)) > 0)
		received += (unsigned)got;
	ck_assert_uint_eq(received, sent);
	/* A message longer than any allowed is cut, and said to be. */
	static uint8_t huge[NAT_MSG_MAX + 100];
	uint32_t type = NAT_MSG_FRAME;
	memcpy(huge, &type, sizeof(type));
	ck_assert_int_eq(send(sv[0], huge, sizeof(huge), 0), (ssize_t)sizeof(huge));
	ck_assert_int_eq(nat_recv(sv[1], &rx), 1);
	ck_assert(rx.truncated[0]);
	struct nat_msg m;
	const char *why;
	ck_assert_int_eq(nat_msg_parse(rx.buf[0], rx.len[0], rx.truncated[0], &m, &why), -1);
	/* One message through nat_send_msg. */
	struct nat_forward_done done = {.seq = 3, .ok = 1};
	ck_assert_int_eq(nat_send_msg(sv[1], NAT_MSG_FORWARD_DONE, &done, sizeof(done), 100), 0);
	ck_assert_int_eq(nat_recv(sv[0], &rx), 1);
	ck_assert_int_eq(nat_msg_parse(rx.buf[0], rx.len[0], rx.truncated[0], &m, &why), 0);
	ck_assert_uint_eq(m.done.seq, 3);
	/* The peer gone: end of file, and a send fails without SIGPIPE. */
	close(sv[0]);
	ck_assert_int_eq(nat_recv(sv[1], &rx), 0);
	ck_assert_int_eq(nat_send_frames(sv[1], iov, 1), -1);
	ck_assert_int_eq(nat_send_msg(sv[1], NAT_MSG_FORWARD_DONE, &done, sizeof(done), 100), -1);
	close(sv[1]);
}
END_TEST

/* ---- the supervisor's side against the real NAT process ---- */

struct got {
	unsigned frames, arp_replies, looks_for_guest;
};

static void deliver(void *ctx, const uint8_t *f, size_t len)
{
	struct got *g = ctx;
	g->frames++;
	if (len < 42 || f[12] != 0x08)
		return;
	uint32_t ip;
	if (f[13] == 0x00) { /* IPv4: a TCP segment for the guest's port 80 (a forward's SYN) */
		memcpy(&ip, f + 30, 4);
		if (f[23] == 6 && ntohl(ip) == 0x0a000010u && f[36] == 0 && f[37] == 80)
			g->looks_for_guest++;
		return;
	}
	if (f[13] != 0x06)
		return;
	uint16_t op = (uint16_t)(f[20] << 8 | f[21]);
	memcpy(&ip, f + 38, 4);
	if (op == 2)
		g->arp_replies++;
	else if (op == 1 && ntohl(ip) == 0x0a000010u)
		g->looks_for_guest++; /* a new NAT does not know the guest's MAC yet */
}

static const uint8_t guest_mac[6] = {0x02, 0, 0, 0, 0, 0x10};

/* An ARP request from the guest 10.0.0.16 for the gateway 10.0.0.1. */
static size_t arp_request(uint8_t f[60])
{
	memset(f, 0, 60);
	memset(f, 0xff, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08, f[13] = 0x06;
	const uint8_t arp[8] = {0, 1, 8, 0, 6, 4, 0, 1};
	memcpy(f + 14, arp, 8);
	memcpy(f + 22, guest_mac, 6);
	uint32_t spa = htonl(0x0a000010u), tpa = htonl(0x0a000001u);
	memcpy(f + 28, &spa, 4);
	memcpy(f + 38, &tpa, 4);
	return 60;
}

/* Turns of the loop the network thread runs, until *watch reaches want or 20 s pass. */
static void turn_until(struct vnet_nat *n, const unsigned *watch, unsigned want)
{
	time_t deadline = time(NULL) + 20;
	while (*watch < want && time(NULL) < deadline) {
		struct pollfd fds[4];
		unsigned nfds = 0;
		int timeout = 100;
		ck_assert_int_eq(vnet_nat_fill(n, fds, &nfds, 4, &timeout), 0);
		poll(fds, nfds, timeout);
		vnet_nat_dispatch(n, fds);
	}
}

static const char *helper(void)
{
	const char *path = getenv("DENALI_NAT");
	ck_assert_msg(path != NULL, "DENALI_NAT names the denali-nat the build made");
	return path;
}

static int connect_to(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	ck_assert(rc == 0 || errno == EINPROGRESS);
	return fd;
}

static uint16_t free_port(int *keep)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t alen = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &alen);
	if (keep)
		*keep = fd;
	else
		close(fd);
	return ntohs(a.sin_port);
}

START_TEST(test_nat_process_frames_and_forwards)
{
	struct got g = {0};
	char err[256];
	struct vnet_nat *n = vnet_nat_create(helper(), deliver, &g, err, sizeof(err));
	ck_assert_msg(n != NULL, "%s", err);
	struct vnet_nat_counters c;
	vnet_nat_counters(n, &c);
	ck_assert_int_gt(c.pid, 0);
	/* A batch of ARP requests goes in one sendmmsg; every one is answered. */
	uint8_t f[60];
	size_t len = arp_request(f);
	for (unsigned i = 0; i < NAT_BATCH; i++)
		ck_assert_int_eq(vnet_nat_send(n, f, len), 0);
	vnet_nat_flush(n);
	turn_until(n, &g.arp_replies, NAT_BATCH);
	ck_assert_uint_eq(g.arp_replies, NAT_BATCH);
	/* What the sanitizer refuses never leaves. */
	uint8_t junk[60] = {0};
	junk[12] = 0x86, junk[13] = 0xdd; /* IPv6 */
	ck_assert_int_eq(vnet_nat_send(n, junk, sizeof(junk)), -1);
	vnet_nat_flush(n);
	vnet_nat_counters(n, &c);
	ck_assert_uint_eq(c.tx_frames, NAT_BATCH);
	ck_assert_uint_eq(c.tx_dropped, 0);
	ck_assert_uint_eq(c.rx_frames, NAT_BATCH);
	ck_assert_uint_eq(c.rx_malformed, 0);
	/* A forward: a host connection makes the NAT connect to the guest (a SYN, or ARP first). */
	uint16_t port = free_port(NULL);
	struct vnet_forward fw = {.host_addr = 0x7f000001u, .host_port = port, .guest_port = 80};
	ck_assert_msg(vnet_nat_add_forward(n, &fw, 0x0a000010u, err, sizeof(err)) == 0, "%s", err);
	int client = connect_to(port);
	turn_until(n, &g.looks_for_guest, 1);
	ck_assert_uint_ge(g.looks_for_guest, 1);
	close(client);
	/* A busy port is refused, with the port named, and not kept. */
	int busy;
	uint16_t taken = free_port(&busy);
	ck_assert_int_eq(listen(busy, 1), 0);
	struct vnet_forward clash = {
		.host_addr = 0x7f000001u, .host_port = taken, .guest_port = 81};
	ck_assert_int_eq(vnet_nat_add_forward(n, &clash, 0x0a000010u, err, sizeof(err)), -1);
	char want[64];
	snprintf(want, sizeof(want), "TCP port 127.0.0.1:%u", taken);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	close(busy);
	/* Killed: seen, replaced (one restart), the forward published again. */
	vnet_nat_counters(n, &c);
	pid_t old = c.pid;
	ck_assert_int_eq(kill(old, SIGKILL), 0);
	unsigned restarts = 0;
	time_t deadline = time(NULL) + 20;
	while (restarts < 1 && time(NULL) < deadline) {
		turn_until(n, &g.frames, g.frames + 1); /* turns, about 100 ms each */
		vnet_nat_counters(n, &c);
		restarts = (unsigned)c.restarts;
	}
	ck_assert_uint_eq(c.restarts, 1);
	ck_assert_int_gt(c.pid, 0);
	ck_assert_int_ne(c.pid, old);
	/* The restored forward listens again (the refused one does not). */
	unsigned asks = g.looks_for_guest;
	deadline = time(NULL) + 20;
	while (g.looks_for_guest == asks && time(NULL) < deadline) {
		client = connect_to(port);
		turn_until(n, &g.looks_for_guest, asks + 1);
		close(client);
	}
	ck_assert_uint_gt(g.looks_for_guest, asks);
	vnet_nat_destroy(n);
	ck_assert_int_eq(kill(c.pid, 0), -1); /* reaped */
}
END_TEST

START_TEST(test_nat_restarts_back_off)
{
	/* A NAT process that keeps dying is restarted later and later: after three quick deaths
	 * the next restart waits a second (250 ms, 500 ms, 1 s), so a guest that could crash it
	 * cannot make the network thread spin. */
	struct got g = {0};
	char err[256];
	struct vnet_nat *n = vnet_nat_create(helper(), deliver, &g, err, sizeof(err));
	ck_assert_msg(n != NULL, "%s", err);
	struct vnet_nat_counters c;
	for (unsigned death = 0; death < 3; death++) {
		vnet_nat_counters(n, &c);
		ck_assert_int_eq(kill(c.pid, SIGKILL), 0);
		unsigned dead = 0;
		time_t deadline = time(NULL) + 20;
		while (!dead && time(NULL) < deadline) {
			struct pollfd fds[4];
			unsigned nfds = 0;
			int timeout = 100;
			vnet_nat_fill(n, fds, &nfds, 4, &timeout);
			poll(fds, nfds, timeout);
			vnet_nat_dispatch(n, fds);
			vnet_nat_counters(n, &c);
			dead = c.pid == 0;
		}
		ck_assert(dead);
		/* Down: fill asks to be called back no sooner than the restart's time. */
		struct pollfd fds[4];
		unsigned nfds = 0;
		int timeout = -1;
		vnet_nat_fill(n, fds, &nfds, 4, &timeout);
		ck_assert_msg(nfds == 0, "death %u: polled %u fds while down", death, nfds);
		ck_assert_int_gt(timeout, (int)(250u << death) - 100);
		ck_assert_int_le(timeout, (int)(250u << death));
		vnet_nat_counters(n, &c);
		ck_assert_uint_eq(c.restarts, death);
		/* Frames while it is down are dropped and counted. */
		uint8_t f[60];
		ck_assert_int_eq(vnet_nat_send(n, f, arp_request(f)), -1);
		vnet_nat_counters(n, &c);
		ck_assert_uint_eq(c.tx_dropped, death + 1);
		deadline = time(NULL) + 20;
		while (c.pid == 0 && time(NULL) < deadline) {
			nfds = 0;
			timeout = 100;
			vnet_nat_fill(n, fds, &nfds, 4, &timeout);
			poll(fds, nfds, timeout);
			vnet_nat_counters(n, &c);
		}
		ck_assert_int_gt(c.pid, 0);
	}
	vnet_nat_counters(n, &c);
	ck_assert_uint_eq(c.restarts, 3);
	vnet_nat_destroy(n);
}
END_TEST

/* With seccomp on, as in denali-run: the network thread, sealed, starts the NAT process (which
 * seals itself with the NAT list), trades frames with it, and replaces it when it is killed.
 * In a child of its own, since a filter cannot be taken off; its exit status is the verdict. */
static int sealed_net_thread_runs_nat(int tell_pid)
{
	sandbox_init(1);
	sandbox_set_process("unit nat");
	char err[256];
	if (sandbox_seal(SANDBOX_NET, err, sizeof(err)) != 0)
		return 10;
	struct got g = {0};
	struct vnet_nat *n = vnet_nat_create(helper(), deliver, &g, err, sizeof(err));
	if (!n)
		return 11;
	uint8_t f[60];
	size_t len = arp_request(f);
	for (unsigned round = 0; round < 2; round++) {
		unsigned want = g.arp_replies + NAT_BATCH;
		for (unsigned i = 0; i < NAT_BATCH; i++)
			if (vnet_nat_send(n, f, len) != 0)
				return 12;
		vnet_nat_flush(n);
		turn_until(n, &g.arp_replies, want);
		if (g.arp_replies != want)
			return 13 +
			       (int)round; /* the NAT died at its seal, or answered too little */
		struct vnet_nat_counters c;
		vnet_nat_counters(n, &c);
		if (round == 1)
			return c.restarts == 1 ? 0 : 15;
		/* Killed (by the parent: kill is not on the network thread's list), then started
		 * again by this sealed thread. */
		if (write(tell_pid, &c.pid, sizeof(c.pid)) != (ssize_t)sizeof(c.pid))
			return 16;
		time_t deadline = time(NULL) + 20;
		while ((c.restarts < 1 || c.pid <= 0) && time(NULL) < deadline) {
			struct pollfd fds[4];
			unsigned nfds = 0;
			int timeout = 100;
			vnet_nat_fill(n, fds, &nfds, 4, &timeout);
			poll(fds, nfds, timeout);
			vnet_nat_dispatch(n, fds);
			vnet_nat_counters(n, &c);
		}
		if (c.pid <= 0)
			return 17;
	}
	return 18;
}

START_TEST(test_nat_sealed)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(sealed_net_thread_runs_nat(p[1]));
	close(p[1]);
	pid_t nat;
	if (read(p[0], &nat, sizeof(nat)) == (ssize_t)sizeof(nat))
		ck_assert_int_eq(kill(nat, SIGKILL), 0);
	close(p[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the sealed network thread's NAT run failed: %s %d",
		      WIFEXITED(status) ? "exit" : "signal",
		      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}
END_TEST

Suite *nat_suite(void)
{
	Suite *s = suite_create("nat");
	TCase *tc = tcase_create("nat");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_nat_parse_hostile);
	tcase_add_test(tc, test_nat_transport_batches);
	tcase_add_test(tc, test_nat_process_frames_and_forwards);
	tcase_add_test(tc, test_nat_restarts_back_off);
	tcase_add_test(tc, test_nat_sealed);
	suite_add_tcase(s, tc);
	return s;
}
