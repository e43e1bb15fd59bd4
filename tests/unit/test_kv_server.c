/* kv's server (kv_server.c) on the test wire, its store on the in-memory disk, with fake
 * dn_timer functions: every command, pipelining, binary and large values, errors that keep or
 * close the connection, several clients at once, restarts, read-only disks, the idle limit and
 * the connection limit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_timers.h"
#include "kv_disk.h"
#include "kv_proto.h"
#include "kv_server.h"
#include "kv_store.h"
#include "kv_util.h"
#include "net_wire.h"
#include "unit.h"
#include "wire_client.h"

#define SEC 1000000000ull
#define PORT 6000

static struct kv_disk *disk;

/* ---- the wire and the disk, run together ---- */
struct run_ctx {
	int (*done)(void *arg);
	void *arg;
};

static int run_pause(void *p)
{
	struct run_ctx *r = p;
	return disk->nq > 0 || (r->done && r->done(r->arg));
}

/* Runs the wire, and the disk whenever it has requests, until done(arg) (or limit_ns of
 * quiet). Returns done(arg). */
static int run_until(struct wire *w, int (*done)(void *arg), void *arg, uint64_t limit_ns)
{
	struct run_ctx r = {done, arg};
	for (;;) {
		wire_run(w, run_pause, &r, limit_ns);
		if (disk->nq == 0)
			return done ? done(arg) : 0;
		kv_disk_run(disk);
	}
}

static int disk_busy(void *arg)
{
	(void)arg;
	return disk->nq > 0;
}

/* ---- a client on side 0 (wire_client.h) ---- */

/* A connected client that will send tx[0, len) and is done once want bytes came back. */
static struct wire_client *client_new(struct wire *w, const char *tx, size_t len, size_t want)
{
	return wire_client_connect(w, PORT, tx, len, want, 1 << 20);
}

/* Sends tx and runs until want bytes came back (0: until the server closes). */
static struct wire_client *client_run(struct wire *w, const char *tx, size_t len, size_t want)
{
	struct wire_client *c = client_new(w, tx, len, want);
	run_until(w, wire_client_done, c, 10 * SEC);
	return c;
}

static struct kv_store *server_store;

static struct wire *server_new(uint64_t seed, int readonly)
{
	struct wire *w = wire_new(seed);
	fake_timers_use(w);
	if (!disk)
		disk = kv_disk_new(4096, seed);
	disk->dev.readonly = readonly;
	free(server_store);
	server_store = kvt_mount_ok(disk, KV_INDEX_MAX);
	ck_assert_int_eq(kv_server_start(w->st[1], PORT, server_store), 0);
	return w;
}

static void server_free(struct wire *w)
{
	wire_free(w);
	free(server_store);
	server_store = NULL;
}

/* The end of a test: the server and its disk freed. */
static void server_end(struct wire *w)
{
	server_free(w);
	kv_disk_free(disk);
	disk = NULL;
}

/* The client received exactly want (its first len bytes). */
static void expect_rx(const struct wire_client *c, const char *want, size_t len)
{
	ck_assert_msg(c->rx_len == len && memcmp(c->rx, want, len) == 0,
		      "got %zu bytes: '%.*s'\nwant %zu bytes: '%.*s'", c->rx_len, (int)c->rx_len,
		      c->rx, len, (int)len, want);
}

#define EXPECT_RX(c, s) expect_rx((c), (s), sizeof(s) - 1)
/* Appends the string literal s (NULs and all) at buf + n. */
#define APPEND(buf, n, s) (memcpy((buf) + (n), (s), sizeof(s) - 1), (n) += sizeof(s) - 1)

START_TEST(test_kv_server_pipelined)
{
	disk = NULL;
	struct wire *w = server_new(1, 0);
	const char req[] = "PUT a 5\r\nhello\r\n"
			   "GET a\r\n"
			   "GET b\r\n"
			   "PUT b 0\n\n"
			   "GET b\n"
			   "DEL a\r\n"
			   "DEL a\r\n"
			   "GET a\r\n"
			   "\r\n"
			   "STATS\r\n";
	const char want[] = "OK\r\nVALUE 5\r\nhello\r\nNOTFOUND\r\nOK\r\nVALUE 0\r\n\r\n"
			    "OK\r\nNOTFOUND\r\nNOTFOUND\r\n";
	struct wire_client *c = client_run(w, req, sizeof(req) - 1, sizeof(want) - 1 + 50);
	ck_assert_uint_gt(c->rx_len, sizeof(want) - 1);
	ck_assert_int_eq(memcmp(c->rx, want, sizeof(want) - 1), 0);
	const char *stats = c->rx + sizeof(want) - 1;
	ck_assert_int_eq(strncmp(stats, "STATS keys=1 log_bytes=", 23), 0);
	ck_assert_ptr_nonnull(strstr(stats, " compactions=0 "));
	ck_assert_ptr_nonnull(strstr(stats, " connections=1\r\n"));
	ck_assert(!c->peer_closed); /* kept open */
	wire_client_free(c);
	server_end(w);
}
END_TEST

START_TEST(test_kv_server_values)
{
	/* binary values (CR, LF, NUL inside), the largest value (twice the send buffer), and
	 * values that survive a restart */
	disk = NULL;
	struct wire *w = server_new(2, 0);
	static char req[2 * KV_VALUE_MAX + 256], want[2 * KV_VALUE_MAX + 256];
	static uint8_t big[KV_VALUE_MAX];
	kvt_value(big, sizeof(big), 42);
	size_t n = 0, m = 0;
	APPEND(req, n, "PUT bin 6\r\na\r\n\0\nb\r\nPUT big 65536\r\n");
	memcpy(req + n, big, sizeof(big));
	n += sizeof(big);
	APPEND(req, n, "\r\nGET bin\r\nGET big\r\n");
	APPEND(want, m, "OK\r\nOK\r\nVALUE 6\r\na\r\n\0\nb\r\nVALUE 65536\r\n");
	memcpy(want + m, big, sizeof(big));
	m += sizeof(big);
	APPEND(want, m, "\r\n");
	struct wire_client *c = client_run(w, req, n, m);
	expect_rx(c, want, m);
	wire_client_free(c);
	server_free(w);

	w = server_new(3, 0); /* the same disk, mounted again */
	const char get[] = "GET bin\r\n";
	c = client_run(w, get, sizeof(get) - 1, 20);
	EXPECT_RX(c, "VALUE 6\r\na\r\n\0\nb\r\n");
	wire_client_free(c);
	server_end(w);
}
END_TEST

START_TEST(test_kv_server_errors)
{
	disk = NULL;
	struct wire *w = server_new(4, 0);
	/* refused requests: the connection goes on */
	const char req[] = "FOO\r\nget a\r\nGET\r\nPUT bad\x01key 3\r\nabc\r\nGET bad\x01key\r\n"
			   "STATS x\r\nGET ok\r\n";
	struct wire_client *c = client_run(w, req, sizeof(req) - 1, 0);
	ck_assert(!c->peer_closed);
	EXPECT_RX(c, "ERR unknown command\r\nERR unknown command\r\nERR usage: GET <key>\r\n"
		     "ERR bad character in key\r\nERR bad character in key\r\nERR usage: STATS\r\n"
		     "NOTFOUND\r\n");
	wire_client_free(c);

	/* broken framing: an answer, then the close; what follows is never answered */
	static const struct {
		const char *req, *want;
	} fatal[] = {
		{"PUT a 65537\r\nGET a\r\n", "ERR usage: PUT <key> <length 0-65536>\r\n"},
		{"PUT a x\r\nGET a\r\n", "ERR usage: PUT <key> <length 0-65536>\r\n"},
		{"PUT a 3\r\nabcX\r\nGET a\r\n", "ERR value not followed by a line end\r\n"},
		{"GET a\r\nPUT a\r\n", "NOTFOUND\r\nERR usage: PUT <key> <length 0-65536>\r\n"},
	};
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
		c = client_run(w, fatal[i].req, strlen(fatal[i].req), 0);
		ck_assert(c->peer_closed);
		expect_rx(c, fatal[i].want, strlen(fatal[i].want));
		wire_client_free(c);
	}
	static char longline[4 * KV_LINE_MAX];
	memset(longline, 'x', sizeof(longline));
	c = client_run(w, longline, sizeof(longline), 0);
	ck_assert(c->peer_closed);
	EXPECT_RX(c, "ERR line too long\r\n");
	wire_client_free(c);
	wire_settle(w, SEC);
	ck_assert_uint_eq(net_tcp_active(w->st[1]), 1); /* only the listener */
	/* a PUT that never happened */
	const char get[] = "GET a\r\n";
	c = client_run(w, get, sizeof(get) - 1, 10);
	EXPECT_RX(c, "NOTFOUND\r\n");
	wire_client_free(c);
	server_end(w);
}
END_TEST

struct many {
	struct wire_client *c[KV_SERVER_CONNS];
	int n;
};

static int many_done(void *arg)
{
	struct many *m = arg;
	for (int i = 0; i < m->n; i++)
		if (!wire_client_done(m->c[i]))
			return 0;
	return 1;
}

START_TEST(test_kv_server_many_clients)
{
	disk = NULL;
	struct wire *w = server_new(5, 0);
	uint64_t batches = kv_stats(server_store)->batches;
	static char req[KV_SERVER_CONNS][256], want[KV_SERVER_CONNS][256];
	struct many m = {.n = KV_SERVER_CONNS};
	for (int i = 0; i < m.n; i++) {
		/* each client overwrites its key 5 times, then reads it */
		size_t n = 0;
		for (int k = 0; k < 5; k++)
			n += (size_t)sprintf(req[i] + n, "PUT key-%d 4\r\nv%d-%d\r\n", i, i % 10,
					     k);
		n += (size_t)sprintf(req[i] + n, "GET key-%d\r\n", i);
		size_t len = (size_t)sprintf(
			want[i], "OK\r\nOK\r\nOK\r\nOK\r\nOK\r\nVALUE 4\r\nv%d-4\r\n", i % 10);
		m.c[i] = client_new(w, req[i], n, len);
	}
	ck_assert(run_until(w, many_done, &m, 10 * SEC));
	for (int i = 0; i < m.n; i++) {
		expect_rx(m.c[i], want[i], strlen(want[i]));
		wire_client_free(m.c[i]);
	}
	/* 80 puts from 16 clients at once: group commit wrote far fewer batches */
	uint64_t used = kv_stats(server_store)->batches - batches;
	ck_assert_uint_lt(used, 5 * KV_SERVER_CONNS / 2);
	ck_assert_uint_eq(kv_stats(server_store)->keys, KV_SERVER_CONNS);

	/* one more than the limit is told so */
	wire_settle(w, 5 * SEC);
	for (int i = 0; i < m.n; i++)
		m.c[i] = client_new(w, "", 0, 0);
	wire_settle(w, SEC);
	struct wire_client *extra = client_run(w, "", 0, 0);
	ck_assert(extra->peer_closed);
	EXPECT_RX(extra, "ERR too many connections\r\n");
	wire_client_free(extra);
	for (int i = 0; i < m.n; i++)
		wire_client_free(m.c[i]); /* resets: the server frees their slots */
	wire_settle(w, SEC);
	const char get[] = "GET key-3\r\n";
	struct wire_client *c = client_run(w, get, sizeof(get) - 1, 17);
	EXPECT_RX(c, "VALUE 4\r\nv3-4\r\n");
	wire_client_free(c);
	server_end(w);
}
END_TEST

START_TEST(test_kv_server_readonly)
{
	disk = NULL;
	struct wire *w = server_new(6, 0);
	const char put[] = "PUT a 1\r\nx\r\n";
	struct wire_client *c = client_run(w, put, sizeof(put) - 1, 4);
	EXPECT_RX(c, "OK\r\n");
	wire_client_free(c);
	server_free(w);
	w = server_new(7, 1);
	const char req[] = "GET a\r\nPUT a 1\r\ny\r\nDEL a\r\nGET a\r\n";
	const char want[] = "VALUE 1\r\nx\r\nERR read-only store\r\nERR read-only store\r\n"
			    "VALUE 1\r\nx\r\n";
	c = client_run(w, req, sizeof(req) - 1, sizeof(want) - 1);
	EXPECT_RX(c, want);
	wire_client_free(c);
	server_end(w);
}
END_TEST

START_TEST(test_kv_server_closes)
{
	disk = NULL;
	struct wire *w = server_new(8, 0);
	/* idle for the limit: the server closes */
	const char get[] = "GET a\r\n";
	struct wire_client *c = client_run(w, get, sizeof(get) - 1, 10);
	EXPECT_RX(c, "NOTFOUND\r\n");
	wire_client_expect_idle_close(w, c, KV_SERVER_IDLE_NS);
	wire_client_free(c);

	/* requests then FIN: answered, then closed */
	const char put[] = "PUT a 3\r\nabc\r\nGET a\r\n";
	c = client_new(w, put, sizeof(put) - 1, 0);
	wire_settle(w, 0); /* connected, request sent */
	net_tcp_close(c->tcp);
	c->closed = 1; /* no more callbacks */
	run_until(w, NULL, NULL, 5 * SEC);
	ck_assert_uint_eq(net_tcp_active(w->st[1]), 1);
	wire_client_free(c);
	c = client_run(w, "GET a\r\n", 7, 14);
	EXPECT_RX(c, "VALUE 3\r\nabc\r\n");
	wire_client_free(c);

	/* a reset while the store works for the connection: the store finishes, the slot
	 * comes back */
	for (int i = 0; i < 2 * KV_SERVER_CONNS; i++) {
		c = client_new(w, put, sizeof(put) - 1, 0);
		ck_assert(wire_run(w, disk_busy, NULL, SEC)); /* the store has the PUT */
		wire_client_free(c);
		wire_settle(w, SEC); /* the reset arrives first */
		kv_disk_run(disk);
		run_until(w, NULL, NULL, SEC);
	}
	ck_assert_uint_eq(net_tcp_active(w->st[1]), 1);
	c = client_run(w, "GET a\r\n", 7, 14);
	EXPECT_RX(c, "VALUE 3\r\nabc\r\n");
	wire_client_free(c);
	server_end(w);
}
END_TEST

Suite *kv_server_suite(void)
{
	Suite *s = suite_create("kv_server");
	TCase *tc = tcase_create("server");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kv_server_pipelined);
	tcase_add_test(tc, test_kv_server_values);
	tcase_add_test(tc, test_kv_server_errors);
	tcase_add_test(tc, test_kv_server_many_clients);
	tcase_add_test(tc, test_kv_server_readonly);
	tcase_add_test(tc, test_kv_server_closes);
	suite_add_tcase(s, tc);
	return s;
}
