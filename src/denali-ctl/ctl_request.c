/* denali-ctl's command line as a control request (docs/control.md): the command, its operand
 * and its options, as the protocol's table describes them. */
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

/* The key the operand gives: the command's key without an option. */
static const char *operand_key(const struct ctl_command *c)
{
	for (size_t i = 0; i < CTL_KEYS_MAX && c->keys[i].name; i++)
		if (!c->keys[i].option)
			return c->keys[i].name;
	return "";
}

/* The key whose option arg is ("--grace" or "--grace=3"), or NULL. */
static const struct ctl_key *option_key(const struct ctl_command *c, const char *arg)
{
	for (size_t i = 0; i < CTL_KEYS_MAX && c->keys[i].name; i++) {
		const char *option = c->keys[i].option;
		size_t n = option ? strlen(option) : 0;
		if (option && strncmp(arg, option, n) == 0 && (arg[n] == '\0' || arg[n] == '='))
			return &c->keys[i];
	}
	return NULL;
}

/* Whole seconds travel as an integer, others as a real. */
static json_t *seconds_json(double s)
{
	if (s == floor(s))
		return json_integer((json_int_t)s);
	return json_real(s);
}

/* The options' values, by key. */
struct option_values {
	double seconds[CTL_KEYS_MAX];
	int given[CTL_KEYS_MAX];
};

/* Takes the option at argv[*i] (and its value, the next argument unless it has "="). */
static int take_option(const struct ctl_command *c, const struct ctl_key *k, int argc,
		       char *const argv[], int *i, struct option_values *v, char *err,
		       size_t errlen)
{
	char q[QUOTE_MAX];
	size_t slot = (size_t)(k - c->keys), n = strlen(k->option);
	const char *arg = argv[*i];
	const char *value = arg[n] == '=' ? arg + n + 1 : *i + 1 < argc ? argv[++*i] : NULL;
	if (v->given[slot]) {
		fail(err, errlen, c, "%s is given twice", k->option);
		return -1;
	}
	if (!value) {
		fail_usage(err, errlen, c, "%s: expected a number of seconds", k->option);
		return -1;
	}
	if (ctl_parse_seconds(value, 0, 0, &v->seconds[slot]) != 0) {
		fail(err, errlen, c, "%s: \"%s\" is not a number of seconds (0 to 10000000)",
		     k->option, ctl_printable(value, q, sizeof(q)));
		return -1;
	}
	v->given[slot] = 1;
	return 0;
}

/* A command without an operand, or with a service name, and its options in any order. */
static json_t *build_named(const struct ctl_command *c, int argc, char *const argv[], char *err,
			   size_t errlen)
{
	int takes_name = c->operand == CTL_OPERAND_NAME;
	const char *name = NULL;
	struct option_values values = {{0}, {0}};
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const struct ctl_key *k = option_key(c, arg);
		if (k) {
			if (take_option(c, k, argc, argv, &i, &values, err, errlen) != 0)
				return NULL;
		} else if (!takes_name || name || arg[0] == '-') {
			return fail_unexpected(err, errlen, c, arg);
		} else {
			if (check_name(c, arg, err, errlen) != 0)
				return NULL;
			name = arg;
		}
	}
	if (takes_name && !name)
		return fail_usage(err, errlen, c, "expected %s", c->expected);
	json_t *request = json_pack("{s:s}", "cmd", c->name);
	if (request && name && json_object_set_new(request, operand_key(c), json_string(name)))
		goto fail;
	for (size_t k = 0; request && k < CTL_KEYS_MAX; k++)
		if (values.given[k] && json_object_set_new(request, c->keys[k].name,
							   seconds_json(values.seconds[k])) != 0)
			goto fail;
	return request;
fail:
	json_decref(request);
	return NULL;
}

/* The server reads the file, maybe from another folder: it gets the absolute path. */
static json_t *build_file(const struct ctl_command *c, int argc, char *const argv[], char *err,
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
	json_t *request = json_pack("{s:s, s:s}", "cmd", c->name, operand_key(c), path);
	free(path);
	if (!request) /* realpath gives bytes; jansson wants UTF-8 */
		return fail(err, errlen, c, "%s: the path is not valid UTF-8", q);
	return request;
}

static json_t *build_size(const struct ctl_command *c, int argc, char *const argv[], char *err,
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
	return json_pack("{s:s, s:s}", "cmd", c->name, operand_key(c), argv[1]);
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
	case CTL_OPERAND_NONE:
	case CTL_OPERAND_NAME: return build_named(c, argc, argv, err, errlen);
	case CTL_OPERAND_FILE: return build_file(c, argc, argv, err, errlen);
	case CTL_OPERAND_SIZE: return build_size(c, argc, argv, err, errlen);
	}
	return NULL;
}

json_t *ctl_request_build(int argc, char *const argv[], char *err, size_t errlen)
{
	char names[256], q[QUOTE_MAX];
	ctl_command_names(names, sizeof(names));
	if (errlen)
		err[0] = '\0';
	if (argc < 1 || !argv[0]) {
		snprintf(err, errlen, "expected a command (commands: %s)", names);
		return NULL;
	}
	if (check_utf8(argc, argv, err, errlen) != 0)
		return NULL;
	const struct ctl_command *c = ctl_command_find(argv[0]);
	if (c) {
		json_t *request = build(c, argc, argv, err, errlen);
		if (!request && errlen && !err[0])
			snprintf(err, errlen, "%s: out of memory", c->name);
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
	const struct ctl_command *c = ctl_command_find(ctl_request_command(request));
	return c && c->answers_at_end ? 0 : DEFAULT_TIMEOUT_S;
}

void ctl_commands_help(FILE *out)
{
	for (size_t i = 0; i < CTL_CMD_COUNT; i++)
		fprintf(out, "  %-28s %s\n", ctl_commands[i].synopsis, ctl_commands[i].help);
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
