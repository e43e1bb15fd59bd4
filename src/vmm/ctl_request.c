/* denali-ctl's command line as a control request (docs/control.md). */
#include "ctl_request.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "denali/abi.h"
#include "size.h"

#define DEFAULT_TIMEOUT_S 30.0
#define MAX_SECONDS 1e7
#define QUOTE_MAX 72 /* an argument quoted in an error message is cut after this */

enum ctl_operand { OPERAND_NONE, OPERAND_NAME, OPERAND_FILE, OPERAND_SIZE, OPERAND_STOP };

struct ctl_command {
	const char *name;
	enum ctl_operand operand;
	const char *expected; /* what the missing operand is, for "expected ..." */
	const char *synopsis;
	const char *help;
};

static const struct ctl_command commands[] = {
	{"list", OPERAND_NONE, NULL, "list", "every service: state, cell, uptime, memory"},
	{"stats", OPERAND_NAME, "a service name or all", "stats NAME|all",
	 "a service's counters (those of --stats), live"},
	{"start", OPERAND_FILE, "a service file", "start FILE",
	 "validate the service file FILE and start its service"},
	{"stop", OPERAND_STOP, "a service name", "stop NAME [--grace SECONDS]",
	 "raise DN_EV_STOP; stopped after the grace if still running"},
	{"kill", OPERAND_NAME, "a service name", "kill NAME", "stop it now"},
	{"swap-out", OPERAND_NAME, "a service name", "swap-out NAME",
	 "swap it out at its next idle"},
	{"swap-in", OPERAND_NAME, "a service name", "swap-in NAME", "wake it (swap it in) now"},
	{"budget", OPERAND_SIZE, "a size or none", "budget SIZE|none",
	 "set the memory budget (e.g. 512M), or none"},
	{"wait", OPERAND_NAME, "a service name", "wait NAME",
	 "wait until it has ended; answers its outcome and status"},
	{"metrics", OPERAND_NONE, NULL, "metrics", "the counters in the Prometheus text format"},
	{"shutdown", OPERAND_NONE, NULL, "shutdown",
	 "stop the fleet as on SIGTERM (under --resume: saved)"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const char *ctl_printable(const char *text, char *buf, size_t buflen)
{
	static const char cut[] = "...";
	if (buflen == 0)
		return buf;
	size_t len = strlen(text), room = buflen - 1;
	size_t keep = len <= room ? len : (room > sizeof(cut) - 1 ? room - (sizeof(cut) - 1) : 0);
	for (size_t i = 0; i < keep; i++) {
		unsigned char c = (unsigned char)text[i];
		buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (keep < len) {
		size_t n = room - keep < sizeof(cut) - 1 ? room - keep : sizeof(cut) - 1;
		memcpy(buf + keep, cut, n);
		keep += n;
	}
	buf[keep] = '\0';
	return buf;
}

/* A usage error about one command: "stop: <what>". */
__attribute__((format(printf, 4, 5))) static json_t *
fail(char *err, size_t errlen, const struct ctl_command *c, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", c->name, what);
	return NULL;
}

/* A usage error about the shape of the command line, with the command's synopsis. */
__attribute__((format(printf, 4, 5))) static json_t *
fail_usage(char *err, size_t errlen, const struct ctl_command *c, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s (usage: %s)", c->name, what, c->synopsis);
	return NULL;
}

static int is_global_option(const char *arg)
{
	static const char *const globals[] = {"--socket", "--table", "--timeout", "--help",
					      "--version"};
	for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++) {
		size_t n = strlen(globals[i]);
		if (strncmp(arg, globals[i], n) == 0 && (arg[n] == '\0' || arg[n] == '='))
			return 1;
	}
	return strcmp(arg, "-h") == 0 || strcmp(arg, "-V") == 0;
}

/* An argument the command does not take: an option it does not know, or one too many. */
static json_t *fail_unexpected(char *err, size_t errlen, const struct ctl_command *c,
			       const char *arg)
{
	char q[QUOTE_MAX];
	ctl_printable(arg, q, sizeof(q));
	if (is_global_option(arg))
		return fail(err, errlen, c,
			    "unknown option \"%s\" (denali-ctl's own options go before the "
			    "command)",
			    q);
	if (arg[0] == '-')
		return fail_usage(err, errlen, c, "unknown option \"%s\"", q);
	return fail_usage(err, errlen, c, "unexpected argument \"%s\"", q);
}

/* A service name is checked only for what the client can judge (the server knows the rules
 * and the services): not an option, and short enough to be one. */
static int check_name(const struct ctl_command *c, const char *arg, char *err, size_t errlen)
{
	char q[QUOTE_MAX];
	if (arg[0] == '-') {
		fail_unexpected(err, errlen, c, arg);
		return -1;
	}
	size_t len = strlen(arg);
	if (len == 0 || len >= DN_NAME_MAX) {
		fail(err, errlen, c, "\"%s\" is not a service name (1 to %u characters)",
		     ctl_printable(arg, q, sizeof(q)), DN_NAME_MAX - 1);
		return -1;
	}
	return 0;
}

static json_t *command_only(const struct ctl_command *c)
{
	return json_pack("{s:s}", "cmd", c->name);
}

static json_t *build_plain(const struct ctl_command *c, int argc, char *const argv[], char *err,
			   size_t errlen)
{
	if (argc > 1)
		return fail_unexpected(err, errlen, c, argv[1]);
	return command_only(c);
}

static json_t *build_name(const struct ctl_command *c, int argc, char *const argv[], char *err,
			  size_t errlen)
{
	if (argc < 2)
		return fail_usage(err, errlen, c, "expected %s", c->expected);
	if (check_name(c, argv[1], err, errlen) != 0)
		return NULL;
	if (argc > 2)
		return fail_unexpected(err, errlen, c, argv[2]);
	return json_pack("{s:s, s:s}", "cmd", c->name, "name", argv[1]);
}

/* The server reads the file, maybe from another folder: it gets the absolute path. */
static json_t *build_start(const struct ctl_command *c, int argc, char *const argv[], char *err,
			   size_t errlen)
{
	char q[QUOTE_MAX];
	if (argc < 2)
		return fail_usage(err, errlen, c, "expected %s", c->expected);
	if (argv[1][0] == '-' || argc > 2)
		return fail_unexpected(err, errlen, c, argv[argc > 2 ? 2 : 1]);
	ctl_printable(argv[1], q, sizeof(q));
	char *path = realpath(argv[1], NULL);
	if (!path)
		return fail(err, errlen, c, "%s: %s", q, strerror(errno));
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		free(path);
		return fail(err, errlen, c, "%s is not a file", q);
	}
	json_t *request = json_pack("{s:s, s:s}", "cmd", c->name, "file", path);
	free(path);
	if (!request) /* realpath gives bytes; jansson wants UTF-8 */
		return fail(err, errlen, c, "%s: the path is not valid UTF-8", q);
	return request;
}

/* Whole seconds travel as an integer, others as a real. */
static json_t *seconds_json(double s)
{
	if (s == floor(s))
		return json_integer((json_int_t)s);
	return json_real(s);
}

static json_t *build_stop(const struct ctl_command *c, int argc, char *const argv[], char *err,
			  size_t errlen)
{
	char q[QUOTE_MAX];
	const char *name = NULL;
	double grace = 0;
	int has_grace = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--grace") == 0 || strncmp(arg, "--grace=", 8) == 0) {
			const char *value = arg[7] == '='  ? arg + 8
					    : i + 1 < argc ? argv[++i]
							   : NULL;
			if (has_grace)
				return fail(err, errlen, c, "--grace is given twice");
			if (!value)
				return fail_usage(err, errlen, c,
						  "--grace: expected a number of seconds");
			if (ctl_parse_seconds(value, 0, 0, &grace) != 0)
				return fail(err, errlen, c,
					    "--grace: \"%s\" is not a number of seconds (0 to "
					    "10000000)",
					    ctl_printable(value, q, sizeof(q)));
			has_grace = 1;
		} else if (name || arg[0] == '-') {
			return fail_unexpected(err, errlen, c, arg);
		} else {
			if (check_name(c, arg, err, errlen) != 0)
				return NULL;
			name = arg;
		}
	}
	if (!name)
		return fail_usage(err, errlen, c, "expected %s", c->expected);
	json_t *request = json_pack("{s:s, s:s}", "cmd", c->name, "name", name);
	if (request && has_grace)
		json_object_set_new(request, "grace", seconds_json(grace));
	return request;
}

static json_t *build_budget(const struct ctl_command *c, int argc, char *const argv[], char *err,
			    size_t errlen)
{
	char q[QUOTE_MAX];
	if (argc < 2)
		return fail_usage(err, errlen, c, "expected %s", c->expected);
	if (argc > 2)
		return fail_unexpected(err, errlen, c, argv[2]);
	uint64_t bytes;
	if (strcmp(argv[1], "none") != 0 &&
	    (vmm_size_parse(argv[1], &bytes) != 0 || bytes < DN_PAGE_SIZE))
		return fail(err, errlen, c,
			    "\"%s\" is not a size of at least 4K (e.g. 512M, 2G), or none",
			    ctl_printable(argv[1], q, sizeof(q)));
	return json_pack("{s:s, s:s}", "cmd", c->name, "size", argv[1]);
}

static void command_names(char *out, size_t outlen)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < NCOMMANDS && used < outlen; i++) {
		int n = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "",
				 commands[i].name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* JSON strings are UTF-8: an argument that is not could not be sent. */
static int check_utf8(int argc, char *const argv[], char *err, size_t errlen)
{
	for (int i = 0; i < argc; i++) {
		json_t *s = json_string(argv[i]);
		if (!s) {
			char q[QUOTE_MAX];
			snprintf(err, errlen, "argument \"%s\" is not valid UTF-8",
				 ctl_printable(argv[i], q, sizeof(q)));
			return -1;
		}
		json_decref(s);
	}
	return 0;
}

static json_t *build(const struct ctl_command *c, int argc, char *const argv[], char *err,
		     size_t errlen)
{
	switch (c->operand) {
	case OPERAND_NONE: return build_plain(c, argc, argv, err, errlen);
	case OPERAND_NAME: return build_name(c, argc, argv, err, errlen);
	case OPERAND_FILE: return build_start(c, argc, argv, err, errlen);
	case OPERAND_STOP: return build_stop(c, argc, argv, err, errlen);
	case OPERAND_SIZE: return build_budget(c, argc, argv, err, errlen);
	}
	return NULL;
}

json_t *ctl_request_build(int argc, char *const argv[], char *err, size_t errlen)
{
	char names[256], q[QUOTE_MAX];
	command_names(names, sizeof(names));
	if (errlen)
		err[0] = '\0';
	if (argc < 1 || !argv[0]) {
		snprintf(err, errlen, "expected a command (commands: %s)", names);
		return NULL;
	}
	if (check_utf8(argc, argv, err, errlen) != 0)
		return NULL;
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		json_t *request = build(&commands[i], argc, argv, err, errlen);
		if (!request && errlen && !err[0])
			snprintf(err, errlen, "%s: out of memory", commands[i].name);
		return request;
	}
	snprintf(err, errlen, "unknown command \"%s\" (commands: %s)",
		 ctl_printable(argv[0], q, sizeof(q)), names);
	return NULL;
}

const char *ctl_request_command(const json_t *request)
{
	const char *cmd = json_string_value(json_object_get(request, "cmd"));
	return cmd ? cmd : "";
}

double ctl_request_default_timeout(const json_t *request)
{
	return strcmp(ctl_request_command(request), "wait") == 0 ? 0 : DEFAULT_TIMEOUT_S;
}

void ctl_commands_help(FILE *out)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-28s %s\n", commands[i].synopsis, commands[i].help);
}

int ctl_parse_seconds(const char *text, double min, int min_exclusive, double *out)
{
	/* strtod also takes spaces, signs, "inf" and "nan": none of them is meant here. */
	if (!text || !((*text >= '0' && *text <= '9') || *text == '.'))
		return -1;
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < min || v > MAX_SECONDS ||
	    (min_exclusive && v == min))
		return -1;
	*out = v;
	return 0;
}

int ctl_socket_path(const char *given, const char *denali_control,
		    const struct private_dir_env *env, char *out, size_t outlen, char *err,
		    size_t errlen)
{
	char q[QUOTE_MAX];
	if (given && !*given) {
		snprintf(err, errlen, "--socket: the path is empty");
		return -1;
	}
	if (!given && denali_control && *denali_control)
		given = denali_control;
	if (!given) {
		char folder[PATH_MAX];
		int n;
		if (private_dir_default(env, 0, folder, sizeof(folder)) != 0) {
			snprintf(err, errlen,
				 "no default control socket: set $DENALI_CONTROL, $XDG_RUNTIME_DIR "
				 "or $HOME, or give --socket");
			return -1;
		}
		n = snprintf(out, outlen, "%s/control", folder);
		if (n < 0 || (size_t)n >= outlen) {
			snprintf(err, errlen, "the control socket path \"%s/control\" is too long",
				 ctl_printable(folder, q, sizeof(q)));
			return -1;
		}
		return 0;
	}
	int n = snprintf(out, outlen, "%s", given);
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(err, errlen, "the control socket path \"%s\" is too long",
			 ctl_printable(given, q, sizeof(q)));
		return -1;
	}
	return 0;
}
