/* denali-nat: the NAT launcher of a fleet, exec'd once by denali-run at setup (nat_launcher.c)
 * with its socket to the supervisor on fd 3, the supervisor's pid and "seccomp" or
 * "no-seccomp" (denali-run's --seccomp) as its arguments. It holds that socket, stdin, stdout
 * and stderr, and nothing else of the supervisor: no guest memory, no /dev/kvm, no state
 * folder. Sealed with the launcher's list, it forks a NAT process for each socket the
 * supervisor passes, answers with its pid and pidfd, reaps it and says how it ended. Each NAT
 * process seals itself with the NAT list before its first frame. Not meant to be run by
 * hand. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nat_launch_proto.h"
#include "nat_process.h"
#include "sandbox.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define LAUNCHER_SOCK_FD 3
#define NATS_MAX 8 /* running at once: one, and those killed but not yet reaped */

struct nat_child {
	pid_t pid;
	int pidfd;
};

static struct nat_child nats[NATS_MAX];
static unsigned nnats;

/* The NAT process, in the forked child: libslirp on sock, sealed, served until the supervisor
 * closes its end. Never returns. */
static void nat_child(int sock)
{
	close(LAUNCHER_SOCK_FD);
	for (unsigned i = 0; i < nnats; i++)
		close(nats[i].pidfd);
	sandbox_set_process("nat");
	char err[256];
	struct nat_process *p = nat_process_setup(sock, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "denali-nat: %s\n", err);
		_exit(1);
	}
	/* Sealed before the first frame or outside byte: the NAT list (src/sandbox), stacked on
	 * the launcher's. */
	sandbox_seal_or_exit(SANDBOX_NAT);
	_exit(nat_process_run(p));
}

/* A START: a NAT process forked on the passed socket, answered with its pid and pidfd. -1: the
 * supervisor is gone. */
static int start_nat(const struct nat_launch_msg *m, int sock)
{
	struct nat_launch_msg a = {.type = NAT_LAUNCH_STARTED, .seq = m->seq};
	int pidfd = -1;
	pid_t pid = -1;
	if (nnats == NATS_MAX) {
		a.err = EAGAIN;
	} else if ((pid = fork()) == 0) {
		nat_child(sock);
	} else if (pid < 0 || (pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0) {
		a.err = errno;
		if (pid > 0) { /* cannot be watched: not kept */
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	close(sock);
	if (!a.err) {
		a.pid = pid;
		nats[nnats++] = (struct nat_child){pid, pidfd};
	}
	return nat_launch_send(LAUNCHER_SOCK_FD, &a, pidfd);
}

/* NAT process i ended: reaped, and said. -1: the supervisor is gone. */
static int reap_nat(unsigned i)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	long rc;
	do
		rc = syscall(SYS_waitid, P_PIDFD, nats[i].pidfd, &si, WEXITED, NULL);
	while (rc < 0 && errno == EINTR);
	struct nat_launch_msg a = {.type = NAT_LAUNCH_ENDED,
				   .pid = nats[i].pid,
				   .code = rc == 0 ? si.si_code : 0,
				   .status = rc == 0 ? si.si_status : 0};
	close(nats[i].pidfd);
	nats[i] = nats[--nnats];
	return nat_launch_send(LAUNCHER_SOCK_FD, &a, -1);
}

/* Serves the supervisor until it closes its end (0) or the socket fails (1). */
static int launcher_run(void)
{
	for (;;) {
		struct pollfd fds[1 + NATS_MAX];
		unsigned n = 0;
		fds[n++] = (struct pollfd){.fd = LAUNCHER_SOCK_FD, .events = POLLIN};
		for (unsigned i = 0; i < nnats; i++)
			fds[n++] = (struct pollfd){.fd = nats[i].pidfd, .events = POLLIN};
		if (poll(fds, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "denali-nat: launcher: poll: %s\n", strerror(errno));
			return 1;
		}
		/* Ends first, from the last: reap_nat moves the last entry into the freed one. */
		for (unsigned i = nnats; i-- > 0;)
			if ((fds[1 + i].revents & POLLIN) && reap_nat(i) != 0)
				return 0;
		if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		struct nat_launch_msg m;
		int fd, rc = nat_launch_recv(LAUNCHER_SOCK_FD, &m, &fd);
		if (rc == 0)
			return 0; /* the supervisor is done */
		if (rc < 0 && errno == EPROTO) {
			fprintf(stderr, "denali-nat: launcher: a malformed request: dropped\n");
			continue;
		}
		if (rc < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "denali-nat: launcher: its socket: %s\n", strerror(errno));
			return 1;
		}
		if (m.type != NAT_LAUNCH_START) {
			if (fd >= 0)
				close(fd);
			fprintf(stderr, "denali-nat: launcher: an answer from the supervisor: "
					"dropped\n");
			continue;
		}
		if (start_nat(&m, fd) != 0)
			return 0;
	}
}

int main(int argc, char **argv)
{
	char *end = NULL;
	long parent = argc == 3 ? strtol(argv[1], &end, 10) : 0;
	int type = 0;
	socklen_t len = sizeof(type);
	int seal = argc == 3 && strcmp(argv[2], "seccomp") == 0;
	if (argc != 3 || !end || *end || parent <= 1 ||
	    (!seal && strcmp(argv[2], "no-seccomp") != 0) ||
	    getsockopt(LAUNCHER_SOCK_FD, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
	    type != SOCK_SEQPACKET) {
		fprintf(stderr, "denali-nat: the NAT launcher of denali-run, started by it only\n");
		return 2;
	}
	/* Dies with the supervisor's thread that started it (its main thread, which lives as long
	 * as the fleet); if that has already gone, now. Its NAT processes end when the
	 * supervisor's ends of their sockets close. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
		fprintf(stderr, "denali-nat: prctl: %s\n", strerror(errno));
		return 1;
	}
	if (getppid() != (pid_t)parent)
		return 0;
	signal(SIGPIPE, SIG_IGN); /* a gone supervisor is EPIPE, not a signal */
	/* Sealed before the first request: the launcher's list, which holds what a NAT process
	 * does up to its own seal (it inherits the filter), and the NAT's list. */
	sandbox_init(seal);
	sandbox_set_process("nat launcher");
	sandbox_seal_or_exit(SANDBOX_NAT_LAUNCHER);
	return launcher_run();
}
