/* The NAT process's loop: poll the supervisor's socket and libslirp's sockets; frames in go
 * to libslirp, forward requests are done and answered, and the frames libslirp queues toward
 * the LAN (at most 256, vnet_slirp.c) go out in batches. */
#include "nat_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nat_proto.h"
#include "vnet_slirp.h"

#define POLL_MIN 64u	    /* the socket and libslirp's: grows */
#define RX_BATCHES 4u	    /* batches taken from the supervisor per turn, then libslirp's turn */
#define ANSWER_WAIT_MS 1000 /* a forward's answer waits this long for room at most */

struct nat_process {
	int sock;
	struct vnet_slirp *slirp;
	struct nat_rx *rx;
	int out_blocked; /* the socket was full: wait for POLLOUT before sending more */
	time_t last_complaint;
};

struct nat_process *nat_process_setup(int sock, char *err, size_t errlen)
{
	struct nat_process *p = calloc(1, sizeof(*p));
	struct nat_rx *rx = malloc(sizeof(*rx));
	int flags = fcntl(sock, F_GETFL);
	if (!p || !rx || flags < 0 || fcntl(sock, F_SETFL, flags | O_NONBLOCK) != 0) {
		snprintf(err, errlen, "%s", !p || !rx ? "out of memory" : strerror(errno));
		free(p);
		free(rx);
		return NULL;
	}
	p->sock = sock;
	p->rx = rx;
	p->slirp = vnet_slirp_create(err, errlen);
	if (!p->slirp) {
		free(rx);
		free(p);
		return NULL;
	}
	return p;
}

/* A message the supervisor should never send: said, at most once a second, and dropped. */
static void complain(struct nat_process *p, const char *why)
{
	time_t now = time(NULL);
	if (now == p->last_complaint)
		return;
	p->last_complaint = now;
	fprintf(stderr, "denali-nat: dropped %s from the supervisor\n", why);
}

/* Does a forward request; an addition is answered. -1: the answer could not be sent. */
static int do_forward(struct nat_process *p, const struct nat_msg *m)
{
	struct vnet_forward f = {.udp = m->fwd.udp,
				 .host_addr = m->fwd.host_addr,
				 .host_port = m->fwd.host_port,
				 .guest_port = m->fwd.guest_port};
	if (m->type == NAT_MSG_FORWARD_REMOVE) {
		vnet_slirp_remove_forward(p->slirp, &f);
		return 0;
	}
	char why[160];
	struct nat_forward_done done = {.seq = m->fwd.seq};
	done.ok = vnet_slirp_add_forward(p->slirp, &f, m->fwd.guest_addr, why, sizeof(why)) == 0;
	return nat_send_msg(p->sock, NAT_MSG_FORWARD_DONE, &done, sizeof(done), ANSWER_WAIT_MS);
}

/* What the supervisor sent, a bounded number of batches. 1: go on; 0: it closed its end;
 * -1: failed. */
static int take_input(struct nat_process *p)
{
	for (unsigned b = 0; b < RX_BATCHES; b++) {
		int n = nat_recv(p->sock, p->rx);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
		if (n == 0)
			return 0;
		for (unsigned i = 0; i < (unsigned)n; i++) {
			struct nat_msg m;
			const char *why;
			if (nat_msg_parse(p->rx->buf[i], p->rx->len[i], p->rx->truncated[i], &m,
					  &why) != 0) {
				complain(p, why);
				continue;
			}
			if (m.type == NAT_MSG_FRAMES) {
				size_t off = 0, len;
				for (const uint8_t *f; (f = nat_msg_next_frame(&m, &off, &len));)
					vnet_slirp_input(p->slirp, f, len);
			} else if (m.type == NAT_MSG_FORWARD_DONE)
				complain(p, "an answer");
			else if (do_forward(p, &m) != 0)
				return -1;
		}
		if ((unsigned)n < NAT_RX_MSGS)
			return 1;
	}
	return 1;
}

/* Sends what libslirp queued, a batch per system call, until the socket is full. -1: the
 * supervisor is gone. */
static int send_output(struct nat_process *p)
{
	while (vnet_slirp_queued(p->slirp)) {
		struct iovec iov[NAT_BATCH];
		unsigned n = 0;
		size_t len;
		for (const uint8_t *f; n < NAT_BATCH && (f = vnet_slirp_peek(p->slirp, n, &len));
		     n++)
			iov[n] = (struct iovec){(void *)(uintptr_t)f, len};
		int sent = nat_send_frames(p->sock, iov, n);
		if (sent < 0)
			return -1;
		vnet_slirp_pop(p->slirp, (unsigned)sent);
		if ((unsigned)sent < n) {
			p->out_blocked = 1; /* the rest waits in libslirp's bounded queue */
			return 0;
		}
	}
	return 0;
}

int nat_process_run(struct nat_process *p)
{
	unsigned cap = POLL_MIN;
	struct pollfd *fds = calloc(cap, sizeof(*fds));
	if (!fds) {
		fprintf(stderr, "denali-nat: out of memory\n");
		return 1;
	}
	int rc = 1;
	for (;;) {
		unsigned n = 0;
		int timeout = -1;
		short out = p->out_blocked ? POLLOUT : 0;
		fds[n++] = (struct pollfd){.fd = p->sock, .events = POLLIN | out};
		if (vnet_slirp_fill(p->slirp, fds, &n, cap, &timeout) != 0) {
			struct pollfd *bigger = realloc(fds, 2 * cap * sizeof(*fds));
			if (bigger) {
				fds = bigger;
				cap *= 2;
			}
			timeout = 0;
		}
		int ready = poll(fds, n, timeout);
		if (ready < 0 && errno != EINTR) {
			fprintf(stderr, "denali-nat: poll: %s\n", strerror(errno));
			break;
		}
		if (fds[0].revents & POLLOUT)
			p->out_blocked = 0;
		int in = 1;
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
			in = take_input(p);
		if (in <= 0) {
			if (in < 0)
				fprintf(stderr, "denali-nat: the supervisor's socket: %s\n",
					strerror(errno));
			rc = in < 0;
			break;
		}
		vnet_slirp_dispatch(p->slirp, fds, ready < 0);
		if (!p->out_blocked && send_output(p) != 0) {
			rc = 0; /* the supervisor went: nothing to report to */
			break;
		}
	}
	free(fds);
	return rc;
}
