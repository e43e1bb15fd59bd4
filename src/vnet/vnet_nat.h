/* The `user` uplink seen from the supervisor: the NAT process (denali-nat, beside denali-run),
 * one per fleet, joined to the switch by a SOCK_SEQPACKET socketpair (nat_proto.h). Frames for
 * it pass vnet_sanitize.c here, are copied into a batch and sent one system call per batch;
 * its frames come back the same way and go to the switch. The forwards are kept here, so that
 * a NAT process that dies is replaced with them all (connections through it are reset); a NAT
 * that keeps dying is restarted less and less often. Once the launcher is gone, a NAT that
 * dies is not replaced: the uplink drops its frames. Not thread-safe: the caller serializes
 * (the switch's lock). */
#ifndef VNET_NAT_H
#define VNET_NAT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet_config.h"

struct nat_launcher;
struct vnet_nat;

/* Where a frame from the NAT goes (the switch's uplink port). */
typedef void (*vnet_nat_deliver_fn)(void *ctx, const uint8_t *frame, size_t len);

/* Starts the NAT process through launcher (nat_launcher.h), which must outlive the result and
 * starts its replacements too. NULL with err set. */
struct vnet_nat *vnet_nat_create(struct nat_launcher *launcher, vnet_nat_deliver_fn deliver,
				 void *ctx, char *err, size_t errlen);

/* Ends the NAT process (SIGKILL, reaped) and frees everything. NULL is allowed. */
void vnet_nat_destroy(struct vnet_nat *n);

/* Publishes f->host_addr:host_port on the host, forwarded to guest_ip:guest_port, and keeps it
 * for restarts. Waits for the NAT's answer (at most 5 s), handing the frames that come
 * meanwhile to deliver. Returns 0, or -1 with err set (the address could not be bound:
 * nothing is kept). While the NAT process is down, or if it dies before it answers, the
 * forward is kept and published at the restart (a failure then is said on stderr). */
int vnet_nat_add_forward(struct vnet_nat *n, const struct vnet_forward *f, uint32_t guest_ip,
			 char *err, size_t errlen);

/* Withdraws a forward vnet_nat_add_forward published. */
void vnet_nat_remove_forward(struct vnet_nat *n, const struct vnet_forward *f);

/* The switch's uplink send (vnet_switch.h): a frame from the LAN. Sanitized
 * (vnet_sanitize_for_nat), then copied into the batch, which is sent when full or at
 * vnet_nat_flush. Returns 0, or -1 (dropped: it failed the sanitizer, or the NAT is down). */
int vnet_nat_send(void *ctx, const uint8_t *frame, size_t len);

/* Sends the batch (one sendmmsg); frames the socket has no room for are dropped and counted. */
void vnet_nat_flush(struct vnet_nat *n);

/* Poll integration, like vnet_slirp's: fill adds the NAT's socket and process to fds[*n..max)
 * (it needs 2 entries; -1 if they do not fit) and lowers *timeout_ms to a restart that is due
 * later; dispatch, after poll, takes what the NAT sent (a bounded number of batches: more
 * waits for the next turn), and notices a death: it is said on stderr with how it ended (the
 * launcher's word), its restart timed. A restart that is due happens in fill. */
int vnet_nat_fill(struct vnet_nat *n, struct pollfd *fds, unsigned *nfds, unsigned max,
		  int *timeout_ms);
void vnet_nat_dispatch(struct vnet_nat *n, const struct pollfd *fds);

/* Counters for stats and metrics. */
struct vnet_nat_counters {
	int pid;	       /* the NAT process now, 0 while it is down */
	uint64_t restarts;     /* NAT processes started after the first */
	uint64_t tx_frames;    /* frames sent to it */
	uint64_t tx_dropped;   /* frames for it dropped: socket full, or it was down */
	uint64_t rx_frames;    /* frames it sent that went to the switch */
	uint64_t rx_malformed; /* messages from it that broke the format, dropped */
	uint64_t tx_batches; /* sendmmsg calls that sent frames: tx_frames / tx_batches per call */
	uint64_t rx_batches; /* recvmmsg calls that took messages */
};
void vnet_nat_counters(const struct vnet_nat *n, struct vnet_nat_counters *out);

#endif
