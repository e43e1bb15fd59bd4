/* The supervisor's side of the NAT launcher: starting it clean (clone + exec of denali-nat,
 * every other fd closed) and asking it for NAT processes. */
#include "nat_launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nat_launch_proto.h"
#include "sandbox.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define NAT_HELPER "denali-nat"
#define LAUNCHER_SOCK_FD 3  /* where denali-nat finds its socket */
#define ANSWER_WAIT_MS 5000 /* a start's answer */

extern char **environ;

struct nat_launcher {
	int sock, pidfd; /* -1 once stopped */
	pid_t pid;
	int gone;
	uint32_t seq;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child, between clone and exec: raw system calls only (the caller may have threads, and
 * the child has no copy of their locks' owners). denali-nat is run from helper_fd, opened
 * before the rights were given up, so a fleet's user that cannot reach the build's folder (a
 * checkout in root's 0700 home, run with sudo) still runs it. */
static void child_exec(int helper_fd, int sock, const char *parent)
{
	uint64_t none =
		0; /* the supervisor blocks the signals it reads: the launcher starts with none */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
	/* Out of the way of fds 3 and 4 first; close-on-exec, so the launcher does not keep it. */
	int helper = fcntl(helper_fd, F_DUPFD_CLOEXEC, LAUNCHER_SOCK_FD + 2);
	if (helper < 0)
		_exit(127);
	if (sock == LAUNCHER_SOCK_FD) {
		if (fcntl(sock, F_SETFD, 0) != 0)
			_exit(127);
	} else if (dup2(sock, LAUNCHER_SOCK_FD) != LAUNCHER_SOCK_FD) {
		_exit(127);
	}
	if (dup3(helper, LAUNCHER_SOCK_FD + 1, O_CLOEXEC) != LAUNCHER_SOCK_FD + 1)
		_exit(127);
	if (syscall(SYS_close_range, LAUNCHER_SOCK_FD + 2, ~0U, 0) != 0)
		_exit(127);
	/* The third argument: whether it and its NATs seal themselves (denali-run's --seccomp). */
	char *const argv[] = {(char *)(uintptr_t)NAT_HELPER, (char *)(uintptr_t)parent,
			      (char *)(uintptr_t)(sandbox_seccomp_on() ? "seccomp" : "no-seccomp"),
			      NULL};
	syscall(SYS_execveat, LAUNCHER_SOCK_FD + 1, "", argv, environ, AT_EMPTY_PATH);
	static const char msg[] = "denali-run: cannot run the NAT launcher (" NAT_HELPER ")\n";
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(127);
	_exit(127);
}

/* denali-nat beside the running executable: the one of this build, never one found in PATH. */
static int find_helper(char *out, size_t outlen)
{
	ssize_t len = readlink("/proc/self/exe", out, outlen);
	char *slash = len > 0 && (size_t)len < outlen ? memrchr(out, '/', (size_t)len) : NULL;
	if (!slash || (size_t)(slash - out) + sizeof("/" NAT_HELPER) > outlen)
		return -1;
	memcpy(slash, "/" NAT_HELPER, sizeof("/" NAT_HELPER));
	return 0;
}

int nat_launcher_open_helper(const char *helper, char *err, size_t errlen)
{
	char path[PATH_MAX];
	if (helper) {
		snprintf(path, sizeof(path), "%s", helper);
	} else if (find_helper(path, sizeof(path)) != 0) {
		snprintf(err, errlen, "the NAT launcher: cannot find denali-nat: /proc/self/exe");
		return -1;
	}
	if (access(path, X_OK) != 0) {
		snprintf(err, errlen, "the NAT launcher: cannot run %s: %s", path, strerror(errno));
		return -1;
	}
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		snprintf(err, errlen, "the NAT launcher: %s: %s", path, strerror(errno));
	return fd;
}

struct nat_launcher *nat_launcher_start(const char *helper, char *err, size_t errlen)
{
	int fd = nat_launcher_open_helper(helper, err, errlen);
	if (fd < 0)
		return NULL;
	struct nat_launcher *l = nat_launcher_start_fd(fd, err, errlen);
	close(fd);
	return l;
}

struct nat_launcher *nat_launcher_start_fd(int helper_fd, char *err, size_t errlen)
{
	struct nat_launcher *l = calloc(1, sizeof(*l));
	int sv[2];
	if (!l || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, errlen, "the NAT launcher: %s",
			 l ? strerror(errno) : "out of memory");
		free(l);
		return NULL;
	}
	char parent[24];
	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	int pidfd = -1;
	long pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
	if (pid == 0)
		child_exec(helper_fd, sv[1], parent);
	int e = errno;
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		free(l);
		snprintf(err, errlen, "the NAT launcher: clone: %s", strerror(e));
		return NULL;
	}
	l->sock = sv[0];
	l->pidfd = pidfd;
	l->pid = (pid_t)pid;
	return l;
}

/* The launcher's socket closed or broke: no NAT can start again (it cannot be replaced once
 * the supervisor sealed). Said once. */
static void lost_launcher(struct nat_launcher *l, const char *why)
{
	if (l->gone)
		return;
	l->gone = 1;
	fprintf(stderr,
		"denali-run: the NAT launcher (pid %d) is gone (%s): no NAT process can start "
		"again; the user uplink drops its frames once its NAT process ends\n",
		(int)l->pid, why);
}

/* Takes the next message within the deadline. 1, 0 (nothing in time), -1 (gone). */
static int next(struct nat_launcher *l, int64_t deadline, struct nat_launch_msg *m, int *fd)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = {.fd = l->sock, .events = POLLIN};
		int ready = poll(&p, 1, left > 0 ? (int)left : 0);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			return ready < 0 ? (lost_launcher(l, strerror(errno)), -1) : 0;
		int rc = nat_launch_recv(l->sock, m, fd);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno == EPROTO) {
			fprintf(stderr, "denali-run: the NAT launcher sent a malformed message: "
					"dropped\n");
			continue;
		}
		if (rc < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		lost_launcher(l, rc == 0 ? "its socket closed" : strerror(errno));
		return -1;
	}
}

int nat_launcher_spawn(struct nat_launcher *l, int sock, pid_t *pid, char *err, size_t errlen)
{
	if (l->gone) {
		snprintf(err, errlen, "the NAT launcher is gone");
		return -1;
	}
	struct nat_launch_msg m = {.type = NAT_LAUNCH_START, .seq = ++l->seq};
	if (nat_launch_send(l->sock, &m, sock) != 0) {
		lost_launcher(l, strerror(errno));
		snprintf(err, errlen, "the NAT launcher is gone");
		return -1;
	}
	int64_t deadline = now_ms() + ANSWER_WAIT_MS;
	for (;;) {
		struct nat_launch_msg a;
		int fd, rc = next(l, deadline, &a, &fd);
		if (rc <= 0) {
			snprintf(err, errlen, "the NAT launcher %s",
				 rc < 0 ? "is gone" : "did not answer in 5 s");
			return -1;
		}
		if (a.type != NAT_LAUNCH_STARTED || a.seq != m.seq) {
			if (fd >= 0) /* an answer too late for an earlier ask, or an end */
				close(fd);
			continue;
		}
		if (a.err || a.pid <= 0) {
			if (fd >= 0)
				close(fd);
			snprintf(err, errlen, "the NAT launcher could not fork: %s",
				 strerror(a.err > 0 ? a.err : EPROTO));
			return -1;
		}
		*pid = (pid_t)a.pid;
		return fd;
	}
}

int nat_launcher_ended(struct nat_launcher *l, pid_t pid, int timeout_ms, int *code, int *status)
{
	if (l->gone)
		return -1;
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		struct nat_launch_msg a;
		int fd, rc = next(l, deadline, &a, &fd);
		if (rc <= 0)
			return -1;
		if (fd >= 0)
			close(fd);
		if (a.type == NAT_LAUNCH_ENDED && a.pid == pid) {
			*code = a.code;
			*status = a.status;
			return 0;
		}
	}
}

int nat_launcher_gone(const struct nat_launcher *l)
{
	return l->gone;
}

pid_t nat_launcher_pid(const struct nat_launcher *l)
{
	return l ? l->pid : 0;
}

void nat_launcher_stop(struct nat_launcher *l)
{
	if (!l)
		return;
	close(l->sock); /* it ends at this end of file; the kill is for one that hangs */
	syscall(SYS_pidfd_send_signal, l->pidfd, SIGKILL, NULL, 0);
	siginfo_t si;
	while (syscall(SYS_waitid, P_PIDFD, l->pidfd, &si, WEXITED | __WALL, NULL) < 0 &&
	       errno == EINTR)
		;
	close(l->pidfd);
	free(l);
}
