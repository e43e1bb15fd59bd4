/* The control protocol's table of commands, the checks it drives, and the default socket path. */
#include "ctl_proto.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The keys most commands take: the service's name, as denali-ctl's operand. */
#define NAME_KEY                                                                                   \
	{                                                                                          \
		.name = "name", .type = CTL_STRING, .required = true                               \
	}
#define NAME_OPERAND .operand = CTL_OPERAND_NAME, .expected = "a service name"

const struct ctl_command ctl_commands[CTL_CMD_COUNT] = {
	[CTL_LIST] = {.name = "list",
		      .synopsis = "list",
		      .help = "every service: state, cell, uptime, memory"},
	[CTL_STATS] = {.name = "stats",
		       .keys = {NAME_KEY},
		       .operand = CTL_OPERAND_NAME,
		       .expected = "a service name or all",
		       .synopsis = "stats NAME|all",
		       .help = "a service's counters (those of --stats), live"},
	[CTL_START] = {.name = "start",
		       .keys = {{.name = "file", .type = CTL_STRING, .required = true}},
		       .operand = CTL_OPERAND_FILE,
		       .expected = "a service file",
		       .synopsis = "start FILE",
		       .help = "validate the service file FILE and start its service"},
	[CTL_STOP] = {.name = "stop",
		      .keys = {NAME_KEY,
			       {.name = "grace", .type = CTL_NUMBER, .option = "--grace"}},
		      NAME_OPERAND,
		      .synopsis = "stop NAME [--grace SECONDS]",
		      .help = "raise DN_EV_STOP; stopped after the grace if still running"},
	[CTL_KILL] = {.name = "kill",
		      .keys = {NAME_KEY},
		      NAME_OPERAND,
		      .synopsis = "kill NAME",
		      .help = "stop it now"},
	[CTL_SWAP_OUT] = {.name = "swap-out",
			  .keys = {NAME_KEY},
			  NAME_OPERAND,
			  .synopsis = "swap-out NAME",
			  .help = "swap it out at its next idle"},
	[CTL_SWAP_IN] = {.name = "swap-in",
			 .keys = {NAME_KEY},
			 NAME_OPERAND,
			 .synopsis = "swap-in NAME",
			 .help = "wake it (swap it in) now"},
	[CTL_BUDGET] = {.name = "budget",
			.keys = {{.name = "size", .type = CTL_STRING, .required = true}},
			.operand = CTL_OPERAND_SIZE,
			.expected = "a size or none",
			.synopsis = "budget SIZE|none",
			.help = "set the memory budget (e.g. 512M), or none"},
	[CTL_WAIT] = {.name = "wait",
		      .keys = {NAME_KEY},
		      NAME_OPERAND,
		      .synopsis = "wait NAME",
		      .help = "wait until it has ended; answers its outcome and status",
		      .answers_at_end = true},
	[CTL_METRICS] = {.name = "metrics",
			 .synopsis = "metrics",
			 .help = "the counters in the Prometheus text format"},
	[CTL_SHUTDOWN] = {.name = "shutdown",
			  .synopsis = "shutdown",
			  .help = "stop the fleet as on SIGTERM (under --resume: saved)"},
};

const struct ctl_command *ctl_command_find(const char *name)
{
	for (size_t i = 0; name && i < CTL_CMD_COUNT; i++)
		if (strcmp(ctl_commands[i].name, name) == 0)
			return &ctl_commands[i];
	return NULL;
}

enum ctl_cmd ctl_command_id(const struct ctl_command *c)
{
	return (enum ctl_cmd)(c - ctl_commands);
}

enum ctl_cmd ctl_command_of(const json_t *request)
{
	const struct ctl_command *c =
		ctl_command_find(json_string_value(json_object_get(request, "cmd")));
	return c ? ctl_command_id(c) : CTL_CMD_COUNT;
}

const struct ctl_key *ctl_command_key(const struct ctl_command *c, const char *name)
{
	for (size_t i = 0; i < CTL_KEYS_MAX && c->keys[i].name; i++)
		if (strcmp(c->keys[i].name, name) == 0)
			return &c->keys[i];
	return NULL;
}

static const char *type_name(enum ctl_type t)
{
	return t == CTL_STRING ? "a string" : t == CTL_NUMBER ? "a number" : "a value";
}

static bool type_ok(const json_t *v, enum ctl_type want)
{
	return want == CTL_NUMBER ? json_is_number(v) : want == CTL_STRING && json_is_string(v);
}

int ctl_command_check(const json_t *request, char *err, size_t errlen)
{
	if (!json_is_object(request)) {
		snprintf(err, errlen, "a request is a JSON object");
		return -1;
	}
	const json_t *cmd = json_object_get(request, "cmd");
	if (!json_is_string(cmd)) {
		snprintf(err, errlen, "key \"cmd\": expected the command, a string");
		return -1;
	}
	const struct ctl_command *c = ctl_command_find(json_string_value(cmd));
	if (!c) {
		snprintf(err, errlen, "unknown command \"%.64s\"", json_string_value(cmd));
		return -1;
	}
	const char *key;
	json_t *value;
	json_object_foreach ((json_t *)(uintptr_t)request, key, value) {
		if (strcmp(key, "cmd") == 0)
			continue;
		const struct ctl_key *k = ctl_command_key(c, key);
		if (!k) {
			snprintf(err, errlen, "%s: unknown key \"%.64s\"", c->name, key);
			return -1;
		}
		if (!type_ok(value, k->type)) {
			snprintf(err, errlen, "%s: key \"%s\": expected %s", c->name, key,
				 type_name(k->type));
			return -1;
		}
	}
	for (size_t i = 0; i < CTL_KEYS_MAX && c->keys[i].name; i++)
		if (c->keys[i].required && !json_object_get(request, c->keys[i].name)) {
			snprintf(err, errlen, "%s: key \"%s\": missing", c->name, c->keys[i].name);
			return -1;
		}
	return 0;
}

void ctl_command_names(char *out, size_t outlen)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < CTL_CMD_COUNT && used < outlen; i++) {
		int n = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "",
				 ctl_commands[i].name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

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

#define QUOTE_MAX 72 /* a path quoted in an error message is cut after this */

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
