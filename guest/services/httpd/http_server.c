/* The HTTP/1.1 server: connections of the built-in resources of content.c, on the event loop.
 * Keep-alive and pipelining (requests answered in order, the next parsed only once the previous
 * response is in the send buffer), bodies larger than the send buffer streamed as it drains. */
#include <stdint.h>
#include <string.h>

#include "content.h"
#include "denali.h"
#include "http_parse.h"
#include "http_response.h"
#include "http_server.h"
#include "net.h"

#define HTTPD_BODY_SKIP_MAX (64u * 1024) /* request bodies up to this are read and dropped */
#define HTTPD_OUT_MAX 512		 /* a response head, or a whole error response */
#define HTTPD_CHUNK 8192		 /* generated body bytes per write */

struct conn {
	struct net_tcp *tcp; /* NULL: a free slot */
	struct dn_timer idle;
	char in[HTTP_HEAD_MAX]; /* received bytes not yet consumed: the next request head(s) */
	size_t in_len;
	int scan;	    /* in may hold a complete head (a LF arrived since the last parse) */
	uint64_t body_skip; /* request body bytes still to drop */
	int peer_closed;    /* the peer sent FIN */
	int busy;	    /* a response is being sent */
	int close_after;    /* close once the response is out */
	char out[HTTPD_OUT_MAX]; /* the response head (or whole error response) */
	size_t out_len, out_off;
	const struct content *body; /* the body being streamed after out, or NULL */
	uint64_t body_off, body_len;
};

static struct conn conns[NET_TCP_CONNS];
static unsigned char chunk[HTTPD_CHUNK];
static unsigned char discard[1024];

static void conn_on_idle(void *arg);

static void conn_touch(struct conn *c)
{
	dn_timer_start(&c->idle, dn_time_ns() + HTTP_SERVER_IDLE_NS, conn_on_idle, c);
}

/* Releases the slot; graceful closes the connection (its queued bytes still go out), or resets
 * it with abort. */
static void conn_free(struct conn *c, int abort)
{
	dn_timer_cancel(&c->idle);
	if (abort)
		net_tcp_abort(c->tcp);
	else
		net_tcp_close(c->tcp);
	c->tcp = NULL;
}

static void conn_on_idle(void *arg)
{
	struct conn *c = arg;
	/* Idle between requests: a clean close. A response the peer stopped draining: reset. */
	conn_free(c, c->busy);
}

/* Queues a response head (or whole error response) and the optional body. */
static void conn_respond(struct conn *c, size_t out_len, const struct content *body,
			 uint64_t body_len, int close_after)
{
	c->out_len = out_len;
	c->out_off = 0;
	c->body = body;
	c->body_off = 0;
	c->body_len = body ? body_len : 0;
	c->close_after = close_after;
	c->busy = 1;
}

static void conn_respond_error(struct conn *c, int status, int head_only, int close_after,
			       unsigned flags)
{
	if (close_after)
		flags |= HTTP_RESP_CLOSE;
	size_t n = http_format_error(c->out, sizeof(c->out), status, head_only, flags);
	conn_respond(c, n, NULL, 0, close_after || n == 0);
}

/* Answers the parsed request req. */
static void conn_handle(struct conn *c, const struct http_request *req)
{
	int head_only = req->method == HTTP_METHOD_HEAD;
	int close_after = !req->keep_alive;
	unsigned flags = close_after ? HTTP_RESP_CLOSE
				     : (req->version_minor == 0 ? HTTP_RESP_KEEP_ALIVE : 0);
	if (req->has_content_length && req->content_length > HTTPD_BODY_SKIP_MAX) {
		conn_respond_error(c, 413, head_only, 1, 0);
		return;
	}
	c->body_skip = req->content_length;
	if (req->method == HTTP_METHOD_OTHER) {
		conn_respond_error(c, 405, 0, close_after, flags | HTTP_RESP_ALLOW);
		return;
	}
	const struct content *res = content_find(req->path, req->path_len);
	if (!res) {
		conn_respond_error(c, 404, head_only, close_after, flags);
		return;
	}
	size_t n = http_format_head(c->out, sizeof(c->out), 200, res->content_type, res->length,
				    flags);
	if (n == 0) {
		conn_respond_error(c, 500, head_only, 1, 0);
		return;
	}
	conn_respond(c, n, head_only ? NULL : res, res->length, close_after);
}

/* Writes what the send buffer takes. Returns 1 once the whole response is queued. */
static int conn_send(struct conn *c)
{
	while (c->out_off < c->out_len) {
		size_t n = net_tcp_write(c->tcp, c->out + c->out_off, c->out_len - c->out_off);
		if (n == 0)
			return 0;
		c->out_off += n;
		conn_touch(c);
	}
	while (c->body_off < c->body_len) {
		size_t room = net_tcp_writable(c->tcp);
		if (room == 0)
			return 0;
		uint64_t left = c->body_len - c->body_off;
		size_t want = room < sizeof(chunk) ? room : sizeof(chunk);
		if (left < want)
			want = (size_t)left;
		const void *p = content_read(c->body, c->body_off, chunk, want);
		size_t n = net_tcp_write(c->tcp, p, want);
		c->body_off += n;
		conn_touch(c);
		if (n < want)
			return 0;
	}
	c->busy = 0;
	return 1;
}

/* Drops request body bytes, first from the buffer, then from the socket. */
static void conn_skip_body(struct conn *c)
{
	if (c->body_skip && c->in_len) {
		size_t n = c->in_len < c->body_skip ? c->in_len : (size_t)c->body_skip;
		memmove(c->in, c->in + n, c->in_len - n);
		c->in_len -= n;
		c->body_skip -= n;
		c->scan = 1;
	}
	while (c->body_skip) {
		size_t want =
			c->body_skip < sizeof(discard) ? (size_t)c->body_skip : sizeof(discard);
		size_t n = net_tcp_read(c->tcp, discard, want);
		if (n == 0)
			return;
		c->body_skip -= n;
	}
}

/* Reads into the head buffer while it has room. */
static void conn_fill(struct conn *c)
{
	while (c->in_len < sizeof(c->in)) {
		size_t n = net_tcp_read(c->tcp, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n == 0)
			return;
		if (memchr(c->in + c->in_len, '\n', n))
			c->scan = 1;
		c->in_len += n;
		if (c->in_len == sizeof(c->in))
			c->scan = 1; /* full: the parser must decide (complete or too large) */
	}
}

/* Moves the connection on as far as it can: sends, then reads and answers the next request,
 * until it must wait for the peer (bytes, or send space). */
static void conn_pump(struct conn *c)
{
	for (;;) {
		if (c->busy) {
			if (!conn_send(c))
				return;
			if (c->close_after) {
				conn_free(c, 0);
				return;
			}
			conn_touch(c); /* now idle between requests */
		}
		conn_skip_body(c);
		if (c->body_skip) {
			if (c->peer_closed)
				conn_free(c, 0);
			return;
		}
		conn_fill(c);
		struct http_request req;
		enum http_parse_result r = HTTP_PARSE_INCOMPLETE;
		if (c->scan) {
			r = http_parse_request(c->in, c->in_len, sizeof(c->in), &req);
			c->scan = 0;
		}
		if (r == HTTP_PARSE_INCOMPLETE) {
			/* The peer is done sending and no request is left: finish. */
			if (c->peer_closed && net_tcp_readable(c->tcp) == 0)
				conn_free(c, 0);
			return;
		}
		if (r == HTTP_PARSE_ERROR) {
			conn_respond_error(c, req.status, 0, 1, 0);
			continue;
		}
		conn_handle(c, &req);
		memmove(c->in, c->in + req.head_len, c->in_len - req.head_len);
		c->in_len -= req.head_len;
		c->scan = c->in_len > 0;
	}
}

static void conn_on_event(struct net_tcp *tcp, unsigned events, void *arg)
{
	struct conn *c = arg;
	(void)tcp;
	if (events & NET_TCP_CLOSED) {
		conn_free(c, 0); /* reset or timed out: release the handle */
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
	for (size_t i = 0; i < NET_TCP_CONNS && !c; i++)
		if (!conns[i].tcp)
			c = &conns[i];
	if (!c) {
		net_tcp_abort(tcp); /* cannot happen: the stack's pool is no larger than ours */
		return;
	}
	c->tcp = tcp;
	c->in_len = 0;
	c->scan = 0;
	c->body_skip = 0;
	c->peer_closed = 0;
	c->busy = 0;
	c->close_after = 0;
	conn_touch(c);
	net_tcp_set_callbacks(tcp, conn_on_event, c);
	conn_pump(c); /* bytes may have come with the handshake's last ACK */
}

int http_server_start(struct net_stack *st, uint16_t port)
{
	/* conns starts zeroed (BSS in zeroed RAM) and a slot is reset when it is taken: clearing
	 * all of it here would dirty 552 KiB that every swap-out must write back. */
	return net_tcp_listen(st, port, on_accept, NULL) ? 0 : -1;
}
