/* The control socket's server: connections, line framing, the protocol's checks. */
#include "control.h"
#include "clock.h"
#include "ctl_proto.h"
#include "listener.h"
#include "private_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A connection: bytes read towards the next line, and bytes of the answer not yet written. A
 * client's next request is taken only once its answer is written (one at a time, in order),
 * and nothing is read from it meanwhile: its unsent bytes are one answer at most. */
struct control_client {
	int fd; /* -1: free slot */
	unsigned generation;
	char *in;
	size_t in_len;
	char *out;
	size_t out_len, out_sent;
	int waiting;	 /* a deferred answer is due */
	int closing;	 /* close once out is written */
	int64_t last_ns; /* last activity */
};

struct control {
	struct listener listener; /* paused out of descriptors: never spins the loop */
	int lock_fd;
	int dir_fd; /* the socket's folder, checked: the socket and lock are named in it */
	char *path, *lock_name;
	const char *name; /* the socket's name in its folder, in path */
	struct control_ops ops;
	struct control_client clients[CONTROL_CLIENTS_MAX];
};

json_t *control_error(const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "error", msg);
}

/* Takes path.lock: held for the run, so a second run on the same path is refused while a
 * socket left by a dead run (its lock gone with it) is replaced. */
static int take_lock(struct control *c, char *err, size_t errlen)
{
	c->lock_fd =
		openat(c->dir_fd, c->lock_name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	struct stat st;
	if (c->lock_fd < 0 || fstat(c->lock_fd, &st) != 0) {
		snprintf(err, errlen, "--control: cannot create %s.lock: %s", c->path,
			 errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(err, errlen, "--control: %s.lock is not a regular file of yours", c->path);
		goto fail;
	}
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "--control: %s is in use by another denali-run", c->path);
		goto fail;
	}
	return 0;
fail:
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	c->lock_fd = -1;
	return -1;
}

static int listen_on(struct control *c, char *err, size_t errlen)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(c->path) >= sizeof(addr.sun_path)) {
		snprintf(err, errlen, "--control: path too long for a unix socket: %s", c->path);
		return -1;
	}
	/* bind() takes a path: the folder is ours and closed to others, and so are the folders
	 * above it, so the path still leads to it. */
	memcpy(addr.sun_path, c->path, strlen(c->path) + 1);
	struct stat st;
	if (fstatat(c->dir_fd, c->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "--control: %s exists and is not a socket", c->path);
			return -1;
		}
		unlinkat(c->dir_fd, c->name, 0); /* a dead run's: we hold the lock */
	}
	c->listener.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177); /* 0600 from the start: no window for others to connect */
	int bound = c->listener.fd >= 0 &&
		    bind(c->listener.fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0;
	umask(old);
	if (!bound || listen(c->listener.fd, CONTROL_CLIENTS_MAX) != 0) {
		snprintf(err, errlen, "--control: cannot listen on %s: %s", c->path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

struct control *control_open(const char *path, const struct control_ops *ops, char *err,
			     size_t errlen)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "--control: out of memory");
		return NULL;
	}
	c->listener.fd = c->lock_fd = c->dir_fd = -1;
	c->ops = *ops;
	for (unsigned i = 0; i < CONTROL_CLIENTS_MAX; i++)
		c->clients[i].fd = -1;
	if (!(c->path = strdup(path))) {
		snprintf(err, errlen, "--control: out of memory");
		control_close(c);
		return NULL;
	}
	char why[1024];
	c->dir_fd = private_dir_open_parent(c->path, "control socket folder", PRIVATE_DIR_ANCESTORS,
					    &c->name, why, sizeof(why));
	if (c->dir_fd < 0) {
		snprintf(err, errlen, "--control: %s", why);
		control_close(c);
		return NULL;
	}
	if (asprintf(&c->lock_name, "%s.lock", c->name) < 0) {
		c->lock_name = NULL;
		snprintf(err, errlen, "--control: out of memory");
		control_close(c);
		return NULL;
	}
	/* On failure control_close removes only what this run made: the socket once it has
	 * one, the lock once it holds it; another run's stay. */
	if (take_lock(c, err, errlen) != 0 || listen_on(c, err, errlen) != 0) {
		control_close(c);
		return NULL;
	}
	return c;
}

static void drop_client(struct control_client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->in);
	free(cl->out);
	/* It wraps within the id's 24 bits: an answer meant for a client 16M connections ago
	 * cannot still be waiting. */
	unsigned generation = (cl->generation + 1) & 0xffffffu;
	*cl = (struct control_client){.fd = -1, .generation = generation};
}

void control_close(struct control *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CONTROL_CLIENTS_MAX; i++)
		drop_client(&c->clients[i]);
	if (c->listener.fd >= 0) {
		close(c->listener.fd);
		unlinkat(c->dir_fd, c->name, 0);
	}
	if (c->lock_fd >= 0) {
		unlinkat(c->dir_fd, c->lock_name, 0);
		close(c->lock_fd);
	}
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	free(c->path);
	free(c->lock_name);
	free(c);
}

static int has_line(const struct control_client *cl)
{
	return cl->in_len && memchr(cl->in, '\n', cl->in_len);
}

unsigned control_pollfds(const struct control *c, struct pollfd *fds)
{
	unsigned n = 0;
	fds[n++] = listener_pollfd(&c->listener);
	for (unsigned i = 0; i < CONTROL_CLIENTS_MAX; i++) {
		const struct control_client *cl = &c->clients[i];
		if (cl->fd < 0)
			continue;
		short events = 0;
		if (cl->out_len)
			events = POLLOUT; /* its answer first: nothing is read meanwhile */
		else if (cl->waiting || cl->closing)
			events = 0;
		else if (has_line(cl))
			events = POLLOUT; /* a request already read: wake at once to take it */
		else
			events = POLLIN;
		fds[n++] = (struct pollfd){.fd = cl->fd, .events = events};
	}
	return n;
}

/* Queues one line (the object and a newline) to be written to the client: at most one answer
 * is unsent at a time, and one over CONTROL_ANSWER_MAX becomes an error. */
static void queue_line(struct control_client *cl, json_t *response)
{
	char *text = response ? json_dumps(response, JSON_COMPACT) : NULL;
	json_decref(response);
	size_t len = text ? strlen(text) : 0;
	if (text && len >= CONTROL_ANSWER_MAX) {
		free(text);
		json_t *error = control_error("failed",
					      "the answer is %zu bytes, more than the %u MiB an "
					      "answer may have: ask for less (stats NAME)",
					      len + 1, CONTROL_ANSWER_MAX >> 20);
		text = error ? json_dumps(error, JSON_COMPACT) : NULL;
		json_decref(error);
		len = text ? strlen(text) : 0;
	}
	if (text && cl->out_len + len >= CONTROL_ANSWER_MAX) {
		/* A backstop: one answer at a time keeps a client far below this. */
		fprintf(stderr,
			"denali-run: control: a client with %zu bytes of unsent answers is "
			"dropped\n",
			cl->out_len + len + 1);
		free(text);
		cl->closing = 1;
		cl->out_len = cl->out_sent = 0;
		return;
	}
	char *out = text ? realloc(cl->out, cl->out_len + len + 1) : NULL;
	if (!out) {
		free(text);
		cl->closing = 1; /* out of memory: this client goes, the fleet stays */
		return;
	}
	memcpy(out + cl->out_len, text, len);
	out[cl->out_len + len] = '\n';
	cl->out = out;
	cl->out_len += len + 1;
	free(text);
}

static unsigned client_id(const struct control *c, const struct control_client *cl)
{
	return (unsigned)(cl - c->clients) | (cl->generation << 8);
}

void control_answer(struct control *c, unsigned client, json_t *response)
{
	if ((client & 0xff) >= CONTROL_CLIENTS_MAX) {
		json_decref(response);
		return;
	}
	struct control_client *cl = &c->clients[client & 0xff];
	if (cl->fd < 0 || cl->generation != client >> 8 || !cl->waiting) {
		json_decref(response);
		return;
	}
	cl->waiting = 0;
	queue_line(cl, response);
}

json_t *control_parse_request(const char *line, size_t len, json_t **error)
{
	json_error_t jerr;
	json_t *request = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	char err[256];
	*error = NULL;
	if (!request) {
		*error = control_error("usage", "not JSON: %s", jerr.text);
		return NULL;
	}
	if (ctl_command_check(request, err, sizeof(err)) != 0) {
		*error = control_error("usage", "%s", err);
		json_decref(request);
		return NULL;
	}
	return request;
}

/* One complete line from a client: checked, then handed to the supervisor. */
static void take_request(struct control *c, struct control_client *cl, const char *line, size_t len)
{
	json_t *error;
	json_t *request = control_parse_request(line, len, &error);
	if (!request) {
		queue_line(cl, error);
		return;
	}
	json_t *response = c->ops.handle(c->ops.ctx, client_id(c, cl), request);
	json_decref(request);
	if (response)
		queue_line(cl, response);
	else
		cl->waiting = 1;
}

/* Takes the next complete line a client has sent, if it is owed no answer (none deferred,
 * none unsent): one request at a time, in order, one per round of the loop. */
static void take_line(struct control *c, struct control_client *cl)
{
	if (cl->waiting || cl->closing || cl->out_len || cl->fd < 0)
		return;
	char *nl = cl->in_len ? memchr(cl->in, '\n', cl->in_len) : NULL;
	if (nl) {
		size_t len = (size_t)(nl - cl->in);
		take_request(c, cl, cl->in, len);
		memmove(cl->in, nl + 1, cl->in_len - len - 1);
		cl->in_len -= len + 1;
	} else if (cl->in_len == CONTROL_LINE_MAX) {
		queue_line(cl, control_error("usage", "a request line is at most %u bytes",
					     CONTROL_LINE_MAX));
		cl->closing = 1;
	}
}

static void read_client(struct control_client *cl)
{
	if (!cl->in && !(cl->in = malloc(CONTROL_LINE_MAX))) {
		cl->closing = 1;
		return;
	}
	if (cl->in_len == CONTROL_LINE_MAX) {
		/* Full of requests not yet taken: here only for a hang-up, which a deferred
		 * answer would otherwise make us see again and again. */
		if (cl->waiting)
			drop_client(cl);
		return;
	}
	ssize_t n = read(cl->fd, cl->in + cl->in_len, CONTROL_LINE_MAX - cl->in_len);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		drop_client(cl);
		return;
	}
	if (n < 0)
		return;
	cl->in_len += (size_t)n;
}

static void write_client(struct control_client *cl)
{
	ssize_t n = send(cl->fd, cl->out + cl->out_sent, cl->out_len - cl->out_sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		drop_client(cl);
		return;
	}
	if (n > 0)
		cl->out_sent += (size_t)n;
	if (cl->out_sent == cl->out_len) {
		free(cl->out); /* an answer may be big: none is kept while idle */
		cl->out = NULL;
		cl->out_sent = cl->out_len = 0;
	}
}

static void accept_clients(struct control *c, int64_t now)
{
	for (;;) {
		int fd = listener_accept(&c->listener, now);
		if (fd < 0)
			return;
		struct control_client *free_slot = NULL;
		for (unsigned i = 0; i < CONTROL_CLIENTS_MAX && !free_slot; i++)
			if (c->clients[i].fd < 0)
				free_slot = &c->clients[i];
		if (!free_slot) {
			static const char full[] =
				"{\"ok\":false,\"code\":\"failed\",\"error\":\"too "
				"many control connections\"}\n";
			(void)!send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		free_slot->fd = fd;
		free_slot->last_ns = now;
	}
}

void control_serve(struct control *c, const struct pollfd *fds, unsigned n, int64_t now)
{
	if (!now)
		now = clock_mono_ns();
	listener_resume(&c->listener, now);
	for (unsigned k = 1; k < n; k++) {
		struct control_client *cl = NULL;
		for (unsigned i = 0; i < CONTROL_CLIENTS_MAX && !cl; i++)
			if (c->clients[i].fd == fds[k].fd && fds[k].fd >= 0)
				cl = &c->clients[i];
		if (!cl || !fds[k].revents)
			continue;
		cl->last_ns = now;
		short ev = fds[k].revents;
		if (cl->out_len && (ev & (POLLOUT | POLLHUP | POLLERR)))
			write_client(cl); /* a client gone fails it, and is dropped */
		else if (!cl->out_len && !cl->closing && (ev & (POLLIN | POLLHUP | POLLERR)))
			read_client(cl);
	}
	for (unsigned i = 0; i < CONTROL_CLIENTS_MAX; i++) {
		struct control_client *cl = &c->clients[i];
		take_line(c, cl);
		if (cl->fd < 0)
			continue;
		if (cl->out_len && cl->out_sent < cl->out_len)
			write_client(cl); /* most answers fit at once */
		int idle = !cl->waiting && now - cl->last_ns > CONTROL_IDLE_NS;
		if (cl->fd >= 0 && ((cl->closing && cl->out_len == 0) || idle))
			drop_client(cl);
	}
	if (n && (fds[0].revents & POLLIN))
		accept_clients(c, now);
}
