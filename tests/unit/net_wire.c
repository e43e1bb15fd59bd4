/* The in-memory wire between two test stacks (see net_wire.h). */
#include "net_wire.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t macs[2][6] = {{0x02, 0, 0, 0, 0, 0x01}, {0x02, 0, 0, 0, 0, 0x02}};

const uint8_t *wire_mac(int side)
{
	return macs[side];
}

uint64_t wire_rand(struct wire *w)
{
	/* xorshift64* */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ull;
}

static uint64_t wire_now(void *ctx)
{
	return ((struct wire_end *)ctx)->w->now;
}

static int push(struct wire *w, int to, const void *frame, size_t len)
{
	struct wire_queue *q = &w->q[to];
	if (q->count == WIRE_QLEN) {
		w->overflow++;
		return -1;
	}
	struct wire_frame *f = &q->f[(q->head + q->count++) % WIRE_QLEN];
	f->at = w->now + w->latency_ns;
	f->len = (uint16_t)len;
	memcpy(f->data, frame, len);
	if (q->count >= 2 && wire_rand(w) % 1000 < w->reorder_pm) {
		struct wire_frame *prev = &q->f[(q->head + q->count - 2) % WIRE_QLEN], tmp;
		tmp = *prev;
		*prev = *f;
		*f = tmp;
		uint64_t at = prev->at;
		prev->at = f->at;
		f->at = at;
	}
	return 0;
}

static int wire_tx(void *ctx, const void *frame, size_t len)
{
	struct wire_end *e = ctx;
	struct wire *w = e->w;
	ck_assert_uint_le(len, NET_FRAME_MAX);
	ck_assert_uint_ge(len, 60);
	w->sent++;
	if (w->tap && !w->tap(w, e->side, frame, len, w->tap_arg))
		return 0;
	if (wire_rand(w) % 1000 < w->loss_pm) {
		w->lost++;
		return 0;
	}
	if (push(w, !e->side, frame, len) < 0)
		return -1;
	if (wire_rand(w) % 1000 < w->dup_pm)
		push(w, !e->side, frame, len);
	return 0;
}

struct wire *wire_new(uint64_t seed)
{
	struct wire *w = calloc(1, sizeof(*w));
	ck_assert_ptr_nonnull(w);
	w->now = 1000000000ull;
	w->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	for (int i = 0; i < 2; i++) {
		w->end[i].w = w;
		w->end[i].side = i;
		w->st[i] = malloc(sizeof(struct net_stack));
		ck_assert_ptr_nonnull(w->st[i]);
		struct net_config cfg = {.ip = i ? WIRE_IP_B : WIRE_IP_A,
					 .prefix = 24,
					 .secret = seed + (uint64_t)i};
		memcpy(cfg.mac, macs[i], 6);
		struct net_driver drv = {.tx = wire_tx, .now_ns = wire_now, .ctx = &w->end[i]};
		net_init(w->st[i], &cfg, &drv);
	}
	return w;
}

void wire_free(struct wire *w)
{
	free(w->st[0]);
	free(w->st[1]);
	free(w);
}

/* Delivers one due frame to side `to`. Returns 1 if it did. */
static int deliver(struct wire *w, int to)
{
	struct wire_queue *q = &w->q[to];
	if (!q->count || q->f[q->head].at > w->now)
		return 0;
	/* Copy out: the stack may transmit (and so push) while handling it. */
	static struct wire_frame f;
	f = q->f[q->head];
	q->head = (q->head + 1) % WIRE_QLEN;
	q->count--;
	net_input(w->st[to], f.data, f.len);
	return 1;
}

static uint64_t next_event(const struct wire *w)
{
	uint64_t d = UINT64_MAX;
	for (int i = 0; i < 2; i++) {
		uint64_t t = net_next_deadline(w->st[i]);
		if (t < d)
			d = t;
		if (w->q[i].count && w->q[i].f[w->q[i].head].at < d)
			d = w->q[i].f[w->q[i].head].at;
	}
	return d;
}

int wire_run(struct wire *w, int (*done)(void *arg), void *arg, uint64_t limit_ns)
{
	uint64_t end = w->now + limit_ns, stuck_at = w->now;
	unsigned stuck = 0, storm = 0;
	uint64_t storm_at = w->now;
	for (;;) {
		int moved = 0;
		while (deliver(w, 0) | deliver(w, 1)) {
			moved = 1;
			/* Frames that never stop at one instant: a storm between the stacks. */
			storm = w->now == storm_at ? storm + 1 : 0;
			storm_at = w->now;
			ck_assert_msg(storm < 2000000, "frame storm at %llu",
				      (unsigned long long)w->now);
		}
		if (done && done(arg))
			return 1;
		if (moved)
			continue;
		uint64_t next = next_event(w);
		if (next == UINT64_MAX || next > end) {
			w->now = end; /* the time asked for has passed, quietly */
			return done ? done(arg) : 0;
		}
		if (next > w->now)
			w->now = next;
		/* A deadline that polling does not move would spin here forever. */
		stuck = w->now == stuck_at ? stuck + 1 : 0;
		stuck_at = w->now;
		ck_assert_msg(stuck < 10000, "timers due at %llu never fire",
			      (unsigned long long)w->now);
		net_poll(w->st[0]);
		net_poll(w->st[1]);
	}
}

void wire_settle(struct wire *w, uint64_t ns)
{
	wire_run(w, NULL, NULL, ns);
}

uint16_t wire_csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
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

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t wire_ip_frame(uint8_t *buf, int from, int to, uint8_t proto, const void *payload, size_t len)
{
	memcpy(buf, macs[to], 6);
	memcpy(buf + 6, macs[from], 6);
	put16(buf + 12, 0x0800);
	uint8_t *ip = buf + 14;
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(20 + len));
	put16(ip + 4, 0x1234);
	put16(ip + 6, 0);
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, from ? WIRE_IP_B : WIRE_IP_A);
	put32(ip + 16, to ? WIRE_IP_B : WIRE_IP_A);
	memcpy(ip + 20, payload, len);
	size_t flen = 34 + len;
	if (flen < 60) {
		memset(buf + flen, 0, 60 - flen);
		flen = 60;
	}
	wire_fix_checksums(buf, flen);
	return flen;
}

size_t wire_udp_frame(uint8_t *buf, int from, int to, uint16_t sport, uint16_t dport,
		      const void *data, size_t len)
{
	uint8_t u[1500];
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(8 + len));
	put16(u + 6, 0);
	if (len)
		memcpy(u + 8, data, len);
	return wire_ip_frame(buf, from, to, 17, u, 8 + len);
}

size_t wire_tcp_frame(uint8_t *buf, int from, int to, uint16_t sport, uint16_t dport, uint32_t seq,
		      uint32_t ack, uint8_t flags, uint16_t wnd, const void *data, size_t len)
{
	uint8_t t[1500];
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, wnd);
	put32(t + 16, 0);
	if (len)
		memcpy(t + 20, data, len);
	return wire_ip_frame(buf, from, to, 6, t, 20 + len);
}

void wire_fix_checksums(uint8_t *f, size_t len)
{
	if (len < 34 || f[12] != 0x08 || f[13] != 0x00)
		return;
	uint8_t *ip = f + 14;
	size_t ihl = (size_t)(ip[0] & 15) * 4, total = (size_t)(ip[2] << 8 | ip[3]);
	if (ihl < 20 || 14 + ihl > len)
		return;
	put16(ip + 10, 0);
	put16(ip + 10, wire_csum(ip, ihl, 0));
	if (total < ihl || 14 + total > len)
		return;
	uint8_t *l4 = ip + ihl;
	size_t l4len = total - ihl;
	uint32_t pseudo = (get32(ip + 12) >> 16) + (get32(ip + 12) & 0xffff) +
			  (get32(ip + 16) >> 16) + (get32(ip + 16) & 0xffff) + ip[9] +
			  (uint32_t)l4len;
	if (ip[9] == 6 && l4len >= 20) {
		put16(l4 + 16, 0);
		put16(l4 + 16, wire_csum(l4, l4len, pseudo));
	} else if (ip[9] == 17 && l4len >= 8) {
		put16(l4 + 6, 0);
		uint16_t s = wire_csum(l4, l4len, pseudo);
		put16(l4 + 6, s ? s : 0xffff);
	} else if (ip[9] == 1 && l4len >= 8) {
		put16(l4 + 2, 0);
		put16(l4 + 2, wire_csum(l4, l4len, 0));
	}
}
