/* Messages between the supervisor and its cells, one per SOCK_SEQPACKET datagram. */
#ifndef VMM_CELL_PROTO_H
#define VMM_CELL_PROTO_H

#include <stdint.h>

#include "service.h"

enum cell_msg_type {
	CELL_MSG_ENDED = 1, /* cell -> supervisor: a service ended; outcome and stats follow */
	CELL_MSG_STOP,	    /* supervisor -> cell: raise DN_EV_STOP in every service */
	CELL_MSG_KILL,	    /* supervisor -> cell: stop every service now, recording kind/status */
};

struct cell_msg {
	uint32_t type;
	uint32_t service;	    /* index in the plan (ENDED) */
	struct vmm_outcome outcome; /* ENDED: how it ended; KILL: kind and status to record */
	struct vmm_service_stats stats;
};

#endif
