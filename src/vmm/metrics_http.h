/* The --metrics-listen server (docs/control.md, "Metrics"): a TCP listener for the
 * supervisor's main loop that answers GET /metrics with the Prometheus exposition, one request
 * per connection. Everything a client sends is hostile: request heads are bounded and checked,
 * slow, idle and surplus clients are dropped, and no client can block the loop (every socket
 * is non-blocking; answers wait in the client's own buffer). */
#ifndef VMM_METRICS_HTTP_H
#define VMM_METRICS_HTTP_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_HTTP_HEAD_MAX 8192u
#define METRICS_HTTP_CLIENTS_MAX 16u
#define METRICS_HTTP_IDLE_NS (10ll * 1000000000ll)
/* After the answer is written: how long the rest of what a client sends is read and dropped
 * before the connection is closed (closing with unread input would reset the connection
 * and could destroy the answer in flight). */
#define METRICS_HTTP_LINGER_NS (2ll * 1000000000ll)

struct metrics_http;

/* What the supervisor does with a request. want is called for a client that sent a complete
 * GET /metrics request head; the supervisor answers with metrics_http_answer, at once (from
 * within want) or later. */
struct metrics_http_ops {
	void *ctx;
	void (*want)(void *ctx, unsigned client);
};

/* Listens on listen, "IPV4:PORT" ("127.0.0.1:9100") or "[IPV6]:PORT" ("[::1]:9100"), port 0
 * for any free one; host names are refused. NULL with err (naming --metrics-listen). */
struct metrics_http *metrics_http_open(const char *listen, const struct metrics_http_ops *ops,
				       char *err, size_t errlen);

/* Checks listen as metrics_http_open would read it, without listening: 0, or -1 with err. */
int metrics_http_check_listen(const char *listen, char *err, size_t errlen);

/* Closes every connection and the listener; answers still due are dropped. NULL is fine. */
void metrics_http_close(struct metrics_http *m);

/* The port listened on (the one picked for port 0), or -1. */
int metrics_http_port(const struct metrics_http *m);

/* Fills fds (room for 1 + METRICS_HTTP_CLIENTS_MAX) with the listener and the clients;
 * returns how many. */
unsigned metrics_http_pollfds(const struct metrics_http *m, struct pollfd *fds);

/* Accepts, reads, answers errors and writes what poll reported on those fds; drops clients
 * that did not send their request head within METRICS_HTTP_IDLE_NS of connecting, or whose
 * answer made no progress for as long, at now_ns (0: the monotonic clock now). */
void metrics_http_serve(struct metrics_http *m, const struct pollfd *fds, unsigned n,
			int64_t now_ns);

/* Answers the request of client (from want) with text, the exposition (malloc'd, taken;
 * NULL: 503 Service Unavailable). A client gone meanwhile is fine: nothing is sent, and a
 * newer client in its slot is not answered. Written by the next metrics_http_serve calls. */
void metrics_http_answer(struct metrics_http *m, unsigned client, char *text);

/* What a request head says so far. */
enum metrics_http_head {
	METRICS_HEAD_INCOMPLETE, /* no error yet, and no end of the head */
	METRICS_HEAD_BAD,	 /* 400 */
	METRICS_HEAD_NOT_FOUND,	 /* 404: not /metrics */
	METRICS_HEAD_METHOD,	 /* 405: /metrics, not GET */
	METRICS_HEAD_GET,	 /* GET /metrics: a complete head */
};

/* Checks the request head in[0, len): its request line as soon as it is there (garbage is
 * refused without waiting), then header lines up to the empty line ("\r\n" or a bare "\n" as
 * line ends). Pure; any bytes are safe. */
enum metrics_http_head metrics_http_check_head(const char *in, size_t len);

#endif
