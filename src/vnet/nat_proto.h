/* The messages between the supervisor's network thread and the NAT process (denali-nat): one
 * SOCK_SEQPACKET socketpair, one message per record. Every message starts with a 4-byte type.
 * Frames travel packed: a batch of up to NAT_BATCH frames is one FRAMES message (two when its
 * bytes exceed NAT_MSG_MAX), each frame a 2-byte length then its bytes, sent with one sendmmsg.
 * One message per batch, not one per frame: every message wakes the reader, and on one CPU the
 * woken reader runs at once, so per-frame messages were read one or two at a time. Each side
 * checks what the other sends: the NAT process parses guests' and peers' traffic, so the
 * supervisor trusts nothing it says. */
#ifndef VNET_NAT_PROTO_H
#define VNET_NAT_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "denali/abi.h"

#define NAT_BATCH 64u	   /* frames per batch: per nat_send_frames call */
#define NAT_MSG_MAX 65536u /* bytes of any message, its type included: fits any socket's buffer */
#define NAT_RX_MSGS 4u	   /* messages per recvmmsg */

enum nat_msg_type {
	NAT_MSG_FRAMES = 1,	 /* both ways: 1..NAT_BATCH records {uint16_t len; frame[len]}, each
				    frame DN_NIC_FRAME_MIN..MAX bytes, the length in host order */
	NAT_MSG_FORWARD_ADD = 2, /* supervisor -> NAT: struct nat_forward, answered */
	NAT_MSG_FORWARD_REMOVE = 3, /* supervisor -> NAT: struct nat_forward, not answered */
	NAT_MSG_FORWARD_DONE = 4,   /* NAT -> supervisor: struct nat_forward_done */
};

struct nat_msg_head {
	uint32_t type; /* enum nat_msg_type */
};

/* A host forward: host_addr:host_port (TCP, or UDP) to guest_addr:guest_port. */
struct nat_forward {
	uint32_t seq; /* echoed in the answer */
	uint32_t host_addr, guest_addr;
	uint16_t host_port, guest_port;
	uint8_t udp; /* 0 or 1 */
	uint8_t reserved[3];
};

struct nat_forward_done {
	uint32_t seq;
	uint32_t ok; /* 1: listening; 0: the address could not be bound */
};

_Static_assert(sizeof(struct nat_forward) == 20, "nat_forward is part of the wire format");
_Static_assert(sizeof(struct nat_forward_done) == 8, "nat_forward_done is part of the wire format");

/* One message as parsed: frames points into the received buffer. */
struct nat_msg {
	enum nat_msg_type type;
	const uint8_t *frames; /* FRAMES: count records of frames_len bytes in all, checked */
	size_t frames_len;
	unsigned count;
	struct nat_forward fwd;	      /* FORWARD_ADD, FORWARD_REMOVE */
	struct nat_forward_done done; /* FORWARD_DONE */
};

/* Parses one received message of len bytes (truncated: the receive cut it, a message longer
 * than NAT_MSG_MAX). Returns 0 with *out filled, or -1 with *why a short reason: too short,
 * too long, an unknown type, no frame or more than NAT_BATCH, a frame out of bounds or a record
 * past the end, a forward with bad fields. The whole message is checked here, so that a bad
 * one is dropped whole. Pure. */
int nat_msg_parse(const uint8_t *buf, size_t len, int truncated, struct nat_msg *out,
		  const char **why);

/* The frames of a parsed FRAMES message in order: start with *off = 0; each call returns the
 * next frame and its length, or NULL after the last. */
const uint8_t *nat_msg_next_frame(const struct nat_msg *m, size_t *off, size_t *len);

/* Sends frames[0..n) (n <= NAT_BATCH, more are left), each DN_NIC_FRAME_MIN..MAX bytes, packed
 * into FRAMES messages (one, or two when they exceed NAT_MSG_MAX), in one sendmmsg on a
 * non-blocking socket. Returns how many frames went (the first ones, a whole message's; fewer
 * when the socket is full), or -1 with errno (EPIPE, ECONNRESET: the peer is gone). Never
 * raises SIGPIPE. */
int nat_send_frames(int fd, const struct iovec *frames, unsigned n);

/* Sends one message of type with its payload; waits up to timeout_ms for room. 0, or -1 with
 * errno (ETIMEDOUT: no room in time). */
int nat_send_msg(int fd, enum nat_msg_type type, const void *payload, size_t len, int timeout_ms);

/* A batch of received messages: buf[i] holds len[i] bytes, truncated[i] if it was longer. */
struct nat_rx {
	unsigned n;
	uint32_t len[NAT_RX_MSGS];
	uint8_t truncated[NAT_RX_MSGS];
	struct mmsghdr msgs[NAT_RX_MSGS];
	struct iovec iov[NAT_RX_MSGS];
	/* One byte more than any message may have, so a longer one shows as too long even where
	 * MSG_TRUNC is not reported. */
	uint8_t buf[NAT_RX_MSGS][NAT_MSG_MAX + 1];
};

/* Takes what is waiting on a non-blocking socket, at most NAT_RX_MSGS messages, in one
 * recvmmsg. Returns how many (rx->n), 0 if the peer is gone (it closed its end: every message
 * of ours has a type, so an empty one means the end), or -1 with errno (EAGAIN: nothing
 * waits). */
int nat_recv(int fd, struct nat_rx *rx);

#endif
