/* denali-run: the command-line front end. It validates every service file and image, then
 * hands the plan to the supervisor, which runs the services in cell processes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "ctl_proto.h"
#include "denali/abi.h"
#include "detach.h"
#include "exit_status.h"
#include "guestmem.h"
#include "landlock.h"
#include "loader.h"
#include "metrics_http.h"
#include "plan.h"
#include "plan_net.h"
#include "private_dir.h"
#include "privileges.h"
#include "sandbox.h"
#include "size.h"
#include "supervisor.h"
#include "swap.h"
#include "vcpu.h"

#ifndef DENALI_VERSION
#define DENALI_VERSION "unknown"
#endif

#define DEFAULT_CELL_SIZE 64
#define DEFAULT_SPARE_VMS 1
#define DEFAULT_GRACE_S 5.0

struct options {
	struct vmm_plan plan;
	char **files;
	unsigned nfiles;
	int state_dir_given; /* --state-dir, else the default */
	int detach;
	int user_given;			/* --user, else the default user when root */
	int seccomp_off;		/* --seccomp off: no filters (debugging only) */
	char control_default[PATH_MAX]; /* --detach without --control: the default socket */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: denali-run [OPTIONS] SERVICE.json...\n"
		"       denali-run [OPTIONS] --fleet DIR\n"
		"Runs Denali services, each in its own KVM virtual machine; consoles go to "
		"stdout,\n"
		"prefixed with [name] when more than one service runs.\n"
		"\n"
		"  --fleet DIR         run every *.json in DIR (with any SERVICE.json given too)\n"
		"  --cell-size K       at most K services per cell process (default %d)\n"
		"  --spare-vms N       VMs each cell keeps made ahead for swap-ins, once one of\n"
		"                      its services has been swapped out (0-8, default %d)\n"
		"  --grace SECONDS     after SIGINT/SIGTERM, how long services may take to stop "
		"on\n"
		"                      their own before they are stopped (default %g)\n"
		"  --timeout SECONDS   stop every service after this long (fractions allowed)\n"
		"  --state-dir DIR     where guest memory files live (default: "
		"$XDG_RUNTIME_DIR/denali,\n"
		"                      else /run/denali for root, else "
		"~/.local/state/denali)\n"
		"  --keep-state        keep the services' memory files after they end\n"
		"  --stats FILE        write every service's counters to FILE as JSON at the end\n"
		"  --user NAME|UID[:GID]  when started as root: become this user once what\n"
		"                      needs root is open (TAP devices, /dev/kvm, sockets);\n"
		"                      default $DENALI_USER, else the system user denali (none:\n"
		"                      refused); root keeps uid 0 with no capability, weaker\n"
		"                      (docs/security.md#rights)\n"
		"  --metrics-listen ADDR:PORT  serve the counters in the Prometheus text format\n"
		"                      at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9100)\n"
		"  --detach            run in the background once the fleet is up, print the\n"
		"                      control socket's path (default as denali-ctl's) and exit;\n"
		"                      consoles and messages go to STATE-DIR/denali-run.log\n"
		"  --control PATH      serve the control socket at PATH (docs/control.md): list,\n"
		"                      stats, start, stop, kill, swap-out, swap-in, budget, wait,\n"
		"                      metrics, shutdown\n"
		"  --resume            services saved by an earlier run with --resume go on from\n"
		"                      where they were; a stop (signal) saves every service that\n"
		"                      reaches an idle within --grace, instead of stopping it\n"
		"  --memory-budget SIZE  keep the guest memory resident in all cells under SIZE\n"
		"                      (e.g. 512M): the least recently run services are swapped\n"
		"                      out to their memory files, and back in at their next event\n"
		"  --seccomp on|off    system-call filters on every process and thread "
		"(default on);\n"
		"                      off is unsafe, for debugging only\n"
		"  -q, --quiet         no per-service summary lines (stops and errors still show)\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version and the ABI version\n"
		"\n"
		"Exit status, one service: its own (0-%d) when it exits; %d bad usage, service "
		"file or\n"
		"image; %d timeout; %d host or KVM error, or its cell died; %d it was stopped "
		"(abort,\n"
		"fault, broken contract, control socket kill). Several services: 0 when all "
		"exited 0,\n"
		"else %d (%d timeout). After signal N: 0 if every service exited 0 (or was saved), "
		"else\n"
		"128+N. See docs/cli.md.\n",
		DEFAULT_CELL_SIZE, DEFAULT_SPARE_VMS, DEFAULT_GRACE_S, DN_EXIT_STATUS_MAX,
		DENALI_EXIT_USAGE, DENALI_EXIT_TIMEOUT, DENALI_EXIT_HOST, DENALI_EXIT_STOPPED,
		DENALI_EXIT_SOME_FAILED, DENALI_EXIT_TIMEOUT);
}

static int parse_seconds(const char *opt, const char *text, double min, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < min || v > 1e7 ||
	    (min == 0 && v == 0 && strcmp(opt, "--timeout") == 0)) {
		fprintf(stderr,
			"denali-run: %s: \"%s\" is not a number of seconds between 0 and "
			"10000000\n",
			opt, text);
		return -1;
	}
	*out = v;
	return 0;
}

static int add_file(struct options *o, const char *path)
{
	if (o->nfiles == VMM_PLAN_SERVICES_MAX) {
		fprintf(stderr, "denali-run: more than %u services\n", VMM_PLAN_SERVICES_MAX);
		return -1;
	}
	char **files = realloc(o->files, (o->nfiles + 1) * sizeof(*files));
	if (!files || !(files[o->nfiles] = strdup(path))) {
		fprintf(stderr, "denali-run: out of memory\n");
		if (files)
			o->files = files;
		return -1;
	}
	o->files = files;
	o->nfiles++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds every *.json file of dir, in name order. */
static int add_fleet(struct options *o, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "denali-run: --fleet %s: %s\n", dir, strerror(errno));
		return -1;
	}
	unsigned first = o->nfiles;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '.')
			continue;
		char path[PATH_MAX];
		size_t dlen = strlen(dir);
		while (dlen > 1 && dir[dlen - 1] == '/') /* "web/" names "web/a.json" */
			dlen--;
		if ((size_t)snprintf(path, sizeof(path), "%.*s/%s", (int)dlen, dir, e->d_name) >=
		    sizeof(path)) {
			fprintf(stderr, "denali-run: --fleet: path too long in %s\n", dir);
			rc = -1;
			break;
		}
		rc = add_file(o, path);
	}
	closedir(d);
	if (rc == 0 && o->nfiles == first) {
		fprintf(stderr, "denali-run: --fleet %s: no *.json files\n", dir);
		return -1;
	}
	qsort(o->files + first, o->nfiles - first, sizeof(*o->files), cmp_str);
	return rc;
}

/* One line for an option getopt refused (c: '?' unknown, ambiguous or given a value it does
 * not take, ':' missing its value), the option shown inert, and where to look. */
static void bad_option(int argc, char **argv, int c, const struct option *longopts)
{
	char shown[80], opt[3] = {'-', (char)optopt, '\0'};
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	int is_long = strncmp(arg, "--", 2) == 0;
	if (!is_long && optopt > 0 && optopt < 256)
		arg = opt; /* a short one, maybe inside a bundle (-qz) */
	ctl_printable(arg, shown, sizeof(shown));
	const char *eq = is_long ? strchr(arg, '=') : NULL;
	int known = 0;
	for (const struct option *l = longopts; eq && l->name && !known; l++)
		known = strlen(l->name) == (size_t)(eq - arg - 2) &&
			strncmp(l->name, arg + 2, (size_t)(eq - arg - 2)) == 0;
	if (c == ':')
		fprintf(stderr, "denali-run: option \"%s\" needs a value (see denali-run --help)\n",
			shown);
	else if (known)
		fprintf(stderr,
			"denali-run: option \"%.*s\" takes no value (see denali-run --help)\n",
			(int)(eq - arg), shown);
	else
		fprintf(stderr, "denali-run: unknown option \"%s\" (see denali-run --help)\n",
			shown);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_STATE_DIR = 256,
		OPT_KEEP_STATE,
		OPT_TIMEOUT,
		OPT_FLEET,
		OPT_CELL_SIZE,
		OPT_SPARE_VMS,
		OPT_GRACE,
		OPT_STATS,
		OPT_MEMORY_BUDGET,
		OPT_RESUME,
		OPT_CONTROL,
		OPT_DETACH,
		OPT_METRICS_LISTEN,
		OPT_USER,
		OPT_SECCOMP
	};
	static const struct option longopts[] = {
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"keep-state", no_argument, NULL, OPT_KEEP_STATE},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"fleet", required_argument, NULL, OPT_FLEET},
		{"cell-size", required_argument, NULL, OPT_CELL_SIZE},
		{"spare-vms", required_argument, NULL, OPT_SPARE_VMS},
		{"grace", required_argument, NULL, OPT_GRACE},
		{"stats", required_argument, NULL, OPT_STATS},
		{"memory-budget", required_argument, NULL, OPT_MEMORY_BUDGET},
		{"resume", no_argument, NULL, OPT_RESUME},
		{"control", required_argument, NULL, OPT_CONTROL},
		{"detach", no_argument, NULL, OPT_DETACH},
		{"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
		{"user", required_argument, NULL, OPT_USER},
		{"seccomp", required_argument, NULL, OPT_SECCOMP},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct vmm_plan *p = &o->plan;
	p->cell_size = DEFAULT_CELL_SIZE;
	p->spare_vms = DEFAULT_SPARE_VMS;
	p->grace_s = DEFAULT_GRACE_S;
	int c;
	opterr = 0; /* getopt's own message names argv[0]'s full path: ours is one line */
	while ((c = getopt_long(argc, argv, ":qhV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_STATE_DIR:
			o->state_dir_given = 1;
			if (snprintf(p->state_dir, sizeof(p->state_dir), "%s", optarg) >=
			    (int)sizeof(p->state_dir)) {
				fprintf(stderr, "denali-run: --state-dir: path too long\n");
				return -1;
			}
			break;
		case OPT_KEEP_STATE: p->keep_state = 1; break;
		case OPT_TIMEOUT:
			if (parse_seconds("--timeout", optarg, 0, &p->timeout_s))
				return -1;
			break;
		case OPT_GRACE:
			if (parse_seconds("--grace", optarg, 0, &p->grace_s))
				return -1;
			break;
		case OPT_FLEET:
			if (add_fleet(o, optarg))
				return -1;
			break;
		case OPT_CELL_SIZE: {
			char *end;
			errno = 0;
			unsigned long k = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || k < 1 || k > 4096) {
				fprintf(stderr,
					"denali-run: --cell-size: \"%s\" is not a number from 1 to "
					"4096\n",
					optarg);
				return -1;
			}
			p->cell_size = (unsigned)k;
			break;
		}
		case OPT_SPARE_VMS: {
			char *end;
			errno = 0;
			unsigned long n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || n > VMM_SPARE_VMS_MAX) {
				fprintf(stderr,
					"denali-run: --spare-vms: \"%s\" is not a number from 0 to "
					"%u\n",
					optarg, VMM_SPARE_VMS_MAX);
				return -1;
			}
			p->spare_vms = (unsigned)n;
			break;
		}
		case OPT_STATS: p->stats_path = optarg; break;
		case OPT_RESUME: p->resume = 1; break;
		case OPT_CONTROL:
			if (strlen(optarg) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
				fprintf(stderr,
					"denali-run: --control: path too long for a unix socket "
					"(at most %zu bytes)\n",
					sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
				return -1;
			}
			p->control_path = optarg;
			break;
		case OPT_DETACH: o->detach = 1; break;
		case OPT_SECCOMP:
			if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) {
				fprintf(stderr,
					"denali-run: --seccomp: \"%s\" is neither on nor off\n",
					optarg);
				return -1;
			}
			o->seccomp_off = strcmp(optarg, "off") == 0;
			break;
		case OPT_METRICS_LISTEN: {
			char err[256];
			if (metrics_http_check_listen(optarg, err, sizeof(err)) != 0) {
				fprintf(stderr, "denali-run: %s\n", err);
				return -1;
			}
			p->metrics_listen = optarg;
			break;
		}
		case OPT_USER: {
			char err[256];
			if (privileges_parse_user(optarg, &p->rights, err, sizeof(err)) != 0) {
				fprintf(stderr, "denali-run: %s\n", err);
				return -1;
			}
			o->user_given = 1;
			break;
		}
		case OPT_MEMORY_BUDGET:
			if (vmm_size_parse(optarg, &p->memory_budget) != 0 ||
			    p->memory_budget < DN_PAGE_SIZE) {
				fprintf(stderr,
					"denali-run: --memory-budget: \"%s\" is not a size of at "
					"least 4K (e.g. 512M, 2G)\n",
					optarg);
				return -1;
			}
			break;
		case 'q': p->quiet = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V':
			printf("denali-run %s (Denali ABI v%d)\n", DENALI_VERSION, DN_ABI_VERSION);
			exit(0);
		default: bad_option(argc, argv, c, longopts); return -1;
		}
	}
	for (int i = optind; i < argc; i++)
		if (add_file(o, argv[i]))
			return -1;
	if (o->nfiles == 0) {
		fprintf(stderr, "denali-run: expected at least one SERVICE.json or --fleet DIR\n");
		usage(stderr);
		return -1;
	}
	return 0;
}

/* The default state folder (private_dir_default). It is often on tmpfs ($XDG_RUNTIME_DIR),
 * where swapping frees nothing: services that swap get one on disk instead. (A service
 * started later through the control socket cannot move the folder: one that swaps is refused
 * there.) */
static int default_state_dir(struct vmm_plan *p, int swaps)
{
	struct private_dir_env env;
	private_dir_env_get(&env);
	char err[1024];
	if (p->rights.switch_user && geteuid() == 0) {
		/* Root's default folders are root's: the user gets one of its own beside them. */
		snprintf(p->state_dir, sizeof(p->state_dir), "%s-%s",
			 swaps ? "/var/lib/denali" : "/run/denali", p->rights.name);
		return 0;
	}
	if (private_dir_default(&env, 0, p->state_dir, sizeof(p->state_dir)) != 0 ||
	    (swaps && swap_check_state_dir(p->state_dir, err, sizeof(err)) != 0 &&
	     private_dir_default(&env, 1, p->state_dir, sizeof(p->state_dir)) != 0)) {
		fprintf(stderr, "denali-run: no default state folder: set $XDG_RUNTIME_DIR or "
				"$HOME, or give --state-dir\n");
		return -1;
	}
	return 0;
}

/* Loads and checks every service file and image; any problem refuses the whole run. */
static int build_plan(struct options *o)
{
	struct vmm_plan *p = &o->plan;
	struct vmm_config_limits limits = vmm_config_host_limits();
	char err[1024];
	if (vmm_plan_reserve(p, o->nfiles) != 0) {
		fprintf(stderr, "denali-run: out of memory\n");
		return -1;
	}
	for (unsigned i = 0; i < o->nfiles; i++)
		if (vmm_plan_add(p, o->files[i], &limits, err, sizeof(err)) != 0) {
			fprintf(stderr, "denali-run: %s\n", err);
			return -1;
		}
	int swaps = p->memory_budget != 0 || p->resume; /* then any service may be swapped out */
	for (unsigned i = 0; i < p->count; i++)
		swaps |= p->services[i].cfg.swap.enabled;
	if (!o->state_dir_given && default_state_dir(p, swaps) != 0)
		return -1;
	if (vmm_plan_check(p, err, sizeof(err)) != 0) {
		fprintf(stderr, "denali-run: %s\n", err);
		return -1;
	}
	return 0;
}

static void free_options(struct options *o)
{
	vmm_plan_free(&o->plan);
	for (unsigned i = 0; i < o->nfiles; i++)
		free(o->files[i]);
	free(o->files);
}

/* --detach, before anything starts: the control socket (--control, else denali-ctl's
 * default, its folder made and checked here as the state folder is). 0, or -1 with err. */
static int prepare_control(struct options *o, char *err, size_t errlen)
{
	struct vmm_plan *p = &o->plan;
	if (!p->control_path) {
		struct private_dir_env env;
		private_dir_env_get(&env);
		if (ctl_socket_path(NULL, getenv("DENALI_CONTROL"), &env, o->control_default,
				    sizeof(o->control_default), err, errlen) != 0)
			return -1;
		/* Made here: control_open checks a folder, but makes none. */
		const char *base;
		int fd = private_dir_open_parent(o->control_default, "control socket folder",
						 PRIVATE_DIR_PARENTS | PRIVATE_DIR_ANCESTORS, &base,
						 err, errlen);
		if (fd < 0)
			return -1;
		close(fd);
		p->control_path = o->control_default;
	}
	return 0;
}

/* With --user, as root: a missing state folder is made (its parents must exist) and given to
 * the user, whose cells will fill it. One that exists is left as it is, to be judged. 0, or -1
 * with err. */
static int make_user_state_dir(const struct vmm_plan *p, char *err, size_t errlen)
{
	if (mkdir(p->state_dir, 0700) != 0) {
		if (errno == EEXIST)
			return 0;
		snprintf(err, errlen, "cannot make state folder %.512s: %s", p->state_dir,
			 strerror(errno));
		return -1;
	}
	int fd = open(p->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, p->rights.uid, p->rights.gid) != 0) {
		snprintf(err, errlen, "cannot give state folder %.512s to %s: %s", p->state_dir,
			 p->rights.name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Root takes on (on 1) or leaves (on 0) the effective ids of the --user user, so that the
 * state folder is made and judged as that user's (private_dir.c checks the effective uid). */
static int act_as_user(const struct privileges_target *t, int on, char *err, size_t errlen)
{
	int rc = on ? (setgroups(1, &t->gid) != 0 || setegid(t->gid) != 0 || seteuid(t->uid) != 0)
		    : (seteuid(0) != 0 || setegid(0) != 0);
	if (rc)
		snprintf(err, errlen, "--user %s: seteuid: %s", t->name, strerror(errno));
	return rc ? -1 : 0;
}

/* Checks (and makes) the state folder, and with --detach the socket's folder and the log
 * (*log, else -1): refused with a message before KVM is touched. With --user (as root) the
 * state folder and the log are the user's, the socket's folder root's. 0, or -1 when refused
 * (said on stderr). */
static int prepare_folders(struct options *o, int *log)
{
	char err[1024];
	*log = -1;
	const struct privileges_target *t = &o->plan.rights;
	int as_user = t->switch_user && geteuid() == 0;
	if (as_user && (make_user_state_dir(&o->plan, err, sizeof(err)) != 0 ||
			act_as_user(t, 1, err, sizeof(err)) != 0)) {
		fprintf(stderr, "denali-run: %s\n", err);
		return -1;
	}
	int state_fd = guestmem_state_open(o->plan.state_dir, !o->state_dir_given && !as_user, err,
					   sizeof(err));
	int rc = state_fd < 0 ? -1 : 0;
	if (as_user && act_as_user(t, 0, err, sizeof(err)) != 0)
		goto half_way;
	if (rc == 0 && o->detach) {
		rc = prepare_control(o, err, sizeof(err));
		if (rc == 0 && as_user && act_as_user(t, 1, err, sizeof(err)) != 0)
			goto half_way;
		if (rc == 0 &&
		    (*log = detach_open_log(state_fd, o->plan.state_dir, err, sizeof(err))) < 0)
			rc = -1;
		if (as_user && act_as_user(t, 0, err, sizeof(err)) != 0)
			goto half_way;
	}
	if (state_fd >= 0)
		close(state_fd);
	if (rc != 0) {
		fprintf(stderr, "denali-run: %s\n", err);
		if (state_fd >= 0)
			guestmem_state_close(o->plan.state_dir);
		return -1;
	}
	return 0;
half_way: /* between two users: go no further */
	fprintf(stderr, "denali-run: %s\n", err);
	exit(DENALI_EXIT_HOST);
}

/* Removes the checkpoint of service name in the state folder, unless another run holds its
 * memory file. 1 if it had one and it is gone. */
static int discard_checkpoint(const char *state_dir, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + 8];
	struct stat st;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/" GUESTMEM_SERVICES "/%s", state_dir, name) >=
		    sizeof(dir) ||
	    (size_t)snprintf(path, sizeof(path), "%s/state", dir) >= sizeof(path) ||
	    lstat(path, &st) != 0)
		return 0;
	snprintf(path, sizeof(path), "%s/mem", dir);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return 0; /* another run's: its own start says so */
	}
	int gone = checkpoint_discard(dir) == 0;
	if (fd >= 0)
		close(fd);
	return gone;
}

/* A run without --resume starts every service afresh: what an earlier --resume run saved of
 * them would be overwritten, and its checkpoint left behind for nothing. Says so in one line,
 * naming them, and removes their checkpoints (their memory files are reused, and removed when
 * they end). Saved services this run does not name are left for a later --resume. */
static void discard_saved(const struct vmm_plan *p)
{
	char names[256] = "";
	size_t len = 0;
	unsigned n = 0, unnamed = 0;
	for (unsigned i = 0; i < p->count; i++) {
		const char *name = p->services[i].cfg.name;
		if (!discard_checkpoint(p->state_dir, name))
			continue;
		n++;
		if (len + strlen(name) + 3 < sizeof(names))
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
						len ? ", " : "", name);
		else
			unnamed++;
	}
	if (!n)
		return;
	char rest[48] = "";
	if (unnamed)
		snprintf(rest, sizeof(rest), " and %u more", unnamed);
	fprintf(stderr,
		"denali-run: warning: no --resume: the saved state of %s%s in %s is discarded; "
		"%s afresh\n",
		names, rest, p->state_dir, n > 1 ? "they start" : "it starts");
}

int main(int argc, char **argv)
{
	static struct options opt;
	signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill the monitor */
	/* A fleet holds several descriptors per service (RAM file, VM, vcpu, NIC eventfds). */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	int status = DENALI_EXIT_USAGE;
	char err[1024];
	/* No process of the monitor (supervisor, cells, the --detach parent) may gain rights
	 * through an execve: set before any of them is forked. */
	if (privileges_no_new_privs(err, sizeof(err)) != 0) {
		fprintf(stderr, "denali-run: %s\n", err);
		return DENALI_EXIT_HOST;
	}
	if (parse_options(argc, argv, &opt) != 0)
		goto out;
	/* As root without --user: the default user ($DENALI_USER, else denali), before the
	 * default folders, which are that user's. A missing denali is the host's setup. */
	if (!opt.user_given && geteuid() == 0 &&
	    privileges_default_user(getenv(PRIVILEGES_USER_ENV), &opt.plan.rights, err,
				    sizeof(err)) != 0) {
		fprintf(stderr, "denali-run: %s\n", err);
		if (!getenv(PRIVILEGES_USER_ENV) || !*getenv(PRIVILEGES_USER_ENV))
			status = DENALI_EXIT_HOST;
		goto out;
	}
	if (build_plan(&opt) != 0)
		goto out;
	const struct privileges_target *rights = &opt.plan.rights;
	if (rights->switch_user && geteuid() != 0 &&
	    (getuid() != rights->uid || getgid() != rights->gid)) {
		fprintf(stderr, "denali-run: --user %s: only root can become another user\n",
			rights->name);
		goto out;
	}
	if (!landlock_abi())
		fprintf(stderr,
			"denali-run: warning: this kernel has no Landlock (Linux 5.13+, "
			"\"landlock\" in lsm=): cells are not confined to the state folder\n");
	status = DENALI_EXIT_HOST;
	/* Before any thread or cell: the names of system calls for the SIGSYS handler. */
	sandbox_init(!opt.seccomp_off);
	sandbox_set_process("supervisor");
	if (opt.seccomp_off)
		fprintf(stderr, "denali-run: warning: --seccomp off: no process or thread is "
				"confined to its system calls; this is unsafe (debugging only)\n");
	int log;
	if (prepare_folders(&opt, &log) != 0)
		goto out;
	struct vcpu_kvm kvm;
	if (vcpu_kvm_open(&kvm, err, sizeof(err)) != 0) {
		fprintf(stderr, "denali-run: %s\n", err);
		goto out_log;
	}
	opt.plan.ready_fd = -1;
	if (!opt.plan.resume)
		discard_saved(&opt.plan);
	if (opt.detach) {
		int rc = detach_start(log, opt.plan.control_path, rights, &opt.plan.ready_fd, err,
				      sizeof(err));
		log = -1; /* taken over */
		if (rc != 0) {
			fprintf(stderr, "denali-run: %s\n", err);
			vcpu_kvm_close(&kvm);
			goto out_log;
		}
	}
	status = vmm_supervise(&opt.plan, &kvm);
	vcpu_kvm_close(&kvm);
out_log:
	guestmem_state_close(opt.plan.state_dir);
	if (log >= 0)
		close(log);
out:
	free_options(&opt);
	return status;
}
