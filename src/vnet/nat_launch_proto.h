/* The messages between the supervisor and the NAT launcher (denali-nat started as a launcher,
 * nat_main.c): one SOCK_SEQPACKET socketpair, one fixed-size message per record, at most one
 * file descriptor with it (SCM_RIGHTS). The supervisor asks for a NAT process on a socket it
 * passes; the launcher answers with the process's pid and pidfd, and later says how it ended
 * (it is the launcher's child: only the launcher can reap it). */
#ifndef VNET_NAT_LAUNCH_PROTO_H
#define VNET_NAT_LAUNCH_PROTO_H

#include <stdint.h>

enum nat_launch_type {
	NAT_LAUNCH_START = 1,	/* supervisor -> launcher, with the NAT's end of its socket */
	NAT_LAUNCH_STARTED = 2, /* launcher -> supervisor: pid, with its pidfd; or err */
	NAT_LAUNCH_ENDED = 3,	/* launcher -> supervisor: pid ended (code, status: waitid's) */
};

struct nat_launch_msg {
	uint32_t type; /* enum nat_launch_type */
	uint32_t seq;  /* START's, echoed in its STARTED */
	int32_t pid;
	int32_t err;	/* STARTED: 0, or the errno that kept the NAT from starting (no fd) */
	int32_t code;	/* ENDED: CLD_EXITED, CLD_KILLED, CLD_DUMPED */
	int32_t status; /* ENDED: the exit status or the signal */
};

_Static_assert(sizeof(struct nat_launch_msg) == 24, "nat_launch_msg is part of the wire format");

/* Sends m with fd (-1: none) on a blocking or non-blocking socket, without SIGPIPE. 0, or -1
 * with errno (EPIPE, ECONNRESET: the peer is gone; EAGAIN: no room). */
int nat_launch_send(int sock, const struct nat_launch_msg *m, int fd);

/* Takes one message. Returns 1 with *m and *fd (-1 when none came; close-on-exec), 0 when the
 * peer closed its end, or -1 with errno (EAGAIN: nothing waits; EPROTO: a message of the wrong
 * size or type, or with more than one fd or an fd where none belongs: dropped, its fds closed). */
int nat_launch_recv(int sock, struct nat_launch_msg *m, int *fd);

#endif
