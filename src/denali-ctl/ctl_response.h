/* denali-ctl's side of a control response (docs/control.md): is it one, what exit status it
 * means, and how it reads for people. Pure, so unit-tested. */
#ifndef CTL_RESPONSE_H
#define CTL_RESPONSE_H

#include <jansson.h>
#include <stddef.h>

/* Parses one response line (without its newline): a JSON object with "ok" true or false.
 * Returns a new reference, or NULL with err saying what is wrong with it. */
json_t *ctl_response_parse(const char *line, size_t len, char *err, size_t errlen);

/* The exit status a parsed response means: CTL_EXIT_OK when "ok" is true, CTL_EXIT_USAGE for
 * "code": "usage", CTL_EXIT_FAILED for anything else (a NULL response too). */
int ctl_response_status(const json_t *response);

/* The "error" sentence of a failed response (or a stand-in when it has none), made printable
 * and cut to fit in buf. Returns buf. */
const char *ctl_response_error(const json_t *response, char *buf, size_t buflen);

/* The line denali-ctl prints for a failed response of command cmd, without its newline:
 * "CMD: ERROR", the error made printable and cut to fit in buf; the server's errors often
 * start with "CMD: " already, and that is not said twice. Returns buf. */
const char *ctl_response_failure(const char *cmd, const json_t *response, char *buf, size_t buflen);

/* A successful response of command cmd for people, as a malloc'd text of whole lines: list
 * and stats as aligned columns, metrics as its "text" (the Prometheus exposition), other
 * commands as a short sentence. Strings from the response are cut and their control
 * characters replaced, so that nothing it says can drive the terminal. NULL when out of
 * memory. */
char *ctl_response_format(const char *cmd, const json_t *response);

/* Whether command cmd answers with a text (metrics), which denali-ctl prints as it is (but
 * for control characters) rather than as the JSON line. */
int ctl_response_is_text(const char *cmd);

/* Whether command cmd has a printer of its own (every command of the protocol should). */
int ctl_response_printable(const char *cmd);

#endif
