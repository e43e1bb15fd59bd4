/* The monitor's sandbox: which role each process and thread plays, and the seccomp-bpf
 * allowlist that seals it (docs/security.md, "System calls"). */
#ifndef SANDBOX_SANDBOX_H
#define SANDBOX_SANDBOX_H

#include <stddef.h>

/* A thread's role. A filter is per thread and inherited by the threads and processes it
 * creates afterwards; stacked filters intersect. */
enum sandbox_role {
	SANDBOX_SUPERVISOR,   /* the supervisor's main loop (also what a cell forked later starts
				 from) */
	SANDBOX_NET,	      /* the supervisor's network thread: switch, uplinks */
	SANDBOX_CELL,	      /* a cell's main thread (and a vcpu thread until it seals) */
	SANDBOX_VCPU,	      /* a vcpu thread running its guest */
	SANDBOX_DISK,	      /* a cell's disk worker */
	SANDBOX_NAT,	      /* the NAT process (libslirp and a socket of frames) */
	SANDBOX_DETACH,	      /* the --detach parent, waiting for the fleet to be up */
	SANDBOX_NAT_LAUNCHER, /* the NAT launcher: forks NAT processes, reaps them */
	SANDBOX_ROLES
};

/* What a process whose filter forbids a call exits with (a cell's, reported by the
 * supervisor; denali-run's own when the supervisor broke its filter). */
#define SANDBOX_EXIT_FORBIDDEN 127

/* "supervisor", "net", "cell", "vcpu", "disk", "nat", "detach", "nat-launcher"; NULL if out
 * of range. */
const char *sandbox_role_name(enum sandbox_role role);

/* Process-wide, once at startup before any thread: seccomp on or off (--seccomp), and the
 * DENALI_SECCOMP_PROBE test hook read from the environment. */
void sandbox_init(int seccomp_on);

int sandbox_seccomp_on(void);

/* Names the process in the message of a forbidden call ("supervisor", "cell 3", "nat").
 * Called before the process seals; copied. */
void sandbox_set_process(const char *name);

/* Names the service the calling thread runs (a vcpu thread), for the same message. The
 * string must outlive the thread. */
void sandbox_set_service(const char *name);

/* Seals the calling thread: loads role's allowlist on it (stacked on any it inherited), with
 * a SIGSYS handler that reports a forbidden call in one line on stderr and ends the process
 * with SANDBOX_EXIT_FORBIDDEN. Loads nothing when seccomp is off. Under the probe for this
 * role (and this service or cell, if the probe names one), then makes a call no role allows
 * (which, seccomp off, goes through).
 * 0, or -1 with err (the filter could not be built or loaded: the caller must not go on). */
int sandbox_seal(enum sandbox_role role, char *err, size_t errlen);

/* sandbox_seal for a thread that cannot go on unsealed: on failure, says why in one line and
 * ends the process with DENALI_EXIT_HOST (a cell's death, which the supervisor reports). */
void sandbox_seal_or_exit(enum sandbox_role role);

/* 1 if the calling thread has loaded a filter (a sealed vcpu thread cannot build a VM). */
int sandbox_thread_sealed(void);

/* The number of system calls role's list allows (for the docs and the tests); -1 on error. */
int sandbox_role_size(enum sandbox_role role);

/* Writes role's allowed system calls' names, a line each, to fd (docs and debugging). */
int sandbox_role_print(enum sandbox_role role, int fd);

#endif
