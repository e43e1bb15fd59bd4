/* denali-run: the command-line front end that runs a service on KVM. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "denali/abi.h"
#include "exit_status.h"
#include "guestmem.h"
#include "loader.h"
#include "service.h"
#include "vcpu/vcpu.h"

#ifndef DENALI_VERSION
#define DENALI_VERSION "unknown"
#endif

struct options {
	char state_dir[PATH_MAX];
	double timeout_s; /* 0: none */
	int keep_state;
	const char *service_file;
};

static struct vmm_service *running; /* the service the signal handlers stop */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: denali-run [OPTIONS] SERVICE.json\n"
		"Runs a Denali service in its own KVM virtual machine; the console goes to "
		"stdout.\n"
		"\n"
		"  --state-dir DIR     where guest memory files live (default: "
		"$XDG_RUNTIME_DIR/denali,\n"
		"                      else /var/tmp/denali-UID)\n"
		"  --keep-state        keep the service's memory file after it ends\n"
		"  --timeout SECONDS   stop the service after this long (fractions allowed)\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version and the ABI version\n"
		"\n"
		"Exit status: the guest's own (0-%d) when it exits; %d bad usage, service file or\n"
		"image; %d timeout; %d host or KVM error; %d the monitor stopped the service "
		"(abort,\n"
		"fault, broken contract); 128+N on signal N. See docs/cli.md.\n",
		DN_EXIT_STATUS_MAX, DENALI_EXIT_USAGE, DENALI_EXIT_TIMEOUT, DENALI_EXIT_HOST,
		DENALI_EXIT_STOPPED);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_STATE_DIR = 256, OPT_KEEP_STATE, OPT_TIMEOUT };
	static const struct option longopts[] = {
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"keep-state", no_argument, NULL, OPT_KEEP_STATE},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	guestmem_default_state_dir(o->state_dir, sizeof(o->state_dir));
	int c;
	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_STATE_DIR:
			if (snprintf(o->state_dir, sizeof(o->state_dir), "%s", optarg) >=
			    (int)sizeof(o->state_dir)) {
				fprintf(stderr, "denali-run: --state-dir: path too long\n");
				return -1;
			}
			break;
		case OPT_KEEP_STATE: o->keep_state = 1; break;
		case OPT_TIMEOUT: {
			char *end;
			errno = 0;
			o->timeout_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(o->timeout_s) ||
			    o->timeout_s <= 0 || o->timeout_s > 1e7) {
				fprintf(stderr,
					"denali-run: --timeout: \"%s\" is not a number of seconds "
					"between 0 and 10000000\n",
					optarg);
				return -1;
			}
			break;
		}
		case 'h': usage(stdout); exit(0);
		case 'V':
			printf("denali-run %s (Denali ABI v%d)\n", DENALI_VERSION, DN_ABI_VERSION);
			exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "denali-run: expected exactly one SERVICE.json, got %d\n",
			argc - optind);
		usage(stderr);
		return -1;
	}
	o->service_file = argv[optind];
	return 0;
}

static void on_stop_signal(int signo)
{
	if (running)
		vmm_service_request_stop(running, VMM_OUTCOME_SIGNALED, signo);
}

static void on_timeout(int signo)
{
	(void)signo;
	if (running)
		vmm_service_request_stop(running, VMM_OUTCOME_TIMEOUT, 0);
}

/* Without SA_RESTART, so that a signal interrupts KVM_RUN and idle sleeps. */
static void arm_signals(double timeout_s)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_timeout;
	sigaction(SIGALRM, &sa, NULL);
	if (timeout_s > 0) {
		struct itimerval it;
		memset(&it, 0, sizeof(it));
		it.it_value.tv_sec = (time_t)timeout_s;
		it.it_value.tv_usec = (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6);
		if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
			it.it_value.tv_usec = 1;
		setitimer(ITIMER_REAL, &it, NULL);
	}
}

/* Prints how the service ended (nothing for a clean exit) and returns denali-run's status. */
static int report_outcome(const struct vmm_service *svc, double timeout_s)
{
	const struct vmm_outcome *o = &svc->outcome;
	const char *name = svc->cfg->name;
	char where[64] = "";
	if (o->has_rip)
		snprintf(where, sizeof(where), " at rip=0x%llx", (unsigned long long)o->rip);
	switch (o->kind) {
	case VMM_OUTCOME_EXITED: return o->status;
	case VMM_OUTCOME_STOPPED:
		fprintf(stderr, "denali-run: %s: stopped: %s%s\n", name, o->reason, where);
		return DENALI_EXIT_STOPPED;
	case VMM_OUTCOME_TIMEOUT:
		fprintf(stderr, "denali-run: %s: stopped: timeout after %g s%s\n", name, timeout_s,
			where);
		return DENALI_EXIT_TIMEOUT;
	case VMM_OUTCOME_SIGNALED:
		fprintf(stderr, "denali-run: %s: stopped: %s%s\n", name, strsignal(o->status),
			where);
		return 128 + o->status;
	case VMM_OUTCOME_HOST_ERROR:
	case VMM_OUTCOME_NONE: break;
	}
	fprintf(stderr, "denali-run: %s: host error: %s%s\n", name, o->reason, where);
	return DENALI_EXIT_HOST;
}

int main(int argc, char **argv)
{
	struct options opt;
	if (parse_options(argc, argv, &opt) != 0)
		return DENALI_EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill the monitor */

	char err[1024];
	struct vmm_config_limits limits = vmm_config_host_limits();
	struct vmm_service_config cfg;
	if (vmm_config_load(opt.service_file, &limits, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "denali-run: %s\n", err);
		return DENALI_EXIT_USAGE;
	}
	struct vmm_image img;
	if (vmm_image_read(cfg.image, cfg.ram_size, &img, err, sizeof(err)) != 0) {
		fprintf(stderr, "denali-run: %s: %s\n", cfg.name, err);
		vmm_config_free(&cfg);
		return DENALI_EXIT_USAGE;
	}
	int status = DENALI_EXIT_HOST;
	struct vcpu_kvm kvm;
	if (vcpu_kvm_open(&kvm, err, sizeof(err)) != 0) {
		fprintf(stderr, "denali-run: %s\n", err);
		goto out_image;
	}
	static struct vmm_service svc;
	if (vmm_service_start(&svc, &cfg, &img, &kvm, opt.state_dir, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "denali-run: %s: %s\n", cfg.name, err);
		goto out_kvm;
	}
	running = &svc;
	arm_signals(opt.timeout_s);
	vmm_service_run(&svc);
	status = report_outcome(&svc, opt.timeout_s);
	running = NULL;
	vmm_service_destroy(&svc, opt.keep_state);
out_kvm:
	vcpu_kvm_close(&kvm);
out_image:
	vmm_image_free(&img);
	vmm_config_free(&cfg);
	return status;
}
