/* The network thread: waits for kicks from guests and for the uplinks, drains TX rings round
 * robin with a budget per port (so a flooding guest cannot starve the others), and tells
 * guests about received frames by raising DN_EV_NET (waking them only if they idle). A
 * sleeping guest has no window, kick or wake fd here: the switch holds its frames, and the
 * first one queues it for the supervisor to wake. */
#include "vnet.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sandbox.h"
#include "vnet_nat.h"
#include "vnet_tap.h"

#define TX_BUDGET 32u /* frames per port per turn */
#define EPOLL_BATCH 256
#define POLL_MIN 64u /* the taps, epoll, the control fd, the NAT's socket and pidfd */
#define TAPS_MAX (VNET_UPLINKS_MAX - 1u) /* uplink 0 is the user NAT */
/* While a woken guest's RX ring has not taken all that was held for it, the thread looks again
 * this often: a guest gives its buffers back without a kick. */
#define BACKLOG_POLL_MS 5

struct vnet_guest {
	int port;	      /* -1: not attached */
	int kick_fd, wake_fd; /* -1 while asleep */
	uint8_t *win;	      /* NULL while asleep */
	int asleep;	      /* its port stays, without window or fds */
	int queued;	      /* in the run queue (the entry outlives a detach, and is skipped) */
	int wake_queued;      /* in the wake queue (likewise) */
	int faulted;	      /* stopped for ring errors: no more processing */
	int fault_unreported;
	int throttled;		      /* on the throttled list: its TX waits for its rate limit */
	struct vnet_port_config *cfg; /* its own copy (vnet_add_port); NULL: it has no NIC */
	char *source;		      /* its service file, for messages (vnet_open_nat) */
};

struct vnet_tap_uplink {
	char name[16];
	int fd;
	int port;
};

struct vnet {
	pthread_mutex_t lock;
	pthread_cond_t callers_out; /* a caller of the API let go of the lock */
	unsigned callers;	    /* callers waiting for the lock (atomic) */
	uint64_t steps;		    /* ports the thread served (atomic): what a caller waits for */
	uint64_t wait_max;	    /* the most steps a caller waited (under the lock) */
	pthread_t thread;
	int thread_started;
	int stop;
	int epfd, ctl_fd, fault_fd;
	int wakes_fd; /* readable when the wake queue has services */
	struct vnet_switch sw;
	struct vnet_guest *guests; /* by service, cap of them (grown by vnet_add_port) */
	unsigned cap;
	unsigned *runq; /* services with TX work, a ring of cap */
	unsigned runq_head, runq_len;
	unsigned *wakeq; /* sleeping services a frame came for, a ring of cap */
	unsigned wakeq_head, wakeq_len;
	unsigned *dirty;     /* scratch for vnet_switch_take_dirty */
	unsigned *throttled; /* services whose TX waits for its rate limit, each once */
	unsigned nthrottled;
	struct nat_launcher *launcher; /* the supervisor's, from vnet_start (nat_launcher.h) */
	struct vnet_nat *nat;	       /* the user uplink's NAT process (vnet_nat.c) */
	int nat_port;
	struct vnet_tap_uplink taps[TAPS_MAX];
	unsigned ntaps;
	unsigned nfaults; /* guests with fault_unreported set */
};

/* Why the API's callers and the thread do not share the lock as a plain mutex: the thread
 * lets go of it only for an instant between turns, and while guests keep it busy (a full TX
 * ring every turn is legitimate) it would take it back turn after turn: a mutex is not fair.
 * The supervisor's main loop, which takes it for stats, metrics, attach, sleep, wake and
 * start, would wait for as long as the guests liked. So a caller says it is waiting, and the
 * thread gives way at its next step (one port's TX budget, each frame bounded by the RX
 * budget): the main loop never waits for more than one step of guest-driven work. */
static void caller_lock(struct vnet *vn)
{
	__atomic_add_fetch(&vn->callers, 1, __ATOMIC_SEQ_CST);
	uint64_t since = __atomic_load_n(&vn->steps, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vn->lock);
	__atomic_sub_fetch(&vn->callers, 1, __ATOMIC_SEQ_CST);
	uint64_t waited = __atomic_load_n(&vn->steps, __ATOMIC_RELAXED) - since;
	if (waited > vn->wait_max)
		vn->wait_max = waited;
}

static void caller_unlock(struct vnet *vn)
{
	/* Frames for the NAT the call sent (a sleep's last ones) go now, not at the next turn. */
	if (vn->nat)
		vnet_nat_flush(vn->nat);
	pthread_cond_broadcast(&vn->callers_out);
	pthread_mutex_unlock(&vn->lock);
}

/* The thread, holding the lock between steps: lets every waiting caller in first. */
static void give_way(struct vnet *vn)
{
	while (__atomic_load_n(&vn->callers, __ATOMIC_SEQ_CST))
		pthread_cond_wait(&vn->callers_out, &vn->lock);
}

static void runq_push(struct vnet *vn, unsigned service)
{
	struct vnet_guest *g = &vn->guests[service];
	if (g->queued || g->faulted || g->port < 0 || g->asleep)
		return;
	g->queued = 1;
	vn->runq[(vn->runq_head + vn->runq_len++) % vn->cap] = service;
}

static int uplink_of(struct vnet *vn, const struct vnet_port_config *net)
{
	if (net->uplink == VNET_UPLINK_USER)
		return 0;
	if (net->uplink == VNET_UPLINK_TAP)
		for (unsigned t = 0; t < vn->ntaps; t++)
			if (strcmp(vn->taps[t].name, net->tap) == 0)
				return 1 + (int)t;
	return VNET_NO_UPLINK;
}

/* A guest broke its rings too often: stop serving it and let the supervisor stop it. */
static void fault(struct vnet *vn, unsigned service)
{
	struct vnet_guest *g = &vn->guests[service];
	g->faulted = 1;
	g->fault_unreported = 1;
	vn->nfaults++;
	epoll_ctl(vn->epfd, EPOLL_CTL_DEL, g->kick_fd, NULL);
	uint64_t one = 1;
	if (write(vn->fault_fd, &one, sizeof(one)) < 0)
		perror("denali-run: network: eventfd");
}

static void raise_net(struct vnet_guest *g)
{
	if (!g->win)
		return; /* asleep: it looks at its rings when it wakes */
	struct dn_vregs *vr = (struct dn_vregs *)(g->win + DN_IOWIN_VREGS);
	uint64_t old = __atomic_fetch_or(&vr->pending, DN_EV_NET, __ATOMIC_SEQ_CST);
	if (old & DN_EV_NET)
		return; /* already pending: the guest has not looked yet */
	uint64_t one = 1;
	if (write(g->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("denali-run: network: wake");
}

static void drain_runq(struct vnet *vn)
{
	unsigned n = vn->runq_len; /* one turn: ports queued again go to the next */
	for (unsigned i = 0; i < n; i++) {
		give_way(vn); /* it may detach, sleep or add ports: each is taken afresh */
		unsigned service = vn->runq[vn->runq_head];
		vn->runq_head = (vn->runq_head + 1) % vn->cap;
		vn->runq_len--;
		struct vnet_guest *g = &vn->guests[service];
		g->queued = 0;
		if (g->port < 0 || g->faulted || g->asleep)
			continue;
		struct vnet_port *port = &vn->sw.ports[g->port];
		int was_full = vnet_ring_tx_full(&port->ring), more;
		vnet_switch_drain_tx(&vn->sw, (unsigned)g->port, TX_BUDGET, &more);
		__atomic_add_fetch(&vn->steps, 1, __ATOMIC_SEQ_CST);
		if (vnet_ring_broken(&port->ring)) {
			fault(vn, service);
			continue;
		}
		if (was_full)
			raise_net(g); /* it may be waiting for TX buffers */
		if (more)
			runq_push(vn, service);
		else if (port->tx_ready_at && !g->throttled) {
			g->throttled = 1; /* revisited when its tokens are back: see next_refill */
			vn->throttled[vn->nthrottled++] = service;
		}
	}
}

/* Queues the throttled services whose limit has tokens again by now, and returns how many ms
 * until the next one's (rounded up, so the thread never wakes early and spins), or -1 if
 * none waits. Detached, asleep or faulted services leave the list. */
static int next_refill(struct vnet *vn)
{
	uint64_t now = vn->sw.clock(), next = UINT64_MAX;
	for (unsigned i = 0; i < vn->nthrottled;) {
		unsigned service = vn->throttled[i];
		struct vnet_guest *g = &vn->guests[service];
		uint64_t at = g->port >= 0 && !g->asleep && !g->faulted
				      ? vn->sw.ports[g->port].tx_ready_at
				      : 0;
		if (at && at > now) {
			next = at < next ? at : next;
			i++;
			continue;
		}
		g->throttled = 0;
		vn->throttled[i] = vn->throttled[--vn->nthrottled];
		if (at)
			runq_push(vn, service);
	}
	if (next == UINT64_MAX)
		return -1;
	uint64_t ms = (next - now + 999999) / 1000000;
	return ms > 1000 ? 1000 : (int)ms;
}

/* A frame from the NAT process (its length checked: nat_msg_parse) into the switch. */
static void from_nat(void *ctx, const uint8_t *frame, size_t len)
{
	struct vnet *vn = ctx;
	struct vnet_frame f;
	vnet_frame_init(&f, frame, (uint16_t)len);
	vnet_switch_forward(&vn->sw, (unsigned)vn->nat_port, &f);
}

static void read_tap(struct vnet *vn, struct vnet_tap_uplink *t)
{
	uint8_t buf[65536];
	for (unsigned i = 0; i < TX_BUDGET; i++) {
		ssize_t len = read(t->fd, buf, sizeof(buf));
		if (len < 0)
			return;
		if (len < (ssize_t)DN_NIC_FRAME_MIN || len > (ssize_t)DN_NIC_FRAME_MAX)
			continue; /* too big for the LAN's MTU */
		struct vnet_frame f;
		vnet_frame_init(&f, buf, (uint16_t)len);
		vnet_switch_forward(&vn->sw, (unsigned)t->port, &f);
	}
}

static void wake_receivers(struct vnet *vn)
{
	unsigned n = vnet_switch_take_dirty(&vn->sw, vn->dirty);
	for (unsigned i = 0; i < n; i++) {
		const struct vnet_port *port = &vn->sw.ports[vn->dirty[i]];
		struct vnet_guest *g = &vn->guests[port->service];
		if (g->faulted || g->asleep)
			continue;
		if (vnet_ring_broken(&port->ring))
			fault(vn, port->service); /* broke its RX ring too often */
		else
			raise_net(g);
	}
}

/* Guests whose TX waited for a sleeping port that woke (or went): drain their rings again. */
static void requeue_ready(struct vnet *vn)
{
	unsigned n = vnet_switch_take_ready(&vn->sw, vn->dirty);
	for (unsigned i = 0; i < n; i++)
		runq_push(vn, vn->sw.ports[vn->dirty[i]].service);
}

/* Sleeping ports a frame came for: queue their services for the supervisor, each once. */
static void report_wakes(struct vnet *vn)
{
	unsigned n = vnet_switch_take_wakes(&vn->sw, vn->dirty), queued = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned service = vn->sw.ports[vn->dirty[i]].service;
		struct vnet_guest *g = &vn->guests[service];
		if (g->wake_queued)
			continue;
		g->wake_queued = 1;
		vn->wakeq[(vn->wakeq_head + vn->wakeq_len++) % vn->cap] = service;
		queued++;
	}
	uint64_t one = 1;
	if (queued && write(vn->wakes_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("denali-run: network: eventfd");
}

static void take_kicks(struct vnet *vn)
{
	struct epoll_event ev[EPOLL_BATCH];
	int n = epoll_wait(vn->epfd, ev, EPOLL_BATCH, 0);
	for (int i = 0; i < n; i++) {
		unsigned service = ev[i].data.u32;
		struct vnet_guest *g = &vn->guests[service];
		uint64_t count;
		if (g->port < 0 || g->asleep)
			continue; /* its kick fd is gone */
		if (read(g->kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			continue;
		runq_push(vn, service);
	}
}

static void *vnet_thread(void *arg)
{
	struct vnet *vn = arg;
	/* Sealed before its first frame or outside byte; privileges and Landlock (src/sandbox)
	 * come just before this. Stacked on the supervisor's filter if that one came first. */
	sandbox_seal_or_exit(SANDBOX_NET);
	unsigned cap = POLL_MIN;
	struct pollfd *fds = calloc(cap, sizeof(*fds));
	if (!fds) {
		perror("denali-run: network");
		return NULL;
	}
	for (;;) {
		unsigned n = 0;
		pthread_mutex_lock(&vn->lock);
		give_way(vn);
		if (vn->stop) {
			pthread_mutex_unlock(&vn->lock);
			break;
		}
		/* Under the lock: a started service may add a TAP uplink. */
		unsigned ntaps = vn->ntaps;
		fds[n++] = (struct pollfd){.fd = vn->epfd, .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = vn->ctl_fd, .events = POLLIN};
		for (unsigned t = 0; t < ntaps; t++)
			fds[n++] = (struct pollfd){.fd = vn->taps[t].fd, .events = POLLIN};
		int refill = next_refill(vn);
		int timeout = vn->runq_len ? 0 : vn->sw.nbacklog ? BACKLOG_POLL_MS : -1;
		if (refill >= 0 && (timeout < 0 || refill < timeout))
			timeout = refill;
		int nat_polled = vn->nat != NULL; /* a start may create it meanwhile */
		if (vn->nat && vnet_nat_fill(vn->nat, fds, &n, cap, &timeout) != 0) {
			/* More TAPs than room: grow, and poll the NAT next turn. */
			struct pollfd *bigger = realloc(fds, 2 * cap * sizeof(*fds));
			if (bigger) {
				fds = bigger;
				cap *= 2;
			}
			timeout = 0;
		}
		pthread_mutex_unlock(&vn->lock);
		if (poll(fds, n, timeout) < 0 && errno != EINTR)
			perror("denali-run: network: poll");
		pthread_mutex_lock(&vn->lock);
		give_way(vn);
		if (fds[1].revents & POLLIN) {
			uint64_t v;
			if (read(vn->ctl_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				perror("denali-run: network: control");
		}
		/* No kick waits unless epoll's fd is readable: a turn for the NAT's or a TAP's
		 * frames saves the call (its kicks are level-triggered, so none is lost). */
		if (fds[0].revents & POLLIN)
			take_kicks(vn);
		next_refill(vn); /* those whose tokens came back while it polled */
		drain_runq(vn);
		for (unsigned t = 0; t < ntaps; t++)
			if (fds[2 + t].revents & POLLIN)
				read_tap(vn, &vn->taps[t]);
		if (nat_polled)
			vnet_nat_dispatch(vn->nat, fds);
		vnet_switch_flush_backlog(&vn->sw);
		requeue_ready(vn);
		wake_receivers(vn);
		report_wakes(vn);
		if (vn->nat)
			vnet_nat_flush(vn->nat); /* one sendmmsg for the turn's frames */
		pthread_mutex_unlock(&vn->lock);
	}
	free(fds);
	return NULL;
}

/* The user uplink's NAT process, started through the launcher on first use, and a port's host
 * forwards (source: its service file, for messages). Only once vnet_open_nat gave the
 * launcher: the NAT runs with the rights left after the drop. 0, or -1 with err set (forwards
 * it published are withdrawn). */
static int open_nat(struct vnet *vn, const struct vnet_port_config *net, const char *source,
		    char *err, size_t errlen)
{
	if (net->uplink != VNET_UPLINK_USER)
		return 0;
	if (!vn->nat) {
		if (!vn->launcher) {
			snprintf(err, errlen, "user uplink: the NAT launcher is not running");
			return -1;
		}
		struct vnet_nat *nat = vnet_nat_create(vn->launcher, from_nat, vn, err, errlen);
		if (!nat)
			return -1;
		vn->nat_port = vnet_switch_add_uplink(&vn->sw, 0, vnet_nat_send, nat);
		if (vn->nat_port < 0) {
			vnet_nat_destroy(nat);
			snprintf(err, errlen, "network: out of memory");
			return -1;
		}
		/* It delivers nothing before a forward's wait, or before the thread polls it. */
		vn->nat = nat;
	}
	for (unsigned f = 0; f < net->nforward; f++) {
		char why[256];
		if (vnet_nat_add_forward(vn->nat, &net->forward[f], net->ip, why, sizeof(why)) !=
		    0) {
			snprintf(err, errlen, "%s: key \"net.forward\": %s", source, why);
			while (f--)
				vnet_nat_remove_forward(vn->nat, &net->forward[f]);
			return -1;
		}
	}
	return 0;
}

/* The TAP uplink a port needs (opened on first use: while the monitor may still be root).
 * Returns 0, or -1 with err set. */
static int open_tap(struct vnet *vn, const struct vnet_port_config *net, char *err, size_t errlen)
{
	if (net->uplink == VNET_UPLINK_TAP && uplink_of(vn, net) == VNET_NO_UPLINK) {
		if (vn->ntaps == TAPS_MAX) {
			snprintf(err, errlen, "more than %u TAP uplinks", TAPS_MAX);
			return -1;
		}
		struct vnet_tap_uplink *t = &vn->taps[vn->ntaps];
		snprintf(t->name, sizeof(t->name), "%s", net->tap);
		t->fd = vnet_tap_open(net->tap, err, errlen);
		if (t->fd < 0)
			return -1;
		t->port = vnet_switch_add_uplink(&vn->sw, (int)vn->ntaps + 1, vnet_tap_send,
						 (void *)(intptr_t)t->fd);
		if (t->port < 0) {
			close(t->fd);
			snprintf(err, errlen, "network: out of memory");
			return -1;
		}
		vn->ntaps++;
	}
	return 0;
}

/* Makes room for services below count (their rings keep their order). 0, or -1 (ENOMEM). */
static int grow(struct vnet *vn, unsigned count)
{
	if (count <= vn->cap)
		return 0;
	unsigned cap = vn->cap ? vn->cap : 16;
	while (cap < count)
		cap *= 2;
	struct vnet_guest *guests = realloc(vn->guests, cap * sizeof(*guests));
	if (guests)
		vn->guests = guests;
	unsigned *runq = malloc(cap * sizeof(*runq)), *wakeq = malloc(cap * sizeof(*wakeq));
	unsigned *throttled = realloc(vn->throttled, cap * sizeof(*throttled));
	if (throttled)
		vn->throttled = throttled;
	if (!guests || !runq || !wakeq || !throttled) {
		free(runq);
		free(wakeq);
		return -1;
	}
	for (unsigned i = vn->cap; i < cap; i++)
		guests[i] = (struct vnet_guest){.port = -1, .kick_fd = -1, .wake_fd = -1};
	for (unsigned k = 0; k < vn->runq_len; k++)
		runq[k] = vn->runq[(vn->runq_head + k) % vn->cap];
	for (unsigned k = 0; k < vn->wakeq_len; k++)
		wakeq[k] = vn->wakeq[(vn->wakeq_head + k) % vn->cap];
	free(vn->runq);
	free(vn->wakeq);
	vn->runq = runq;
	vn->wakeq = wakeq;
	vn->runq_head = vn->wakeq_head = 0;
	vn->cap = cap;
	return 0;
}

struct vnet *vnet_create(char *err, size_t errlen)
{
	struct vnet *vn = calloc(1, sizeof(*vn));
	if (!vn) {
		snprintf(err, errlen, "network: out of memory");
		return NULL;
	}
	vn->epfd = vn->ctl_fd = vn->fault_fd = vn->wakes_fd = -1;
	pthread_mutex_init(&vn->lock, NULL);
	pthread_cond_init(&vn->callers_out, NULL);
	vn->epfd = epoll_create1(EPOLL_CLOEXEC);
	vn->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vn->fault_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vn->wakes_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vn->epfd < 0 || vn->ctl_fd < 0 || vn->fault_fd < 0 || vn->wakes_fd < 0 ||
	    vnet_switch_init(&vn->sw) != 0) {
		snprintf(err, errlen, "network: %s", strerror(errno ? errno : ENOMEM));
		vnet_destroy(vn);
		return NULL;
	}
	return vn;
}

int vnet_open_nat(struct vnet *vn, struct nat_launcher *launcher, char *err, size_t errlen)
{
	vn->launcher = launcher;
	for (unsigned i = 0; i < vn->cap; i++)
		if (vn->guests[i].cfg &&
		    open_nat(vn, vn->guests[i].cfg, vn->guests[i].source, err, errlen) != 0)
			return -1;
	return 0;
}

int vnet_start(struct vnet *vn, char *err, size_t errlen)
{
	/* The thread must not take the signals the supervisor reads from its signalfd. */
	sigset_t all, old;
	sigfillset(&all);
	sigdelset(&all, SIGBUS); /* its copies into guest windows recover from SIGBUS */
	sigdelset(&all, SIGSEGV);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&vn->thread, NULL, vnet_thread, vn);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "network: cannot start its thread: %s", strerror(rc));
		return -1;
	}
	vn->thread_started = 1;
	return 0;
}

static void poke(struct vnet *vn)
{
	uint64_t one = 1;
	if (write(vn->ctl_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("denali-run: network: control");
}

int vnet_add_port(struct vnet *vn, unsigned service, const struct vnet_port_config *pc, char *err,
		  size_t errlen)
{
	caller_lock(vn);
	int rc = grow(vn, service + 1);
	struct vnet_port_config *copy = rc == 0 ? malloc(sizeof(*copy)) : NULL;
	if (!copy) {
		snprintf(err, errlen, "network: out of memory");
		rc = -1;
	} else if (vn->guests[service].cfg) {
		snprintf(err, errlen, "network: service %u added twice", service);
		rc = -1;
	} else {
		rc = open_tap(vn, pc, err, errlen);
		/* The user uplink waits for the launcher (vnet_open_nat) while the fleet is set up;
		 * a port added later gets it at once. */
		if (rc == 0 && vn->launcher)
			rc = open_nat(vn, pc, pc->source, err, errlen);
	}
	char *source = rc == 0 ? strdup(pc->source ? pc->source : "") : NULL;
	if (rc == 0 && !source) {
		snprintf(err, errlen, "network: out of memory");
		rc = -1;
	}
	if (rc == 0) {
		*copy = *pc;
		copy->source = NULL; /* the caller's: vnet keeps its own (source below) */
		vn->guests[service].cfg = copy;
		vn->guests[service].source = source;
	} else {
		free(copy);
	}
	caller_unlock(vn);
	poke(vn); /* a new TAP uplink to poll */
	return rc;
}

void vnet_fork_prepare(struct vnet *vn)
{
	if (vn)
		caller_lock(vn);
}

void vnet_fork_done(struct vnet *vn)
{
	if (vn)
		caller_unlock(vn);
}

void vnet_destroy(struct vnet *vn)
{
	if (!vn)
		return;
	if (vn->thread_started) {
		caller_lock(vn);
		vn->stop = 1;
		caller_unlock(vn);
		poke(vn);
		pthread_join(vn->thread, NULL);
	}
	for (unsigned i = 0; vn->guests && i < vn->cap; i++) {
		vnet_detach(vn, i, NULL);
		free(vn->guests[i].cfg);
		free(vn->guests[i].source);
	}
	vnet_nat_destroy(vn->nat);
	for (unsigned t = 0; t < vn->ntaps; t++)
		close(vn->taps[t].fd);
	vnet_switch_free(&vn->sw);
	if (vn->epfd >= 0)
		close(vn->epfd);
	if (vn->ctl_fd >= 0)
		close(vn->ctl_fd);
	if (vn->fault_fd >= 0)
		close(vn->fault_fd);
	if (vn->wakes_fd >= 0)
		close(vn->wakes_fd);
	pthread_mutex_destroy(&vn->lock);
	pthread_cond_destroy(&vn->callers_out);
	free(vn->guests);
	free(vn->runq);
	free(vn->wakeq);
	free(vn->throttled);
	free(vn->dirty);
	free(vn);
}

/* Adds a new port for service over win and watches its kick fd. Returns 0, or -1 with err
 * set (nothing added). */
static int connect_port(struct vnet *vn, unsigned service, uint8_t *win, int kick_fd, char *err,
			size_t errlen)
{
	const struct vnet_port_config *cfg = vn->guests[service].cfg;
	int port =
		vnet_switch_add_guest(&vn->sw, service, cfg->mac, cfg->ip, uplink_of(vn, cfg), win);
	unsigned *dirty = port >= 0 ? realloc(vn->dirty, vn->sw.cap * sizeof(*dirty)) : NULL;
	if (dirty)
		vn->dirty = dirty;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = service};
	if (!dirty || epoll_ctl(vn->epfd, EPOLL_CTL_ADD, kick_fd, &ev) != 0) {
		int e = errno;
		if (port >= 0)
			vnet_switch_remove(&vn->sw, (unsigned)port);
		snprintf(err, errlen, "network: cannot connect %s: %s", cfg->name,
			 port < 0 ? "out of memory" : strerror(e));
		return -1;
	}
	vn->guests[service].port = port;
	vnet_switch_set_limits(&vn->sw, (unsigned)port, &cfg->rx_limit, &cfg->tx_limit);
	return 0;
}

/* Wakes service's sleeping port over win: watches its kick fd again, and gives it the frames
 * held meanwhile. Returns 0, or -1 with err set (it sleeps on, its frames still held). */
static int wake_port(struct vnet *vn, unsigned service, uint8_t *win, int kick_fd, char *err,
		     size_t errlen)
{
	struct vnet_guest *g = &vn->guests[service];
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = service};
	if (!g->faulted && epoll_ctl(vn->epfd, EPOLL_CTL_ADD, kick_fd, &ev) != 0) {
		snprintf(err, errlen, "network: cannot connect %s: %s", g->cfg->name,
			 strerror(errno));
		return -1;
	}
	g->asleep = 0;
	vnet_switch_wake(&vn->sw, (unsigned)g->port, win);
	requeue_ready(vn); /* the senders that waited for its room */
	return 0;
}

int vnet_attach(struct vnet *vn, unsigned service, int mem_fd, int kick_fd, int wake_fd, char *err,
		size_t errlen)
{
	/* Only the caller adds ports and grows guests: they are read here without the lock. */
	const struct vnet_port_config *cfg = service < vn->cap ? vn->guests[service].cfg : NULL;
	if (!cfg) {
		snprintf(err, errlen, "network: unexpected NIC for service %u", service);
		goto fail;
	}
	uint8_t *win =
		mmap(NULL, DN_IOWIN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mem_fd, DN_GPA_IOWIN);
	if (win == MAP_FAILED) {
		snprintf(err, errlen, "network: cannot map the I/O window of %s: %s", cfg->name,
			 strerror(errno));
		goto fail;
	}
	/* A cell forked later (start) must not hold other services' windows. */
	madvise(win, DN_IOWIN_SIZE, MADV_DONTFORK);
	caller_lock(vn);
	struct vnet_guest *g = &vn->guests[service];
	int rc = -1, woke = g->port >= 0 && g->asleep;
	if (g->port < 0)
		rc = connect_port(vn, service, win, kick_fd, err, errlen);
	else if (woke)
		rc = wake_port(vn, service, win, kick_fd, err, errlen);
	else
		snprintf(err, errlen, "network: unexpected NIC for service %u", service);
	if (rc != 0) {
		caller_unlock(vn);
		munmap(win, DN_IOWIN_SIZE);
		goto fail;
	}
	g->kick_fd = kick_fd;
	g->wake_fd = wake_fd;
	g->win = win;
	if (woke)
		raise_net(g);	/* it looks at its rings once: what was held is there */
	runq_push(vn, service); /* it may have queued frames before it was connected */
	caller_unlock(vn);
	poke(vn);
	return 0;
fail:
	close(kick_fd);
	close(wake_fd);
	return -1;
}

/* Sends what the guest queued before it stopped, one ring's worth at most: a guest that is
 * still running cannot keep the switch busy. */
static void send_last(struct vnet *vn, unsigned service)
{
	unsigned port = (unsigned)vn->guests[service].port;
	int more = 1;
	for (unsigned done = 0; more && done < DN_NIC_RING_SIZE;)
		done += vnet_switch_drain_tx(&vn->sw, port, DN_NIC_RING_SIZE - done, &more);
	if (vnet_ring_broken(&vn->sw.ports[port].ring))
		fault(vn, service);
}

int vnet_sleep(struct vnet *vn, unsigned service)
{
	if (service >= vn->cap)
		return -1;
	caller_lock(vn);
	struct vnet_guest *g = &vn->guests[service];
	if (g->port < 0 || g->asleep) {
		caller_unlock(vn);
		return -1;
	}
	if (!g->faulted)
		send_last(vn, service);
	vnet_switch_flush_backlog(&vn->sw); /* what it still holds: then it has work, and stays */
	wake_receivers(vn); /* now, while its own window is still mapped: it may be one */
	epoll_ctl(vn->epfd, EPOLL_CTL_DEL, g->kick_fd, NULL);
	vnet_switch_sleep(&vn->sw, (unsigned)g->port);
	munmap(g->win, DN_IOWIN_SIZE);
	close(g->kick_fd);
	close(g->wake_fd);
	g->win = NULL;
	g->kick_fd = g->wake_fd = -1;
	g->asleep = 1;
	report_wakes(vn); /* its last frames may have been for other sleepers */
	caller_unlock(vn);
	return 0;
}

int vnet_counters(struct vnet *vn, unsigned service, struct vnet_port_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (service >= vn->cap)
		return -1;
	caller_lock(vn);
	const struct vnet_guest *g = &vn->guests[service];
	int attached = g->port >= 0;
	if (attached)
		*out = vnet_switch_counters(&vn->sw, (unsigned)g->port);
	caller_unlock(vn);
	return attached ? 0 : -1;
}

void vnet_detach(struct vnet *vn, unsigned service, struct vnet_port_counters *out)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (service >= vn->cap)
		return;
	caller_lock(vn);
	struct vnet_guest *g = &vn->guests[service];
	if (g->port < 0) {
		caller_unlock(vn);
		return;
	}
	if (out)
		*out = vnet_switch_counters(&vn->sw, (unsigned)g->port);
	vnet_switch_remove(&vn->sw, (unsigned)g->port); /* frees what it held */
	requeue_ready(vn);				/* the senders that waited for it */
	if (!g->asleep) {
		epoll_ctl(vn->epfd, EPOLL_CTL_DEL, g->kick_fd, NULL);
		munmap(g->win, DN_IOWIN_SIZE);
		close(g->kick_fd);
		close(g->wake_fd);
	}
	if (g->fault_unreported)
		vn->nfaults--;
	/* Its queue entries stay until they are taken, and are skipped then. */
	*g = (struct vnet_guest){.port = -1,
				 .kick_fd = -1,
				 .wake_fd = -1,
				 .queued = g->queued,
				 .wake_queued = g->wake_queued,
				 .throttled = g->throttled,
				 .cfg = g->cfg,
				 .source = g->source};
	caller_unlock(vn);
}

int vnet_fault_fd(const struct vnet *vn)
{
	return vn->fault_fd;
}

int vnet_take_fault(struct vnet *vn, unsigned *service, char *reason, size_t reasonlen)
{
	uint64_t v;
	if (read(vn->fault_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		perror("denali-run: network: fault");
	caller_lock(vn);
	int got = 0;
	for (unsigned i = 0; vn->nfaults && i < vn->cap && !got; i++) {
		struct vnet_guest *g = &vn->guests[i];
		if (!g->fault_unreported || g->port < 0)
			continue;
		const struct vnet_ring *r = &vn->sw.ports[g->port].ring;
		snprintf(reason, reasonlen, "virtual NIC: %llu ring errors (the last: %s)",
			 (unsigned long long)r->errors, r->last_error);
		g->fault_unreported = 0;
		vn->nfaults--;
		*service = i;
		got = 1;
	}
	caller_unlock(vn);
	return got;
}

int vnet_wake_fd(const struct vnet *vn)
{
	return vn->wakes_fd;
}

int vnet_take_wake(struct vnet *vn, unsigned *service)
{
	uint64_t v;
	if (read(vn->wakes_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		perror("denali-run: network: wake");
	caller_lock(vn);
	int got = 0;
	while (vn->wakeq_len && !got) {
		unsigned s = vn->wakeq[vn->wakeq_head];
		vn->wakeq_head = (vn->wakeq_head + 1) % vn->cap;
		vn->wakeq_len--;
		struct vnet_guest *g = &vn->guests[s];
		g->wake_queued = 0;
		if (g->port >= 0 && g->asleep) { /* else: awake again, or gone */
			*service = s;
			got = 1;
		}
	}
	caller_unlock(vn);
	return got;
}

uint64_t vnet_caller_wait_max(struct vnet *vn)
{
	caller_lock(vn);
	uint64_t max = vn->wait_max;
	caller_unlock(vn);
	return max;
}

int vnet_nat_stats(struct vnet *vn, struct vnet_nat_counters *out)
{
	memset(out, 0, sizeof(*out));
	caller_lock(vn);
	int has = vn->nat != NULL;
	if (has)
		vnet_nat_counters(vn->nat, out);
	caller_unlock(vn);
	return has ? 0 : -1;
}
