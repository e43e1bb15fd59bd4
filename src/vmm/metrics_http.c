/* The --metrics-listen server: the listener, connections, request heads and answers. */
#include "metrics_http.h"
#include "clock.h"
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Where a connection is: reading its request head, waiting for the supervisor's answer,
 * writing the answer, or reading (and dropping) what comes until the client closes. */
enum mh_state {
	MH_READING,
	MH_WAITING,
	MH_WRITING,
	MH_LINGERING,
};

struct mh_client {
	int fd; /* -1: free slot */
	unsigned generation;
	enum mh_state state;
	char *in; /* the request head so far (MH_READING) */
	size_t in_len;
	char *out; /* the answer (MH_WRITING) */
	size_t out_len, out_sent;
	int in_eof;	      /* the client sent all it will (a half-close) */
	int touch;	      /* restart the idle clock at the next serve */
	int64_t last_ns;      /* accepted, or the answer last made progress */
	int64_t linger_since; /* MH_LINGERING: since when */
};

struct metrics_http {
	struct listener listener; /* paused out of descriptors: never spins the loop */
	struct metrics_http_ops ops;
	struct mh_client clients[METRICS_HTTP_CLIENTS_MAX];
};

/* A client id: the slot in the low 8 bits, the slot's generation (24 bits) above, so an
 * answer for a client gone never reaches the next one in its slot. */
#define MH_SLOT_BITS 8u
#define MH_GENERATION_MASK 0xffffffu

_Static_assert(METRICS_HTTP_CLIENTS_MAX <= (1u << MH_SLOT_BITS), "client slots fit the id");

/* "PORT": decimal digits only, at most 65535. */
static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t len = strlen(s);
	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* "IPV4:PORT" or "[IPV6]:PORT" into addr; -1 with err. */
static int parse_listen(const char *spec, struct sockaddr_storage *addr, socklen_t *addrlen,
			char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_text;
	int v6 = spec[0] == '[';
	if (v6) {
		const char *end = strchr(spec, ']');
		if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, (size_t)(end - spec - 1));
		host[end - spec - 1] = '\0';
		port_text = end + 2;
	} else {
		const char *colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port_text = colon + 1;
	}
	uint16_t port;
	if (parse_port(port_text, &port) != 0) {
		snprintf(err, errlen,
			 "--metrics-listen: \"%.64s\": the port must be a number from 0 to 65535",
			 spec);
		return -1;
	}
	memset(addr, 0, sizeof(*addr));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			goto bad;
		*addrlen = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)addr;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			goto bad;
		*addrlen = sizeof(*a);
	}
	return 0;
bad:
	snprintf(err, errlen,
		 "--metrics-listen: \"%.64s\": expected IPV4:PORT (127.0.0.1:9100) or "
		 "[IPV6]:PORT ([::1]:9100), an address in numbers",
		 spec);
	return -1;
}

int metrics_http_check_listen(const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t addrlen;
	return parse_listen(spec, &addr, &addrlen, err, errlen);
}

struct metrics_http *metrics_http_open(const char *spec, const struct metrics_http_ops *ops,
				       char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t addrlen;
	if (parse_listen(spec, &addr, &addrlen, err, errlen) != 0)
		return NULL;
	struct metrics_http *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "--metrics-listen: out of memory");
		return NULL;
	}
	m->ops = *ops;
	for (unsigned i = 0; i < METRICS_HTTP_CLIENTS_MAX; i++)
		m->clients[i].fd = -1;
	m->listener.fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (m->listener.fd < 0 ||
	    setsockopt(m->listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(m->listener.fd, (const struct sockaddr *)&addr, addrlen) != 0 ||
	    listen(m->listener.fd, 16) != 0) {
		snprintf(err, errlen, "--metrics-listen: cannot listen on %s: %s", spec,
			 strerror(errno));
		metrics_http_close(m);
		return NULL;
	}
	return m;
}

static void drop_client(struct mh_client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->in);
	free(cl->out);
	unsigned generation = (cl->generation + 1) & MH_GENERATION_MASK;
	*cl = (struct mh_client){.fd = -1, .generation = generation};
}

void metrics_http_close(struct metrics_http *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < METRICS_HTTP_CLIENTS_MAX; i++)
		drop_client(&m->clients[i]);
	if (m->listener.fd >= 0)
		close(m->listener.fd);
	free(m);
}

int metrics_http_port(const struct metrics_http *m)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);
	if (getsockname(m->listener.fd, (struct sockaddr *)&addr, &len) != 0)
		return -1;
	if (addr.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&addr)->sin_port);
	if (addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&addr)->sin6_port);
	return -1;
}

unsigned metrics_http_pollfds(const struct metrics_http *m, struct pollfd *fds)
{
	unsigned n = 0;
	fds[n++] = listener_pollfd(&m->listener);
	for (unsigned i = 0; i < METRICS_HTTP_CLIENTS_MAX; i++) {
		const struct mh_client *cl = &m->clients[i];
		if (cl->fd < 0)
			continue;
		short events = cl->in_eof ? 0 : POLLIN; /* after the head: read and dropped */
		if (cl->state == MH_WRITING)
			events |= POLLOUT;
		fds[n++] = (struct pollfd){.fd = cl->fd, .events = events};
	}
	return n;
}

/* Queues the answer: the status line, the headers and the body (len bytes). -1 when out of
 * memory. */
static int queue_answer(struct mh_client *cl, const char *status, const char *extra,
			const char *type, const char *body, size_t len)
{
	char head[256];
	int head_len = snprintf(head, sizeof(head),
				"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
				"Connection: close\r\n\r\n",
				status, type, len, extra);
	char *out = malloc((size_t)head_len + len);
	if (!out)
		return -1;
	memcpy(out, head, (size_t)head_len);
	memcpy(out + head_len, body, len);
	free(cl->in);
	cl->in = NULL;
	cl->in_len = 0;
	cl->out = out;
	cl->out_len = (size_t)head_len + len;
	cl->out_sent = 0;
	cl->state = MH_WRITING;
	cl->touch = 1;
	return 0;
}

static void queue_error(struct mh_client *cl, const char *status, const char *extra)
{
	char body[64];
	int len = snprintf(body, sizeof(body), "%s\n", status + 4); /* "404 Not Found" */
	if (queue_answer(cl, status, extra, "text/plain; charset=utf-8", body, (size_t)len) != 0)
		drop_client(cl);
}

void metrics_http_answer(struct metrics_http *m, unsigned client, char *text)
{
	unsigned slot = client & ((1u << MH_SLOT_BITS) - 1);
	struct mh_client *cl = slot < METRICS_HTTP_CLIENTS_MAX ? &m->clients[slot] : NULL;
	if (!cl || cl->fd < 0 || cl->generation != client >> MH_SLOT_BITS ||
	    cl->state != MH_WAITING) {
		free(text);
		return;
	}
	if (!text) {
		queue_error(cl, "503 Service Unavailable", "");
		return;
	}
	int failed = queue_answer(cl, "200 OK", "", "text/plain; version=0.0.4; charset=utf-8",
				  text, strlen(text));
	free(text);
	if (failed)
		drop_client(cl);
}

/* A character of a token (RFC 9110): a method or a header's name. */
static int is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Checks the request line (without its line end): "METHOD SP TARGET SP HTTP/1.x". */
static enum metrics_http_head check_request_line(const char *s, size_t len)
{
	size_t i = 0, method_len, target, target_len;
	while (i < len && is_tchar(s[i]))
		i++;
	method_len = i;
	if (method_len == 0 || i == len || s[i] != ' ')
		return METRICS_HEAD_BAD;
	target = ++i;
	while (i < len && s[i] > ' ' && s[i] < 0x7f)
		i++;
	target_len = i - target;
	if (target_len == 0 || s[target] != '/' || i == len || s[i] != ' ')
		return METRICS_HEAD_BAD;
	i++;
	if (len - i != 8 ||
	    (memcmp(s + i, "HTTP/1.0", 8) != 0 && memcmp(s + i, "HTTP/1.1", 8) != 0))
		return METRICS_HEAD_BAD;
	int metrics = (target_len == 8 || (target_len > 8 && s[target + 8] == '?')) &&
		      memcmp(s + target, "/metrics", 8) == 0;
	if (!metrics)
		return METRICS_HEAD_NOT_FOUND;
	if (method_len != 3 || memcmp(s, "GET", 3) != 0)
		return METRICS_HEAD_METHOD;
	return METRICS_HEAD_GET;
}

/* The length of the line at s (up to len), without its "\n" or "\r\n"; -1: no line end. */
static long line_length(const char *s, size_t len)
{
	const char *nl = memchr(s, '\n', len);
	if (!nl)
		return -1;
	size_t n = (size_t)(nl - s);
	return (long)(n && s[n - 1] == '\r' ? n - 1 : n);
}

enum metrics_http_head metrics_http_check_head(const char *in, size_t len)
{
	long line = line_length(in, len);
	if (line < 0)
		return METRICS_HEAD_INCOMPLETE;
	enum metrics_http_head verdict = check_request_line(in, (size_t)line);
	if (verdict == METRICS_HEAD_BAD)
		return METRICS_HEAD_BAD;
	size_t at = (size_t)((const char *)memchr(in, '\n', len) - in) + 1;
	for (;;) {
		line = line_length(in + at, len - at);
		if (line < 0)
			return METRICS_HEAD_INCOMPLETE;
		if (line == 0)
			return verdict;
		const char *h = in + at;
		long name = 0;
		while (name < line && is_tchar(h[name]))
			name++;
		if (name == 0 || name == line || h[name] != ':')
			return METRICS_HEAD_BAD;
		at += (size_t)((const char *)memchr(h, '\n', len - at) - h) + 1;
	}
}

static unsigned client_id(const struct metrics_http *m, const struct mh_client *cl)
{
	return (unsigned)(cl - m->clients) | (cl->generation << MH_SLOT_BITS);
}

/* The head so far: answered with an error, or handed to the supervisor, once it is known. */
static void take_head(struct metrics_http *m, struct mh_client *cl)
{
	enum metrics_http_head verdict = metrics_http_check_head(cl->in, cl->in_len);
	if (verdict == METRICS_HEAD_INCOMPLETE && cl->in_len == METRICS_HTTP_HEAD_MAX)
		verdict = METRICS_HEAD_BAD;
	switch (verdict) {
	case METRICS_HEAD_INCOMPLETE: return;
	case METRICS_HEAD_BAD: queue_error(cl, "400 Bad Request", ""); return;
	case METRICS_HEAD_NOT_FOUND: queue_error(cl, "404 Not Found", ""); return;
	case METRICS_HEAD_METHOD:
		queue_error(cl, "405 Method Not Allowed", "Allow: GET\r\n");
		return;
	case METRICS_HEAD_GET: break;
	}
	free(cl->in);
	cl->in = NULL;
	cl->in_len = 0;
	cl->state = MH_WAITING; /* before want: it may answer at once */
	m->ops.want(m->ops.ctx, client_id(m, cl));
}

static void read_client(struct metrics_http *m, struct mh_client *cl)
{
	if (cl->state != MH_READING) { /* pipelined requests, garbage: dropped */
		char sink[4096];
		ssize_t n = read(cl->fd, sink, sizeof(sink));
		if (n == 0 && cl->state == MH_LINGERING)
			drop_client(cl);
		else if (n == 0)
			cl->in_eof = 1; /* a half-close: the answer still goes out */
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			drop_client(cl);
		return;
	}
	if (!cl->in && !(cl->in = malloc(METRICS_HTTP_HEAD_MAX))) {
		drop_client(cl);
		return;
	}
	ssize_t n = read(cl->fd, cl->in + cl->in_len, METRICS_HTTP_HEAD_MAX - cl->in_len);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		drop_client(cl); /* gone before its request was complete */
		return;
	}
	if (n < 0)
		return;
	cl->in_len += (size_t)n;
	take_head(m, cl);
}

/* Writes what the socket takes; once all is written, shuts the sending side and lingers. */
static void write_client(struct mh_client *cl, int64_t now)
{
	ssize_t n = send(cl->fd, cl->out + cl->out_sent, cl->out_len - cl->out_sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		drop_client(cl);
		return;
	}
	if (n > 0) {
		cl->out_sent += (size_t)n;
		cl->last_ns = now;
	}
	if (cl->out_sent < cl->out_len)
		return;
	free(cl->out);
	cl->out = NULL;
	cl->out_len = cl->out_sent = 0;
	if (cl->in_eof || shutdown(cl->fd, SHUT_WR) != 0) {
		drop_client(cl); /* the client has nothing more to send: close now */
		return;
	}
	cl->state = MH_LINGERING;
	cl->linger_since = now;
}

static void accept_clients(struct metrics_http *m, int64_t now)
{
	for (;;) {
		int fd = listener_accept(&m->listener, now);
		if (fd < 0)
			return;
		struct mh_client *free_slot = NULL;
		for (unsigned i = 0; i < METRICS_HTTP_CLIENTS_MAX && !free_slot; i++)
			if (m->clients[i].fd < 0)
				free_slot = &m->clients[i];
		if (!free_slot) {
			close(fd); /* too many: closed at once */
			continue;
		}
		free_slot->fd = fd;
		free_slot->state = MH_READING;
		free_slot->last_ns = now;
	}
}

void metrics_http_serve(struct metrics_http *m, const struct pollfd *fds, unsigned n, int64_t now)
{
	if (!now)
		now = clock_mono_ns();
	listener_resume(&m->listener, now);
	for (unsigned k = 1; k < n; k++) {
		struct mh_client *cl = NULL;
		for (unsigned i = 0; i < METRICS_HTTP_CLIENTS_MAX && !cl; i++)
			if (m->clients[i].fd == fds[k].fd && fds[k].fd >= 0)
				cl = &m->clients[i];
		if (!cl || !fds[k].revents)
			continue;
		if ((fds[k].revents & POLLOUT) && cl->state == MH_WRITING)
			write_client(cl, now);
		if (cl->fd >= 0 && (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) && !cl->in_eof)
			read_client(m, cl);
		else if (cl->fd >= 0 && (fds[k].revents & (POLLHUP | POLLERR)))
			drop_client(cl); /* half-closed before, and now gone for good */
	}
	for (unsigned i = 0; i < METRICS_HTTP_CLIENTS_MAX; i++) {
		struct mh_client *cl = &m->clients[i];
		if (cl->fd < 0)
			continue;
		if (cl->touch) {
			cl->touch = 0;
			cl->last_ns = now;
		}
		if (cl->state == MH_WRITING)
			write_client(cl, now); /* most answers fit at once */
		if (cl->fd < 0)
			continue;
		int expired = cl->state == MH_LINGERING
				      ? now - cl->linger_since > METRICS_HTTP_LINGER_NS
				      : now - cl->last_ns > METRICS_HTTP_IDLE_NS;
		if (expired)
			drop_client(cl);
	}
	if (n && (fds[0].revents & POLLIN))
		accept_clients(m, now);
}
