/* denali-ctl: every command's request, every usage error, the response's exit status and its
 * tables and sentences, and the exchange itself against a fake server on a unix socket. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_client.h"
#include "ctl_request.h"
#include "ctl_response.h"
#include "unit.h"

#define ARGS_MAX 6

/* ---- a private temporary folder per test (removed at its end) ---- */

static char test_dir[PATH_MAX];

static void make_test_dir(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(test_dir, sizeof(test_dir), "%s/denali-ctl-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(test_dir));
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	return remove(path);
}

static void remove_test_dir(void)
{
	if (test_dir[0])
		nftw(test_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	test_dir[0] = '\0';
}

static void in_test_dir(char *out, size_t len, const char *name)
{
	ck_assert_int_lt(snprintf(out, len, "%s/%s", test_dir, name), (int)len);
}

/* ---- requests ---- */

struct request_case {
	const char *argv[ARGS_MAX];
	const char *json; /* the request expected */
};

static const struct request_case requests[] = {
	{{"list"}, "{\"cmd\": \"list\"}"},
	{{"stats", "web"}, "{\"cmd\": \"stats\", \"name\": \"web\"}"},
	{{"stats", "all"}, "{\"cmd\": \"stats\", \"name\": \"all\"}"},
	{{"stop", "web"}, "{\"cmd\": \"stop\", \"name\": \"web\"}"},
	{{"stop", "web", "--grace", "3"}, "{\"cmd\": \"stop\", \"name\": \"web\", \"grace\": 3}"},
	{{"stop", "--grace", "2.5", "web"},
	 "{\"cmd\": \"stop\", \"name\": \"web\", \"grace\": 2.5}"},
	{{"stop", "web", "--grace=0"}, "{\"cmd\": \"stop\", \"name\": \"web\", \"grace\": 0}"},
	{{"stop", "a-b_c.1", "--grace", "10000000"},
	 "{\"cmd\": \"stop\", \"name\": \"a-b_c.1\", \"grace\": 10000000}"},
	{{"kill", "web"}, "{\"cmd\": \"kill\", \"name\": \"web\"}"},
	{{"swap-out", "web"}, "{\"cmd\": \"swap-out\", \"name\": \"web\"}"},
	{{"swap-in", "web"}, "{\"cmd\": \"swap-in\", \"name\": \"web\"}"},
	{{"budget", "512M"}, "{\"cmd\": \"budget\", \"size\": \"512M\"}"},
	{{"budget", "4K"}, "{\"cmd\": \"budget\", \"size\": \"4K\"}"},
	{{"budget", "none"}, "{\"cmd\": \"budget\", \"size\": \"none\"}"},
	{{"wait", "web"}, "{\"cmd\": \"wait\", \"name\": \"web\"}"},
	{{"metrics"}, "{\"cmd\": \"metrics\"}"},
	{{"shutdown"}, "{\"cmd\": \"shutdown\"}"},
};

static int count_args(const char *const argv[ARGS_MAX])
{
	int n = 0;
	while (n < ARGS_MAX && argv[n])
		n++;
	return n;
}

/* ctl_request_build takes main's argv; string literals are const here. */
static json_t *build(const char *const args[ARGS_MAX], char *err, size_t errlen)
{
	char *argv[ARGS_MAX];
	int argc = count_args(args);
	memcpy(argv, args, sizeof(argv));
	return ctl_request_build(argc, argv, err, errlen);
}

START_TEST(test_request_built)
{
	const struct request_case *rc = &requests[_i];
	char err[512] = "untouched";
	json_t *got = build(rc->argv, err, sizeof(err));
	ck_assert_msg(got, "%s: %s", rc->argv[0], err);
	json_t *want = json_loads(rc->json, 0, NULL);
	ck_assert_ptr_nonnull(want);
	char *text = json_dumps(got, JSON_COMPACT);
	ck_assert_msg(json_equal(got, want), "%s: got %s", rc->argv[0], text);
	/* A whole grace stays an integer on the wire; a fraction is a real. */
	json_t *grace = json_object_get(got, "grace");
	if (grace)
		ck_assert_int_eq(json_typeof(grace), json_typeof(json_object_get(want, "grace")));
	ck_assert_str_eq(ctl_request_command(got), rc->argv[0]);
	free(text);
	json_decref(got);
	json_decref(want);
}
END_TEST

/* start sends the file's absolute path, with links and dots resolved. */
START_TEST(test_request_start_absolute)
{
	make_test_dir();
	char file[PATH_MAX], real_dir[PATH_MAX], want[PATH_MAX + 16], err[512];
	in_test_dir(file, sizeof(file), "svc.json");
	FILE *f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{}\n", f);
	fclose(f);
	ck_assert_ptr_nonnull(realpath(test_dir, real_dir));
	snprintf(want, sizeof(want), "%s/svc.json", real_dir);
	ck_assert_int_eq(chdir(test_dir), 0);
	char up[PATH_MAX];
	snprintf(up, sizeof(up), "../%s/./svc.json", strrchr(test_dir, '/') + 1);
	const char *const spellings[] = {"svc.json", "./svc.json", up, file};
	for (unsigned i = 0; i < 4; i++) {
		const char *const args[ARGS_MAX] = {"start", spellings[i]};
		json_t *got = build(args, err, sizeof(err));
		ck_assert_msg(got, "%s: %s", spellings[i], err);
		ck_assert_str_eq(json_string_value(json_object_get(got, "cmd")), "start");
		ck_assert_str_eq(json_string_value(json_object_get(got, "file")), want);
		ck_assert_uint_eq(json_object_size(got), 2);
		json_decref(got);
	}
	ck_assert_int_eq(chdir("/"), 0);
	remove_test_dir();
}
END_TEST

/* ---- usage errors ---- */

struct usage_case {
	const char *argv[ARGS_MAX];
	const char *message; /* the whole message, or its start when it ends with '*' */
};

static const struct usage_case usage_errors[] = {
	{{NULL},
	 "expected a command (commands: list, stats, start, stop, kill, swap-out, swap-in, "
	 "budget, wait, metrics, shutdown)"},
	{{"frob"},
	 "unknown command \"frob\" (commands: list, stats, start, stop, kill, swap-out, "
	 "swap-in, budget, wait, metrics, shutdown)"},
	{{"List"}, "unknown command \"List\" *"},
	{{"\x1b[31mred"}, "unknown command \"?[31mred\" *"},
	{{"list", "extra"}, "list: unexpected argument \"extra\" (usage: list)"},
	{{"list", "--table"},
	 "list: unknown option \"--table\" (denali-ctl's own options go before the command)"},
	{{"list", "--socket=/x"}, "list: unknown option \"--socket=/x\" (denali-ctl's own *"},
	{{"metrics", "-h"}, "metrics: unknown option \"-h\" (denali-ctl's own *"},
	{{"shutdown", "now"}, "shutdown: unexpected argument \"now\" (usage: shutdown)"},
	{{"stats"}, "stats: expected a service name or all (usage: stats NAME|all)"},
	{{"stats", "a", "b"}, "stats: unexpected argument \"b\" (usage: stats NAME|all)"},
	{{"stop"}, "stop: expected a service name (usage: stop NAME [--grace SECONDS])"},
	{{"stop", "--grace", "3"}, "stop: expected a service name *"},
	{{"stop", "web", "--grace", "x"},
	 "stop: --grace: \"x\" is not a number of seconds (0 to 10000000)"},
	{{"stop", "web", "--grace"},
	 "stop: --grace: expected a number of seconds (usage: stop NAME [--grace SECONDS])"},
	{{"stop", "web", "--grace="}, "stop: --grace: \"\" is not a number of seconds *"},
	{{"stop", "web", "--grace", "-1"}, "stop: --grace: \"-1\" is not a number of seconds *"},
	{{"stop", "web", "--grace", "inf"}, "stop: --grace: \"inf\" is not *"},
	{{"stop", "web", "--grace", "nan"}, "stop: --grace: \"nan\" is not *"},
	{{"stop", "web", "--grace", "1e8"}, "stop: --grace: \"1e8\" is not *"},
	{{"stop", "web", "--grace", " 3"}, "stop: --grace: \" 3\" is not *"},
	{{"stop", "web", "--grace", "3s"}, "stop: --grace: \"3s\" is not *"},
	{{"stop", "web", "--grace", "1", "--grace", "2"}, "stop: --grace is given twice"},
	{{"stop", "web", "other"}, "stop: unexpected argument \"other\" *"},
	{{"stop", "web", "--force"},
	 "stop: unknown option \"--force\" (usage: stop NAME [--grace SECONDS])"},
	{{"stop", "-g", "web"}, "stop: unknown option \"-g\" *"},
	{{"kill"}, "kill: expected a service name (usage: kill NAME)"},
	{{"kill", "a", "b"}, "kill: unexpected argument \"b\" (usage: kill NAME)"},
	{{"kill", ""}, "kill: \"\" is not a service name (1 to 63 characters)"},
	{{"kill", "0123456789012345678901234567890123456789012345678901234567890123"},
	 "kill: \"0123456789012345678901234567890123456789012345678901234567890123\" is not a "
	 "service name (1 to 63 characters)"},
	{{"kill", "-9"}, "kill: unknown option \"-9\" (usage: kill NAME)"},
	{{"swap-out"}, "swap-out: expected a service name (usage: swap-out NAME)"},
	{{"swap-in"}, "swap-in: expected a service name (usage: swap-in NAME)"},
	{{"wait"}, "wait: expected a service name (usage: wait NAME)"},
	{{"wait", "a", "--timeout", "3"},
	 "wait: unknown option \"--timeout\" (denali-ctl's own options go before the command)"},
	{{"budget"}, "budget: expected a size or none (usage: budget SIZE|none)"},
	{{"budget", "12Q"},
	 "budget: \"12Q\" is not a size of at least 4K (e.g. 512M, 2G), or none"},
	{{"budget", "0"}, "budget: \"0\" is not a size of at least 4K *"},
	{{"budget", "4095"}, "budget: \"4095\" is not a size of at least 4K *"},
	{{"budget", "-1"}, "budget: \"-1\" is not a size *"},
	{{"budget", "None"}, "budget: \"None\" is not a size *"},
	{{"budget", "1G", "2G"}, "budget: unexpected argument \"2G\" (usage: budget SIZE|none)"},
	{{"start"}, "start: expected a service file (usage: start FILE)"},
	{{"start", "a.json", "b.json"},
	 "start: unexpected argument \"b.json\" (usage: start FILE)"},
	{{"start", "/nonexistent/denali/a.json"},
	 "start: /nonexistent/denali/a.json: No such file or directory"},
	{{"start", "/"}, "start: / is not a file"},
	{{"kill", "\xff"}, "argument \"?\" is not valid UTF-8"},
};

static int message_matches(const char *got, const char *want)
{
	size_t n = strlen(want);
	if (n && want[n - 1] == '*')
		return strncmp(got, want, n - 1) == 0;
	return strcmp(got, want) == 0;
}

START_TEST(test_usage_error)
{
	const struct usage_case *uc = &usage_errors[_i];
	char err[512];
	memset(err, 'X', sizeof(err));
	json_t *got = build(uc->argv, err, sizeof(err));
	/* No request, so nothing is sent; and the message says what is wrong. */
	ck_assert_msg(got == NULL, "%s was accepted", uc->argv[0] ? uc->argv[0] : "(none)");
	ck_assert_msg(message_matches(err, uc->message), "got: %s\nwant: %s", err, uc->message);
	for (const char *p = err; *p; p++)
		ck_assert_msg(*p >= 0x20 && *p < 0x7f, "unprintable byte in: %s", err);
}
END_TEST

/* Hostile arguments are cut and made printable in messages, and never overflow err. */
START_TEST(test_usage_error_hostile_argument)
{
	char huge[100000];
	memset(huge, 'a', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	huge[5] = '\n';
	char err[64], q[16];
	const char *const unknown[ARGS_MAX] = {huge, "x"};
	ck_assert_ptr_null(build(unknown, err, sizeof(err)));
	ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
	ck_assert_ptr_null(strchr(err, '\n'));
	const char *const kill[ARGS_MAX] = {"kill", huge};
	ck_assert_ptr_null(build(kill, err, sizeof(err)));
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_str_eq(ctl_printable("abc", q, sizeof(q)), "abc");
	ck_assert_str_eq(ctl_printable("0123456789abcdefgh", q, sizeof(q)), "0123456789ab...");
	ck_assert_str_eq(ctl_printable("a\tb\x7f\xc3\xa9", q, sizeof(q)), "a?b???");
	ck_assert_str_eq(ctl_printable("abcdef", q, 3), "..");
	ck_assert_str_eq(ctl_printable("ab", q, 3), "ab");
}
END_TEST

START_TEST(test_default_timeout)
{
	char err[256];
	const char *const wait[ARGS_MAX] = {"wait", "web"}, *const list[ARGS_MAX] = {"list"},
			  *const stop[ARGS_MAX] = {"stop", "web"};
	json_t *w = build(wait, err, sizeof(err));
	json_t *l = build(list, err, sizeof(err));
	json_t *s = build(stop, err, sizeof(err));
	ck_assert(ctl_request_default_timeout(w) == 0); /* none: it answers when web ends */
	ck_assert(ctl_request_default_timeout(l) == 30);
	ck_assert(ctl_request_default_timeout(s) == 30);
	json_decref(w);
	json_decref(l);
	json_decref(s);
}
END_TEST

START_TEST(test_parse_seconds)
{
	double v = -1;
	ck_assert_int_eq(ctl_parse_seconds("0", 0, 0, &v), 0);
	ck_assert(v == 0);
	ck_assert_int_eq(ctl_parse_seconds("0.25", 0, 1, &v), 0);
	ck_assert(v == 0.25);
	ck_assert_int_eq(ctl_parse_seconds(".5", 0, 1, &v), 0);
	ck_assert_int_eq(ctl_parse_seconds("10000000", 0, 1, &v), 0);
	v = 7;
	static const char *const bad[] = {"0",	 "",	"-1", "+1", " 1",	  "1 ", "inf",
					  "nan", "1e8", "1s", "x",  "10000000.5", NULL};
	for (unsigned i = 0; bad[i]; i++)
		ck_assert_msg(ctl_parse_seconds(bad[i], 0, 1, &v) == -1, "\"%s\" accepted", bad[i]);
	ck_assert_int_eq(ctl_parse_seconds(NULL, 0, 0, &v), -1);
	ck_assert(v == 7);
}
END_TEST

START_TEST(test_socket_path)
{
	char out[64], err[256];
	struct private_dir_env user = {"/run/user/7", NULL, "/home/u", 7};
	ck_assert_int_eq(ctl_socket_path("/s", "/env", &user, out, sizeof(out), err, sizeof(err)),
			 0);
	ck_assert_str_eq(out, "/s");
	ck_assert_int_eq(ctl_socket_path(NULL, "/env", &user, out, sizeof(out), err, sizeof(err)),
			 0);
	ck_assert_str_eq(out, "/env");
	ck_assert_int_eq(ctl_socket_path(NULL, "", &user, out, sizeof(out), err, sizeof(err)), 0);
	ck_assert_str_eq(out, "/run/user/7/denali/control");
	/* Without $XDG_RUNTIME_DIR: never in a folder others may write, as /var/tmp. */
	user.xdg_runtime_dir = "";
	ck_assert_int_eq(ctl_socket_path(NULL, NULL, &user, out, sizeof(out), err, sizeof(err)), 0);
	ck_assert_str_eq(out, "/home/u/.local/state/denali/control");
	struct private_dir_env root = {NULL, NULL, "/home/u", 0};
	ck_assert_int_eq(ctl_socket_path(NULL, NULL, &root, out, sizeof(out), err, sizeof(err)), 0);
	ck_assert_str_eq(out, "/run/denali/control");
	struct private_dir_env homeless = {NULL, NULL, NULL, 7};
	ck_assert_int_eq(ctl_socket_path(NULL, NULL, &homeless, out, sizeof(out), err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "no default control socket"));
	ck_assert_int_eq(ctl_socket_path("", "/env", &user, out, sizeof(out), err, sizeof(err)),
			 -1);
	ck_assert_str_eq(err, "--socket: the path is empty");
	char long_dir[100];
	memset(long_dir, 'd', sizeof(long_dir) - 1);
	long_dir[0] = '/';
	long_dir[sizeof(long_dir) - 1] = '\0';
	struct private_dir_env deep = {long_dir, NULL, NULL, 7};
	ck_assert_int_eq(ctl_socket_path(NULL, NULL, &deep, out, sizeof(out), err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "is too long"));
	ck_assert_int_eq(ctl_socket_path(NULL, NULL, &root, out, 8, err, sizeof(err)), -1);
}
END_TEST

/* ---- responses ---- */

static json_t *parse_ok(const char *line)
{
	char err[256];
	json_t *r = ctl_response_parse(line, strlen(line), err, sizeof(err));
	ck_assert_msg(r, "%s: %s", line, err);
	return r;
}

START_TEST(test_response_status)
{
	static const struct {
		const char *line;
		int status;
	} cases[] = {
		{"{\"ok\":true}", CTL_EXIT_OK},
		{"{\"ok\":true,\"code\":\"usage\"}", CTL_EXIT_OK},
		{"{\"ok\":false,\"code\":\"usage\",\"error\":\"unknown key \\\"x\\\"\"}",
		 CTL_EXIT_USAGE},
		{"{\"ok\":false,\"code\":\"failed\",\"error\":\"no service \\\"x\\\"\"}",
		 CTL_EXIT_FAILED},
		{"{\"ok\":false}", CTL_EXIT_FAILED},
		{"{\"ok\":false,\"code\":\"other\"}", CTL_EXIT_FAILED},
		{"{\"ok\":false,\"code\":2}", CTL_EXIT_FAILED},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *r = parse_ok(cases[i].line);
		ck_assert_msg(ctl_response_status(r) == cases[i].status, "%s", cases[i].line);
		json_decref(r);
	}
	ck_assert_int_eq(ctl_response_status(NULL), CTL_EXIT_FAILED);
	ck_assert_int_eq(CTL_EXIT_OK, 0);
	ck_assert_int_eq(CTL_EXIT_FAILED, 1);
	ck_assert_int_eq(CTL_EXIT_USAGE, 2);
}
END_TEST

START_TEST(test_response_not_one)
{
	static const struct {
		const char *line;
		const char *message;
	} cases[] = {
		{"", "the response is not JSON: *"},
		{"garbage", "the response is not JSON: *"},
		{"{\"ok\":true} {}", "the response is not JSON: *"},
		{"{\"ok\":true,\"ok\":false}", "the response is not JSON: *"},
		{"[]", "the response is not a JSON object"},
		{"42", "the response is not a JSON object"},
		{"\"ok\"", "the response is not a JSON object"},
		{"{}", "the response has no \"ok\": true or false"},
		{"{\"ok\":\"yes\"}", "the response has no \"ok\": true or false"},
		{"{\"ok\":1}", "the response has no \"ok\": true or false"},
	};
	char err[256];
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *r =
			ctl_response_parse(cases[i].line, strlen(cases[i].line), err, sizeof(err));
		ck_assert_msg(r == NULL, "\"%s\" accepted", cases[i].line);
		ck_assert_msg(message_matches(err, cases[i].message), "%s: %s", cases[i].line, err);
	}
	static const char nul[] = "{\"ok\":true}\0";
	ck_assert_ptr_null(ctl_response_parse(nul, sizeof(nul) - 1, err, sizeof(err)));
	ck_assert_str_eq(err, "the response contains a NUL byte");
	static const char bad_byte[] = "{\"ok\":true,\"x\":\"\x1b\"}";
	ck_assert_ptr_null(ctl_response_parse(bad_byte, sizeof(bad_byte) - 1, err, sizeof(err)));
	for (const char *p = err; *p; p++)
		ck_assert_msg(*p >= 0x20 && *p < 0x7f, "unprintable byte in: %s", err);
}
END_TEST

START_TEST(test_response_error_text)
{
	char buf[32];
	json_t *r = parse_ok("{\"ok\":false,\"code\":\"failed\",\"error\":\"no such \\u001b[2J "
			     "service, and a long sentence\"}");
	ck_assert_str_eq(ctl_response_error(r, buf, sizeof(buf)),
			 "no such ?[2J service, and a ...");
	json_decref(r);
	r = parse_ok("{\"ok\":false}");
	ck_assert_str_eq(ctl_response_error(r, buf, sizeof(buf)),
			 "the command failed, and the ...");
	json_decref(r);
	/* The line for people says the command once: the server's errors often name it. */
	char line[128];
	r = parse_ok("{\"ok\":false,\"code\":\"failed\",\"error\":\"stats: no service named "
		     "\\\"nosuch\\\"\"}");
	ck_assert_str_eq(ctl_response_failure("stats", r, line, sizeof(line)),
			 "stats: no service named \"nosuch\"");
	json_decref(r);
	r = parse_ok("{\"ok\":false,\"code\":\"failed\",\"error\":\"the fleet is stopping\"}");
	ck_assert_str_eq(ctl_response_failure("start", r, line, sizeof(line)),
			 "start: the fleet is stopping");
	ck_assert_str_eq(ctl_response_failure("stat", r, line, sizeof(line)),
			 "stat: the fleet is stopping");
	json_decref(r);
	r = parse_ok("{\"ok\":false,\"error\":\"statsx: y\"}");
	ck_assert_str_eq(ctl_response_failure("stats", r, line, sizeof(line)), "stats: statsx: y");
	json_decref(r);
}
END_TEST

static void assert_format(const char *cmd, const char *line, const char *want)
{
	json_t *r = parse_ok(line);
	char *got = ctl_response_format(cmd, r);
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strcmp(got, want) == 0, "%s: got\n%s\nwant\n%s", cmd, got, want);
	free(got);
	json_decref(r);
}

START_TEST(test_table_list)
{
	assert_format("list",
		      "{\"ok\":true,\"services\":["
		      "{\"name\":\"httpd\",\"state\":\"running\",\"cell\":0,\"uptime_s\":3725.4,"
		      "\"resident_pages\":4096,\"swapped_pages\":0},"
		      "{\"name\":\"kv-store-2\",\"state\":\"asleep\",\"cell\":12,\"uptime_s\":95,"
		      "\"resident_pages\":0,\"swapped_pages\":16384},"
		      "{\"name\":\"echo\",\"state\":\"starting\",\"cell\":1,\"uptime_s\":0.4,"
		      "\"resident_pages\":3,\"swapped_pages\":384},"
		      "{\"name\":\"old\",\"state\":\"ended\",\"cell\":null,\"uptime_s\":200000,"
		      "\"resident_pages\":-1}]}",
		      "NAME        STATE     CELL  UPTIME  RESIDENT  SWAPPED\n"
		      "httpd       running      0   1h02m       16M        0\n"
		      "kv-store-2  asleep      12   1m35s         0      64M\n"
		      "echo        starting     1      0s       12K     1.5M\n"
		      "old         ended        -   2d07h         -        -\n");
	/* An empty fleet is the header alone; a response without services too. */
	assert_format("list", "{\"ok\":true,\"services\":[]}",
		      "NAME  STATE  CELL  UPTIME  RESIDENT  SWAPPED\n");
	assert_format("list", "{\"ok\":true}", "NAME  STATE  CELL  UPTIME  RESIDENT  SWAPPED\n");
}
END_TEST

/* A name that would drive the terminal, or stretch the table without end, does neither. */
START_TEST(test_table_list_hostile)
{
	char line[1024];
	snprintf(line, sizeof(line),
		 "{\"ok\":true,\"services\":[{\"name\":\"\\u001b]0;pwned\\u0007%0100d\","
		 "\"state\":7},42,null]}",
		 0);
	json_t *r = parse_ok(line);
	char *got = ctl_response_format("list", r);
	ck_assert_ptr_nonnull(got);
	for (const char *p = got; *p; p++)
		ck_assert_msg(*p == '\n' || (*p >= 0x20 && *p < 0x7f), "unprintable byte in:\n%s",
			      got);
	ck_assert_ptr_nonnull(strstr(got, "?]0;pwned?0000"));
	ck_assert_ptr_nonnull(strstr(got, "...  -"));
	char *second = strchr(got, '\n') + 1;
	ck_assert_uint_lt(strchr(second, '\n') - second, 72 + 40);
	free(got);
	json_decref(r);
}
END_TEST

START_TEST(test_table_stats)
{
	assert_format("stats",
		      "{\"ok\":true,\"services\":["
		      "{\"name\":\"httpd\",\"outcome\":\"running\",\"cpu_ns\":1234567890,"
		      "\"hypercalls\":{\"console\":10,\"exit\":0,\"net_kick\":32},"
		      "\"events_delivered\":77,\"resident_peak_bytes\":16777216,"
		      "\"nic\":{\"rx_frames\":120,\"tx_frames\":118,\"rx_dropped\":0}},"
		      "{\"name\":\"kv\",\"outcome\":\"exited\",\"status\":0,\"cpu_ns\":75000000000,"
		      "\"hypercalls\":{\"console\":1},\"events_delivered\":5,"
		      "\"resident_peak_bytes\":1048576,"
		      "\"disk\":{\"reads\":9,\"writes\":4},\"swap\":{\"outs\":2,\"ins\":1}},"
		      "{\"name\":\"bare\"}]}",
		      "NAME   OUTCOME    CPU  HYPERCALLS  EVENTS  PEAK  NET_RX/TX  DISK_R/W  "
		      "SWAP_OUT/IN\n"
		      "httpd  running  1.23s          42      77   16M    120/118         -        "
		      "    -\n"
		      "kv     exited   1m15s           1       5  1.0M          -       9/4        "
		      "  2/1\n"
		      "bare   -            -           -       -     -          -         -        "
		      "    -\n");
}
END_TEST

START_TEST(test_format_sentences)
{
	assert_format("start", "{\"ok\":true,\"name\":\"web\"}", "started web\n");
	assert_format("stop", "{\"ok\":true,\"name\":\"web\"}", "stopping web\n");
	assert_format("kill", "{\"ok\":true,\"name\":\"web\"}", "killed web\n");
	assert_format("swap-out", "{\"ok\":true,\"name\":\"web\"}",
		      "web will be swapped out at its next idle\n");
	assert_format("swap-in", "{\"ok\":true,\"name\":\"web\"}", "web is awake\n");
	assert_format("wait", "{\"ok\":true,\"name\":\"web\",\"outcome\":\"exited\",\"status\":3}",
		      "web ended: exited, status 3\n");
	assert_format("wait", "{\"ok\":true,\"name\":\"web\",\"outcome\":\"lost\"}",
		      "web ended: lost\n");
	assert_format("budget", "{\"ok\":true,\"budget_bytes\":536870912}",
		      "memory budget: 512M (536870912 bytes)\n");
	assert_format("budget", "{\"ok\":true,\"budget_bytes\":0}", "memory budget: none\n");
	assert_format("shutdown", "{\"ok\":true}", "the fleet is stopping\n");
	assert_format("kill", "{\"ok\":true}", "killed -\n");
}
END_TEST

/* metrics prints its text as it came (for grep), newline-terminated, terminal-safe. */
START_TEST(test_format_metrics)
{
	assert_format("metrics",
		      "{\"ok\":true,\"text\":\"# TYPE denali_services gauge\\n"
		      "denali_services 3\\n\"}",
		      "# TYPE denali_services gauge\ndenali_services 3\n");
	assert_format("metrics", "{\"ok\":true,\"text\":\"a 1\\tb\"}", "a 1\tb\n");
	assert_format("metrics", "{\"ok\":true,\"text\":\"a\\u001b[2Jb\\r\\n\"}", "a?[2Jb?\n");
	assert_format("metrics", "{\"ok\":true,\"text\":\"\"}", "");
	/* C1 controls, UTF-8 encoded (U+009B is CSI, U+0080 and U+009F the ends): one '?' each;
	 * U+00A0 and U+00E9 are not controls and pass. */
	assert_format("metrics",
		      "{\"ok\":true,\"text\":\"a\\u009b31mb\\u0080\\u009f\\u00a0\\u00e9\\n\"}",
		      "a?31mb??\xc2\xa0\xc3\xa9\n");
	assert_format("metrics", "{\"ok\":true}", "");
}
END_TEST

/* ---- the exchange, against a fake server on a unix socket ---- */

enum fake_act { ANSWER, ANSWER_SLOWLY, CLOSE, HANG, FLOOD, HANG_UP_EARLY };

struct fake_server {
	int listen_fd;
	char path[108];
	enum fake_act act;
	const char *answer;
	size_t answer_len;
	char request[256]; /* the start of what it was sent */
	size_t request_len;
	pthread_t thread;
};

static void read_request(struct fake_server *s, int fd)
{
	char c;
	while (read(fd, &c, 1) == 1) {
		if (s->request_len + 1 < sizeof(s->request))
			s->request[s->request_len++] = c;
		if (c == '\n')
			break;
	}
}

static void send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};
	nanosleep(&ts, NULL);
}

static void *fake_server_run(void *arg)
{
	struct fake_server *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	if (s->act == HANG_UP_EARLY) {
		/* As for the 65th connection: an error line, closed before reading. */
		send_all(fd, s->answer, s->answer_len);
		nap_ms(50);
		close(fd);
		return NULL;
	}
	read_request(s, fd);
	char c, flood[65536];
	switch (s->act) {
	case ANSWER: send_all(fd, s->answer, s->answer_len); break;
	case ANSWER_SLOWLY:
		for (size_t i = 0; i < s->answer_len; i += 3) {
			send_all(fd, s->answer + i, s->answer_len - i < 3 ? s->answer_len - i : 3);
			nap_ms(1);
		}
		break;
	case HANG:
		while (read(fd, &c, 1) > 0) /* until the client gives up */
			;
		break;
	case FLOOD:
		memset(flood, 'x', sizeof(flood));
		for (size_t sent = 0; sent <= CTL_RESPONSE_MAX + sizeof(flood);
		     sent += sizeof(flood))
			send_all(fd, flood, sizeof(flood));
		break;
	case CLOSE:
	case HANG_UP_EARLY: break;
	}
	close(fd);
	return NULL;
}

static void fake_server_start(struct fake_server *s, enum fake_act act, const char *answer,
			      size_t answer_len)
{
	*s = (struct fake_server){.act = act, .answer = answer, .answer_len = answer_len};
	in_test_dir(s->path, sizeof(s->path), "control");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	memcpy(addr.sun_path, s->path, strlen(s->path) + 1);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s->listen_fd, 0);
	ck_assert_int_eq(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(s->listen_fd, 4), 0);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, fake_server_run, s), 0);
}

static void fake_server_join(struct fake_server *s)
{
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
}

START_TEST(test_exchange_answer)
{
	make_test_dir();
	static const char answer[] = "{\"ok\":true,\"services\":[]}\n";
	struct fake_server s;
	fake_server_start(&s, ANSWER, answer, sizeof(answer) - 1);
	char *response = NULL, err[512];
	ck_assert_msg(ctl_exchange(s.path, "{\"cmd\":\"list\"}", &response, 5, err, sizeof(err)) ==
			      0,
		      "%s", err);
	fake_server_join(&s);
	ck_assert_str_eq(response, "{\"ok\":true,\"services\":[]}");
	ck_assert_uint_eq(s.request_len, 15);
	ck_assert(memcmp(s.request, "{\"cmd\":\"list\"}\n", 15) == 0);
	free(response);
	remove_test_dir();
}
END_TEST

/* An answer in pieces is put together; what follows its newline is not part of it. */
START_TEST(test_exchange_answer_in_pieces)
{
	make_test_dir();
	static const char answer[] = "{\"ok\":true,\"name\":\"web\"}\n{\"ok\":false}\n";
	struct fake_server s;
	fake_server_start(&s, ANSWER_SLOWLY, answer, sizeof(answer) - 1);
	char *response = NULL, err[512];
	ck_assert_msg(ctl_exchange(s.path, "{\"cmd\":\"kill\",\"name\":\"web\"}", &response, 0, err,
				   sizeof(err)) == 0,
		      "%s", err);
	fake_server_join(&s);
	ck_assert_str_eq(response, "{\"ok\":true,\"name\":\"web\"}");
	free(response);
	remove_test_dir();
}
END_TEST

/* A long answer (1 MiB, as stats of a big fleet) grows the buffer and arrives whole. */
START_TEST(test_exchange_long_answer)
{
	make_test_dir();
	size_t len = (1u << 20) + 2;
	char *answer = malloc(len);
	ck_assert_ptr_nonnull(answer);
	memset(answer, 'a', len);
	answer[0] = '"';
	answer[len - 2] = '"';
	answer[len - 1] = '\n';
	struct fake_server s;
	fake_server_start(&s, ANSWER, answer, len);
	char *response = NULL, err[512];
	ck_assert_msg(ctl_exchange(s.path, "{\"cmd\":\"stats\",\"name\":\"all\"}", &response, 5,
				   err, sizeof(err)) == 0,
		      "%s", err);
	fake_server_join(&s);
	ck_assert_uint_eq(strlen(response), len - 1);
	ck_assert(memcmp(response, answer, len - 1) == 0);
	free(response);
	free(answer);
	remove_test_dir();
}
END_TEST

static void assert_exchange_fails(enum fake_act act, const char *answer, size_t answer_len,
				  double timeout_s, const char *message)
{
	make_test_dir();
	struct fake_server s;
	fake_server_start(&s, act, answer, answer_len);
	static char untouched[] = "untouched";
	char *response = untouched, err[512];
	ck_assert_int_eq(
		ctl_exchange(s.path, "{\"cmd\":\"list\"}", &response, timeout_s, err, sizeof(err)),
		-1);
	fake_server_join(&s);
	ck_assert_ptr_null(response);
	char want[1024];
	snprintf(want, sizeof(want), message, s.path);
	ck_assert_msg(message_matches(err, want), "got: %s\nwant: %s", err, want);
	remove_test_dir();
}

START_TEST(test_exchange_closed_without_answer)
{
	assert_exchange_fails(CLOSE, "", 0, 5,
			      "the control socket %s closed the connection without an answer");
}
END_TEST

START_TEST(test_exchange_answer_without_newline)
{
	assert_exchange_fails(ANSWER, "{\"ok\":true}", 11, 5,
			      "the answer from %s ended without a newline");
}
END_TEST

START_TEST(test_exchange_answer_with_nul)
{
	assert_exchange_fails(ANSWER, "{\"ok\":\0true}\n", 13, 5,
			      "the answer from %s holds a NUL byte");
}
END_TEST

START_TEST(test_exchange_answer_too_long)
{
	assert_exchange_fails(FLOOD, NULL, 0, 30,
			      "the answer from %s is longer than 16777216 bytes");
}
END_TEST

START_TEST(test_exchange_timeout)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_exchange_fails(HANG, NULL, 0, 0.2,
			      "no answer from the control socket %s within 0.2 s");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(took >= 0.19 && took < 3, "took %g s", took);
}
END_TEST

/* A server that refuses the connection (too many) says why before it hangs up: even when the
 * request could not all be sent, that line is the answer. */
START_TEST(test_exchange_server_hangs_up_first)
{
	make_test_dir();
	static const char answer[] = "{\"ok\":false,\"code\":\"failed\",\"error\":\"too many "
				     "connections\"}\n";
	struct fake_server s;
	fake_server_start(&s, HANG_UP_EARLY, answer, sizeof(answer) - 1);
	/* Larger than the socket's buffers, so that the send meets the closed end. */
	size_t len = 4u << 20;
	char *request = malloc(len + 1);
	ck_assert_ptr_nonnull(request);
	memset(request, ' ', len);
	request[len] = '\0';
	char *response = NULL, err[512];
	ck_assert_msg(ctl_exchange(s.path, request, &response, 5, err, sizeof(err)) == 0, "%s",
		      err);
	fake_server_join(&s);
	ck_assert_str_eq(response,
			 "{\"ok\":false,\"code\":\"failed\",\"error\":\"too many connections\"}");
	free(response);
	free(request);
	remove_test_dir();
}
END_TEST

static void assert_unreachable(const char *path, const char *reason)
{
	static char untouched[] = "untouched";
	char *response = untouched, err[1024], want[1024];
	ck_assert_int_eq(ctl_exchange(path, "{\"cmd\":\"list\"}", &response, 5, err, sizeof(err)),
			 -1);
	ck_assert_ptr_null(response);
	snprintf(want, sizeof(want),
		 "cannot reach the control socket %s: %s (is denali-run running with --control "
		 "%s?)",
		 path, reason, path);
	ck_assert_str_eq(err, want);
}

START_TEST(test_exchange_unreachable)
{
	make_test_dir();
	char path[PATH_MAX];
	in_test_dir(path, sizeof(path), "none");
	assert_unreachable(path, "No such file or directory");
	/* A socket left behind by a run that died: nobody listens. */
	in_test_dir(path, sizeof(path), "stale");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	memcpy(addr.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	assert_unreachable(path, "Connection refused");
	/* Not a socket at all. */
	in_test_dir(path, sizeof(path), "file");
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	assert_unreachable(path, "Connection refused");
	remove_test_dir();
}
END_TEST

START_TEST(test_exchange_bad_arguments)
{
	char path[300], *response = NULL, err[512];
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(ctl_exchange(path, "{}", &response, 1, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "is too long for a unix socket (at most 107 bytes)"));
	ck_assert_int_eq(ctl_exchange("/x", "{}\n{}", &response, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "the request holds a newline");
	ck_assert_ptr_null(response);
}
END_TEST

Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("request");
	tcase_add_loop_test(tc, test_request_built, 0, sizeof(requests) / sizeof(requests[0]));
	tcase_add_test(tc, test_request_start_absolute);
	tcase_add_loop_test(tc, test_usage_error, 0,
			    sizeof(usage_errors) / sizeof(usage_errors[0]));
	tcase_add_test(tc, test_usage_error_hostile_argument);
	tcase_add_test(tc, test_default_timeout);
	tcase_add_test(tc, test_parse_seconds);
	tcase_add_test(tc, test_socket_path);
	suite_add_tcase(s, tc);
	tc = tcase_create("response");
	tcase_add_test(tc, test_response_status);
	tcase_add_test(tc, test_response_not_one);
	tcase_add_test(tc, test_response_error_text);
	tcase_add_test(tc, test_table_list);
	tcase_add_test(tc, test_table_list_hostile);
	tcase_add_test(tc, test_table_stats);
	tcase_add_test(tc, test_format_sentences);
	tcase_add_test(tc, test_format_metrics);
	suite_add_tcase(s, tc);
	tc = tcase_create("exchange");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_exchange_answer);
	tcase_add_test(tc, test_exchange_answer_in_pieces);
	tcase_add_test(tc, test_exchange_long_answer);
	tcase_add_test(tc, test_exchange_closed_without_answer);
	tcase_add_test(tc, test_exchange_answer_without_newline);
	tcase_add_test(tc, test_exchange_answer_with_nul);
	tcase_add_test(tc, test_exchange_answer_too_long);
	tcase_add_test(tc, test_exchange_timeout);
	tcase_add_test(tc, test_exchange_server_hangs_up_first);
	tcase_add_test(tc, test_exchange_unreachable);
	tcase_add_test(tc, test_exchange_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}
