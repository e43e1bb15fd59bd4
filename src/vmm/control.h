/* The control socket's server (docs/control.md): a unix stream socket, one JSON request per
 * line and one response per request, for the supervisor's main loop. Everything a client sends
 * is hostile: lines are bounded, requests are checked against the protocol's table before the
 * supervisor sees them, idle and surplus clients are dropped, and no client can block the loop
 * (every socket is non-blocking; answers wait in the client's own buffer). A client's next
 * request is neither read nor taken while its answer is unsent, so a client that does not read
 * holds at most one answer, of at most CONTROL_ANSWER_MAX bytes. */
#ifndef VMM_CONTROL_H
#define VMM_CONTROL_H

#include <jansson.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#define CONTROL_LINE_MAX 65536u
#define CONTROL_CLIENTS_MAX 64u
#define CONTROL_IDLE_NS (60ll * 1000000000ll)
/* The longest answer line queued for a client (denali-ctl reads no more): a longer one is
 * replaced by an error. With one answer at a time, it bounds a client's unsent bytes. */
#define CONTROL_ANSWER_MAX (16u << 20)

struct control;

/* What the supervisor does with a request. handle gets a checked request (its "cmd" is a
 * command of ctl_commands and its keys are that command's, with the right types) and returns
 * the response (a new reference), or NULL to answer later with control_answer (wait, stats). */
struct control_ops {
	void *ctx;
	json_t *(*handle)(void *ctx, unsigned client, const json_t *request);
};

/* Opens the socket at path (mode 0600) after taking path.lock: a live run on the same path
 * refuses this one, a socket left by a dead run is replaced. NULL with err. */
struct control *control_open(const char *path, const struct control_ops *ops, char *err,
			     size_t errlen);

/* Closes every connection, removes the socket and its lock. */
void control_close(struct control *c);

/* Fills fds (room for 1 + CONTROL_CLIENTS_MAX) with the listener and the clients; returns how
 * many. */
unsigned control_pollfds(const struct control *c, struct pollfd *fds);

/* Accepts, reads, answers and writes what poll reported on those fds; drops clients idle for
 * CONTROL_IDLE_NS at now_ns. */
void control_serve(struct control *c, const struct pollfd *fds, unsigned n, int64_t now_ns);

/* Answers a request that handle deferred; a client gone meanwhile is fine (nothing is sent).
 * Takes the reference. */
void control_answer(struct control *c, unsigned client, json_t *response);

/* A response object: {"ok": false, "code": code, "error": ...}. */
json_t *control_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses one request line (its newline taken off) and checks it against the protocol's table
 * (ctl_command_check, ctl/ctl_proto.h): the request (a new reference), or NULL with the usage
 * error to answer in *error (a new reference; NULL out of memory). Pure. */
json_t *control_parse_request(const char *line, size_t len, json_t **error);

#endif
