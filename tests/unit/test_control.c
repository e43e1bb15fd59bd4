/* The control socket's server over a real unix socket: the protocol's checks, framing, limits
 * and deferred answers, with a fake supervisor. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unit.h"
#include "vmm/control.h"

static unsigned deferred_client;
static unsigned big_answers; /* "swap-in" requests handled */

/* An answer of {"ok":true,"pad":"xxx..."} with pad bytes of padding. */
static json_t *padded(size_t pad)
{
	char *text = malloc(pad + 1);
	memset(text, 'x', pad);
	text[pad] = '\0';
	json_t *r = json_pack("{s:b, s:s}", "ok", 1, "pad", text);
	free(text);
	return r;
}

/* The fake supervisor: answers every command with its name, and defers "wait"; "swap-in"
 * gets a 20 KiB answer, "swap-out" one over CONTROL_ANSWER_MAX. */
static json_t *fake_handle(void *ctx, unsigned client, const json_t *request)
{
	(void)ctx;
	const char *cmd = json_string_value(json_object_get(request, "cmd"));
	if (strcmp(cmd, "swap-in") == 0) {
		big_answers++;
		return padded(20 << 10);
	}
	if (strcmp(cmd, "swap-out") == 0)
		return padded(CONTROL_ANSWER_MAX);
	if (strcmp(cmd, "wait") == 0) {
		deferred_client = client;
		return NULL;
	}
	return json_pack("{s:b, s:s}", "ok", 1, "did", cmd);
}

static const struct control_ops fake_ops = {.handle = fake_handle};

/* Short enough for sun_path (108 bytes), in a folder of its own: control_open refuses a
 * folder others may write, such as /tmp. */
static void socket_path(char *out, size_t len)
{
	snprintf(out, len, "%s/ctl-%d", unit_tmpdir(), (int)getpid());
}

static int dial(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

static void exchange_round(struct control *c)
{
	struct pollfd fds[1 + CONTROL_CLIENTS_MAX];
	unsigned n = control_pollfds(c, fds);
	poll(fds, n, 5);
	control_serve(c, fds, n, 0);
}

/* Serves until the client fd has a full line to read (or 2 s passed); returns the line. */
static char *exchange(struct control *c, int fd, const char *send_text)
{
	static char line[1 << 17];
	if (send_text)
		ck_assert_int_eq(write(fd, send_text, strlen(send_text)),
				 (ssize_t)strlen(send_text));
	size_t got = 0;
	for (int round = 0; round < 400; round++) {
		struct pollfd fds[1 + CONTROL_CLIENTS_MAX];
		unsigned n = control_pollfds(c, fds);
		poll(fds, n, 5);
		control_serve(c, fds, n, 0);
		struct pollfd me = {.fd = fd, .events = POLLIN};
		while (poll(&me, 1, 0) == 1 && got < sizeof(line) - 1) {
			ssize_t r = read(fd, line + got, 1);
			if (r <= 0)
				goto out;
			got += (size_t)r;
			if (line[got - 1] == '\n')
				goto out;
		}
	}
out:
	line[got] = '\0';
	return line;
}

/* The line parser alone (the fuzz target's entry): a request passes checked, anything else
 * comes back as the usage error the server sends. */
START_TEST(test_control_parse_request)
{
	static const char good[] = "{\"cmd\":\"stop\",\"name\":\"a\",\"grace\":1.5}";
	json_t *error = (json_t *)1;
	json_t *r = control_parse_request(good, sizeof(good) - 1, &error);
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(error);
	ck_assert_str_eq(json_string_value(json_object_get(r, "cmd")), "stop");
	json_decref(r);
	static const char *bad[] = {"not json",
				    "{\"cmd\":\"list\",\"cmd\":\"list\"}",
				    "{\"cmd\":\"stop\"}",
				    "{\"cmd\":\"nope\"}",
				    "[1]",
				    ""};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_ptr_null(control_parse_request(bad[i], strlen(bad[i]), &error));
		ck_assert_ptr_nonnull(error);
		ck_assert(json_is_false(json_object_get(error, "ok")));
		ck_assert_str_eq(json_string_value(json_object_get(error, "code")), "usage");
		json_decref(error);
	}
	/* Only len bytes are read: the rest of the buffer (the next line) is not this one's. */
	ck_assert_ptr_null(control_parse_request("{\"cmd\":\"list\"}", 8, &error));
	json_decref(error);
}
END_TEST

START_TEST(test_control_protocol)
{
	char path[64], err[512];
	socket_path(path, sizeof(path));
	struct control *c = control_open(path, &fake_ops, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	/* A second run on the same path is refused. */
	ck_assert_ptr_null(control_open(path, &fake_ops, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "in use by another denali-run"));

	int fd = dial(path);
	ck_assert_str_eq(exchange(c, fd, "{\"cmd\":\"list\"}\n"),
			 "{\"ok\":true,\"did\":\"list\"}\n");
	/* Hostile lines: each an error, and the connection goes on. */
	static const char *const bad[][2] = {
		{"{nope\n", "not JSON"},
		{"[1,2]\n", "a request is a JSON object"},
		{"{\"cmd\":3}\n", "key \\\"cmd\\\": expected the command"},
		{"{\"cmd\":\"frob\"}\n", "unknown command \\\"frob\\\""},
		{"{\"cmd\":\"stop\",\"name\":\"a\",\"x\":1}\n", "stop: unknown key \\\"x\\\""},
		{"{\"cmd\":\"stop\",\"name\":7}\n", "stop: key \\\"name\\\": expected a string"},
		{"{\"cmd\":\"stop\",\"name\":\"a\",\"grace\":\"5\"}\n", "expected a number"},
		{"{\"cmd\":\"kill\"}\n", "kill: key \\\"name\\\": missing"},
		{"{\"cmd\":\"list\",\"cmd\":\"list\"}\n", "not JSON"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *got = exchange(c, fd, bad[i][0]);
		ck_assert_msg(strstr(got, "\"ok\":false") && strstr(got, "\"code\":\"usage\"") &&
				      strstr(got, bad[i][1]),
			      "%s -> %s", bad[i][0], got);
	}
	ck_assert_str_eq(exchange(c, fd, "{\"cmd\":\"stop\",\"name\":\"a\",\"grace\":2.5}\n"),
			 "{\"ok\":true,\"did\":\"stop\"}\n");
	/* Two requests in one write: two answers, in order. */
	ck_assert_str_eq(
		exchange(c, fd, "{\"cmd\":\"kill\",\"name\":\"a\"}\n{\"cmd\":\"metrics\"}\n"),
		"{\"ok\":true,\"did\":\"kill\"}\n");
	ck_assert_str_eq(exchange(c, fd, NULL), "{\"ok\":true,\"did\":\"metrics\"}\n");
	/* A deferred answer: nothing until the supervisor answers, then the next request. */
	ck_assert_str_eq(exchange(c, fd, "{\"cmd\":\"wait\",\"name\":\"a\"}\n{\"cmd\":\"list\"}\n"),
			 "");
	control_answer(c, deferred_client, json_pack("{s:b, s:s}", "ok", 1, "waited", "a"));
	ck_assert_str_eq(exchange(c, fd, NULL), "{\"ok\":true,\"waited\":\"a\"}\n");
	ck_assert_str_eq(exchange(c, fd, NULL), "{\"ok\":true,\"did\":\"list\"}\n");
	/* An answer for a client gone is dropped. */
	control_answer(c, deferred_client + 256, json_pack("{s:b}", "ok", 1));
	close(fd);
	control_close(c);
	ck_assert_int_eq(access(path, F_OK), -1); /* removed */
}
END_TEST

START_TEST(test_control_limits)
{
	char path[64], err[512];
	socket_path(path, sizeof(path));
	/* A socket left by a dead run is replaced. */
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	ck_assert_int_eq(bind(stale, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(stale);
	struct control *c = control_open(path, &fake_ops, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	/* A line past the limit: an error, then the connection is closed. */
	int fd = dial(path);
	char *huge = malloc(CONTROL_LINE_MAX + 10);
	memset(huge, 'x', CONTROL_LINE_MAX + 9);
	huge[CONTROL_LINE_MAX + 9] = '\0';
	ssize_t sent = send(fd, huge, CONTROL_LINE_MAX + 9, MSG_DONTWAIT);
	ck_assert_int_gt(sent, 0);
	const char *got = exchange(c, fd, NULL);
	ck_assert_msg(strstr(got, "a request line is at most 65536 bytes"), "%s", got);
	free(huge);
	close(fd);
	/* More clients than allowed: the surplus gets an error line and is closed; the others
	 * are served. */
	int fds[CONTROL_CLIENTS_MAX + 1];
	for (unsigned i = 0; i <= CONTROL_CLIENTS_MAX; i++) {
		fds[i] = dial(path);
		exchange_round(c); /* accepted now: the backlog is short */
	}
	got = exchange(c, fds[CONTROL_CLIENTS_MAX], NULL);
	ck_assert_msg(strstr(got, "too many control connections"), "%s", got);
	ck_assert_str_eq(exchange(c, fds[0], "{\"cmd\":\"list\"}\n"),
			 "{\"ok\":true,\"did\":\"list\"}\n");
	for (unsigned i = 0; i <= CONTROL_CLIENTS_MAX; i++)
		close(fds[i]);
	/* An idle client is dropped after CONTROL_IDLE_NS. */
	fd = dial(path);
	struct pollfd pfds[1 + CONTROL_CLIENTS_MAX];
	unsigned n = control_pollfds(c, pfds);
	poll(pfds, n, 50);
	control_serve(c, pfds, n, 1); /* accepted at time 1 */
	n = control_pollfds(c, pfds);
	ck_assert_uint_ge(n, 2);
	control_serve(c, pfds, 0, 2 + CONTROL_IDLE_NS); /* nothing ready; long after */
	char b;
	ck_assert_int_eq(read(fd, &b, 1), 0); /* closed by the server */
	close(fd);
	control_close(c);
}
END_TEST

/* Out of descriptors: the listener stops being polled for a while instead of spinning, and
 * the waiting client is accepted once descriptors are back. */
START_TEST(test_control_out_of_descriptors)
{
	char path[64], err[512];
	socket_path(path, sizeof(path));
	struct control *c = control_open(path, &fake_ops, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	int fd = dial(path);
	int next = dup(0); /* the lowest free descriptor */
	close(next);
	struct rlimit was, tight;
	getrlimit(RLIMIT_NOFILE, &was);
	tight = was;
	tight.rlim_cur = (rlim_t)next; /* no descriptor left for accept */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
	struct pollfd pfds[1 + CONTROL_CLIENTS_MAX];
	unsigned n = control_pollfds(c, pfds);
	ck_assert_int_eq(pfds[0].events, POLLIN);
	ck_assert_int_eq(poll(pfds, n, 1000), 1);
	control_serve(c, pfds, n, 1000); /* accept fails: EMFILE */
	n = control_pollfds(c, pfds);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(pfds[0].events, 0); /* paused: poll does not spin on it */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &was), 0);
	control_serve(c, pfds, 0, 1000 + 200000000ll); /* later: accepting again */
	n = control_pollfds(c, pfds);
	ck_assert_int_eq(pfds[0].events, POLLIN);
	ck_assert_str_eq(exchange(c, fd, "{\"cmd\":\"list\"}\n"),
			 "{\"ok\":true,\"did\":\"list\"}\n");
	close(fd);
	control_close(c);
}
END_TEST

/* A client that sends requests and never reads: nothing more is read or handled while its
 * answer is unsent, so it holds one answer (what the socket does not take) and no more,
 * while other clients are served; once it reads, it is served on, in order. An answer over
 * CONTROL_ANSWER_MAX becomes an error. */
START_TEST(test_control_client_not_reading)
{
	char path[64], err[512];
	socket_path(path, sizeof(path));
	struct control *c = control_open(path, &fake_ops, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	static const char req[] = "{\"cmd\":\"swap-in\",\"name\":\"a\"}\n";
	int flood = dial(path);
	big_answers = 0;
	size_t sent = 0;
	for (int round = 0; round < 200; round++) {
		/* As many requests as the socket takes, again and again: 10,000 in all at most. */
		while (sent < 10000 && send(flood, req, sizeof(req) - 1, MSG_DONTWAIT) > 0)
			sent++;
		exchange_round(c);
	}
	/* More requests than the bound below (the socket's buffers take a few hundred; the old
	 * server read all 10,000 and queued 200 MB of answers). */
	ck_assert_uint_ge(sent, 200);
	/* Each 20 KiB answer waits in the socket's buffers (a few hundred KiB) or in the
	 * client's: a few dozen answers at most. */
	ck_assert_msg(big_answers < 100, "%u requests of a client that does not read handled",
		      big_answers);
	unsigned held = big_answers;
	/* Others are served meanwhile. */
	int other = dial(path);
	ck_assert_str_eq(exchange(c, other, "{\"cmd\":\"list\"}\n"),
			 "{\"ok\":true,\"did\":\"list\"}\n");
	/* An answer past the limit: an error instead, and the connection goes on. */
	const char *got = exchange(c, other, "{\"cmd\":\"swap-out\",\"name\":\"a\"}\n");
	ck_assert_msg(strstr(got, "\"ok\":false") && strstr(got, "more than the 16 MiB"), "%s",
		      got);
	ck_assert_str_eq(exchange(c, other, "{\"cmd\":\"list\"}\n"),
			 "{\"ok\":true,\"did\":\"list\"}\n");
	close(other);
	/* The flooder reads at last: its answers come on, whole and in order. */
	static char buf[1 << 16];
	size_t lines = 0;
	for (int round = 0; round < 400 && lines < held + 20; round++) {
		exchange_round(c);
		ssize_t r;
		while ((r = recv(flood, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			for (ssize_t i = 0; i < r; i++)
				lines += buf[i] == '\n';
	}
	ck_assert_uint_ge(lines, held + 20);
	ck_assert_uint_ge(big_answers, lines);
	close(flood);
	control_close(c);
}
END_TEST

Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_control_protocol);
	tcase_add_test(tc, test_control_parse_request);
	tcase_add_test(tc, test_control_limits);
	tcase_add_test(tc, test_control_out_of_descriptors);
	tcase_add_test(tc, test_control_client_not_reading);
	suite_add_tcase(s, tc);
	return s;
}
