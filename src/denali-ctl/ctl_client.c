/* denali-ctl's one exchange with the control socket. Every wait is bounded by one deadline,
 * and the answer by CTL_RESPONSE_MAX: a server that stalls or floods cannot hang the shell. */
#include "ctl_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl_request.h"

#define FIRST_BUFFER (64u << 10)

/* Where the exchange stands: the socket, its path for messages, and the deadline. */
struct exchange {
	int fd;
	char path[128]; /* printable, for messages */
	double timeout_s;
	int64_t deadline_ms; /* CLOCK_MONOTONIC; -1: none */
	char *err;
	size_t errlen;
};

/* Milliseconds left for poll: -1 without a deadline, 0 once it has passed. */
static int ms_left(const struct exchange *x)
{
	if (x->deadline_ms < 0)
		return -1;
	int64_t left = x->deadline_ms - clock_mono_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

static int timed_out(struct exchange *x)
{
	snprintf(x->err, x->errlen, "no answer from the control socket %s within %g s", x->path,
		 x->timeout_s);
	return -1;
}

/* Waits until fd is ready for events: 1 ready, 0 out of time, -1 error (errno). */
static int wait_ready(const struct exchange *x, short events)
{
	for (;;) {
		struct pollfd p = {.fd = x->fd, .events = events};
		int n = poll(&p, 1, ms_left(x));
		if (n >= 0 || errno != EINTR)
			return n;
	}
}

static int connect_socket(struct exchange *x, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(x->err, x->errlen,
			 "the control socket path %s is too long for a unix socket (at most %zu "
			 "bytes)",
			 x->path, sizeof(addr.sun_path) - 1);
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	x->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (x->fd < 0) {
		snprintf(x->err, x->errlen, "cannot create a socket: %s", strerror(errno));
		return -1;
	}
	/* A blocking connect waits while the server's backlog is full; SO_SNDTIMEO bounds it. */
	if (x->timeout_s > 0) {
		struct timeval tv = {.tv_sec = (time_t)x->timeout_s,
				     .tv_usec = (suseconds_t)(fmod(x->timeout_s, 1) * 1e6)};
		setsockopt(x->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(x->fd, (const struct sockaddr *)&addr, sizeof(addr)) != 0) {
		if (errno == EAGAIN || errno == EINPROGRESS)
			return timed_out(x);
		snprintf(x->err, x->errlen,
			 "cannot reach the control socket %s: %s (is denali-run running with "
			 "--control %s?)",
			 x->path, strerror(errno), x->path);
		return -1;
	}
	int flags = fcntl(x->fd, F_GETFL);
	if (flags < 0 || fcntl(x->fd, F_SETFL, flags | O_NONBLOCK) != 0) {
		snprintf(x->err, x->errlen, "cannot make the socket non-blocking: %s",
			 strerror(errno));
		return -1;
	}
	return 0;
}

#define HUNG_UP (-2)

/* Sends the request and its newline. -1 on an error, or HUNG_UP when the server closed the
 * connection: it may have said why first (too many connections). */
static int send_line(struct exchange *x, const char *request)
{
	size_t len = strlen(request);
	char *line = malloc(len + 1);
	if (!line) {
		snprintf(x->err, x->errlen, "out of memory");
		return -1;
	}
	memcpy(line, request, len);
	line[len++] = '\n';
	size_t off = 0;
	int rc = 0;
	while (off < len) {
		ssize_t n = send(x->fd, line + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		int ready = n < 0 && errno == EAGAIN ? wait_ready(x, POLLOUT) : -1;
		if (ready > 0)
			continue;
		if (ready == 0) {
			rc = timed_out(x);
			break;
		}
		int e = n < 0 ? errno : EPIPE;
		snprintf(x->err, x->errlen, "cannot send the request to %s: %s", x->path,
			 strerror(e));
		rc = e == EPIPE || e == ECONNRESET ? HUNG_UP : -1;
		break;
	}
	free(line);
	return rc;
}

/* Grows the buffer toward CTL_RESPONSE_MAX + 1 (the longest line and its newline). */
static int grow(struct exchange *x, char **buf, size_t *cap)
{
	size_t want = *cap ? *cap * 2 : FIRST_BUFFER;
	if (want > CTL_RESPONSE_MAX + 1)
		want = CTL_RESPONSE_MAX + 1;
	char *bigger = realloc(*buf, want);
	if (!bigger) {
		snprintf(x->err, x->errlen, "out of memory for the answer");
		return -1;
	}
	*buf = bigger;
	*cap = want;
	return 0;
}

/* Whether the line just received ends within the bytes [from, len): then it is cut there. */
static int line_ends(char *buf, size_t from, size_t len, size_t *line_len)
{
	char *nl = memchr(buf + from, '\n', len - from);
	if (!nl)
		return 0;
	*nl = '\0';
	*line_len = (size_t)(nl - buf);
	return 1;
}

static int receive_line(struct exchange *x, char **response)
{
	char *buf = NULL;
	size_t cap = 0, len = 0, line_len = 0;
	for (;;) {
		if (len == cap && (cap == CTL_RESPONSE_MAX + 1 || grow(x, &buf, &cap) != 0)) {
			if (cap == CTL_RESPONSE_MAX + 1)
				snprintf(x->err, x->errlen,
					 "the answer from %s is longer than %u bytes", x->path,
					 CTL_RESPONSE_MAX);
			break;
		}
		ssize_t n = recv(x->fd, buf + len, cap - len, 0);
		if (n > 0) {
			size_t from = len;
			len += (size_t)n;
			if (!line_ends(buf, from, len, &line_len))
				continue;
			if (memchr(buf, '\0', line_len)) {
				snprintf(x->err, x->errlen, "the answer from %s holds a NUL byte",
					 x->path);
				break;
			}
			*response = buf;
			return 0;
		}
		if (n == 0) {
			snprintf(x->err, x->errlen,
				 len ? "the answer from %s ended without a newline"
				     : "the control socket %s closed the connection without an "
				       "answer",
				 x->path);
			break;
		}
		if (errno == EINTR)
			continue;
		int ready = errno == EAGAIN ? wait_ready(x, POLLIN) : -1;
		if (ready == 0) {
			timed_out(x);
			break;
		}
		if (ready < 0) {
			snprintf(x->err, x->errlen, "cannot read the answer from %s: %s", x->path,
				 strerror(errno));
			break;
		}
	}
	free(buf);
	return -1;
}

int ctl_exchange(const char *path, const char *request, char **response, double timeout_s,
		 char *err, size_t errlen)
{
	struct exchange x = {.fd = -1, .timeout_s = timeout_s, .err = err, .errlen = errlen};
	ctl_printable(path, x.path, sizeof(x.path));
	x.deadline_ms = timeout_s > 0 ? clock_mono_ms() + (int64_t)ceil(timeout_s * 1000) : -1;
	*response = NULL;
	if (errlen)
		err[0] = '\0';
	if (strchr(request, '\n')) {
		snprintf(err, errlen, "the request holds a newline");
		return -1;
	}
	int rc = connect_socket(&x, path);
	if (rc == 0)
		rc = send_line(&x, request);
	if (rc == 0) {
		rc = receive_line(&x, response);
	} else if (rc == HUNG_UP) {
		/* A server that hung up may have said why: that answer is worth more. */
		char sent[512];
		snprintf(sent, sizeof(sent), "%s", err);
		rc = receive_line(&x, response);
		if (rc != 0)
			snprintf(err, errlen, "%s", sent);
	}
	if (x.fd >= 0)
		close(x.fd);
	return rc;
}
