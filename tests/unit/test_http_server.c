/* httpd's server (http_server.c) on the test wire, with fake dn_timer functions: keep-alive,
 * pipelining, streaming /big, errors and closes, the idle limit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content.h"
#include "denali.h"
#include "fake_timers.h"
#include "http_parse.h"
#include "http_server.h"
#include "net_wire.h"
#include "unit.h"
#include "wire_client.h"

#define SEC 1000000000ull

/* ---- a client on side 0 (wire_client.h) ---- */

static struct wire *server_new(uint64_t seed)
{
	struct wire *w = wire_new(seed);
	fake_timers_use(w);
	content_init("test");
	ck_assert_int_eq(http_server_start(w->st[1], 80), 0);
	return w;
}

/* Connects, sends request, and runs until want bytes came back or the server closed. */
static struct wire_client *client_run(struct wire *w, const char *request, size_t len, size_t want)
{
	struct wire_client *c = wire_client_connect(w, 80, request, len, want, 3 << 20);
	wire_run(w, wire_client_done, c, 10 * SEC);
	return c;
}

/* One response of the stream: its status, headers and body. */
struct resp {
	int status;
	char head[1024];
	uint64_t length;
	const uint8_t *body;
};

/* Takes the response at *off (HEAD: no body). Fails the test if there is none. */
static void next_response(struct wire_client *c, size_t *off, int head_only, struct resp *r)
{
	const uint8_t *p = (const uint8_t *)c->rx + *off;
	size_t left = c->rx_len - *off, h = 0;
	while (h + 4 <= left && memcmp(p + h, "\r\n\r\n", 4) != 0)
		h++;
	ck_assert_msg(h + 4 <= left, "no response head at %zu", *off);
	ck_assert_uint_lt(h + 4, sizeof(r->head));
	memcpy(r->head, p, h + 4);
	r->head[h + 4] = '\0';
	ck_assert_int_eq(memcmp(r->head, "HTTP/1.1 ", 9), 0);
	r->status = atoi(r->head + 9);
	const char *cl = strstr(r->head, "\r\nContent-Length: ");
	ck_assert_ptr_nonnull(cl);
	r->length = strtoull(cl + 18, NULL, 10);
	ck_assert_ptr_nonnull(strstr(r->head, "\r\nServer: denali-httpd\r\n"));
	ck_assert_ptr_nonnull(strstr(r->head, "\r\nContent-Type: "));
	r->body = p + h + 4;
	*off += h + 4;
	if (!head_only) {
		ck_assert_uint_le(*off + r->length, c->rx_len);
		*off += r->length;
	}
}

static int closes(const struct resp *r)
{
	return strstr(r->head, "\r\nConnection: close\r\n") != NULL;
}

START_TEST(test_server_get_keep_alive)
{
	struct wire *w = server_new(1);
	const char *req = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
	struct wire_client *c = client_run(w, req, strlen(req), 1);
	wire_settle(w, SEC);
	size_t off = 0;
	struct resp r;
	next_response(c, &off, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(!closes(&r));
	ck_assert_ptr_nonnull(strstr(r.head, "\r\nContent-Type: text/html; charset=utf-8\r\n"));
	ck_assert_ptr_nonnull(memmem(r.body, r.length, "Hello from test on Denali", 25));
	ck_assert_uint_eq(off, c->rx_len);
	ck_assert(!c->peer_closed); /* kept alive */

	/* idle for 30 s: the server closes */
	wire_client_expect_idle_close(w, c, HTTP_SERVER_IDLE_NS);
	wire_client_free(c);
	wire_free(w);
}
END_TEST

START_TEST(test_server_pipelined)
{
	struct wire *w = server_new(2);
	const char *req = "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
			  "HEAD /big HTTP/1.1\r\nHost: t\r\n\r\n"
			  "GET /nope?x HTTP/1.1\r\nHost: t\r\n\r\n"
			  "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
			  "GET /big HTTP/1.1\r\nHost: t\r\n\r\n"
			  "GET /hello.txt HTTP/1.1\r\nConnection: close\r\n\r\n"
			  "GET / HTTP/1.1\r\n\r\n"; /* after the close: never answered */
	struct wire_client *c = client_run(w, req, strlen(req), 0);
	ck_assert(c->peer_closed);
	size_t off = 0;
	struct resp r;
	next_response(c, &off, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.length, strlen("Hello, world! This is a text file served by "
					   "denali-httpd.\n"));
	ck_assert_int_eq(memcmp(r.body, "Hello, world!", 13), 0);
	next_response(c, &off, 1, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.length, CONTENT_BIG_SIZE);
	ck_assert_ptr_nonnull(strstr(r.head, "Content-Type: application/octet-stream\r\n"));
	next_response(c, &off, 0, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert(!closes(&r));
	next_response(c, &off, 0, &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_ptr_nonnull(strstr(r.head, "\r\nAllow: GET, HEAD\r\n"));
	ck_assert(!closes(&r));
	next_response(c, &off, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.length, CONTENT_BIG_SIZE);
	size_t wrong = 0;
	for (size_t i = 0; i < CONTENT_BIG_SIZE; i++)
		wrong += r.body[i] != ((i * 31 + 7) & 0xff);
	ck_assert_uint_eq(wrong, 0);
	next_response(c, &off, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(closes(&r));
	ck_assert_uint_eq(off, c->rx_len);
	wire_client_free(c);
	wire_free(w);
}
END_TEST

START_TEST(test_server_http10)
{
	struct wire *w = server_new(3);
	const char *req = "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
			  "GET /big HTTP/1.0\r\n\r\n";
	struct wire_client *c = client_run(w, req, strlen(req), 0);
	ck_assert(c->peer_closed);
	size_t off = 0;
	struct resp r;
	next_response(c, &off, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.head, "\r\nConnection: keep-alive\r\n"));
	next_response(c, &off, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(closes(&r));
	ck_assert_uint_eq(r.length, CONTENT_BIG_SIZE);
	ck_assert_uint_eq(off, c->rx_len);
	wire_client_free(c);
	wire_free(w);
}
END_TEST

static void expect_error(uint64_t seed, const char *req, size_t len, int status)
{
	struct wire *w = server_new(seed);
	struct wire_client *c = client_run(w, req, len, 0);
	ck_assert(c->peer_closed);
	size_t off = 0;
	struct resp r;
	next_response(c, &off, 0, &r);
	ck_assert_int_eq(r.status, status);
	ck_assert(closes(&r));
	ck_assert_uint_eq(off, c->rx_len);
	wire_client_free(c);
	wire_free(w);
}

START_TEST(test_server_errors)
{
	const char *v2 = "GET / HTTP/2.0\r\n\r\n";
	expect_error(4, v2, strlen(v2), 505);
	const char *bad = "GET / HTTP/1.1\r\nBad Header\r\n\r\n";
	expect_error(5, bad, strlen(bad), 400);
	const char *te = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	expect_error(6, te, strlen(te), 501);
	const char *huge = "POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n";
	expect_error(7, huge, strlen(huge), 413);
	static char big[3 * HTTP_HEAD_MAX];
	size_t n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\n");
	while (n + 20 < sizeof(big))
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Pad: 12345678\r\n");
	expect_error(8, big, n, 431);
}
END_TEST

START_TEST(test_server_peer_close)
{
	/* A client that sends its request and closes still gets the answer; a half head then
	 * FIN gets nothing but a close. */
	struct wire *w = server_new(9);
	const char *req = "GET /hello.txt HTTP/1.1\r\n\r\n";
	struct wire_client *c = client_run(w, req, strlen(req), 1);
	net_tcp_close(c->tcp);
	c->closed = 1; /* no more callbacks */
	wire_settle(w, 5 * SEC);
	ck_assert_uint_eq(net_tcp_active(w->st[1]), 1); /* only the listener */
	wire_client_free(c);

	const char *half = "GET /hello.txt HTTP/1.1\r\nHo";
	c = client_run(w, half, strlen(half), 0);
	ck_assert(!c->peer_closed);
	net_tcp_close(c->tcp);
	c->closed = 1;
	wire_settle(w, 5 * SEC);
	ck_assert_uint_eq(c->rx_len, 0);
	ck_assert_uint_eq(net_tcp_active(w->st[1]), 1);
	wire_client_free(c);
	wire_free(w);
}
END_TEST

/* ---- one request per connection (httperf, ab without -k): far more connections than slots ---- */

/* What the client sees on the wire: resets from the server, SYNs (retries included) it sends. */
struct flag_tally {
	unsigned rst_to_client, syn_from_client;
};

static int tally_flags(struct wire *w, int from, const uint8_t *f, size_t len, void *arg)
{
	(void)w;
	struct flag_tally *t = arg;
	/* Ethernet, a 20-byte IPv4 header (the stack sends no options), then TCP. */
	if (len < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 6)
		return 1;
	uint8_t flags = f[14 + 20 + 13];
	if (from == 1 && (flags & 0x04))
		t->rst_to_client++;
	if (from == 0 && (flags & 0x02))
		t->syn_from_client++;
	return 1;
}

struct short_run {
	struct wire *w;
	struct wire_client *c[16];
	uint64_t started[16];
	unsigned conc;
};

/* Done when any running client is done (for wire_run). */
static int any_done(void *arg)
{
	struct short_run *r = arg;
	for (unsigned i = 0; i < r->conc; i++)
		if (r->c[i] && wire_client_done(r->c[i]))
			return 1;
	return 0;
}

/* Runs total connections, conc at a time, each "GET /hello.txt HTTP/1.0": every one must get
 * its whole response and the server's close, with no reset, no SYN retry and no dropped SYN;
 * the slowest must take far less than an initial RTO (1 s) of fake time. */
static void short_connections(uint64_t seed, unsigned total, unsigned conc)
{
	struct wire *w = server_new(seed);
	w->latency_ns = 100000; /* 100 us each way */
	struct flag_tally t = {0};
	w->tap = tally_flags;
	w->tap_arg = &t;
	static const char req[] = "GET /hello.txt HTTP/1.0\r\n\r\n";
	struct short_run r = {.w = w, .conc = conc};
	unsigned started = 0, finished = 0;
	uint64_t slowest = 0;
	while (finished < total) {
		/* One alone first: the client's ARP queue would drop SYNs sent before the reply. */
		unsigned room = started ? conc : 1;
		for (unsigned i = 0; i < room && started < total; i++)
			if (!r.c[i]) {
				r.c[i] = wire_client_connect(w, 80, req, sizeof(req) - 1, 0, 4096);
				r.started[i] = w->now;
				started++;
			}
		ck_assert_msg(wire_run(w, any_done, &r, 10 * SEC), "stalled after %u", finished);
		for (unsigned i = 0; i < conc; i++) {
			struct wire_client *c = r.c[i];
			if (!c || !wire_client_done(c))
				continue;
			ck_assert_msg(!c->closed, "connection %u reset", finished);
			size_t off = 0;
			struct resp resp;
			next_response(c, &off, 0, &resp);
			ck_assert_int_eq(resp.status, 200);
			ck_assert(closes(&resp));
			ck_assert_uint_eq(off, c->rx_len);
			if (w->now - r.started[i] > slowest)
				slowest = w->now - r.started[i];
			net_tcp_close(c->tcp);
			c->closed = 1; /* released: no abort */
			wire_client_free(c);
			r.c[i] = NULL;
			finished++;
		}
	}
	wire_settle(w, SEC / 10);
	ck_assert_uint_eq(t.rst_to_client, 0);
	ck_assert_uint_eq(t.syn_from_client, total);
	ck_assert_uint_eq(net_stats(w->st[0])->tcp_retransmits, 0);
	ck_assert_uint_eq(net_stats(w->st[1])->tcp_syn_dropped, 0);
	ck_assert_uint_gt(net_stats(w->st[1])->tcp_tw_recycled, 0);
	ck_assert_msg(slowest < SEC / 10, "slowest connection took %llu ns",
		      (unsigned long long)slowest);
	wire_free(w);
}

START_TEST(test_server_short_connections)
{
	/* In sequence, then 16 at a time: 5 and 10 times the stack's connection slots, all within
	 * one TIME_WAIT (2 s of fake time). */
	short_connections(10, 5 * NET_TCP_CONNS, 1);
	short_connections(11, 10 * NET_TCP_CONNS, 16);
}
END_TEST

Suite *http_server_suite(void)
{
	Suite *s = suite_create("http_server");
	TCase *tc = tcase_create("server");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_server_get_keep_alive);
	tcase_add_test(tc, test_server_pipelined);
	tcase_add_test(tc, test_server_http10);
	tcase_add_test(tc, test_server_errors);
	tcase_add_test(tc, test_server_peer_close);
	tcase_add_test(tc, test_server_short_connections);
	suite_add_tcase(s, tc);
	return s;
}
