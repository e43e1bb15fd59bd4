/* The supervisor's side of the NAT process: asking the launcher for one (nat_launcher.c), the
 * batches of frames both ways, the forwards it must publish, and its replacement when it
 * dies. */
#include "vnet_nat.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "nat_launcher.h"
#include "nat_proto.h"
#include "vnet_sanitize.h"

#define NAT_SOCK_BUF (1 << 20)	   /* asked for each way; the kernel caps it (wmem_max) */
#define FORWARD_WAIT_MS 5000	   /* a forward's answer */
#define RX_BATCHES 4u		   /* batches taken from the NAT per turn */
#define QUICK_DEATH_MS 10000	   /* a NAT that dies sooner after its start is restarted later */
#define RESTART_DELAY_MIN_MS 250   /* after one quick death */
#define RESTART_DELAY_MAX_MS 30000 /* doubling up to this while it keeps dying quickly */
#define ENDED_WAIT_MS 5000	   /* the launcher's word on how a NAT process ended */

struct vnet_nat {
	struct nat_launcher *launcher;
	vnet_nat_deliver_fn deliver;
	void *ctx;
	int sock, pidfd;     /* -1 while down */
	pid_t pid;	     /* 0 while down */
	unsigned generation; /* of the process now: fill's fds are for this one only */
	unsigned polled_at, polled_gen;
	int polled;
	int64_t started_ms, restart_at_ms;
	unsigned delay_ms;
	uint32_t seq;
	struct nat_forward *fwds; /* the forwards to publish, each with the seq of its last ask */
	unsigned nfwds, capfwds;
	time_t last_complaint;
	struct vnet_nat_counters count;
	unsigned nbatch;
	uint16_t blen[NAT_BATCH];
	uint8_t batch[NAT_BATCH][DN_NIC_FRAME_MAX];
	struct nat_rx rx;
};

/* Starts a NAT process through the launcher, which reaps it; its pidfd tells this side when it
 * ends. 0, or -1 with err. */
static int spawn(struct vnet_nat *n, char *err, size_t errlen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
		snprintf(err, errlen, "user uplink: socketpair: %s", strerror(errno));
		return -1;
	}
	int size = NAT_SOCK_BUF;
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	pid_t pid = 0;
	char why[160];
	int pidfd = nat_launcher_spawn(n->launcher, sv[1], &pid, why, sizeof(why));
	close(sv[1]);
	if (pidfd < 0) {
		close(sv[0]);
		snprintf(err, errlen, "user uplink: cannot start the NAT process: %s", why);
		return -1;
	}
	n->sock = sv[0];
	n->pidfd = pidfd;
	n->pid = pid;
	n->generation++;
	n->started_ms = clock_mono_ms();
	return 0;
}

/* Its exit, in words (waitid's code and status, as the launcher saw them). */
static void describe_exit(int code, int status, char *out, size_t outlen)
{
	if (code == CLD_EXITED)
		snprintf(out, outlen, "exited with status %d", status);
	else if ((code == CLD_KILLED || code == CLD_DUMPED) && status > 0 && status < NSIG)
		snprintf(out, outlen, "was killed by signal %d (%s)", status, strsignal(status));
	else
		snprintf(out, outlen, "ended");
}

/* The NAT process is gone, or must go (why, when it may still run): kill it, reap it, say
 * so, and time its restart. */
static void lost(struct vnet_nat *n, const char *why)
{
	if (!n->pid)
		return;
	syscall(SYS_pidfd_send_signal, n->pidfd, SIGKILL, NULL, 0);
	int code = 0, status = 0;
	int told = nat_launcher_ended(n->launcher, n->pid, ENDED_WAIT_MS, &code, &status) == 0;
	char how[128];
	if (why)
		snprintf(how, sizeof(how), "%s: killed", why);
	else if (told)
		describe_exit(code, status, how, sizeof(how));
	else
		snprintf(how, sizeof(how), "died (no word from its launcher on how)");
	int64_t now = clock_mono_ms();
	if (now - n->started_ms >= QUICK_DEATH_MS)
		n->delay_ms = 0;
	else if (n->delay_ms < RESTART_DELAY_MIN_MS)
		n->delay_ms = RESTART_DELAY_MIN_MS;
	else if (n->delay_ms < RESTART_DELAY_MAX_MS / 2)
		n->delay_ms *= 2;
	else
		n->delay_ms = RESTART_DELAY_MAX_MS;
	n->restart_at_ms = now + n->delay_ms;
	if (nat_launcher_gone(n->launcher))
		fprintf(stderr,
			"denali-run: the NAT process (pid %d) %s; connections through the user "
			"uplink are reset; its launcher is gone: the user uplink stays down\n",
			(int)n->pid, how);
	else
		fprintf(stderr,
			"denali-run: the NAT process (pid %d) %s; connections through the user "
			"uplink are reset; restarting it in %.2f s\n",
			(int)n->pid, how, n->delay_ms / 1000.0);
	close(n->sock);
	close(n->pidfd);
	n->sock = n->pidfd = -1;
	n->pid = 0;
	n->count.tx_dropped += n->nbatch;
	n->nbatch = 0;
}

static void complain(struct vnet_nat *n, const char *why)
{
	n->count.rx_malformed++;
	time_t now = time(NULL);
	if (now == n->last_complaint)
		return;
	n->last_complaint = now;
	fprintf(stderr, "denali-run: the NAT process sent %s: dropped\n", why);
}

static struct nat_forward *kept_by_seq(struct vnet_nat *n, uint32_t seq)
{
	for (unsigned i = 0; i < n->nfwds; i++)
		if (n->fwds[i].seq == seq)
			return &n->fwds[i];
	return NULL;
}

static const char *forward_str(const struct nat_forward *f, char *out, size_t outlen)
{
	uint32_t a = f->host_addr;
	snprintf(out, outlen, "%s port %u.%u.%u.%u:%u", f->udp ? "UDP" : "TCP", a >> 24,
		 (a >> 16) & 255, (a >> 8) & 255, a & 255, f->host_port);
	return out;
}

/* An answer no caller waits for (a forward restored at a restart). */
static void answer_unwaited(struct vnet_nat *n, const struct nat_forward_done *d)
{
	const struct nat_forward *f = kept_by_seq(n, d->seq);
	char what[64];
	if (f && !d->ok)
		fprintf(stderr,
			"denali-run: the NAT process cannot listen on %s again (in use?): that "
			"forward is down until its next restart\n",
			forward_str(f, what, sizeof(what)));
}

/* Takes up to max batches from the NAT: frames to deliver, answers (the one for wanted goes
 * to *ok). Returns 1 if the answer to wanted came, 0 if not (yet), -1 if the NAT is gone
 * (not yet reaped). */
static int take(struct vnet_nat *n, unsigned max, uint32_t wanted, int *ok)
{
	int found = 0;
	for (unsigned b = 0; b < max; b++) {
		int got = nat_recv(n->sock, &n->rx);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (got <= 0)
			return -1;
		n->count.rx_batches++;
		for (unsigned i = 0; i < (unsigned)got; i++) {
			struct nat_msg m;
			const char *why;
			if (nat_msg_parse(n->rx.buf[i], n->rx.len[i], n->rx.truncated[i], &m,
					  &why) != 0) {
				complain(n, why);
			} else if (m.type == NAT_MSG_FRAMES) {
				size_t off = 0, len;
				for (const uint8_t *f; (f = nat_msg_next_frame(&m, &off, &len));) {
					n->count.rx_frames++;
					n->deliver(n->ctx, f, len);
				}
			} else if (m.type != NAT_MSG_FORWARD_DONE) {
				complain(n, "a forward request");
			} else if (wanted && m.done.seq == wanted) {
				*ok = (int)m.done.ok;
				found = 1;
			} else {
				answer_unwaited(n, &m.done);
			}
		}
		if (found || (unsigned)got < NAT_RX_MSGS)
			break;
	}
	return found;
}

/* Asks the NAT to publish f (its seq set anew). 0, or -1 (the NAT is stuck or gone). */
static int ask_forward(struct vnet_nat *n, struct nat_forward *f)
{
	f->seq = ++n->seq ? n->seq : ++n->seq; /* 0 is "no answer wanted" */
	return nat_send_msg(n->sock, NAT_MSG_FORWARD_ADD, f, sizeof(*f), FORWARD_WAIT_MS);
}

/* A new NAT process after a death, with every forward asked for again (answers come later). */
static void restart(struct vnet_nat *n)
{
	char err[256];
	if (spawn(n, err, sizeof(err)) != 0) {
		if (nat_launcher_gone(n->launcher))
			return; /* said once, by the launcher's side; no restart can come */
		fprintf(stderr, "denali-run: %s: trying again in %.2f s\n", err,
			RESTART_DELAY_MAX_MS / 1000.0);
		n->restart_at_ms = clock_mono_ms() + RESTART_DELAY_MAX_MS;
		return;
	}
	n->count.restarts++;
	for (unsigned i = 0; i < n->nfwds; i++)
		if (ask_forward(n, &n->fwds[i]) != 0) {
			lost(n, "it did not take its forwards");
			return;
		}
	fprintf(stderr, "denali-run: the NAT process restarted (pid %d); forwards restored: %u\n",
		(int)n->pid, n->nfwds);
}

struct vnet_nat *vnet_nat_create(struct nat_launcher *launcher, vnet_nat_deliver_fn deliver,
				 void *ctx, char *err, size_t errlen)
{
	struct vnet_nat *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "user uplink: out of memory");
		return NULL;
	}
	n->sock = n->pidfd = -1;
	n->launcher = launcher;
	n->deliver = deliver;
	n->ctx = ctx;
	if (spawn(n, err, errlen) != 0) {
		free(n);
		return NULL;
	}
	return n;
}

void vnet_nat_destroy(struct vnet_nat *n)
{
	if (!n)
		return;
	if (n->pid) {
		/* The launcher reaps it; its word is waited for so that it is gone on return. */
		syscall(SYS_pidfd_send_signal, n->pidfd, SIGKILL, NULL, 0);
		int code, status;
		nat_launcher_ended(n->launcher, n->pid, ENDED_WAIT_MS, &code, &status);
		close(n->sock);
		close(n->pidfd);
	}
	free(n->fwds);
	free(n);
}

int vnet_nat_add_forward(struct vnet_nat *n, const struct vnet_forward *f, uint32_t guest_ip,
			 char *err, size_t errlen)
{
	if (n->nfwds == n->capfwds) {
		unsigned cap = n->capfwds ? 2 * n->capfwds : 8;
		struct nat_forward *more = realloc(n->fwds, cap * sizeof(*more));
		if (!more) {
			snprintf(err, errlen, "user uplink: out of memory");
			return -1;
		}
		n->fwds = more;
		n->capfwds = cap;
	}
	struct nat_forward *w = &n->fwds[n->nfwds++];
	*w = (struct nat_forward){.host_addr = f->host_addr,
				  .guest_addr = guest_ip,
				  .host_port = f->host_port,
				  .guest_port = f->guest_port,
				  .udp = f->udp};
	if (!n->pid)
		return 0; /* published at the restart */
	if (ask_forward(n, w) != 0) {
		lost(n, "it took no forward");
		return 0;
	}
	uint32_t seq = w->seq;
	int64_t deadline = clock_mono_ms() + FORWARD_WAIT_MS;
	for (;;) {
		int64_t left = deadline - clock_mono_ms();
		if (left <= 0) {
			lost(n, "it did not answer a forward in 5 s");
			return 0;
		}
		struct pollfd p = {.fd = n->sock, .events = POLLIN};
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			continue;
		int ok = 0, rc = take(n, 1, seq, &ok);
		if (rc < 0) {
			lost(n, NULL);
			return 0;
		}
		if (rc == 0)
			continue;
		if (ok)
			return 0;
		struct nat_forward *k = kept_by_seq(n, seq); /* take may not move the table */
		char what[64];
		snprintf(err, errlen, "cannot listen on %s (in use, or not a local address?)",
			 forward_str(k, what, sizeof(what)));
		*k = n->fwds[--n->nfwds];
		return -1;
	}
}

void vnet_nat_remove_forward(struct vnet_nat *n, const struct vnet_forward *f)
{
	for (unsigned i = 0; i < n->nfwds; i++) {
		struct nat_forward *k = &n->fwds[i];
		if (k->udp != f->udp || k->host_addr != f->host_addr ||
		    k->host_port != f->host_port)
			continue;
		if (n->pid)
			nat_send_msg(n->sock, NAT_MSG_FORWARD_REMOVE, k, sizeof(*k),
				     FORWARD_WAIT_MS);
		*k = n->fwds[--n->nfwds];
		return;
	}
}

int vnet_nat_send(void *ctx, const uint8_t *frame, size_t len)
{
	struct vnet_nat *n = ctx;
	if (vnet_sanitize_for_nat(frame, len) != VNET_PASS)
		return -1; /* counted as dropped at the uplink port by the switch */
	if (!n->pid) {
		n->count.tx_dropped++;
		return -1;
	}
	if (n->nbatch == NAT_BATCH)
		vnet_nat_flush(n);
	memcpy(n->batch[n->nbatch], frame, len);
	n->blen[n->nbatch++] = (uint16_t)len;
	return 0;
}

void vnet_nat_flush(struct vnet_nat *n)
{
	if (!n->nbatch)
		return;
	struct iovec iov[NAT_BATCH];
	for (unsigned i = 0; i < n->nbatch; i++)
		iov[i] = (struct iovec){n->batch[i], n->blen[i]};
	int sent = n->pid ? nat_send_frames(n->sock, iov, n->nbatch) : -1;
	if (sent < 0)
		sent = 0; /* gone: dispatch notices it */
	n->count.tx_batches += sent > 0;
	n->count.tx_frames += (unsigned)sent;
	n->count.tx_dropped += n->nbatch - (unsigned)sent;
	n->nbatch = 0;
}

int vnet_nat_fill(struct vnet_nat *n, struct pollfd *fds, unsigned *nfds, unsigned max,
		  int *timeout_ms)
{
	n->polled = 0;
	if (!n->pid && nat_launcher_gone(n->launcher))
		return 0; /* down for good: nothing to poll or time */
	if (!n->pid) {
		int64_t left = n->restart_at_ms - clock_mono_ms();
		if (left > 0) {
			if (*timeout_ms < 0 || left < *timeout_ms)
				*timeout_ms = (int)left;
			return 0;
		}
		restart(n);
		if (!n->pid)
			return 0;
	}
	if (*nfds + 2 > max)
		return -1;
	n->polled = 1;
	n->polled_at = *nfds;
	n->polled_gen = n->generation;
	fds[(*nfds)++] = (struct pollfd){.fd = n->sock, .events = POLLIN};
	fds[(*nfds)++] = (struct pollfd){.fd = n->pidfd, .events = POLLIN};
	return 0;
}

void vnet_nat_dispatch(struct vnet_nat *n, const struct pollfd *fds)
{
	if (!n->polled || !n->pid || n->polled_gen != n->generation)
		return; /* it died, and was reaped, since fill (a forward's wait) */
	n->polled = 0;
	const struct pollfd *p = &fds[n->polled_at];
	if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
		int ok;
		if (take(n, RX_BATCHES, 0, &ok) < 0) {
			lost(n, NULL);
			return;
		}
	}
	if (p[1].revents & POLLIN)
		lost(n, NULL); /* exited: its pidfd is readable */
}

void vnet_nat_counters(const struct vnet_nat *n, struct vnet_nat_counters *out)
{
	*out = n->count;
	out->pid = n->pid;
}
