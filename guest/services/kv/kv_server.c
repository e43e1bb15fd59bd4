/* kv's server: a connection reads a request line (and a PUT's value), hands the request to the
 * store, and sends the answer once the store is done; only then is the next request read, so
 * pipelined requests are answered in order and a client that never reads stalls only itself.
 * A GET's value is sent from the buffer the store read it into, as the send buffer drains. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "denali.h"
#include "kv_proto.h"
#include "kv_server.h"
#include "kv_store.h"
#include "net.h"

#define KV_IN_MAX 1024 /* received bytes not yet consumed: a few pipelined lines */
#define KV_OUT_MAX 512 /* a response line */

enum phase {
	PH_LINE,      /* reading a request line */
	PH_VALUE,     /* reading a PUT's value into buf */
	PH_VALUE_END, /* reading the line end after it */
	PH_STORE,     /* the store has the request */
	PH_SEND,      /* sending the answer */
};

struct conn {
	int used;	     /* the slot is taken: by a connection, or a request the store has */
	struct net_tcp *tcp; /* NULL once closed */
	struct dn_timer idle;
	enum phase phase;
	int peer_closed; /* the peer sent FIN */
	int close_after; /* close once the answer is out */
	char in[KV_IN_MAX];
	size_t in_len;
	enum kv_cmd cmd;
	uint8_t key[KV_KEY_MAX]; /* the request's key (in[] moves on) */
	size_t klen;
	size_t vlen, value_got;
	const char *bad_put; /* a PUT refused once its value is read: why */
	struct kv_op op;
	char out[KV_OUT_MAX];
	size_t out_len, out_off;
	const uint8_t *body; /* a GET's value, then "\r\n" */
	size_t body_len, body_off;
	size_t trailer_off;
	uint8_t buf[KV_GET_BUF]; /* a PUT's value as it comes, or the record a GET reads */
};

static struct conn conns[KV_SERVER_CONNS];
static struct kv_store *store;
static unsigned char discard[1024];

static void conn_on_idle(void *arg);
static void conn_pump(struct conn *c);

static void conn_touch(struct conn *c)
{
	dn_timer_start(&c->idle, dn_time_ns() + KV_SERVER_IDLE_NS, conn_on_idle, c);
}

/* Closes the connection (gracefully: queued bytes still go out; or with a reset). The slot
 * stays taken while the store still has its request. */
static void conn_close(struct conn *c, int abort)
{
	dn_timer_cancel(&c->idle);
	if (abort)
		net_tcp_abort(c->tcp);
	else
		net_tcp_close(c->tcp);
	c->tcp = NULL;
	if (c->phase != PH_STORE)
		c->used = 0;
}

static void conn_on_idle(void *arg)
{
	struct conn *c = arg;
	if (c->phase == PH_STORE) {
		conn_touch(c); /* the store is slow, not the peer */
		return;
	}
	/* Idle between requests or mid-request: a clean close. An answer not drained: reset. */
	conn_close(c, c->phase == PH_SEND);
}

static void conn_reply(struct conn *c, const char *line, int close_after)
{
	c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "%s\r\n", line);
	c->out_off = 0;
	c->body = NULL;
	c->body_len = c->body_off = c->trailer_off = 0;
	c->close_after = close_after;
	c->phase = PH_SEND;
}

static void conn_reply_error(struct conn *c, const char *why, int close_after)
{
	char line[128];
	snprintf(line, sizeof(line), "ERR %s", why);
	conn_reply(c, line, close_after);
}

/* The answer to the request the store finished (or refused at once) with status. */
static void conn_result(struct conn *c, int status)
{
	if (status == KV_NOTFOUND) {
		conn_reply(c, "NOTFOUND", 0);
	} else if (status != KV_OK) {
		conn_reply_error(c, kv_status_str(status), 0);
	} else if (c->cmd == KV_CMD_GET) {
		char line[32];
		snprintf(line, sizeof(line), "VALUE %zu", c->op.result_len);
		conn_reply(c, line, 0);
		c->body = c->op.result;
		c->body_len = c->op.result_len;
	} else {
		conn_reply(c, "OK", 0);
	}
}

static void conn_on_store_done(struct kv_op *op, int status)
{
	struct conn *c = op->arg;
	c->phase = PH_LINE;
	if (!c->tcp) {
		c->used = 0; /* closed while the store worked */
		return;
	}
	conn_result(c, status);
	conn_touch(c);
	conn_pump(c);
}

static void conn_submit(struct conn *c, enum kv_op_type type)
{
	memset(&c->op, 0, sizeof(c->op));
	c->op.type = type;
	c->op.key = c->key;
	c->op.klen = c->klen;
	c->op.value = c->buf;
	c->op.vlen = c->vlen;
	c->op.buf = c->buf;
	c->op.done = conn_on_store_done;
	c->op.arg = c;
	int r = kv_submit(store, &c->op);
	if (r == KV_PENDING)
		c->phase = PH_STORE;
	else
		conn_result(c, r);
}

static void conn_stats(struct conn *c)
{
	const struct kv_stats *st = kv_stats(store);
	unsigned open = 0;
	for (size_t i = 0; i < KV_SERVER_CONNS; i++)
		open += conns[i].tcp != NULL;
	c->out_len = (size_t)snprintf(
		c->out, sizeof(c->out),
		"STATS keys=%llu log_bytes=%llu compactions=%llu live_bytes=%llu capacity=%llu "
		"records=%llu batches=%llu gets=%llu puts=%llu dels=%llu connections=%u\r\n",
		(unsigned long long)st->keys, (unsigned long long)st->log_bytes,
		(unsigned long long)st->compactions, (unsigned long long)st->live_bytes,
		(unsigned long long)st->capacity, (unsigned long long)st->records,
		(unsigned long long)st->batches, (unsigned long long)st->gets,
		(unsigned long long)st->puts, (unsigned long long)st->dels, open);
	c->out_off = 0;
	c->body = NULL;
	c->body_len = c->body_off = c->trailer_off = 0;
	c->close_after = 0;
	c->phase = PH_SEND;
}

/* Writes what the send buffer takes. Returns 1 once the whole answer is queued. */
static int conn_send(struct conn *c)
{
	static const char trailer[2] = {'\r', '\n'};
	while (c->out_off < c->out_len) {
		size_t n = net_tcp_write(c->tcp, c->out + c->out_off, c->out_len - c->out_off);
		if (n == 0)
			return 0;
		c->out_off += n;
		conn_touch(c);
	}
	if (!c->body)
		return 1;
	while (c->body_off < c->body_len) {
		size_t n = net_tcp_write(c->tcp, c->body + c->body_off, c->body_len - c->body_off);
		if (n == 0)
			return 0;
		c->body_off += n;
		conn_touch(c);
	}
	while (c->trailer_off < sizeof(trailer)) {
		size_t n = net_tcp_write(c->tcp, trailer + c->trailer_off,
					 sizeof(trailer) - c->trailer_off);
		if (n == 0)
			return 0;
		c->trailer_off += n;
	}
	return 1;
}

/* Reads into in while it has room. */
static void conn_fill(struct conn *c)
{
	while (c->in_len < sizeof(c->in)) {
		size_t n = net_tcp_read(c->tcp, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n == 0)
			return;
		c->in_len += n;
		conn_touch(c);
	}
}

static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* Reads a PUT's value into buf (or, if refused, into nothing), from in, then the socket.
 * Returns 1 once all of it is in. */
static int conn_read_value(struct conn *c)
{
	size_t want = c->vlen - c->value_got;
	size_t n = c->in_len < want ? c->in_len : want;
	if (n) {
		if (!c->bad_put)
			memcpy(c->buf + c->value_got, c->in, n);
		conn_consume(c, n);
		c->value_got += n;
	}
	while (c->value_got < c->vlen) {
		want = c->vlen - c->value_got;
		uint8_t *into = c->bad_put ? discard : c->buf + c->value_got;
		if (c->bad_put && want > sizeof(discard))
			want = sizeof(discard);
		n = net_tcp_read(c->tcp, into, want);
		if (n == 0)
			return 0;
		c->value_got += n;
		conn_touch(c);
	}
	return 1;
}

/* Takes the request line at the start of in, if whole. Returns 0 if it must wait for bytes. */
static int conn_take_line(struct conn *c)
{
	struct kv_request req;
	enum kv_parse_result r = kv_parse_line(c->in, c->in_len, &req);
	switch (r) {
	case KV_PARSE_INCOMPLETE: return 0;
	case KV_PARSE_EMPTY: conn_consume(c, req.line_len); return 1;
	case KV_PARSE_FATAL: conn_reply_error(c, req.error, 1); return 1;
	case KV_PARSE_BAD:
	case KV_PARSE_OK: break;
	}
	c->cmd = req.cmd;
	c->klen = r == KV_PARSE_OK ? req.klen : 0; /* a bad key may not even fit */
	if (c->klen)
		memcpy(c->key, req.key, c->klen);
	c->vlen = req.vlen;
	c->bad_put = r == KV_PARSE_BAD ? req.error : NULL;
	conn_consume(c, req.line_len);
	if (r == KV_PARSE_BAD && !req.skip_value) {
		conn_reply_error(c, req.error, 0);
		return 1;
	}
	switch (c->cmd) {
	case KV_CMD_PUT:
		c->value_got = 0;
		c->phase = PH_VALUE;
		break;
	case KV_CMD_GET: conn_submit(c, KV_OP_GET); break;
	case KV_CMD_DEL: conn_submit(c, KV_OP_DEL); break;
	case KV_CMD_STATS: conn_stats(c); break;
	}
	return 1;
}

/* Moves the connection on as far as it can, until it waits for the peer (bytes, or send
 * space) or the store. */
static void conn_pump(struct conn *c)
{
	for (;;) {
		if (c->phase == PH_SEND) {
			if (!conn_send(c))
				return;
			if (c->close_after) {
				conn_close(c, 0);
				return;
			}
			c->phase = PH_LINE;
		}
		if (c->phase == PH_STORE)
			return;
		conn_fill(c);
		int progress = 0;
		if (c->phase == PH_LINE) {
			progress = conn_take_line(c);
		} else if (c->phase == PH_VALUE) {
			progress = conn_read_value(c);
			if (progress)
				c->phase = PH_VALUE_END;
		} else if (c->phase == PH_VALUE_END) {
			size_t n = 0;
			enum kv_parse_result r = kv_parse_value_end(c->in, c->in_len, &n);
			progress = r != KV_PARSE_INCOMPLETE;
			if (r == KV_PARSE_FATAL) {
				conn_reply_error(c, "value not followed by a line end", 1);
			} else if (r == KV_PARSE_OK) {
				conn_consume(c, n);
				if (c->bad_put)
					conn_reply_error(c, c->bad_put, 0);
				else
					conn_submit(c, KV_OP_PUT);
			}
		}
		if (!progress) {
			/* The peer is done sending and no whole request is left: finish. */
			if (c->peer_closed && net_tcp_readable(c->tcp) == 0)
				conn_close(c, 0);
			return;
		}
	}
}

static void conn_on_event(struct net_tcp *tcp, unsigned events, void *arg)
{
	struct conn *c = arg;
	(void)tcp;
	if (events & NET_TCP_CLOSED) {
		conn_close(c, 0); /* reset or timed out: release the handle */
		return;
	}
	if (events & NET_TCP_PEER_CLOSED)
		c->peer_closed = 1;
	conn_pump(c);
}

static void on_accept(struct net_tcp *listener, struct net_tcp *tcp, void *arg)
{
	(void)listener, (void)arg;
	struct conn *c = NULL;
	for (size_t i = 0; i < KV_SERVER_CONNS && !c; i++)
		if (!conns[i].used)
			c = &conns[i];
	if (!c) {
		static const char busy[] = "ERR too many connections\r\n";
		net_tcp_write(tcp, busy, sizeof(busy) - 1);
		net_tcp_close(tcp);
		return;
	}
	c->used = 1;
	c->tcp = tcp;
	c->phase = PH_LINE;
	c->peer_closed = 0;
	c->close_after = 0;
	c->in_len = 0;
	conn_touch(c);
	net_tcp_set_callbacks(tcp, conn_on_event, c);
	conn_pump(c); /* bytes may have come with the handshake's last ACK */
}

int kv_server_start(struct net_stack *st, uint16_t port, struct kv_store *s)
{
	memset(conns, 0, sizeof(conns));
	store = s;
	return net_tcp_listen(st, port, on_accept, NULL) ? 0 : -1;
}
