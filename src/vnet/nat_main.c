/* denali-nat: the NAT process of a fleet, started by denali-run's network thread (vnet_nat.c)
 * with its socket on fd 3, the supervisor's pid and "seccomp" or "no-seccomp" (denali-run's
 * --seccomp) as its arguments. It holds that socket,
 * stdin, stdout and stderr, and nothing else of the supervisor: no guest memory, no /dev/kvm,
 * no state folder. Not meant to be run by hand. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nat_process.h"
#include "sandbox.h"

#define NAT_SOCK_FD 3

int main(int argc, char **argv)
{
	char *end = NULL;
	long parent = argc == 3 ? strtol(argv[1], &end, 10) : 0;
	int type = 0;
	socklen_t len = sizeof(type);
	int seal = argc == 3 && strcmp(argv[2], "seccomp") == 0;
	if (argc != 3 || !end || *end || parent <= 1 ||
	    (!seal && strcmp(argv[2], "no-seccomp") != 0) ||
	    getsockopt(NAT_SOCK_FD, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
	    type != SOCK_SEQPACKET) {
		fprintf(stderr, "denali-nat: the NAT process of denali-run, started by it only\n");
		return 2;
	}
	/* Dies with the thread that started it; if that has already gone, now. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
		fprintf(stderr, "denali-nat: prctl: %s\n", strerror(errno));
		return 1;
	}
	if (getppid() != (pid_t)parent)
		return 0;
	signal(SIGPIPE, SIG_IGN); /* a gone supervisor is EPIPE, not a signal */
	char err[256];
	struct nat_process *p = nat_process_setup(NAT_SOCK_FD, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "denali-nat: %s\n", err);
		return 1;
	}
	/* Sealed before the first frame or outside byte: the NAT list (src/sandbox). */
	sandbox_init(seal);
	sandbox_set_process("nat");
	sandbox_seal_or_exit(SANDBOX_NAT);
	return nat_process_run(p);
}
