/* The control protocol (docs/control.md), written once: the table of commands that the server
 * (denali-run's control socket) checks requests against and dispatches on, and that the client
 * (denali-ctl) parses its command line and prints answers from; with the default socket path
 * both find. A command is added here, with a handler in the supervisor's array and a printer in
 * denali-ctl's, each indexed by its enum ctl_cmd; unit tests fail until all are there and
 * docs/control.md lists it. Pure: no I/O. */
#ifndef CTL_PROTO_H
#define CTL_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "private_dir.h"

/* Every command, in the order of docs/control.md; an index into ctl_commands. */
enum ctl_cmd {
	CTL_LIST,
	CTL_STATS,
	CTL_START,
	CTL_STOP,
	CTL_KILL,
	CTL_SWAP_OUT,
	CTL_SWAP_IN,
	CTL_BUDGET,
	CTL_WAIT,
	CTL_METRICS,
	CTL_SHUTDOWN,
	CTL_CMD_COUNT
};

/* The JSON type of a key's value. */
enum ctl_type {
	CTL_STRING = 1,
	CTL_NUMBER, /* an integer or a real */
};

/* What denali-ctl takes after the command as its one argument (the operand), checked before
 * anything is sent; it becomes the command's key without an option. */
enum ctl_operand {
	CTL_OPERAND_NONE,
	CTL_OPERAND_NAME, /* a service name (or what the server accepts in its place: "all") */
	CTL_OPERAND_FILE, /* a service file: sent as its absolute path */
	CTL_OPERAND_SIZE, /* a size of at least a page, or "none": sent as written */
};

#define CTL_KEYS_MAX 2

/* A key of a request beside "cmd". */
struct ctl_key {
	const char *name; /* NULL: no more keys */
	enum ctl_type type;
	bool required;
	/* denali-ctl's option that gives it ("--grace", a number of seconds), or NULL: the
	 * operand gives it. */
	const char *option;
};

struct ctl_command {
	const char *name;
	struct ctl_key keys[CTL_KEYS_MAX];
	enum ctl_operand operand;
	const char *expected; /* the operand in "expected ...", or NULL without one */
	const char *synopsis; /* denali-ctl's command line, for usage errors and --help */
	const char *help;     /* what it does, for --help */
	/* Answered only once its service has ended: denali-ctl then waits without a limit. */
	bool answers_at_end;
};

/* The commands, indexed by enum ctl_cmd. */
extern const struct ctl_command ctl_commands[CTL_CMD_COUNT];

/* The command named name, or NULL. */
const struct ctl_command *ctl_command_find(const char *name);

/* The id of a command from the table (c points into ctl_commands). */
enum ctl_cmd ctl_command_id(const struct ctl_command *c);

/* The command of a request that passed ctl_command_check, or CTL_CMD_COUNT for any other. */
enum ctl_cmd ctl_command_of(const json_t *request);

/* The key of c named name, or NULL. */
const struct ctl_key *ctl_command_key(const struct ctl_command *c, const char *name);

/* Checks a request against the table: an object whose "cmd" is a command, whose other keys are
 * that command's with their types, and which has the required ones. 0, or -1 with the usage
 * error in err ("stop: key \"grace\": expected a number"). Pure. */
int ctl_command_check(const json_t *request, char *err, size_t errlen);

/* The commands' names, ", " between them, cut to fit in out (outlen > 0). */
void ctl_command_names(char *out, size_t outlen);

/* The control socket to use: given (--socket) unless NULL, else denali_control
 * ($DENALI_CONTROL), else control in the default folder of env (private_dir_default, not on
 * disk); empty variables count as unset. Returns 0, or -1 with err when the path is empty,
 * there is no default or it does not fit in out. denali-ctl and denali-run --detach agree. */
int ctl_socket_path(const char *given, const char *denali_control,
		    const struct private_dir_env *env, char *out, size_t outlen, char *err,
		    size_t errlen);

/* Copies text into buf (at most buflen - 1 bytes) for an error message: bytes that are not
 * printable ASCII become '?', and a long text is cut with "...". Returns buf. */
const char *ctl_printable(const char *text, char *buf, size_t buflen);

#endif
