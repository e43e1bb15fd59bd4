/* The NAT launcher's messages (nat_launch_proto.h): a fixed-size record and at most one fd. */
#include "nat_launch_proto.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int nat_launch_send(int sock, const struct nat_launch_msg *m, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)(uintptr_t)m, sizeof(*m)};
	struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		h.msg_control = ctl.buf;
		h.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&h);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &h, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	return n == (ssize_t)sizeof(*m) ? 0 : (errno = EPROTO, -1);
}

/* Closes every fd a control message brought; returns how many there were. */
static unsigned close_passed(struct msghdr *h, int *first)
{
	unsigned count = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++, count++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (count == 0 && first)
				*first = fd;
			else
				close(fd);
		}
	}
	return count;
}

int nat_launch_recv(int sock, struct nat_launch_msg *m, int *fd)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))]; /* room to see a second fd, and close it */
		struct cmsghdr align;
	} ctl;
	uint8_t buf[sizeof(*m) + 1];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr h = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = ctl.buf,
			   .msg_controllen = sizeof(ctl.buf)};
	*fd = -1;
	ssize_t n;
	do
		n = recvmsg(sock, &h, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	int got = -1;
	unsigned fds = close_passed(&h, &got);
	if (n == 0 && !fds)
		return 0;
	if (n == (ssize_t)sizeof(*m))
		memcpy(m, buf, sizeof(*m));
	int fd_wanted = n == (ssize_t)sizeof(*m) &&
			(m->type == NAT_LAUNCH_START || (m->type == NAT_LAUNCH_STARTED && !m->err));
	int ok = n == (ssize_t)sizeof(*m) && !(h.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
		 m->type >= NAT_LAUNCH_START && m->type <= NAT_LAUNCH_ENDED &&
		 fds == (unsigned)fd_wanted;
	if (!ok) {
		if (got >= 0)
			close(got);
		errno = EPROTO;
		return -1;
	}
	*fd = got;
	return 1;
}
