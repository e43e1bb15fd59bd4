/* denali-ctl's command line as a control request (docs/control.md), driven by the protocol's
 * table of commands (ctl/ctl_proto.h, which also gives ctl_socket_path and ctl_printable). Pure
 * but for start's realpath, so that every command and every usage error is unit-tested. */
#ifndef CTL_REQUEST_H
#define CTL_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "ctl_proto.h"

/* denali-ctl's exit statuses. */
#define CTL_EXIT_OK 0
/* "code": "failed", the socket could not be reached, or the answer was not a response. */
#define CTL_EXIT_FAILED 1
/* The command line was wrong, or the server said "code": "usage". */
#define CTL_EXIT_USAGE 2

/* Turns COMMAND ARGS... (argv[0] is the command, argc >= 0) into a new request object. On a
 * usage error returns NULL with a message naming the problem in err ("stop: expected a service
 * name (usage: stop NAME [--grace SECONDS])"). */
json_t *ctl_request_build(int argc, char *const argv[], char *err, size_t errlen);

/* The command of a request built above ("list", ...). */
const char *ctl_request_command(const json_t *request);

/* How long to wait for the answer to request when --timeout is not given: seconds, or 0 for
 * no limit (wait, which answers only once its service has ended). */
double ctl_request_default_timeout(const json_t *request);

/* Prints each command's synopsis and what it does, one a line, for --help. */
void ctl_commands_help(FILE *out);

/* Parses a number of seconds from min to 10000000 (fractions allowed; min itself is refused
 * when min_exclusive). Returns 0 and sets *out, or -1 on anything else. */
int ctl_parse_seconds(const char *text, double min, int min_exclusive, double *out);

#endif
