/* The supervisor's side of the NAT process: starting it clean (clone + exec of denali-nat,
 * every other fd closed), the batches of frames both ways, the forwards it must publish, and
 * its replacement when it dies. */
#include "vnet_nat.h"

#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "nat_proto.h"
#include "vnet_sanitize.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define NAT_HELPER "denali-nat"
#define NAT_SOCK_FD 3		   /* where denali-nat finds its socket */
#define NAT_SOCK_BUF (1 << 20)	   /* asked for each way; the kernel caps it (wmem_max) */
#define FORWARD_WAIT_MS 5000	   /* a forward's answer */
#define RX_BATCHES 4u		   /* batches taken from the NAT per turn */
#define QUICK_DEATH_MS 10000	   /* a NAT that dies sooner after its start is restarted later */
#define RESTART_DELAY_MIN_MS 250   /* after one quick death */
#define RESTART_DELAY_MAX_MS 30000 /* doubling up to this while it keeps dying quickly */

extern char **environ;

struct vnet_nat {
	char helper[PATH_MAX];
	char arg0[sizeof(NAT_HELPER)];
	char parent[24]; /* the supervisor's pid, for denali-nat's parent-death check */
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

/* The child, between clone and exec: raw system calls only (the supervisor has other threads,
 * and the child has no copy of their locks' owners). */
static void child_exec(const struct vnet_nat *n, int sock)
{
	uint64_t none = 0; /* the network thread blocks every signal: the NAT starts with none */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
	if (sock == NAT_SOCK_FD) {
		if (fcntl(sock, F_SETFD, 0) != 0)
			_exit(127);
	} else if (dup2(sock, NAT_SOCK_FD) != NAT_SOCK_FD) {
		_exit(127);
	}
	if (syscall(SYS_close_range, NAT_SOCK_FD + 1, ~0U, 0) != 0)
		_exit(127);
	/* The third argument: whether it seals itself (denali-run's --seccomp). */
	char *const argv[] = {(char *)(uintptr_t)n->arg0, (char *)(uintptr_t)n->parent,
			      (char *)(uintptr_t)(sandbox_seccomp_on() ? "seccomp" : "no-seccomp"),
			      NULL};
	execve(n->helper, argv, environ);
	static const char msg[] = "denali-run: cannot run the NAT process (" NAT_HELPER ")\n";
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(127);
	_exit(127);
}

/* Starts a NAT process, reaped here through its pidfd (the supervisor's main loop waits for
 * its cells by pid, never for any child). 0, or -1 with err. */
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
	int pidfd = -1;
	long pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
	if (pid == 0)
		child_exec(n, sv[1]);
	int e = errno;
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		snprintf(err, errlen, "user uplink: cannot start the NAT process: clone: %s",
			 strerror(e));
		return -1;
	}
	n->sock = sv[0];
	n->pidfd = pidfd;
	n->pid = (pid_t)pid;
	n->generation++;
	n->started_ms = clock_mono_ms();
	return 0;
}

/* Its exit, in words. */
static void describe_exit(const siginfo_t *si, char *out, size_t outlen)
{
	if (si->si_code == CLD_EXITED)
		snprintf(out, outlen, "exited with status %d", si->si_status);
	else if (si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED)
		snprintf(out, outlen, "was killed by signal %d (%s)", si->si_status,
			 strsignal(si->si_status));
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
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	long rc;
	do
		rc = syscall(SYS_waitid, P_PIDFD, n->pidfd, &si, WEXITED | __WALL, NULL);
	while (rc < 0 && errno == EINTR);
	char how[128];
	if (why)
		snprintf(how, sizeof(how), "%s: killed", why);
	else if (rc == 0)
		describe_exit(&si, how, sizeof(how));
	else
		snprintf(how, sizeof(how), "died (waitid: %s)", strerror(errno));
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
	fprintf(stderr,
		"denali-run: the NAT process (pid %d) %s; connections through the user uplink are "
		"reset; restarting it in %.2f s\n",
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
		for (unsigned i = 0; i < (unsigned)got; i++) {
			struct nat_msg m;
			const char *why;
			if (nat_msg_parse(n->rx.buf[i], n->rx.len[i], n->rx.truncated[i], &m,
					  &why) != 0) {
				complain(n, why);
			} else if (m.type == NAT_MSG_FRAME) {
				n->count.rx_frames++;
				n->deliver(n->ctx, m.frame, m.len);
			} else if (m.type != NAT_MSG_FORWARD_DONE) {
				complain(n, "a forward request");
			} else if (wanted && m.done.seq == wanted) {
				*ok = (int)m.done.ok;
				found = 1;
			} else {
				answer_unwaited(n, &m.done);
			}
		}
		if (found || (unsigned)got < NAT_BATCH)
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

struct vnet_nat *vnet_nat_create(const char *helper, vnet_nat_deliver_fn deliver, void *ctx,
				 char *err, size_t errlen)
{
	struct vnet_nat *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "user uplink: out of memory");
		return NULL;
	}
	n->sock = n->pidfd = -1;
	n->deliver = deliver;
	n->ctx = ctx;
	memcpy(n->arg0, NAT_HELPER, sizeof(NAT_HELPER));
	snprintf(n->parent, sizeof(n->parent), "%d", (int)getpid());
	if (helper) {
		snprintf(n->helper, sizeof(n->helper), "%s", helper);
	} else {
		/* Beside the running executable: the one of this build, never one found in PATH. */
		ssize_t len = readlink("/proc/self/exe", n->helper, sizeof(n->helper));
		char *slash = len > 0 && (size_t)len < sizeof(n->helper)
				      ? memrchr(n->helper, '/', (size_t)len)
				      : NULL;
		if (!slash ||
		    (size_t)(slash - n->helper) + sizeof("/" NAT_HELPER) > sizeof(n->helper)) {
			snprintf(err, errlen,
				 "user uplink: cannot find the NAT process: /proc/self/exe");
			free(n);
			return NULL;
		}
		memcpy(slash, "/" NAT_HELPER, sizeof("/" NAT_HELPER));
	}
	if (access(n->helper, X_OK) != 0) {
		snprintf(err, errlen, "user uplink: cannot run the NAT process %s: %s", n->helper,
			 strerror(errno));
		free(n);
		return NULL;
	}
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
		syscall(SYS_pidfd_send_signal, n->pidfd, SIGKILL, NULL, 0);
		siginfo_t si;
		while (syscall(SYS_waitid, P_PIDFD, n->pidfd, &si, WEXITED | __WALL, NULL) < 0 &&
		       errno == EINTR)
			;
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
	n->count.tx_frames += (unsigned)sent;
	n->count.tx_dropped += n->nbatch - (unsigned)sent;
	n->nbatch = 0;
}

int vnet_nat_fill(struct vnet_nat *n, struct pollfd *fds, unsigned *nfds, unsigned max,
		  int *timeout_ms)
{
	n->polled = 0;
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
