/* denali-ctl: the shell client of denali-run's control socket (docs/control.md). It sends one
 * request and prints the one response: as received (JSON, for jq) or for people (--table). */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_client.h"
#include "ctl_request.h"
#include "ctl_response.h"

#ifndef DENALI_VERSION
#define DENALI_VERSION "unknown"
#endif

struct options {
	const char *socket; /* --socket, or NULL */
	int table;
	double timeout_s; /* --timeout; < 0: the command's default */
	int argc;	  /* COMMAND ARGS... */
	char **argv;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: denali-ctl [OPTIONS] COMMAND [ARGS...]\n"
		     "Inspects and drives a running denali-run through its control socket\n"
		     "(denali-run --control PATH).\n"
		     "\n"
		     "Commands:\n");
	ctl_commands_help(out);
	fprintf(out,
		"\n"
		"Options (before the command):\n"
		"  --socket PATH        the control socket (default $DENALI_CONTROL, else\n"
		"                       $XDG_RUNTIME_DIR/denali/control, else "
		"/run/denali/control\n"
		"                       for root, else ~/.local/state/denali/control; its "
		"folder\n"
		"                       must be yours and closed to others)\n"
		"  --table              print for people: list and stats as aligned columns, "
		"other\n"
		"                       answers as a sentence\n"
		"  --timeout SECONDS    how long to wait for the answer (default 30; none for "
		"wait)\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n"
		"\n"
		"Prints the response as one line of JSON (metrics: its text). Exit status: 0 "
		"done;\n"
		"%d the command failed, or the socket could not be reached; %d bad usage. See\n"
		"docs/control.md.\n",
		CTL_EXIT_FAILED, CTL_EXIT_USAGE);
}

/* Options stop at the command: what follows it is the command's ("stop web --grace 3"). */
static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_SOCKET = 256, OPT_TABLE, OPT_TIMEOUT };
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"table", no_argument, NULL, OPT_TABLE},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	char q[72];
	o->timeout_s = -1;
	int c;
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET: o->socket = optarg; break;
		case OPT_TABLE: o->table = 1; break;
		case OPT_TIMEOUT:
			if (ctl_parse_seconds(optarg, 0, 1, &o->timeout_s) != 0) {
				fprintf(stderr,
					"denali-ctl: --timeout: \"%s\" is not a number of seconds "
					"(more than 0, up to 10000000)\n",
					ctl_printable(optarg, q, sizeof(q)));
				return -1;
			}
			break;
		case 'h': usage(stdout); exit(CTL_EXIT_OK);
		case 'V': printf("denali-ctl %s\n", DENALI_VERSION); exit(CTL_EXIT_OK);
		default: usage(stderr); return -1;
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	return 0;
}

/* Writes the answer: as received, or for people; a failure for people goes to stderr. */
static int print_response(const struct options *o, const char *cmd, const char *line,
			  const json_t *response)
{
	int status = ctl_response_status(response);
	int for_people = o->table || ctl_response_is_text(cmd);
	if (!for_people) {
		printf("%s\n", line);
		return status;
	}
	if (status != CTL_EXIT_OK) {
		char error[1200];
		fprintf(stderr, "denali-ctl: %s\n",
			ctl_response_failure(cmd, response, error, sizeof(error)));
		return status;
	}
	char *text = ctl_response_format(cmd, response);
	if (!text) {
		fprintf(stderr, "denali-ctl: out of memory\n");
		return CTL_EXIT_FAILED;
	}
	fputs(text, stdout);
	free(text);
	return status;
}

/* Sends the request and prints its answer; the exit status. */
static int run(const struct options *o, const json_t *request)
{
	char path[PATH_MAX], err[1024];
	struct private_dir_env env;
	private_dir_env_get(&env);
	if (ctl_socket_path(o->socket, getenv("DENALI_CONTROL"), &env, path, sizeof(path), err,
			    sizeof(err)) != 0) {
		fprintf(stderr, "denali-ctl: %s\n", err);
		return CTL_EXIT_USAGE;
	}
	/* Whoever owns the socket's folder can put a socket of theirs in it, and would read
	 * what we send and answer for the fleet: only a folder as denali-run checks it. */
	const char *name;
	int dir = private_dir_open_parent(path, "control socket folder", PRIVATE_DIR_ANCESTORS,
					  &name, err, sizeof(err));
	if (dir < 0) {
		fprintf(stderr, "denali-ctl: %s\n", err);
		return CTL_EXIT_FAILED;
	}
	close(dir);
	char *line = json_dumps(request, JSON_COMPACT);
	if (!line) {
		fprintf(stderr, "denali-ctl: out of memory\n");
		return CTL_EXIT_FAILED;
	}
	double timeout_s = o->timeout_s > 0 ? o->timeout_s : ctl_request_default_timeout(request);
	char *answer = NULL;
	int rc = ctl_exchange(path, line, &answer, timeout_s, err, sizeof(err));
	free(line);
	if (rc != 0) {
		fprintf(stderr, "denali-ctl: %s\n", err);
		return CTL_EXIT_FAILED;
	}
	const char *cmd = ctl_request_command(request);
	json_t *response = ctl_response_parse(answer, strlen(answer), err, sizeof(err));
	int status = CTL_EXIT_FAILED;
	if (response)
		status = print_response(o, cmd, answer, response);
	else
		fprintf(stderr, "denali-ctl: %s: %s\n", cmd, err);
	json_decref(response);
	free(answer);
	return status;
}

int main(int argc, char **argv)
{
	struct options opt = {0};
	if (parse_options(argc, argv, &opt) != 0)
		return CTL_EXIT_USAGE;
	char err[1024];
	json_t *request = ctl_request_build(opt.argc, opt.argv, err, sizeof(err));
	if (!request) {
		fprintf(stderr, "denali-ctl: %s\n", err);
		if (opt.argc == 0)
			usage(stderr);
		return CTL_EXIT_USAGE;
	}
	int status = run(&opt, request);
	json_decref(request);
	if (fflush(stdout) != 0 && status == CTL_EXIT_OK) {
		perror("denali-ctl: stdout");
		status = CTL_EXIT_FAILED;
	}
	return status;
}
