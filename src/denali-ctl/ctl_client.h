/* denali-ctl's one exchange with the control socket: connect, send a request line, read the
 * response line. */
#ifndef CTL_CLIENT_H
#define CTL_CLIENT_H

#include <stddef.h>

/* The longest response line read (without its newline); a longer one is an error. */
#define CTL_RESPONSE_MAX (16u << 20)

/* Connects to the unix stream socket at path, sends request (one line of JSON, no newline:
 * one is added) and reads the one line that answers it, all within timeout_s seconds (0 or
 * less: no limit). Returns 0 with *response a malloc'd NUL-terminated line without its
 * newline, or -1 with err saying what went wrong ("cannot reach the control socket PATH: ...
 * (is denali-run running with --control PATH?)", no answer in time, a line too long, or one
 * that holds a NUL byte or ends without a newline). */
int ctl_exchange(const char *path, const char *request, char **response, double timeout_s,
		 char *err, size_t errlen);

#endif
