/* denali-nat: the NAT process of a fleet, started by denali-run's network thread (vnet_nat.c)
 * with its socket on fd 3 and four arguments: the supervisor's pid, "seccomp" or "no-seccomp"
 * (denali-run's --seccomp), and the fleet's user, which it becomes at once ("keep", "UID:GID",
 * or "none" when its starter has no rights left). It holds that socket, stdin, stdout and
 * stderr, and nothing else of the supervisor: no guest memory, no /dev/kvm, no state folder.
 * Not meant to be run by hand. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nat_process.h"
#include "sandbox/privileges.h"
#include "sandbox/sandbox.h"

#define NAT_SOCK_FD 3

int main(int argc, char **argv)
{
	char *end = NULL;
	long parent = argc == 4 ? strtol(argv[1], &end, 10) : 0;
	int type = 0;
	socklen_t len = sizeof(type);
	int seal = argc == 4 && strcmp(argv[2], "seccomp") == 0;
	struct privileges_target rights;
	int drop = -1; /* 0: give up rights for the fleet's user; 1: started without any */
	if (argc != 4 || !end || *end || parent <= 1 ||
	    (!seal && strcmp(argv[2], "no-seccomp") != 0) ||
	    (drop = privileges_parse_fleet_arg(argv[3], &rights)) < 0 ||
	    getsockopt(NAT_SOCK_FD, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
	    type != SOCK_SEQPACKET) {
		fprintf(stderr, "denali-nat: the NAT process of denali-run, started by it only\n");
		return 2;
	}
	char err[256];
	/* The fleet's rights (docs/security.md#rights): the first NAT process is started while the
	 * supervisor is still root, so it gives up root itself, before any outside byte. First, as
	 * a change of ids clears the parent-death signal. */
	if (privileges_no_new_privs(err, sizeof(err)) != 0 ||
	    (drop == 0 && privileges_drop(&rights, err, sizeof(err)) != 0)) {
		fprintf(stderr, "denali-nat: %s\n", err);
		return 1;
	}
	/* Dies with the thread that started it; if that has already gone, now. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
		fprintf(stderr, "denali-nat: prctl: %s\n", strerror(errno));
		return 1;
	}
	if (getppid() != (pid_t)parent)
		return 0;
	signal(SIGPIPE, SIG_IGN); /* a gone supervisor is EPIPE, not a signal */
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
