/* The `user` uplink over libslirp: callbacks, timers, poll integration and forwards. */
#include "vnet_slirp.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "denali/abi.h"

#define QUEUE_FRAMES 256u
#define TIMERS_MAX 8u

struct slirp_timer {
	int in_use;
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
};

struct queued_frame {
	uint16_t len;
	uint8_t data[DN_NIC_FRAME_MAX];
};

struct vnet_slirp {
	Slirp *slirp;
	struct slirp_timer timers[TIMERS_MAX];
	struct queued_frame *queue; /* ring of QUEUE_FRAMES */
	unsigned head, count;
	/* During fill/dispatch: where slirp's fds went (fill writes them; dispatch reads the array
	 * it is given, which the caller may have moved to grow it). */
	struct pollfd *fds;
	const struct pollfd *polled;
	unsigned first, n, max;
	int overflow;
};

static int64_t cb_clock_ns(void *opaque)
{
	(void)opaque;
	return clock_mono_ns();
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct vnet_slirp *s = opaque;
	if (len < DN_NIC_FRAME_MIN || len > DN_NIC_FRAME_MAX || s->count == QUEUE_FRAMES)
		return (ssize_t)len; /* dropped: TCP will send it again */
	struct queued_frame *q = &s->queue[(s->head + s->count) % QUEUE_FRAMES];
	q->len = (uint16_t)len;
	memcpy(q->data, buf, len);
	s->count++;
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	/* A guest sent the NAT something malformed: its problem, not the host's. */
	(void)msg;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct vnet_slirp *s = opaque;
	for (unsigned i = 0; i < TIMERS_MAX; i++)
		if (!s->timers[i].in_use) {
			s->timers[i] = (struct slirp_timer){1, id, cb_opaque, -1};
			return &s->timers[i];
		}
	return NULL;
}

static void cb_timer_free(void *timer, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct slirp_timer *)timer)->in_use = 0;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	(void)fd, (void)opaque;
}

static void cb_notify(void *opaque)
{
	(void)opaque; /* the loop polls slirp every turn */
}

static const SlirpCb callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_ns,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_register_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

static struct in_addr addr(uint32_t ip)
{
	return (struct in_addr){htonl(ip)};
}

struct vnet_slirp *vnet_slirp_create(char *err, size_t errlen)
{
	struct vnet_slirp *s = calloc(1, sizeof(*s));
	if (s)
		s->queue = calloc(QUEUE_FRAMES, sizeof(*s->queue));
	if (!s || !s->queue) {
		free(s);
		snprintf(err, errlen, "user uplink: out of memory");
		return NULL;
	}
	SlirpConfig cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.version = 4;
	cfg.in_enabled = true;
	cfg.vnetwork = addr(VNET_LAN_NET);
	cfg.vnetmask = addr(~0u << (32 - VNET_LAN_PREFIX));
	cfg.vhost = addr(VNET_LAN_GATEWAY);
	cfg.vnameserver = addr(VNET_LAN_DNS);
	cfg.vdhcp_start = addr(VNET_LAN_LAST + 1); /* DHCP unused: keep it off our addresses */
	cfg.vhostname = "denali";
	cfg.if_mtu = DN_NIC_MTU;
	cfg.if_mru = DN_NIC_MTU;
	s->slirp = slirp_new(&cfg, &callbacks, s);
	if (!s->slirp) {
		snprintf(err, errlen, "user uplink: libslirp could not start");
		free(s->queue);
		free(s);
		return NULL;
	}
	return s;
}

void vnet_slirp_destroy(struct vnet_slirp *s)
{
	if (!s)
		return;
	slirp_cleanup(s->slirp);
	free(s->queue);
	free(s);
}

/* Whether fd is a listening TCP socket bound to the forward's host address and port. */
static int is_forward_listener(int fd, const struct vnet_forward *f)
{
	int listening = 0;
	socklen_t len = sizeof(listening);
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening &&
	       getsockname(fd, (struct sockaddr *)&a, &alen) == 0 && alen == sizeof(a) &&
	       a.sin_family == AF_INET && ntohs(a.sin_port) == f->host_port &&
	       a.sin_addr.s_addr == addr(f->host_addr).s_addr;
}

/* libslirp listens for a TCP forward with a backlog of 1: clients that connect together
 * overflow the host's accept queue and the kernel drops their SYNs, each drop costing the client
 * a 1 s retry. libslirp does not say which descriptor it took, so the process's descriptors are
 * searched for the listening socket on the forward's address and port (only slirp's can be
 * bound there: the bind just succeeded), and listen() again sets a full backlog. */
static void forward_raise_backlog(const struct vnet_forward *f)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d) {
		fprintf(stderr,
			"denali-run: forward TCP port %u: listen backlog stays 1: /proc/self/fd: "
			"%s\n",
			f->host_port, strerror(errno));
		return;
	}
	int found = 0;
	for (struct dirent *e; !found && (e = readdir(d));) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || end == e->d_name || fd < 0 || fd > INT_MAX || fd == dirfd(d) ||
		    !is_forward_listener((int)fd, f))
			continue;
		found = 1;
		if (listen((int)fd, SOMAXCONN) != 0)
			fprintf(stderr,
				"denali-run: forward TCP port %u: listen backlog stays 1: %s\n",
				f->host_port, strerror(errno));
	}
	closedir(d);
}

int vnet_slirp_add_forward(struct vnet_slirp *s, const struct vnet_forward *f, uint32_t guest_ip,
			   char *err, size_t errlen)
{
	if (slirp_add_hostfwd(s->slirp, f->udp, addr(f->host_addr), f->host_port, addr(guest_ip),
			      f->guest_port) == 0) {
		if (!f->udp)
			forward_raise_backlog(f);
		return 0;
	}
	uint32_t a = f->host_addr;
	snprintf(err, errlen,
		 "cannot listen on %s port %u.%u.%u.%u:%u (in use, or not a local address?)",
		 f->udp ? "UDP" : "TCP", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255,
		 f->host_port);
	return -1;
}

void vnet_slirp_remove_forward(struct vnet_slirp *s, const struct vnet_forward *f)
{
	slirp_remove_hostfwd(s->slirp, f->udp, addr(f->host_addr), f->host_port);
}

int vnet_slirp_input(void *ctx, const uint8_t *frame, size_t len)
{
	struct vnet_slirp *s = ctx;
	if (len < DN_NIC_FRAME_MIN || len > DN_NIC_FRAME_MAX)
		return -1;
	slirp_input(s->slirp, frame, (int)len);
	return 0;
}

size_t vnet_slirp_take_frame(struct vnet_slirp *s, uint8_t *buf, size_t cap)
{
	if (!s->count)
		return 0;
	struct queued_frame *q = &s->queue[s->head];
	s->head = (s->head + 1) % QUEUE_FRAMES;
	s->count--;
	size_t len = q->len < cap ? q->len : cap;
	memcpy(buf, q->data, len);
	return len;
}

unsigned vnet_slirp_queued(const struct vnet_slirp *s)
{
	return s->count;
}

const uint8_t *vnet_slirp_peek(const struct vnet_slirp *s, unsigned i, size_t *len)
{
	if (i >= s->count)
		return NULL;
	const struct queued_frame *q = &s->queue[(s->head + i) % QUEUE_FRAMES];
	*len = q->len;
	return q->data;
}

void vnet_slirp_pop(struct vnet_slirp *s, unsigned n)
{
	if (n > s->count)
		n = s->count;
	s->head = (s->head + n) % QUEUE_FRAMES;
	s->count -= n;
}

static int add_poll(int fd, int events, void *opaque)
{
	struct vnet_slirp *s = opaque;
	if (s->first + s->n >= s->max) {
		s->overflow = 1;
		return -1; /* out of room: polled next turn */
	}
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	s->fds[s->first + s->n] = (struct pollfd){.fd = fd, .events = ev};
	return (int)s->n++;
}

static int get_revents(int idx, void *opaque)
{
	struct vnet_slirp *s = opaque;
	if (idx < 0 || (unsigned)idx >= s->n)
		return 0;
	short rev = s->polled[s->first + (unsigned)idx].revents;
	int out = 0;
	if (rev & POLLIN)
		out |= SLIRP_POLL_IN;
	if (rev & POLLOUT)
		out |= SLIRP_POLL_OUT;
	if (rev & POLLPRI)
		out |= SLIRP_POLL_PRI;
	if (rev & POLLERR)
		out |= SLIRP_POLL_ERR;
	if (rev & POLLHUP)
		out |= SLIRP_POLL_HUP;
	return out;
}

int vnet_slirp_fill(struct vnet_slirp *s, struct pollfd *fds, unsigned *n, unsigned max,
		    int *timeout_ms)
{
	s->overflow = 0;
	s->fds = fds;
	s->first = *n;
	s->n = 0;
	s->max = max;
	uint32_t t = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
	slirp_pollfds_fill(s->slirp, &t, add_poll, s);
	int64_t now = clock_mono_ms();
	for (unsigned i = 0; i < TIMERS_MAX; i++) {
		const struct slirp_timer *tm = &s->timers[i];
		if (tm->in_use && tm->expire_ms >= 0) {
			int64_t left = tm->expire_ms > now ? tm->expire_ms - now : 0;
			if ((uint64_t)left < t)
				t = (uint32_t)left;
		}
	}
	*timeout_ms = t == UINT32_MAX ? -1 : (int)(t > 1000000 ? 1000000 : t);
	*n += s->n;
	return s->overflow ? -1 : 0;
}

void vnet_slirp_dispatch(struct vnet_slirp *s, const struct pollfd *fds, int poll_failed)
{
	s->polled = fds;
	slirp_pollfds_poll(s->slirp, poll_failed, get_revents, s);
	int64_t now = clock_mono_ms();
	for (unsigned i = 0; i < TIMERS_MAX; i++) {
		struct slirp_timer *tm = &s->timers[i];
		if (tm->in_use && tm->expire_ms >= 0 && tm->expire_ms <= now) {
			tm->expire_ms = -1;
			slirp_handle_timer(s->slirp, tm->id, tm->cb_opaque);
		}
	}
}
