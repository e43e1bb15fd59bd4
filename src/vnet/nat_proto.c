/* The NAT link's wire format and its batched transport (nat_proto.h). */
#include "nat_proto.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

int nat_msg_parse(const uint8_t *buf, size_t len, int truncated, struct nat_msg *out,
		  const char **why)
{
	memset(out, 0, sizeof(*out));
	struct nat_msg_head head;
	if (truncated || len > NAT_MSG_MAX) {
		*why = "a message longer than the largest frame";
		return -1;
	}
	if (len < sizeof(head)) {
		*why = "a message shorter than its type";
		return -1;
	}
	memcpy(&head, buf, sizeof(head));
	const uint8_t *body = buf + sizeof(head);
	size_t body_len = len - sizeof(head);
	switch (head.type) {
	case NAT_MSG_FRAMES:
		for (size_t off = 0; off < body_len; out->count++) {
			uint16_t flen;
			if (out->count == NAT_BATCH) {
				*why = "more frames in one message than a batch";
				return -1;
			}
			if (body_len - off < sizeof(flen)) {
				*why = "a frame's length cut by the message's end";
				return -1;
			}
			memcpy(&flen, body + off, sizeof(flen));
			off += sizeof(flen);
			if (flen < DN_NIC_FRAME_MIN || flen > DN_NIC_FRAME_MAX) {
				*why = "a frame shorter than an Ethernet header or longer than the "
				       "MTU";
				return -1;
			}
			if (body_len - off < flen) {
				*why = "a frame longer than what is left of its message";
				return -1;
			}
			off += flen;
		}
		if (!out->count) {
			*why = "a frames message without a frame";
			return -1;
		}
		out->frames = body;
		out->frames_len = body_len;
		break;
	case NAT_MSG_FORWARD_ADD:
	case NAT_MSG_FORWARD_REMOVE:
		if (body_len != sizeof(out->fwd)) {
			*why = "a forward message of the wrong size";
			return -1;
		}
		memcpy(&out->fwd, body, sizeof(out->fwd));
		if (out->fwd.udp > 1 || out->fwd.host_port == 0 || out->fwd.guest_port == 0 ||
		    out->fwd.reserved[0] || out->fwd.reserved[1] || out->fwd.reserved[2]) {
			*why = "a forward with a bad protocol, port or reserved field";
			return -1;
		}
		break;
	case NAT_MSG_FORWARD_DONE:
		if (body_len != sizeof(out->done)) {
			*why = "a forward answer of the wrong size";
			return -1;
		}
		memcpy(&out->done, body, sizeof(out->done));
		if (out->done.ok > 1) {
			*why = "a forward answer that is neither yes nor no";
			return -1;
		}
		break;
	default: *why = "a message of an unknown type"; return -1;
	}
	out->type = (enum nat_msg_type)head.type;
	return 0;
}

const uint8_t *nat_msg_next_frame(const struct nat_msg *m, size_t *off, size_t *len)
{
	uint16_t flen;
	if (m->type != NAT_MSG_FRAMES || *off + sizeof(flen) > m->frames_len)
		return NULL;
	memcpy(&flen, m->frames + *off, sizeof(flen));
	const uint8_t *frame = m->frames + *off + sizeof(flen);
	*off += sizeof(flen) + flen; /* inside frames_len: nat_msg_parse checked every record */
	*len = flen;
	return frame;
}

static const struct nat_msg_head frames_head = {NAT_MSG_FRAMES};

/* At most two messages for a batch: a message holds at least (NAT_MSG_MAX - 4) / 1516 = 43
 * frames of the largest size. */
#define SEND_MSGS 2u
_Static_assert(SEND_MSGS *((NAT_MSG_MAX - sizeof(struct nat_msg_head)) /
			   (sizeof(uint16_t) + DN_NIC_FRAME_MAX)) >= NAT_BATCH,
	       "a batch fits in SEND_MSGS messages");

int nat_send_frames(int fd, const struct iovec *frames, unsigned n)
{
	struct mmsghdr msgs[SEND_MSGS];
	struct iovec iov[1 + 2 * NAT_BATCH + SEND_MSGS];
	uint16_t lens[NAT_BATCH];
	unsigned first[SEND_MSGS + 1]; /* frames[first[k]..first[k+1]) go in message k */
	if (n > NAT_BATCH)
		n = NAT_BATCH;
	if (n == 0)
		return 0;
	unsigned nmsgs = 0, v = 0;
	size_t bytes = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t rec = sizeof(lens[i]) + frames[i].iov_len;
		if (i == 0 || bytes + rec > NAT_MSG_MAX) {
			if (nmsgs)
				msgs[nmsgs - 1].msg_hdr.msg_iovlen =
					(size_t)(&iov[v] - msgs[nmsgs - 1].msg_hdr.msg_iov);
			first[nmsgs] = i;
			/* sendmmsg only reads it: the cast drops a const it never writes through.
			 */
			iov[v] = (struct iovec){(void *)(uintptr_t)&frames_head,
						sizeof(frames_head)};
			msgs[nmsgs++] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[v]}};
			v++;
			bytes = sizeof(frames_head);
		}
		lens[i] = (uint16_t)frames[i].iov_len;
		iov[v++] = (struct iovec){&lens[i], sizeof(lens[i])};
		iov[v++] = frames[i];
		bytes += rec;
	}
	msgs[nmsgs - 1].msg_hdr.msg_iovlen = (size_t)(&iov[v] - msgs[nmsgs - 1].msg_hdr.msg_iov);
	first[nmsgs] = n;
	int sent;
	do
		sent = sendmmsg(fd, msgs, nmsgs, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
		return 0;
	return sent < 0 ? -1 : (int)first[sent];
}

int nat_send_msg(int fd, enum nat_msg_type type, const void *payload, size_t len, int timeout_ms)
{
	struct nat_msg_head head = {(uint32_t)type};
	struct iovec iov[2] = {{&head, sizeof(head)}, {(void *)(uintptr_t)payload, len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	for (;;) {
		if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
			return -1;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int rc = poll(&p, 1, timeout_ms);
		if (rc == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

int nat_recv(int fd, struct nat_rx *rx)
{
	for (unsigned i = 0; i < NAT_RX_MSGS; i++) {
		rx->iov[i] = (struct iovec){rx->buf[i], sizeof(rx->buf[i])};
		rx->msgs[i] =
			(struct mmsghdr){.msg_hdr = {.msg_iov = &rx->iov[i], .msg_iovlen = 1}};
	}
	int got;
	do
		got = recvmmsg(fd, rx->msgs, NAT_RX_MSGS, MSG_DONTWAIT, NULL);
	while (got < 0 && errno == EINTR);
	rx->n = 0;
	if (got < 0)
		return -1;
	for (unsigned i = 0; i < (unsigned)got; i++) {
		if (rx->msgs[i].msg_len == 0)
			break; /* the peer closed its end: an empty message is its end of file */
		rx->len[i] = rx->msgs[i].msg_len;
		rx->truncated[i] = (rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 ||
				   rx->msgs[i].msg_len > NAT_MSG_MAX;
		rx->n++;
	}
	return (int)rx->n;
}
