/* bench/zipf_load: the load generator of bench/zipf. CLIENTS closed-loop clients, each sending
 * one HTTP/1.1 GET / at a time on a new TCP connection to a service picked with Zipf popularity
 * (rank k has weight 1/k^ALPHA) from TARGETS, for SECONDS. A request is good when its response is a
 * 200 whose body holds "Hello from NAME on Denali", NAME being the target's; the client closes
 * first, so the service ends on the passive side of the close and keeps no timer for the
 * connection.
 *
 * Usage: zipf_load TARGETS SECONDS CLIENTS ALPHA [--seed S] [--timeout-ms MS] [--path P]
 *                  [--expect TEXT] [--close]
 * TARGETS: one "IPV4 PORT NAME" per line, most popular first. --path: the request path (default
 * /); --expect: the body must hold TEXT instead of the greeting; --close: the request says
 * "Connection: close", so the server closes first (ab's and httperf's load) and keeps the
 * TIME_WAIT.
 * Prints one line: requests (good), errors by kind, timeouts, elapsed seconds, requests per
 * second and the latency of the good ones (connect to last byte) in microseconds. A request
 * still unanswered after --timeout-ms (default 10000) is closed and counted as a timeout. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_MAX 4096
#define CLIENTS_MAX 1024

struct target {
	struct sockaddr_in addr;
	char name[64];
	char request[160];
	size_t request_len;
	char expect[128]; /* the body's greeting */
};

enum error_kind { ERR_CONNECT, ERR_RESET, ERR_SHORT, ERR_BAD, ERR_KINDS };
static const char *const error_names[ERR_KINDS] = {"connect", "reset", "short", "bad"};

struct client {
	int fd;
	const struct target *t;
	int64_t started_ns;
	size_t sent;
	char in[RESPONSE_MAX];
	size_t in_len;
};

struct load {
	struct target *targets;
	unsigned ntargets;
	double *cdf; /* cumulative Zipf weights, normalized */
	uint64_t rng;
	int64_t timeout_ns, end_ns;
	int ep;
	uint32_t *lat_us;
	size_t nlat, cap_lat;
	uint64_t errors[ERR_KINDS], timeouts;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: uniform in [0, 1). */
static double uniform(struct load *l)
{
	l->rng ^= l->rng >> 12;
	l->rng ^= l->rng << 25;
	l->rng ^= l->rng >> 27;
	return (double)((l->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static int build_cdf(struct load *l, double alpha)
{
	l->cdf = malloc(l->ntargets * sizeof(*l->cdf));
	if (!l->cdf)
		return -1;
	double sum = 0;
	for (unsigned k = 0; k < l->ntargets; k++) {
		sum += pow((double)(k + 1), -alpha);
		l->cdf[k] = sum;
	}
	for (unsigned k = 0; k < l->ntargets; k++)
		l->cdf[k] /= sum;
	return 0;
}

static const struct target *pick(struct load *l)
{
	double u = uniform(l);
	unsigned lo = 0, hi = l->ntargets - 1;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (l->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return &l->targets[lo];
}

/* The request options, the same for every target. */
struct request_opts {
	const char *path, *expect;
	int close;
};

static int read_targets(struct load *l, const char *path, const struct request_opts *o)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return -1;
	}
	unsigned cap = 0;
	char ip[64], name[64];
	unsigned port;
	while (fscanf(f, "%63s %u %63s", ip, &port, name) == 3) {
		if (l->ntargets == cap) {
			cap = cap ? cap * 2 : 1024;
			struct target *t = realloc(l->targets, cap * sizeof(*t));
			if (!t) {
				fclose(f);
				return -1;
			}
			l->targets = t;
		}
		struct target *t = &l->targets[l->ntargets];
		memset(t, 0, sizeof(*t));
		t->addr.sin_family = AF_INET;
		t->addr.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &t->addr.sin_addr) != 1 || port == 0 || port > 65535) {
			fprintf(stderr, "zipf_load: %s: bad target %s %u\n", path, ip, port);
			fclose(f);
			return -1;
		}
		snprintf(t->name, sizeof(t->name), "%s", name);
		int n = snprintf(t->request, sizeof(t->request),
				 "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", o->path, name,
				 o->close ? "Connection: close\r\n" : "");
		if (n < 0 || (size_t)n >= sizeof(t->request)) {
			fprintf(stderr, "zipf_load: request for %s too long\n", name);
			fclose(f);
			return -1;
		}
		t->request_len = (size_t)n;
		if (o->expect)
			snprintf(t->expect, sizeof(t->expect), "%s", o->expect);
		else
			snprintf(t->expect, sizeof(t->expect), "Hello from %s on Denali", name);
		l->ntargets++;
	}
	fclose(f);
	if (!l->ntargets)
		fprintf(stderr, "zipf_load: %s: no targets\n", path);
	return l->ntargets ? 0 : -1;
}

static void record_latency(struct load *l, int64_t ns)
{
	if (l->nlat == l->cap_lat) {
		size_t cap = l->cap_lat ? l->cap_lat * 2 : 65536;
		uint32_t *p = realloc(l->lat_us, cap * sizeof(*p));
		if (!p)
			return;
		l->lat_us = p;
		l->cap_lat = cap;
	}
	l->lat_us[l->nlat++] = (uint32_t)(ns / 1000);
}

static void finish(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->t = NULL;
}

#define REPORT_MAX 10 /* failed requests named on stderr */

/* Names the first few failed requests on stderr: which service, how, after how long. */
static void report_failure(struct load *l, const struct client *c, const char *how, int err)
{
	uint64_t failed = l->timeouts;
	for (int k = 0; k < ERR_KINDS; k++)
		failed += l->errors[k];
	if (failed <= REPORT_MAX)
		fprintf(stderr, "zipf_load: %s: %s%s%s after %.0f ms\n", c->t->name, how,
			err ? ": " : "", err ? strerror(err) : "",
			(double)(now_ns() - c->started_ns) / 1e6);
}

/* err: the errno that says why, or 0. */
static void fail(struct load *l, struct client *c, enum error_kind kind, int err)
{
	l->errors[kind]++;
	report_failure(l, c, error_names[kind], err);
	finish(c);
}

/* Starts the client's next request; leaves it idle when there is none to send. */
static void start(struct load *l, struct client *c)
{
	int64_t now = now_ns();
	if (now >= l->end_ns)
		return;
	const struct target *t = pick(l);
	c->t = t;
	c->started_ns = now;
	c->sent = 0;
	c->in_len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(l, c, ERR_CONNECT, errno);
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&t->addr, sizeof(t->addr)) != 0 &&
	    errno != EINPROGRESS) {
		fail(l, c, ERR_CONNECT, errno);
		return;
	}
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		fail(l, c, ERR_CONNECT, errno);
}

/* A complete response: the head, then Content-Length bytes of body. 1 complete, 0 not yet,
 * -1 malformed. */
static int response_complete(const struct client *c, const char **body)
{
	const char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!end)
		return c->in_len == sizeof(c->in) ? -1 : 0;
	const char *cl = memmem(c->in, (size_t)(end - c->in), "Content-Length:", 15);
	if (!cl)
		return -1;
	size_t want = strtoul(cl + 15, NULL, 10);
	*body = end + 4;
	size_t have = c->in_len - (size_t)(*body - c->in);
	return have >= want ? 1 : 0;
}

static void on_readable(struct load *l, struct client *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			fail(l, c, errno == ECONNREFUSED ? ERR_CONNECT : ERR_RESET, errno);
			return;
		}
		if (n == 0) {
			fail(l, c, ERR_SHORT, 0);
			return;
		}
		c->in_len += (size_t)n;
		const char *body;
		int done = response_complete(c, &body);
		if (done == 0)
			continue;
		int good = done == 1 && strncmp(c->in, "HTTP/1.1 200 ", 13) == 0 &&
			   memmem(body, c->in_len - (size_t)(body - c->in), c->t->expect,
				  strlen(c->t->expect));
		if (!good) {
			fail(l, c, ERR_BAD, 0);
			return;
		}
		record_latency(l, now_ns() - c->started_ns);
		finish(c);
		return;
	}
}

static void on_writable(struct load *l, struct client *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
		fail(l, c, ERR_CONNECT, err);
		return;
	}
	ssize_t n = write(c->fd, c->t->request + c->sent, c->t->request_len - c->sent);
	if (n < 0 && errno != EAGAIN) {
		fail(l, c, ERR_RESET, errno);
		return;
	}
	if (n > 0)
		c->sent += (size_t)n;
	if (c->sent == c->t->request_len) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void on_event(struct load *l, struct client *c, uint32_t events)
{
	if (c->sent < c->t->request_len && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		on_writable(l, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(l, c);
}

/* Times out the requests past their deadline; returns the epoll timeout to the next one. */
static int expire(struct load *l, struct client *cl, unsigned n)
{
	int64_t now = now_ns(), next = INT64_MAX;
	for (unsigned i = 0; i < n; i++) {
		if (cl[i].fd < 0)
			continue;
		int64_t deadline = cl[i].started_ns + l->timeout_ns;
		if (deadline <= now) {
			l->timeouts++;
			report_failure(l, &cl[i], "timeout", 0);
			finish(&cl[i]);
		} else if (deadline < next) {
			next = deadline;
		}
	}
	if (l->end_ns > now && l->end_ns < next) /* then idle clients start again */
		next = l->end_ns;
	if (next == INT64_MAX)
		return 0; /* no request left in flight: the main loop sees that at once */
	return next <= now ? 0 : (int)((next - now) / 1000000) + 1;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double percentile(const uint32_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

static void report(struct load *l, double seconds)
{
	qsort(l->lat_us, l->nlat, sizeof(*l->lat_us), cmp_u32);
	double sum = 0;
	for (size_t i = 0; i < l->nlat; i++)
		sum += l->lat_us[i];
	uint64_t errors = 0;
	for (int k = 0; k < ERR_KINDS; k++)
		errors += l->errors[k];
	printf("zipf_load: requests %zu errors %llu timeouts %llu seconds %.3f rps %.1f "
	       "p50_us %.0f p99_us %.0f mean_us %.0f max_us %.0f",
	       l->nlat, (unsigned long long)errors, (unsigned long long)l->timeouts, seconds,
	       seconds > 0 ? (double)l->nlat / seconds : 0, percentile(l->lat_us, l->nlat, 0.5),
	       percentile(l->lat_us, l->nlat, 0.99), l->nlat ? sum / (double)l->nlat : 0,
	       l->nlat ? (double)l->lat_us[l->nlat - 1] : 0);
	for (int k = 0; k < ERR_KINDS; k++)
		printf(" err_%s %llu", error_names[k], (unsigned long long)l->errors[k]);
	printf("\n");
}

static int usage(void)
{
	fprintf(stderr, "usage: zipf_load TARGETS SECONDS CLIENTS ALPHA [--seed S] "
			"[--timeout-ms MS] [--path P] [--expect TEXT] [--close]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return usage();
	struct load l = {.rng = 0x9e3779b97f4a7c15ull, .timeout_ns = 10000000000ll};
	double seconds = atof(argv[2]), alpha = atof(argv[4]);
	unsigned nclients = (unsigned)atoi(argv[3]);
	struct request_opts o = {.path = "/"};
	for (int i = 5; i < argc; i++) {
		if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			l.rng = strtoull(argv[++i], NULL, 0) | 1;
		else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
			l.timeout_ns = atoll(argv[++i]) * 1000000ll;
		else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc && argv[i + 1][0] == '/')
			o.path = argv[++i];
		else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc && argv[i + 1][0])
			o.expect = argv[++i];
		else if (strcmp(argv[i], "--close") == 0)
			o.close = 1;
		else
			return usage();
	}
	if (nclients == 0 || nclients > CLIENTS_MAX || seconds <= 0 || alpha < 0)
		return usage();
	if (read_targets(&l, argv[1], &o) != 0 || build_cdf(&l, alpha) != 0)
		return 1;
	l.ep = epoll_create1(EPOLL_CLOEXEC);
	struct client *cl = calloc(nclients, sizeof(*cl));
	if (l.ep < 0 || !cl) {
		perror("zipf_load");
		return 1;
	}
	int64_t begin = now_ns();
	l.end_ns = begin + (int64_t)(seconds * 1e9);
	for (unsigned i = 0; i < nclients; i++) {
		cl[i].fd = -1;
		start(&l, &cl[i]);
	}
	for (;;) {
		int busy = 0;
		for (unsigned i = 0; i < nclients; i++) {
			if (cl[i].fd < 0)
				start(&l, &cl[i]);
			busy |= cl[i].fd >= 0;
		}
		if (!busy)
			break;
		struct epoll_event ev[64];
		int n = epoll_wait(l.ep, ev, 64, expire(&l, cl, nclients));
		if (n < 0 && errno != EINTR) {
			perror("zipf_load: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct client *c = ev[i].data.ptr;
			if (c->fd >= 0)
				on_event(&l, c, ev[i].events);
		}
	}
	report(&l, (double)(now_ns() - begin) / 1e9);
	return 0;
}
