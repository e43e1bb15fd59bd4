/* Messages between the supervisor and its cells, one per SOCK_SEQPACKET datagram, some with
 * file descriptors attached (SCM_RIGHTS). */
#ifndef VMM_CELL_PROTO_H
#define VMM_CELL_PROTO_H

#include <stdint.h>
#include <sys/types.h>

#include "service.h"

enum cell_msg_type {
	CELL_MSG_ENDED = 1, /* cell -> supervisor: a service ended; outcome and stats follow */
	CELL_MSG_STOP,	    /* supervisor -> cell: raise DN_EV_STOP in every service */
	CELL_MSG_KILL,	    /* supervisor -> cell: stop every service now, recording kind/status */
	CELL_MSG_NIC,	    /* cell -> supervisor: a service's NIC; fds: RAM file, kick, wake */
	CELL_MSG_HALT,	    /* supervisor -> cell: stop one service, outcome.reason says why */
	CELL_MSG_NIC_SLEEP, /* cell -> supervisor: let go of a service's NIC, it goes to sleep */
	CELL_MSG_NIC_SLEPT, /* supervisor -> cell: done (outcome.status 0) or not (-1) */
	CELL_MSG_WAKE,	    /* supervisor -> cell: frames wait for a sleeping service */
	CELL_MSG_SWAP_OUT,  /* supervisor -> cell: swap a service out at its next idle */
	CELL_MSG_SAVE,	    /* supervisor -> cell: --resume's stop: every service to sleep, saved */
	CELL_MSG_HOLD,	    /* cell -> supervisor: keep these fds (memory file, disk image) open
			     * while the service lives: their locks stay held while it sleeps */
	CELL_MSG_STOP_ONE,  /* supervisor -> cell: raise DN_EV_STOP in one service */
	CELL_MSG_STATS_ASK, /* supervisor -> cell: the live counters of every service not ended */
	CELL_MSG_STATS,	    /* cell -> supervisor: one service's live counters */
	CELL_MSG_STATS_DONE, /* cell -> supervisor: all of them sent (outcome.status: the ask's) */
};

#define CELL_MSG_FDS_MAX 3

struct cell_msg {
	uint32_t type;
	uint32_t service;	    /* index in the plan (all but STOP and KILL) */
	struct vmm_outcome outcome; /* ENDED: how it ended; KILL: kind and status; HALT: reason */
	struct vmm_service_stats stats;
};

/* Sends msg with nfds (<= CELL_MSG_FDS_MAX) descriptors attached. Returns 0 or -1 (errno). */
int cell_msg_send(int sock, const struct cell_msg *msg, const int *fds, unsigned nfds, int flags);

/* Receives one message. Returns its size (0 at end of file, -1 with errno); any descriptors
 * that came with it are stored in fds and counted in *nfds (the caller owns them). A message
 * with more descriptors than expected has the extra ones closed. */
ssize_t cell_msg_recv(int sock, struct cell_msg *msg, int *fds, unsigned *nfds, int flags);

#endif
