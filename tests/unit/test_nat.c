/* The NAT process's link: the message format against hostile input, the batched transport over
 * a real socketpair, and the supervisor's side (vnet_nat.c, nat_launcher.c) against the real
 * denali-nat launcher (its path in DENALI_NAT, set by the build): frames both ways, forwards, a
 * death and its restart through the launcher, the launcher's own death, and a sealed network
 * thread that restarts a NAT but cannot exec. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "unit.h"
#include "vnet/nat_launch_proto.h"
#include "vnet/nat_launcher.h"
#include "vnet/nat_proto.h"
#include "vnet/vnet_nat.h"

extern char **environ;

/* Parses a message of type with body (len bytes), as received (truncated or not). */
static int parse(uint32_t type, const void *body, size_t len, int truncated, struct nat_msg *m,
		 const char **why)
{
	static uint8_t buf[NAT_MSG_MAX * 2 + 64];
	memcpy(buf, &type, sizeof(type));
	if (len)
		memcpy(buf + sizeof(type), body, len);
	return nat_msg_parse(buf, sizeof(type) + len, truncated, m, why);
}

/* Parses a FRAMES message of n records, frame i of lens[i] bytes, each byte i. */
static int frames_msg(unsigned n, const size_t *lens, int truncated, struct nat_msg *m,
		      const char **why)
{
	static uint8_t body[NAT_MSG_MAX * 2];
	size_t at = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t len = lens[i];
		uint16_t l = (uint16_t)len;
		memcpy(body + at, &l, sizeof(l));
		memset(body + at + sizeof(l), (int)i, len);
		at += sizeof(l) + len;
	}
	return parse(NAT_MSG_FRAMES, body, at, truncated, m, why);
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
	ck_assert_int_eq(frames_msg(1, (size_t[]){13}, 0, &m, &why), -1);
	ck_assert_int_eq(frames_msg(1, (size_t[]){DN_NIC_FRAME_MAX + 1}, 0, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "MTU"));
	ck_assert_int_eq(frames_msg(1, (size_t[]){60}, 1, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "longer"));
	ck_assert_int_eq(frames_msg(1, (size_t[]){14}, 0, &m, &why), 0);
	ck_assert_int_eq(m.type, NAT_MSG_FRAMES);
	ck_assert_uint_eq(m.count, 1);
	size_t off = 0, flen = 0;
	ck_assert_ptr_nonnull(nat_msg_next_frame(&m, &off, &flen));
	ck_assert_uint_eq(flen, 14);
	ck_assert_ptr_null(nat_msg_next_frame(&m, &off, &flen));
	/* A batch: every record read back in order; one more than a batch is refused. */
	size_t lens[NAT_BATCH + 1];
	for (unsigned i = 0; i <= NAT_BATCH; i++)
		lens[i] = 14 + i;
	ck_assert_int_eq(frames_msg(NAT_BATCH, lens, 0, &m, &why), 0);
	ck_assert_uint_eq(m.count, NAT_BATCH);
	off = 0;
	for (unsigned i = 0; i < NAT_BATCH; i++) {
		const uint8_t *f = nat_msg_next_frame(&m, &off, &flen);
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(flen, 14 + i);
		ck_assert_uint_eq(f[0], (uint8_t)i); /* frames_msg fills frame i with i */
	}
	ck_assert_ptr_null(nat_msg_next_frame(&m, &off, &flen));
	ck_assert_int_eq(frames_msg(NAT_BATCH + 1, lens, 0, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "more frames"));
	/* No record; a length cut by the end; a record longer than what is left. */
	ck_assert_int_eq(parse(NAT_MSG_FRAMES, frame, 0, 0, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "without a frame"));
	uint16_t rec[2] = {60, 0};
	ck_assert_int_eq(parse(NAT_MSG_FRAMES, rec, 1, 0, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "cut"));
	ck_assert_int_eq(parse(NAT_MSG_FRAMES, rec, sizeof(rec), 0, &m, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "left"));
	/* A good record followed by a stray byte. */
	uint8_t stray[2 + 14 + 1] = {14};
	ck_assert_int_eq(parse(NAT_MSG_FRAMES, stray, sizeof(stray), 0, &m, &why), -1);
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

/* The frames of the messages in rx, counted; each checked against the pattern of iov's. */
static unsigned frames_in(const struct nat_rx *rx, unsigned *next)
{
	unsigned frames = 0;
	for (unsigned i = 0; i < rx->n; i++) {
		struct nat_msg m;
		const char *why;
		ck_assert_int_eq(nat_msg_parse(rx->buf[i], rx->len[i], rx->truncated[i], &m, &why),
				 0);
		ck_assert_int_eq(m.type, NAT_MSG_FRAMES);
		size_t off = 0, len;
		for (const uint8_t *f; (f = nat_msg_next_frame(&m, &off, &len)); frames++) {
			unsigned k = (*next)++ % NAT_BATCH;
			ck_assert_uint_eq(len, 20 + k);
			ck_assert_uint_eq(f[0], (uint8_t)k);
			ck_assert_uint_eq(f[len - 1], (uint8_t)k);
		}
	}
	return frames;
}

START_TEST(test_nat_transport_batches)
{
	int sv[2];
	pair(sv);
	static uint8_t frames[NAT_BATCH][DN_NIC_FRAME_MAX];
	struct iovec iov[NAT_BATCH + 10];
	for (unsigned i = 0; i < NAT_BATCH + 10; i++) {
		if (i < NAT_BATCH)
			memset(frames[i], (int)i, sizeof(frames[0]));
		iov[i] = (struct iovec){frames[i % NAT_BATCH], 20 + i % NAT_BATCH};
	}
	/* One call sends at most a batch, small frames in one message: the reader is woken once
	 * and takes the batch in one call, each frame whole and in order. */
	ck_assert_int_eq(nat_send_frames(sv[0], iov, NAT_BATCH + 10), NAT_BATCH);
	ck_assert_int_eq(nat_send_frames(sv[0], iov, 0), 0);
	static struct nat_rx rx;
	unsigned next = 0;
	ck_assert_int_eq(nat_recv(sv[1], &rx), 1);
	ck_assert_uint_eq(frames_in(&rx, &next), NAT_BATCH);
	ck_assert_int_eq(nat_recv(sv[1], &rx), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* A batch of the largest frames is more than a message holds: two, in one sendmmsg. */
	struct iovec big[NAT_BATCH];
	for (unsigned i = 0; i < NAT_BATCH; i++)
		big[i] = (struct iovec){frames[i], DN_NIC_FRAME_MAX};
	ck_assert_int_eq(nat_send_frames(sv[0], big, NAT_BATCH), NAT_BATCH);
	ck_assert_int_eq(nat_recv(sv[1], &rx), 2);
	unsigned count = 0;
	for (unsigned i = 0; i < rx.n; i++) {
		struct nat_msg m;
		const char *why;
		ck_assert_int_eq(nat_msg_parse(rx.buf[i], rx.len[i], rx.truncated[i], &m, &why), 0);
		ck_assert_uint_le(rx.len[i], NAT_MSG_MAX);
		count += m.count;
	}
	ck_assert_uint_eq(count, NAT_BATCH);
	/* A full socket takes whole messages it has room for and says how many frames: the count
	 * is exact. */
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
	next = 0;
	while (nat_recv(sv[1], &rx) > 0)
		received += frames_in(&rx, &next);
	ck_assert_uint_eq(received, sent);
	/* A message longer than any allowed is cut, and said to be. */
	int roomy = 1 << 20;
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &roomy, sizeof(roomy)), 0);
	static uint8_t huge[NAT_MSG_MAX + 100];
	uint32_t type = NAT_MSG_FRAMES;
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

/* One turn of the loop the network thread runs (at most about 100 ms); returns fill's answer. */
static int turn(struct vnet_nat *n)
{
	struct pollfd fds[4];
	unsigned nfds = 0;
	int timeout = 100;
	int rc = vnet_nat_fill(n, fds, &nfds, 4, &timeout);
	poll(fds, nfds, timeout);
	vnet_nat_dispatch(n, fds);
	return rc;
}

/* Turns of the loop, until *watch reaches want or 20 s pass. */
static void turn_until(struct vnet_nat *n, const unsigned *watch, unsigned want)
{
	time_t deadline = time(NULL) + 20;
	while (*watch < want && time(NULL) < deadline)
		ck_assert_int_eq(turn(n), 0);
}

/* A batch of ARP requests from the guest, in one sendmmsg; 0 if each was taken. */
static int send_arp_batch(struct vnet_nat *n)
{
	uint8_t f[60];
	size_t len = arp_request(f);
	for (unsigned i = 0; i < NAT_BATCH; i++)
		if (vnet_nat_send(n, f, len) != 0)
			return -1;
	vnet_nat_flush(n);
	return 0;
}

static const char *helper(void)
{
	const char *path = getenv("DENALI_NAT");
	ck_assert_msg(path != NULL, "DENALI_NAT names the denali-nat the build made");
	return path;
}

/* The launcher of this test (seccomp as sandbox_init last said: off unless a test sealed). */
static struct nat_launcher *launcher(void)
{
	char err[256];
	struct nat_launcher *l = nat_launcher_start(helper(), err, sizeof(err));
	ck_assert_msg(l != NULL, "%s", err);
	return l;
}

/* A number of /proc/PID/status ("PPid: %d"); -1 if it cannot be read. */
static int status_field(pid_t pid, const char *format)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int v = -1;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, format, &v) == 1)
			break;
	fclose(f);
	return v;
}

static pid_t parent_of(pid_t pid)
{
	return (pid_t)status_field(pid, "PPid: %d");
}

/* The supervisor's side with a NAT process from launcher l, its frames counted in g. */
static struct vnet_nat *nat_start(struct nat_launcher *l, struct got *g)
{
	char err[256];
	struct vnet_nat *n = vnet_nat_create(l, deliver, g, err, sizeof(err));
	ck_assert_msg(n != NULL, "%s", err);
	return n;
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
	struct nat_launcher *l = launcher();
	struct vnet_nat *n = nat_start(l, &g);
	struct vnet_nat_counters c;
	vnet_nat_counters(n, &c);
	ck_assert_int_gt(c.pid, 0);
	/* The launcher's child, not this process's. */
	ck_assert_int_eq(parent_of(c.pid), nat_launcher_pid(l));
	/* A batch of ARP requests goes in one sendmmsg; every one is answered. */
	ck_assert_int_eq(send_arp_batch(n), 0);
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
	/* One system call each way for the batch: the NAT took the requests as one message and
	 * sent the answers as one, which one recvmmsg took. */
	ck_assert_uint_eq(c.tx_batches, 1);
	ck_assert_uint_eq(c.rx_batches, 1);
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
	ck_assert_int_eq(parent_of(c.pid), nat_launcher_pid(l));
	vnet_nat_destroy(n);
	ck_assert_int_eq(kill(c.pid, 0), -1); /* reaped by the launcher */
	nat_launcher_stop(l);
}
END_TEST

START_TEST(test_nat_restarts_back_off)
{
	/* A NAT process that keeps dying is restarted later and later: after three quick deaths
	 * the next restart waits a second (250 ms, 500 ms, 1 s), so a guest that could crash it
	 * cannot make the network thread spin. */
	struct got g = {0};
	struct nat_launcher *l = launcher();
	struct vnet_nat *n = nat_start(l, &g);
	struct vnet_nat_counters c;
	for (unsigned death = 0; death < 3; death++) {
		vnet_nat_counters(n, &c);
		ck_assert_int_eq(kill(c.pid, SIGKILL), 0);
		unsigned dead = 0;
		time_t deadline = time(NULL) + 20;
		while (!dead && time(NULL) < deadline) {
			turn(n);
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
	nat_launcher_stop(l);
}
END_TEST

/* With seccomp on, as in denali-run: the launcher is started first (unsealed, as at setup),
 * then the network thread seals; it gets a NAT process through the launcher (which sealed
 * itself, the NAT with the NAT list on top), trades frames with it, has it replaced when it is
 * killed, and at last tries to execve, which its list no longer allows. In a child of its own,
 * since a filter cannot be taken off: it tells the NAT's pid, then 0 once the restart worked;
 * its exit status and stderr are the rest of the verdict. */
static int sealed_net_thread_runs_nat(int tell)
{
	sandbox_init(1);
	sandbox_set_process("unit nat");
	char err[256];
	struct nat_launcher *l = nat_launcher_start(helper(), err, sizeof(err));
	if (!l)
		return 9;
	if (sandbox_seal(SANDBOX_NET, err, sizeof(err)) != 0)
		return 10;
	struct got g = {0};
	struct vnet_nat *n = vnet_nat_create(l, deliver, &g, err, sizeof(err));
	if (!n)
		return 11;
	for (unsigned round = 0; round < 2; round++) {
		unsigned want = g.arp_replies + NAT_BATCH;
		if (send_arp_batch(n) != 0)
			return 12;
		turn_until(n, &g.arp_replies, want);
		if (g.arp_replies != want)
			return 13 +
			       (int)round; /* the NAT died at its seal, or answered too little */
		struct vnet_nat_counters c;
		vnet_nat_counters(n, &c);
		/* The launcher's own filter; the NAT's on top of the launcher's it inherited. */
		if (status_field(nat_launcher_pid(l), "Seccomp_filters: %d") != 1 ||
		    status_field(c.pid, "Seccomp_filters: %d") != 2 ||
		    parent_of(c.pid) != nat_launcher_pid(l))
			return 19;
		if (round == 1) {
			pid_t done = 0;
			if (c.restarts != 1)
				return 15;
			if (write(tell, &done, sizeof(done)) != (ssize_t)sizeof(done))
				return 16;
			break;
		}
		/* Killed (by the parent: kill is not on the network thread's list), then started
		 * again through the launcher by this sealed thread. */
		if (write(tell, &c.pid, sizeof(c.pid)) != (ssize_t)sizeof(c.pid))
			return 16;
		time_t deadline = time(NULL) + 20;
		while ((c.restarts < 1 || c.pid <= 0) && time(NULL) < deadline) {
			turn(n);
			vnet_nat_counters(n, &c);
		}
		if (c.pid <= 0)
			return 17;
	}
	/* What a taken-over network thread would try next: its list has no execve. */
	char *const argv[] = {(char *)(uintptr_t) "true", NULL};
	execve("/bin/true", argv, environ);
	return 18;
}

START_TEST(test_nat_sealed)
{
	int p[2], e[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(pipe(e), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		close(e[0]);
		dup2(e[1], STDERR_FILENO);
		_exit(sealed_net_thread_runs_nat(p[1]));
	}
	close(p[1]);
	close(e[1]);
	pid_t nat = -1, done = -1;
	if (read(p[0], &nat, sizeof(nat)) == (ssize_t)sizeof(nat))
		ck_assert_int_eq(kill(nat, SIGKILL), 0);
	ck_assert_int_eq(read(p[0], &done, sizeof(done)), (ssize_t)sizeof(done));
	close(p[0]);
	/* Its stderr, until the launcher and the NAT are gone too (they hold it). */
	static char out[8192];
	size_t len = 0;
	ssize_t got;
	while (len + 1 < sizeof(out) && (got = read(e[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)got;
	out[len] = '\0';
	close(e[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(done == 0, "the sealed network thread's NAT run failed: status 0x%x: %s",
		      status, out);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == SANDBOX_EXIT_FORBIDDEN,
		      "execve from the sealed network thread: status 0x%x: %s", status, out);
	ck_assert_msg(
		strstr(out, "denali-run: unit nat: net thread: forbidden system call execve ("),
		"%s", out);
	char said[128];
	snprintf(said, sizeof(said), "the NAT process (pid %d) was killed by signal 9", (int)nat);
	ck_assert_msg(strstr(out, said), "%s", out);
}
END_TEST

/* The launcher runs from the denali-nat opened before (as the supervisor opens it before it
 * gives up the rights to reach the build's folder): a copy opened, then removed, still starts
 * a launcher whose NAT answers, and the launcher keeps no fd of it. */
START_TEST(test_nat_launcher_from_fd)
{
	char copy[] = "/tmp/denali-nat-copy-XXXXXX";
	int out = mkstemp(copy);
	ck_assert_int_ge(out, 0);
	FILE *in = fopen(helper(), "rb");
	ck_assert(in != NULL);
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ck_assert_int_eq(write(out, buf, n), (ssize_t)n);
	fclose(in);
	ck_assert_int_eq(fchmod(out, 0755), 0);
	close(out);
	char err[256];
	int fd = nat_launcher_open_helper(copy, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(unlink(copy), 0); /* no path left to it */
	struct nat_launcher *l = nat_launcher_start_fd(fd, err, sizeof(err));
	ck_assert_msg(l != NULL, "%s", err);
	close(fd);
	struct got g = {0};
	struct vnet_nat *nat = nat_start(l, &g);
	ck_assert_int_eq(send_arp_batch(nat), 0);
	turn_until(nat, &g.arp_replies, NAT_BATCH);
	ck_assert_uint_eq(g.arp_replies, NAT_BATCH);
	/* No fd of the launcher is the copy it was run from (it was close-on-exec). */
	for (int i = 0; i < 64; i++) {
		char path[64], target[256];
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)nat_launcher_pid(l), i);
		ssize_t len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		ck_assert_msg(strstr(target, "denali-nat-copy") == NULL, "the launcher keeps %s",
			      target);
	}
	vnet_nat_destroy(nat);
	nat_launcher_stop(l);
}
END_TEST

/* The launcher gone (killed): the NAT it started serves on; when that one dies too, its end is
 * said, no restart comes (none can), nothing is polled or timed, and frames are dropped and
 * counted. */
START_TEST(test_nat_launcher_gone)
{
	struct got g = {0};
	char err[256];
	struct nat_launcher *l = launcher();
	struct vnet_nat *n = vnet_nat_create(l, deliver, &g, err, sizeof(err));
	ck_assert_msg(n != NULL, "%s", err);
	ck_assert_int_eq(kill(nat_launcher_pid(l), SIGKILL), 0);
	uint8_t f[60];
	size_t len = arp_request(f);
	ck_assert_int_eq(vnet_nat_send(n, f, len), 0);
	vnet_nat_flush(n);
	turn_until(n, &g.arp_replies, 1);
	ck_assert_uint_eq(g.arp_replies, 1);
	struct vnet_nat_counters c;
	vnet_nat_counters(n, &c);
	ck_assert_int_eq(kill(c.pid, SIGKILL), 0);
	time_t deadline = time(NULL) + 20;
	while (c.pid != 0 && time(NULL) < deadline) {
		struct pollfd fds[4];
		unsigned nfds = 0;
		int timeout = 100;
		vnet_nat_fill(n, fds, &nfds, 4, &timeout);
		poll(fds, nfds, timeout);
		vnet_nat_dispatch(n, fds);
		vnet_nat_counters(n, &c);
	}
	ck_assert_int_eq(c.pid, 0);
	ck_assert(nat_launcher_gone(l));
	for (unsigned turn = 0; turn < 3; turn++) {
		struct pollfd fds[4];
		unsigned nfds = 0;
		int timeout = -1;
		ck_assert_int_eq(vnet_nat_fill(n, fds, &nfds, 4, &timeout), 0);
		ck_assert_uint_eq(nfds, 0);
		ck_assert_int_eq(timeout, -1);
	}
	ck_assert_int_eq(vnet_nat_send(n, f, len), -1);
	vnet_nat_counters(n, &c);
	ck_assert_uint_eq(c.restarts, 0);
	ck_assert_uint_eq(c.tx_dropped, 1);
	pid_t pid;
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	ck_assert_int_eq(nat_launcher_spawn(l, sv[1], &pid, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "gone") != NULL, "%s", err);
	close(sv[0]);
	close(sv[1]);
	vnet_nat_destroy(n);
	nat_launcher_stop(l);
}
END_TEST

/* The launcher's messages: the right size and type, and an fd exactly where one belongs. */
START_TEST(test_nat_launch_messages)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	struct nat_launch_msg m = {.type = NAT_LAUNCH_START, .seq = 5}, got;
	int fd;
	/* A start with its socket: one fd, a new number. */
	ck_assert_int_eq(nat_launch_send(sv[0], &m, STDIN_FILENO), 0);
	ck_assert_int_eq(nat_launch_recv(sv[1], &got, &fd), 1);
	ck_assert_uint_eq(got.seq, 5);
	ck_assert_int_gt(fd, STDERR_FILENO);
	close(fd);
	/* A start without one, an end with one, an unknown type, a short record: refused. */
	ck_assert_int_eq(nat_launch_send(sv[0], &m, -1), 0);
	struct nat_launch_msg ended = {.type = NAT_LAUNCH_ENDED, .pid = 9};
	ck_assert_int_eq(nat_launch_send(sv[0], &ended, STDIN_FILENO), 0);
	struct nat_launch_msg odd = {.type = 7};
	ck_assert_int_eq(nat_launch_send(sv[0], &odd, -1), 0);
	ck_assert_int_eq(send(sv[0], &m, sizeof(m) - 1, 0), (ssize_t)sizeof(m) - 1);
	for (unsigned i = 0; i < 4; i++) {
		fd = 99;
		errno = 0;
		ck_assert_int_eq(nat_launch_recv(sv[1], &got, &fd), -1);
		ck_assert_int_eq(errno, EPROTO);
		ck_assert_int_eq(fd, -1);
	}
	/* A failed start carries no fd; an end none either. */
	struct nat_launch_msg failed = {.type = NAT_LAUNCH_STARTED, .seq = 1, .err = EAGAIN};
	ck_assert_int_eq(nat_launch_send(sv[0], &failed, -1), 0);
	ck_assert_int_eq(nat_launch_recv(sv[1], &got, &fd), 1);
	ck_assert_int_eq(got.err, EAGAIN);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(nat_launch_recv(sv[1], &got, &fd), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(sv[0]);
	ck_assert_int_eq(nat_launch_recv(sv[1], &got, &fd), 0);
	close(sv[1]);
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
	tcase_add_test(tc, test_nat_launcher_from_fd);
	tcase_add_test(tc, test_nat_launcher_gone);
	tcase_add_test(tc, test_nat_launch_messages);
	suite_add_tcase(s, tc);
	return s;
}
