/* seccomp-bpf allowlists per role, built with libseccomp, and the SIGSYS handler that reports a
 * forbidden call in one line and ends the process. docs/security.md lists each role's effective
 * list and why it holds what it holds. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/io_uring.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>

/* libseccomp's SCMP_A0..5 macros leave the second datum out (clang warns). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "exit_status.h"

#define NR_MAX 512 /* system call numbers named in messages and counted (x86-64 has < 460) */
#define NAME_LEN 24

/* The call the probe makes: no role allows it, and when seccomp is off it only asks the size of
 * the kernel's log buffer. */
#define PROBE_NR SYS_syslog
#define PROBE_SYSLOG_SIZE_BUFFER 10

static int seccomp_on; /* until sandbox_init: the unit tests of other modules run unsealed */
static char process_name[32] = "denali-run";
static char probe_role[16], probe_who[64];
static char syscall_names[NR_MAX][NAME_LEN]; /* resolved at init: the handler cannot allocate */
static int handler_installed;
static int process_role = -1; /* the main thread's: what a new thread inherited */
static _Thread_local int thread_role = -1;
static _Thread_local const char *thread_service;

static const char *const role_names[SANDBOX_ROLES] = {
	[SANDBOX_SUPERVISOR] = "supervisor",
	[SANDBOX_NET] = "net",
	[SANDBOX_CELL] = "cell",
	[SANDBOX_VCPU] = "vcpu",
	[SANDBOX_DISK] = "disk",
	[SANDBOX_NAT] = "nat",
	[SANDBOX_DETACH] = "detach",
	[SANDBOX_NAT_LAUNCHER] = "nat-launcher",
};

const char *sandbox_role_name(enum sandbox_role role)
{
	return (unsigned)role < SANDBOX_ROLES ? role_names[role] : NULL;
}

/* --- The lists. Each role's effective list is the intersection of the filters its thread
 * stacked or inherited; the lists are built so that a parent's is a superset of what its
 * children need (see docs/security.md). */

/* Every role: memory (without PROT_EXEC: below), locks, signals, time, reads and writes on fds
 * it already has, and ending. */
static const char *const base_calls[] = {
	"read",		 "write",	    "readv",
	"writev",	 "pread64",	    "pwrite64",
	"close",	 "futex",	    "brk",
	"munmap",	 "mremap",	    "madvise",
	"rt_sigreturn",	 "rt_sigprocmask",  "exit",
	"exit_group",	 "gettid",	    "getpid",
	"clock_gettime", "clock_nanosleep", "nanosleep",
	"sched_yield",	 "restart_syscall", "getrandom",
	"newfstatat",	 "fstat",	    "lseek",
};

/* A vcpu thread once its guest runs: KVM_RUN and the register reads of exits and swap-outs,
 * hypercalls (console, idle, timer), swap-out and its checkpoint (fadvise64 drops the memory
 * file's pages), a sleep that did not happen (epoll_ctl: its disk back to the worker), and
 * ending its service. */
static const char *const vcpu_calls[] = {
	"ppoll",	"poll",	   "timer_settime", "timer_gettime",  "timer_delete", "sendmsg",
	"timer_create", "mincore", "msync",	    "getrusage",      "fsync",	      "fdatasync",
	"fallocate",	"openat",  "rename",	    "renameat",	      "renameat2",    "unlink",
	"unlinkat",	"rmdir",   "flock",	    "io_uring_enter", "fadvise64",    "epoll_ctl",
};

static const unsigned long vcpu_ioctls[] = {
	KVM_RUN,     KVM_GET_REGS,	  KVM_SET_REGS, KVM_GET_SREGS,
	KVM_GET_FPU, KVM_GET_VCPU_EVENTS, KVM_GET_MSRS, KVM_GET_DEVICE_ATTR,
};

/* The disk worker: its epoll, the rings' eventfds, io_uring submissions. */
static const char *const disk_calls[] = {
	"epoll_wait",
	"epoll_pwait",
	"epoll_ctl",
	"io_uring_enter",
};

/* A cell's main thread, and each vcpu thread until it seals: what building, waking and
 * ending a service takes (its folder and memory file, a VM, eventfds, a timer, the disk's
 * image and io_uring), and threads. */
static const char *const cell_calls[] = {
	"mkdir",
	"mkdirat",
	"ftruncate",
	"fchmod",
	"eventfd2",
	"timerfd_create",
	"timerfd_settime",
	"timer_create",
	"io_uring_setup",
	"io_uring_register",
	"epoll_create1",
	"recvmsg",
	"set_robust_list",
	"rseq",
	"sched_getaffinity",
	"prctl",
	"seccomp",
	"getuid",
	"geteuid",
	"getgid",
	"getegid",
	"fchmodat",
	"fstatfs",
	"statfs",
	"statx",
};

static const unsigned long cell_ioctls[] = {
	KVM_CREATE_VM,		KVM_CREATE_VCPU,     KVM_SET_USER_MEMORY_REGION,
	KVM_GET_VCPU_MMAP_SIZE, KVM_CHECK_EXTENSION, KVM_GET_API_VERSION,
	KVM_IOEVENTFD,		KVM_GET_TSC_KHZ,     KVM_SET_SREGS,
	KVM_SET_CPUID2,		KVM_SET_FPU,	     KVM_SET_VCPU_EVENTS,
	KVM_SET_MSRS,		KVM_SET_DEVICE_ATTR,
};

/* The network thread: the switch's epoll and eventfds, TAP reads and writes, libslirp's
 * sockets (and /etc/resolv.conf, read-only, for its DNS). */
static const char *const net_calls[] = {
	"poll",	      "ppoll",	    "epoll_wait",  "epoll_pwait", "epoll_ctl",
	"connect",    "bind",	    "listen",	   "accept",	  "accept4",
	"sendto",     "recvfrom",   "sendmsg",	   "recvmsg",	  "shutdown",
	"setsockopt", "getsockopt", "getsockname", "getpeername", "gettimeofday",
	"uname",      "statx",	    "getdents64",  "sendmmsg",	  "recvmmsg",
};

/* The NAT process: libslirp and its socket of frames. */
static const char *const nat_calls[] = {
	"poll",	      "ppoll",	    "epoll_wait",  "epoll_pwait",    "epoll_ctl",
	"connect",    "bind",	    "listen",	   "accept",	     "accept4",
	"sendto",     "recvfrom",   "sendmsg",	   "recvmsg",	     "shutdown",
	"setsockopt", "getsockopt", "getsockname", "getpeername",    "gettimeofday",
	"uname",      "statx",	    "eventfd2",	   "timerfd_create", "timerfd_settime",
	"sendmmsg",   "recvmmsg",   "getdents64",  "getppid",
};

static const unsigned long net_ioctls[] = {FIONREAD, FIONBIO};

/* The NAT launcher: on top of the NAT's list (a NAT process is its forked child and inherits
 * its filter), fork (its clone, checked below), a pidfd for each child, reaping, and what the
 * child does up to its own seal (glibc's fork registers the child's robust list; libseccomp
 * stacks the NAT's filter). */
static const char *const nat_launcher_calls[] = {
	"pidfd_open", "waitid", "wait4", "kill", "set_robust_list", "prctl", "seccomp",
};

/* The supervisor: on top of a cell's (a cell forked for `start FILE` starts from this filter)
 * and the network thread's (started by the first `start FILE` of a NIC): cells forked and
 * reaped, signals, the control and metrics sockets, a started service's file and network, the
 * stats file, the state folder's clean-up. */
static const char *const supervisor_calls[] = {
	"wait4",
	"waitid",
	"kill",
	"socketpair",
	"dup2",
	"dup3",
	"close_range",
	"pipe2",
	"signalfd4",
	"memfd_create",
	"getrlimit",
	"prlimit64",
	"sysinfo",
	"getdents64",
	"statx",
	"readlink",
	"readlinkat",
	"getuid",
	"geteuid",
	"getppid",
	"seccomp",
	"getgid",
	"getegid",
	/* Landlock: a cell forked for `start FILE` confines itself under this filter. */
	"landlock_create_ruleset",
	"landlock_add_rule",
	"landlock_restrict_self",
};

static const unsigned long supervisor_ioctls[] = {TUNSETIFF};

/* The --detach parent: waits for a byte, copies the log, reaps its child. */
static const char *const detach_calls[] = {"wait4"};

#ifdef DENALI_SANITIZE
/* ASan, UBSan and LSan make their own calls: shadow memory (with any protection), their
 * alternate signal stack, /proc/self/maps and the leak checker's thread that ptraces the
 * others at exit. Only in sanitizer builds (meson's b_sanitize). */
static const char *const sanitizer_calls[] = {
	"mmap",
	"mprotect",
	"sigaltstack",
	"getdents",
	"readlink",
	"readlinkat",
	"openat",
	"open",
	"getdents64",
	"prctl",
	"sched_getaffinity",
	"clone",
	"ptrace",
	"wait4",
	"waitid",
	"getppid",
	"uname",
	"kill",
	"pipe2",
	"sysinfo",
	"prlimit64",
	"getrlimit",
	"setrlimit",
	"dup",
	"dup2",
	"statx",
	"rt_sigaction",
	"set_robust_list",
	"rseq",
};
#endif

/* --- The builder. */

struct builder {
	scmp_filter_ctx ctx;
	uint8_t any[NR_MAX / 8];    /* allowed, with or without a condition (the list's size) */
	uint8_t uncond[NR_MAX / 8]; /* allowed whatever the arguments */
	int rc;
};

static int bit(const uint8_t *set, int nr)
{
	return nr >= 0 && nr < NR_MAX && (set[nr / 8] >> (nr % 8)) & 1;
}

static void set_bit(uint8_t *set, int nr)
{
	if (nr >= 0 && nr < NR_MAX)
		set[nr / 8] |= (uint8_t)(1u << (nr % 8));
}

/* Allows nr when all of cmp hold (none: always). A conditional rule for a call already allowed
 * whatever its arguments adds nothing. */
static void allow_nr(struct builder *b, int nr, unsigned n, const struct scmp_arg_cmp *cmp)
{
	if (b->rc || nr < 0 || bit(b->uncond, nr))
		return;
	int rc = b->ctx ? seccomp_rule_add_array(b->ctx, SCMP_ACT_ALLOW, nr, n, cmp) : 0;
	if (rc < 0) {
		b->rc = rc;
		return;
	}
	set_bit(b->any, nr);
	if (!n)
		set_bit(b->uncond, nr);
}

static void allow_list(struct builder *b, const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		allow_nr(b, seccomp_syscall_resolve_name(names[i]), 0, NULL);
}

#define ALLOW_LIST(b, list) allow_list(b, list, sizeof(list) / sizeof(list[0]))

static void allow_1(struct builder *b, const char *name, struct scmp_arg_cmp cmp)
{
	allow_nr(b, seccomp_syscall_resolve_name(name), 1, &cmp);
}

static void allow_ioctls(struct builder *b, const unsigned long *reqs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		allow_1(b, "ioctl", SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)reqs[i]));
}

#define ALLOW_IOCTLS(b, list) allow_ioctls(b, list, sizeof(list) / sizeof(list[0]))

/* fcntl: descriptor flags, status flags, duplicates and locks; not F_SETOWN, F_SETSIG,
 * F_NOTIFY, leases or pipe sizes. */
static void allow_fcntl(struct builder *b)
{
	static const int cmds[] = {F_GETFD,	F_SETFD,	 F_GETFL,     F_SETFL,
				   F_DUPFD,	F_DUPFD_CLOEXEC, F_GETLK,     F_SETLK,
				   F_SETLKW,	F_OFD_GETLK,	 F_OFD_SETLK, F_OFD_SETLKW,
				   F_ADD_SEALS, F_GET_SEALS};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		allow_1(b, "fcntl", SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)cmds[i]));
}

static void allow_sockets(struct builder *b)
{
	static const int domains[] = {AF_UNIX, AF_INET, AF_INET6};
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		allow_1(b, "socket", SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)domains[i]));
}

static void allow_base(struct builder *b, enum sandbox_role role)
{
	ALLOW_LIST(b, base_calls);
	/* No executable memory: no code can be made at run time. */
	allow_1(b, "mmap", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	allow_1(b, "mprotect", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Any handler but SIGSYS's (abort() resets SIGABRT's). Every process installs its
	 * reporter before its first seal (the NAT launcher is exec'd unsealed; a NAT process
	 * inherits the launcher's). */
	allow_1(b, "rt_sigaction", SCMP_A0(SCMP_CMP_NE, SIGSYS));
	/* Signals to its own threads only (kicks, abort). The supervisor's filter is also a
	 * later cell's, whose pid differs: there the cell's own filter holds the pid. */
	if (role == SANDBOX_SUPERVISOR)
		allow_nr(b, seccomp_syscall_resolve_name("tgkill"), 0, NULL);
	else
		allow_1(b, "tgkill", SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	allow_ioctls(b, (const unsigned long[]){TCGETS}, 1); /* isatty() */
	allow_fcntl(b);
}

/* Threads only: clone with CLONE_THREAD (pthread_create). */
static void allow_threads(struct builder *b)
{
	allow_1(b, "clone", SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
}

/* Read-only opens (libslirp's /etc/resolv.conf): no O_WRONLY, O_RDWR, O_CREAT or O_TRUNC. */
static void allow_open_readonly(struct builder *b)
{
	allow_1(b, "openat", SCMP_A2(SCMP_CMP_MASKED_EQ, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC, 0));
}

static void allow_cell(struct builder *b)
{
	ALLOW_LIST(b, vcpu_calls);
	ALLOW_LIST(b, disk_calls);
	ALLOW_LIST(b, cell_calls);
	ALLOW_IOCTLS(b, vcpu_ioctls);
	ALLOW_IOCTLS(b, cell_ioctls);
}

/* The network thread asks the launcher for each NAT process (a socketpair, one end passed over
 * the launcher's socket) and may kill one through its pidfd; it neither forks nor execs. */
static void allow_net(struct builder *b)
{
	allow_list(b, (const char *const[]){"socketpair", "pidfd_send_signal"}, 2);
	ALLOW_LIST(b, net_calls);
	ALLOW_IOCTLS(b, net_ioctls);
	allow_sockets(b);
}

static void allow_role(struct builder *b, enum sandbox_role role)
{
#ifdef DENALI_SANITIZE
	ALLOW_LIST(b, sanitizer_calls);
#endif
	switch (role) {
	case SANDBOX_SUPERVISOR:
		/* Unconditional lists first: they make the conditional rules for the same call
		 * redundant. clone: fork() for cells. */
		ALLOW_LIST(b, supervisor_calls);
		allow_nr(b, seccomp_syscall_resolve_name("clone"), 0, NULL);
		allow_cell(b);
		allow_net(b);
		ALLOW_IOCTLS(b, supervisor_ioctls);
		break;
	case SANDBOX_NET:
		allow_net(b);
		allow_open_readonly(b);
		break;
	case SANDBOX_CELL:
		allow_cell(b);
		allow_threads(b);
		break;
	case SANDBOX_VCPU:
		ALLOW_LIST(b, vcpu_calls);
		ALLOW_IOCTLS(b, vcpu_ioctls);
		/* Closing a disk's ring (vdisk_ring_close) lets go of its image; the ring's
		 * restrictions allow nothing else. */
		allow_1(b, "io_uring_register",
			SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)IORING_UNREGISTER_FILES));
		break;
	case SANDBOX_DISK: ALLOW_LIST(b, disk_calls); break;
	case SANDBOX_NAT:
		ALLOW_LIST(b, nat_calls);
		ALLOW_IOCTLS(b, net_ioctls);
		allow_sockets(b);
		allow_open_readonly(b);
		break;
	case SANDBOX_DETACH: ALLOW_LIST(b, detach_calls); break;
	case SANDBOX_NAT_LAUNCHER:
		ALLOW_LIST(b, nat_launcher_calls);
		/* fork() only: glibc's flags, exactly (no thread, no shared memory). */
		allow_1(b, "clone",
			SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)(CLONE_CHILD_SETTID |
							    CLONE_CHILD_CLEARTID | SIGCHLD)));
		ALLOW_LIST(b, nat_calls);
		ALLOW_IOCTLS(b, net_ioctls);
		allow_sockets(b);
		allow_open_readonly(b);
		break;
	case SANDBOX_ROLES: b->rc = -EINVAL; return;
	}
	allow_base(b, role);
	/* glibc's pthread_create tries clone3 first, whose flags lie behind a pointer no filter
	 * can read: ENOSYS makes it fall back to clone, whose flags are checked above. */
	if (!b->rc && b->ctx && !bit(b->any, __NR_clone3))
		b->rc = seccomp_rule_add(b->ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
}

/* Builds role's filter (ctx NULL: only counts). 0 or a negative errno. */
static int build(struct builder *b, enum sandbox_role role)
{
	allow_role(b, role);
	return b->rc;
}

int sandbox_role_size(enum sandbox_role role)
{
	struct builder b;
	memset(&b, 0, sizeof(b));
	if ((unsigned)role >= SANDBOX_ROLES || build(&b, role) != 0)
		return -1;
	int n = 0;
	for (int nr = 0; nr < NR_MAX; nr++)
		n += bit(b.any, nr);
	return n;
}

int sandbox_role_print(enum sandbox_role role, int fd)
{
	struct builder b;
	memset(&b, 0, sizeof(b));
	if ((unsigned)role >= SANDBOX_ROLES || build(&b, role) != 0)
		return -1;
	for (int nr = 0; nr < NR_MAX; nr++)
		if (bit(b.any, nr))
			dprintf(fd, "%s%s\n", syscall_names[nr][0] ? syscall_names[nr] : "?",
				bit(b.uncond, nr) ? "" : " (arguments checked)");
	return 0;
}

/* --- The handler. Async-signal-safe: fixed buffers, write and exit_group only. */

static size_t put(char *buf, size_t len, size_t cap, const char *s)
{
	while (s && *s && len + 1 < cap)
		buf[len++] = *s++;
	return len;
}

static size_t put_num(char *buf, size_t len, size_t cap, long v)
{
	char digits[24];
	int n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	do
		digits[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < (int)sizeof(digits));
	if (v < 0 && len + 1 < cap)
		buf[len++] = '-';
	while (n && len + 1 < cap)
		buf[len++] = digits[--n];
	return len;
}

static void on_sigsys(int signo, siginfo_t *si, void *uc)
{
	(void)signo;
	(void)uc;
	char line[256];
	size_t len = 0, cap = sizeof(line) - 1;
	int nr = si->si_syscall;
	len = put(line, len, cap, "denali-run: ");
	len = put(line, len, cap, process_name);
	len = put(line, len, cap, ": ");
	int role = thread_role >= 0 ? thread_role : process_role;
	len = put(line, len, cap, role >= 0 ? role_names[role] : "unsealed");
	len = put(line, len, cap, thread_role >= 0 || role < 0 ? " thread" : " thread (inherited)");
	if (thread_service) {
		len = put(line, len, cap, " (service ");
		len = put(line, len, cap, thread_service);
		len = put(line, len, cap, ")");
	}
	len = put(line, len, cap, ": forbidden system call ");
	len = put(line, len, cap,
		  nr >= 0 && nr < NR_MAX && syscall_names[nr][0] ? syscall_names[nr] : "?");
	len = put(line, len, cap, " (");
	len = put_num(line, len, cap, nr);
	len = put(line, len, cap, "): ending the process\n");
	(void)!syscall(SYS_write, STDERR_FILENO, line, len);
	syscall(SYS_exit_group, SANDBOX_EXIT_FORBIDDEN);
}

static int install_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL);
}

/* --- Setup. */

void sandbox_init(int on)
{
	seccomp_on = on;
	uint32_t arch = seccomp_arch_native();
	for (int nr = 0; nr < NR_MAX; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(arch, nr);
		if (name)
			snprintf(syscall_names[nr], NAME_LEN, "%s", name);
		free(name);
	}
	const char *probe = getenv("DENALI_SECCOMP_PROBE");
	probe_role[0] = probe_who[0] = '\0';
	if (probe && *probe) {
		const char *colon = strchr(probe, ':');
		size_t n = colon ? (size_t)(colon - probe) : strlen(probe);
		snprintf(probe_role, sizeof(probe_role), "%.*s", (int)n, probe);
		if (colon)
			snprintf(probe_who, sizeof(probe_who), "%s", colon + 1);
	}
}

int sandbox_seccomp_on(void)
{
	return seccomp_on;
}

void sandbox_set_process(const char *name)
{
	snprintf(process_name, sizeof(process_name), "%s", name);
}

void sandbox_set_service(const char *name)
{
	thread_service = name;
}

int sandbox_thread_sealed(void)
{
	return thread_role >= 0;
}

/* The probe names a role, and maybe who: a service's name or a cell's number. */
static int probe_wanted(enum sandbox_role role)
{
	if (strcmp(probe_role, role_names[role]) != 0)
		return 0;
	if (!probe_who[0])
		return 1;
	if (thread_service && strcmp(thread_service, probe_who) == 0)
		return 1;
	return strncmp(process_name, "cell ", 5) == 0 && strcmp(process_name + 5, probe_who) == 0;
}

int sandbox_seal(enum sandbox_role role, char *err, size_t errlen)
{
	if ((unsigned)role >= SANDBOX_ROLES) {
		snprintf(err, errlen, "seccomp: no role %d", (int)role);
		return -1;
	}
	if (!seccomp_on) {
		if (probe_wanted(role)) /* goes through: what --seccomp off means */
			syscall(PROBE_NR, PROBE_SYSLOG_SIZE_BUFFER, NULL, 0);
		return 0;
	}
	struct builder b;
	memset(&b, 0, sizeof(b));
	b.ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!b.ctx) {
		snprintf(err, errlen, "seccomp: cannot make the %s filter", role_names[role]);
		return -1;
	}
	int rc = build(&b, role);
	/* Loaded on this thread only: the others seal themselves with their own role. */
	if (!rc)
		rc = seccomp_attr_set(b.ctx, SCMP_FLTATR_CTL_TSYNC, 0);
	/* Once a process: a stacked filter's thread cannot change SIGSYS's handler (the base list
	 * forbids it), and a cell forked later inherits it. */
	if (!rc && !handler_installed) {
		if (install_handler() != 0)
			rc = -errno;
		else
			handler_installed = 1;
	}
	if (!rc)
		rc = seccomp_load(b.ctx);
	seccomp_release(b.ctx);
	if (rc) {
		snprintf(err, errlen, "seccomp: cannot load the %s filter: %s", role_names[role],
			 strerror(-rc));
		return -1;
	}
	/* A thread that blocks every signal (the network thread) must still get SIGSYS: a
	 * blocked one ends the process without the line. */
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	thread_role = (int)role;
	if (role == SANDBOX_SUPERVISOR || role == SANDBOX_CELL || role == SANDBOX_NAT ||
	    role == SANDBOX_DETACH || role == SANDBOX_NAT_LAUNCHER)
		process_role = (int)role;
	if (probe_wanted(role))
		syscall(PROBE_NR, PROBE_SYSLOG_SIZE_BUFFER, NULL, 0);
	return 0;
}

void sandbox_seal_or_exit(enum sandbox_role role)
{
	char err[256];
	if (sandbox_seal(role, err, sizeof(err)) == 0)
		return;
	fprintf(stderr, "denali-run: %s: %s thread: %s\n", process_name,
		sandbox_role_name(role) ? sandbox_role_name(role) : "?", err);
	_exit(DENALI_EXIT_HOST);
}
