/* The supervisor: places a plan's services on cell processes, relays stop requests, reports
 * how every service ended, and turns that into denali-run's exit status. It holds no guest
 * RAM and runs no vcpu; it keeps one idle sentinel VM so that creating and destroying the
 * host's last VM (which flips KVM static keys) never happens on the cells' path. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cell.h"
#include "cell_proto.h"
#include "clock.h"
#include "control.h"
#include "ctl_proto.h"
#include "detach.h"
#include "exit_status.h"
#include "guestmem.h"
#include "metrics.h"
#include "metrics_http.h"
#include "nat_launcher.h"
#include "plan_net.h"
#include "privileges.h"
#include "progress.h"
#include "sandbox.h"
#include "size.h"
#include "stats.h"
#include "vnet.h"

struct sup_cell {
	pid_t pid; /* 0 once reaped */
	int sock;  /* -1 once closed */
	unsigned first, count;
	int status; /* wait status */
	/* Messages its socket had no room for, sent as it drains: the supervisor never blocks
	 * on a cell (a cell's threads block on it, and it must always be there to read). */
	struct cell_msg *queue;
	unsigned queued, queue_cap;
	int stats_due; /* it has yet to answer the current round of live counters */
};

/* A control client waiting for the next round of live counters: for one service (>= 0), all
 * of them (STATS_ALL), or the metrics (STATS_METRICS). */
#define STATS_ALL (-1)
#define STATS_METRICS (-2)
struct stats_waiter {
	unsigned client;
	int what;
	int http; /* a --metrics-listen client, else a control socket client */
};

struct supervisor {
	struct vmm_plan *plan; /* grows with the control socket's start */
	const struct vcpu_kvm *kvm;
	sigset_t cell_mask; /* the caller's signal mask, which cells run with */
	struct sup_cell *cells;
	unsigned ncells;
	/* The services and cells of the start; each service started later has a cell of its
	 * own, in the order they came. */
	unsigned first_count, first_ncells;
	unsigned cap;	/* rows in the per-service arrays below */
	int controlled; /* --control or --metrics-listen: the arrays for them are kept */
	struct vmm_outcome *outcomes; /* by service; kind NONE until it ended */
	int (*held)[2]; /* by service: its memory file and disk image, -1 if none (HOLD) */
	/* By service, once it ended (NULL before, or if out of memory: zeros): its final counters.
	 * Nothing is kept for a service that runs or sleeps: a sleeper should cost little. */
	struct vmm_service_stats **stats;
	unsigned ended;
	int stop_signal; /* the first stop signal received, 0 if none */
	int killed;	 /* KILL sent */
	int sigfd, timeout_fd, grace_fd;
	struct vnet *vnet;		   /* NULL when no service has a NIC */
	struct nat_launcher *nat_launcher; /* NULL without a user uplink or a control socket */
	int nat_helper; /* denali-nat, opened before the drop for the launcher's exec; else -1 */
	/* --memory-budget: the table the cells fill, when each service was last asked to swap
	 * out, and the timer that looks at it. */
	struct budget_entry *budget;
	unsigned budget_rows; /* its rows: room for started services when there is --control */
	int64_t *asked_at;
	int budget_fd;
	uint64_t budget_bytes;	 /* the budget now (the control socket may change it); 0: none */
	struct control *control; /* --control, else NULL */
	struct metrics_http *metrics; /* --metrics-listen, else NULL */
	int was_root;		      /* started as root: gave up its rights after setup */
	unsigned *waiter;	      /* by service: a control client waiting for its end, or ~0u */
	unsigned *starter; /* by service: a control client waiting for its start, or ~0u */
	int64_t started_ns;
	struct progress progress; /* the start's progress line, on a terminal */
	unsigned up,
		failed_to_start; /* services that started (their first HOLD), or failed first */
	/* Live counters: the last each cell sent for its services, and their slot states. */
	struct vmm_service_stats *live;
	uint8_t *live_state;
	struct stats_waiter *stats_waiters;
	unsigned nstats_waiters, stats_waiters_cap;
	unsigned stats_cells_due; /* cells yet to answer this round; 0: no round */
	int stats_round;
	/* stop NAME --grace: when the stop gives way to a kill (host clock), 0: none. */
	int64_t *stop_at;
};

/* The control socket's live counters (below), which cells' messages feed. */
static void take_live_stats(struct supervisor *s, const struct sup_cell *c,
			    const struct cell_msg *msg);
static void stats_cell_answered(struct supervisor *s, struct sup_cell *c);
/* Growing the fleet (the control socket's start), below. */
static int grow_services(struct supervisor *s, unsigned count);
static int spawn_cell(struct supervisor *s, unsigned c);

#define BUDGET_PERIOD_NS 50000000     /* how often the budget is checked */
#define BUDGET_ASK_AGAIN_NS 200000000 /* a service asked to swap out counts as going this long */
#define BUDGET_PICK_MAX 64
/* A service woken (or started) this recently is not asked to go: it must take the frames that
 * woke it and answer them first, or a budget far below the fleet would swap it out again at
 * its first idle, before its NIC was even back, and no request would get through. */
#define BUDGET_MIN_RESIDENT_NS 200000000

/* The cell that runs service i. */
static struct sup_cell *cell_of(struct supervisor *s, unsigned i)
{
	if (i < s->first_count)
		return &s->cells[i / s->plan->cell_size];
	return &s->cells[s->first_ncells + (i - s->first_count)];
}

/* Sends what waits for a cell, as far as its socket takes it. */
static void flush_cell(struct sup_cell *c)
{
	unsigned sent = 0;
	while (sent < c->queued && c->sock >= 0 &&
	       send(c->sock, &c->queue[sent], sizeof(c->queue[sent]),
		    MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(c->queue[sent]))
		sent++;
	memmove(c->queue, c->queue + sent, (c->queued - sent) * sizeof(*c->queue));
	c->queued -= sent;
}

/* Sends msg to cell c without ever blocking: what does not fit now waits in its queue. */
static void send_cell(const struct supervisor *s, struct sup_cell *c, const struct cell_msg *msg)
{
	if (c->sock < 0)
		return;
	if (!c->queued &&
	    send(c->sock, msg, sizeof(*msg), MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(*msg))
		return;
	if (c->queued == c->queue_cap) {
		unsigned cap = c->queue_cap ? 2 * c->queue_cap : 16;
		struct cell_msg *bigger = realloc(c->queue, cap * sizeof(*bigger));
		if (!bigger) {
			fprintf(stderr, "denali-run: cell %u: out of memory for a message to it\n",
				(unsigned)(c - s->cells));
			return;
		}
		c->queue = bigger;
		c->queue_cap = cap;
	}
	c->queue[c->queued++] = *msg;
}

static void broadcast(struct supervisor *s, enum cell_msg_type type, enum vmm_outcome_kind kind,
		      int status)
{
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = type;
	msg.outcome.kind = kind;
	msg.outcome.status = status;
	for (unsigned i = 0; i < s->ncells; i++)
		send_cell(s, &s->cells[i], &msg);
}

static void print_stop(const struct supervisor *s, unsigned i)
{
	const struct vmm_outcome *o = &s->outcomes[i];
	const char *name = s->plan->services[i].cfg.name;
	char where[64] = "";
	if (o->has_rip)
		snprintf(where, sizeof(where), " at rip=0x%llx", (unsigned long long)o->rip);
	switch (o->kind) {
	case VMM_OUTCOME_EXITED:
		if (s->plan->count > 1 && !s->plan->quiet)
			fprintf(stderr, "denali-run: %s: exited with status %d\n", name, o->status);
		break;
	case VMM_OUTCOME_STOPPED:
		fprintf(stderr, "denali-run: %s: stopped: %s%s\n", name, o->reason, where);
		break;
	case VMM_OUTCOME_TIMEOUT:
		fprintf(stderr, "denali-run: %s: stopped: timeout after %g s%s\n", name,
			s->plan->timeout_s, where);
		break;
	case VMM_OUTCOME_SIGNALED:
		fprintf(stderr, "denali-run: %s: stopped: %s%s\n", name, strsignal(o->status),
			where);
		break;
	case VMM_OUTCOME_LOST:
		fprintf(stderr, "denali-run: %s: lost: %s\n", name, o->reason);
		break;
	case VMM_OUTCOME_SAVED:
		if (!s->plan->quiet)
			fprintf(stderr, "denali-run: %s: saved; --resume goes on with it\n", name);
		break;
	case VMM_OUTCOME_HOST_ERROR:
	case VMM_OUTCOME_NONE:
		fprintf(stderr, "denali-run: %s: host error: %s%s\n", name, o->reason, where);
		break;
	}
}

static void nic_stats(struct vmm_service_stats *st, const struct vnet_port_counters *c)
{
	st->nic.present = 1;
	st->nic.tx_frames = c->tx_frames;
	st->nic.tx_spoofed = c->tx_spoofed;
	st->nic.tx_dropped = c->tx_dropped;
	st->nic.rx_frames = c->rx_frames;
	st->nic.rx_dropped = c->rx_dropped;
	st->nic.ring_errors = c->ring_errors;
	st->nic.held = c->held;
	st->nic.held_dropped = c->held_dropped;
	st->nic.asleep_ignored = c->asleep_ignored;
	st->nic.tx_blocked = c->tx_blocked;
	st->nic.tx_throttled = c->tx_throttled;
	st->nic.tx_throttled_ns = c->tx_throttled_ns;
	st->nic.rx_throttled = c->rx_throttled;
}

/* Disconnects service i from the switch, keeping its counters for --stats. */
static void detach_nic(struct supervisor *s, unsigned i)
{
	if (!s->vnet || !s->plan->services[i].cfg.net.enabled)
		return;
	struct vnet_port_counters c;
	vnet_detach(s->vnet, i, &c);
	if (s->stats[i])
		nic_stats(s->stats[i], &c);
}

static const char *outcome_word(enum vmm_outcome_kind kind)
{
	switch (kind) {
	case VMM_OUTCOME_EXITED: return "exited";
	case VMM_OUTCOME_STOPPED: return "stopped";
	case VMM_OUTCOME_TIMEOUT: return "timeout";
	case VMM_OUTCOME_SIGNALED: return "signaled";
	case VMM_OUTCOME_HOST_ERROR: return "host-error";
	case VMM_OUTCOME_LOST: return "lost";
	case VMM_OUTCOME_SAVED: return "saved";
	case VMM_OUTCOME_NONE: break;
	}
	return "running";
}

/* wait's answer for service i, which has ended: its status is the exit status its outcome
 * gives (126 when it was killed, not 0). */
static json_t *wait_answer(const struct supervisor *s, unsigned i)
{
	const struct vmm_outcome *o = &s->outcomes[i];
	return json_pack("{s:b, s:s, s:s, s:i}", "ok", 1, "name", s->plan->services[i].cfg.name,
			 "outcome", outcome_word(o->kind), "status", vmm_outcome_exit_status(o));
}

/* A control client waits for service i to end: it has. */
static void answer_waiter(struct supervisor *s, unsigned i)
{
	if (!s->waiter || s->waiter[i] == ~0u)
		return;
	control_answer(s->control, s->waiter[i], wait_answer(s, i));
	s->waiter[i] = ~0u;
}

/* A control client waits for service i to start (it holds its files) or fail: it did. */
static void answer_starter(struct supervisor *s, unsigned i)
{
	if (!s->starter || s->starter[i] == ~0u)
		return;
	const struct vmm_outcome *o = &s->outcomes[i];
	const char *name = s->plan->services[i].cfg.name;
	json_t *answer = o->kind == VMM_OUTCOME_NONE
				 ? json_pack("{s:b, s:s, s:i}", "ok", 1, "name", name, "cell",
					     (int)(cell_of(s, i) - s->cells))
				 : control_error("failed", "start: %s did not start (%s): %s", name,
						 outcome_word(o->kind), o->reason);
	control_answer(s->control, s->starter[i], answer);
	s->starter[i] = ~0u;
}

static void release_held(struct supervisor *s, unsigned i)
{
	for (unsigned f = 0; f < 2; f++) {
		if (s->held[i][f] >= 0)
			close(s->held[i][f]);
		s->held[i][f] = -1;
	}
}

/* A cell's service hands over its files to keep: their locks stay ours while it sleeps. */
static void hold(struct supervisor *s, const struct sup_cell *c, const struct cell_msg *msg,
		 int *fds, unsigned nfds)
{
	unsigned i = msg->service;
	if (i >= c->first && i - c->first < c->count && s->outcomes[i].kind == VMM_OUTCOME_NONE &&
	    nfds <= 2) {
		if (s->held[i][0] < 0) { /* its first: it has started (or been restored) */
			s->up += i < s->first_count;
			answer_starter(s, i);
		}
		release_held(s, i);
		for (unsigned f = 0; f < nfds; f++)
			s->held[i][f] = fds[f];
		return;
	}
	for (unsigned f = 0; f < nfds; f++)
		close(fds[f]);
}

static void record(struct supervisor *s, const struct cell_msg *msg)
{
	unsigned i = msg->service;
	if (i >= s->plan->count || s->outcomes[i].kind != VMM_OUTCOME_NONE)
		return;
	s->outcomes[i] = msg->outcome;
	s->outcomes[i].reason[sizeof(s->outcomes[i].reason) - 1] = '\0';
	if (s->outcomes[i].kind == VMM_OUTCOME_NONE)
		s->outcomes[i].kind = VMM_OUTCOME_HOST_ERROR;
	s->stats[i] = malloc(sizeof(*s->stats[i]));
	if (s->stats[i])
		*s->stats[i] = msg->stats;
	answer_waiter(s, i);
	answer_starter(s, i);
	if (s->held[i][0] < 0 && i < s->first_count)
		s->failed_to_start++; /* ended without ever holding its files: it never started */
	detach_nic(s, i);
	release_held(s, i);
	s->ended++;
	print_stop(s, i);
}

/* A cell handed over a service's NIC: connect it to the switch. fds: RAM file, kick, wake. */
static void attach_nic(struct supervisor *s, const struct sup_cell *c, const struct cell_msg *msg,
		       int *fds, unsigned nfds)
{
	unsigned i = msg->service;
	char err[512];
	if (nfds == 3 && s->vnet && i >= c->first && i - c->first < c->count &&
	    s->outcomes[i].kind == VMM_OUTCOME_NONE) {
		if (vnet_attach(s->vnet, i, fds[0], fds[1], fds[2], err, sizeof(err)) != 0)
			fprintf(stderr, "denali-run: %s: %s\n", s->plan->services[i].cfg.name, err);
		close(fds[0]);
		return;
	}
	if (i < s->plan->count && s->outcomes[i].kind == VMM_OUTCOME_NONE)
		fprintf(stderr,
			"denali-run: %s: its NIC arrived with %u of 3 descriptors (out of file "
			"descriptors?); it runs without a network\n",
			s->plan->services[i].cfg.name, nfds);
	for (unsigned f = 0; f < nfds; f++)
		close(fds[f]);
}

/* A cell's service goes to sleep: the switch lets go of its NIC (and holds its frames), then
 * the cell hears back. */
static void sleep_nic(struct supervisor *s, struct sup_cell *c, const struct cell_msg *msg)
{
	unsigned i = msg->service;
	struct cell_msg answer;
	memset(&answer, 0, sizeof(answer));
	answer.type = CELL_MSG_NIC_SLEPT;
	answer.service = i;
	int ok = s->vnet && i >= c->first && i - c->first < c->count &&
		 s->outcomes[i].kind == VMM_OUTCOME_NONE && vnet_sleep(s->vnet, i) == 0;
	answer.outcome.status = ok ? 0 : -1;
	send_cell(s, c, &answer); /* its vcpu thread waits for this answer */
}

/* Frames wait for sleeping services: have their cells wake them. */
static void on_network_wakes(struct supervisor *s)
{
	unsigned i;
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	while (vnet_take_wake(s->vnet, &i)) {
		struct sup_cell *c = cell_of(s, i);
		msg.type = CELL_MSG_WAKE;
		msg.service = i;
		send_cell(s, c, &msg);
	}
}

/* Reads every message a cell has sent; closes its socket at end of file. */
static void drain(struct supervisor *s, struct sup_cell *c)
{
	for (;;) {
		struct cell_msg msg;
		int fds[CELL_MSG_FDS_MAX];
		unsigned nfds;
		ssize_t got = cell_msg_recv(c->sock, &msg, fds, &nfds, MSG_DONTWAIT);
		if (got == (ssize_t)sizeof(msg) && msg.type == CELL_MSG_NIC) {
			attach_nic(s, c, &msg, fds, nfds);
			continue;
		}
		if (got == (ssize_t)sizeof(msg) && msg.type == CELL_MSG_HOLD) {
			hold(s, c, &msg, fds, nfds);
			continue;
		}
		for (unsigned f = 0; f < nfds; f++)
			close(fds[f]);
		if (got == (ssize_t)sizeof(msg) && msg.type == CELL_MSG_NIC_SLEEP) {
			sleep_nic(s, c, &msg);
			continue;
		}
		if (got == (ssize_t)sizeof(msg) && msg.type == CELL_MSG_ENDED) {
			/* Only the cell that runs a service may end it, with an outcome we know:
			 * a compromised cell must not end or misreport another cell's service. */
			if (msg.service >= c->first && msg.service - c->first < c->count &&
			    (unsigned)msg.outcome.kind <= VMM_OUTCOME_SAVED)
				record(s, &msg);
			else
				fprintf(stderr,
					"denali-run: cell %u: ignored an end report for service %u "
					"it does not run\n",
					(unsigned)(c - s->cells), msg.service);
			continue;
		}
		if (got == (ssize_t)sizeof(msg) && msg.type == CELL_MSG_STATS) {
			take_live_stats(s, c, &msg);
			continue;
		}
		if (got == (ssize_t)sizeof(msg) && msg.type == CELL_MSG_STATS_DONE) {
			stats_cell_answered(s, c);
			continue;
		}
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (got <= 0) {
			if (got < 0)
				fprintf(stderr,
					"denali-run: cell %u: cannot read its messages: %s\n",
					(unsigned)(c - s->cells), strerror(errno));
			close(c->sock);
			c->sock = -1;
			stats_cell_answered(s, c); /* it never will */
			return;
		}
	}
}

static void describe_wait(int status, char *out, size_t outlen)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == SANDBOX_EXIT_FORBIDDEN)
		snprintf(out, outlen, "made a forbidden system call (exit status %d)",
			 SANDBOX_EXIT_FORBIDDEN);
	else if (WIFSIGNALED(status))
		snprintf(out, outlen, "killed by %s", strsignal(WTERMSIG(status)));
	else
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
}

/* A cell ended: whatever it did not report is lost, and said so with the cell's fate. */
static void reap(struct supervisor *s, struct sup_cell *c, int status)
{
	pid_t pid = c->pid;
	c->pid = 0;
	c->status = status;
	if (c->sock >= 0)
		drain(s, c);
	char how[96], names[1024] = "";
	describe_wait(status, how, sizeof(how));
	unsigned lost = 0;
	for (unsigned i = c->first; i < c->first + c->count; i++) {
		if (s->outcomes[i].kind != VMM_OUTCOME_NONE)
			continue;
		size_t len = strlen(names);
		snprintf(names + len, sizeof(names) - len, "%s%s", lost ? ", " : "",
			 s->plan->services[i].cfg.name);
		lost++;
	}
	if (!lost)
		return;
	fprintf(stderr, "denali-run: cell %u (pid %d) %s; its services are lost: %s\n",
		(unsigned)(c - s->cells), (int)pid, how, names);
	for (unsigned i = c->first; i < c->first + c->count; i++) {
		if (s->outcomes[i].kind != VMM_OUTCOME_NONE)
			continue;
		struct cell_msg msg = {.type = CELL_MSG_ENDED, .service = i};
		msg.outcome.kind = VMM_OUTCOME_LOST;
		snprintf(msg.outcome.reason, sizeof(msg.outcome.reason), "its cell %u %s",
			 (unsigned)(c - s->cells), how);
		record(s, &msg); /* also disconnects its NIC */
		/* The dead cell cannot clean up; its lock died with it. (Under --resume, the
		 * next run finds out which of them were saved.) */
		if (!s->plan->keep_state && !s->plan->resume)
			guestmem_remove(s->plan->state_dir, s->plan->services[i].cfg.name);
	}
}

/* Cells only, each by its pid: the NAT process is a child too, reaped by the network thread
 * (vnet_nat.c) through its pidfd. A cell's pid stays its own until it is reaped here. */
static void reap_children(struct supervisor *s)
{
	for (unsigned i = 0; i < s->ncells; i++) {
		int status;
		if (s->cells[i].pid > 0 && waitpid(s->cells[i].pid, &status, WNOHANG) > 0)
			reap(s, &s->cells[i], status);
	}
}

static int arm_timer(double seconds)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (fd < 0 || seconds <= 0)
		return fd;
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)seconds;
	its.it_value.tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;
	timerfd_settime(fd, 0, &its, NULL);
	return fd;
}

static void on_signal(struct supervisor *s, int signo)
{
	if (signo == SIGCHLD) {
		reap_children(s);
		return;
	}
	if (!s->stop_signal) {
		/* First: ask every service to stop (under --resume: to go to sleep, saved), and
		 * give them the grace period. */
		s->stop_signal = signo;
		broadcast(s, s->plan->resume ? CELL_MSG_SAVE : CELL_MSG_STOP, VMM_OUTCOME_NONE, 0);
		close(s->grace_fd);
		s->grace_fd = arm_timer(s->plan->grace_s > 0 ? s->plan->grace_s : 1e-9);
	} else if (!s->killed) {
		/* Second: stop them all now. */
		s->killed = 1;
		broadcast(s, CELL_MSG_KILL, VMM_OUTCOME_SIGNALED, s->stop_signal);
	}
}

/* ---- the control socket (docs/control.md) ---- */

static int find_service(const struct supervisor *s, const json_t *request)
{
	const char *name = json_string_value(json_object_get(request, "name"));
	for (unsigned i = 0; name && i < s->plan->count; i++)
		if (strcmp(s->plan->services[i].cfg.name, name) == 0)
			return (int)i;
	return -1;
}

static const char *state_word(const struct supervisor *s, unsigned i)
{
	if (s->outcomes[i].kind != VMM_OUTCOME_NONE)
		return "ended";
	static const char *const states[] = {"starting", "running", "asleep", "asleep", "ended"};
	uint32_t st = s->budget ? __atomic_load_n(&s->budget[i].state, __ATOMIC_RELAXED) : 0;
	return st < 5 ? states[st] : "starting";
}

static json_t *control_list(struct supervisor *s, unsigned client, const json_t *request)
{
	(void)client, (void)request;
	json_t *list = json_array();
	int64_t now = clock_mono_ns();
	for (unsigned i = 0; i < s->plan->count; i++) {
		const struct budget_entry *b = &s->budget[i];
		uint64_t resident = __atomic_load_n(&b->resident_pages, __ATOMIC_RELAXED);
		uint64_t swapped = __atomic_load_n(&b->swapped_pages, __ATOMIC_RELAXED);
		int64_t started = __atomic_load_n(&b->started_ns, __ATOMIC_RELAXED);
		int ended = s->outcomes[i].kind != VMM_OUTCOME_NONE;
		double uptime = started && !ended ? (double)(now - started) / 1e9 : 0;
		json_array_append_new(
			list, json_pack("{s:s, s:s, s:i, s:f, s:I, s:I}", "name",
					s->plan->services[i].cfg.name, "state", state_word(s, i),
					"cell", (int)(cell_of(s, i) - s->cells), "uptime_s", uptime,
					"resident_pages", (json_int_t)(ended ? 0 : resident),
					"swapped_pages", (json_int_t)(ended ? 0 : swapped)));
	}
	return json_pack("{s:b, s:o}", "ok", 1, "services", list);
}

/* One service's stats object: final once it ended, else the live counters of the last round. */
static json_t *service_stats_json(struct supervisor *s, unsigned i)
{
	static const struct vmm_service_stats no_stats;
	const struct vmm_plan *plan = s->plan;
	int swappable = plan->services[i].cfg.swap.enabled || s->budget_bytes != 0;
	if (s->outcomes[i].kind != VMM_OUTCOME_NONE) {
		json_t *o = vmm_stats_service_json(&plan->services[i], swappable, &s->outcomes[i],
						   s->stats[i] ? s->stats[i] : &no_stats);
		json_object_set_new(o, "state", json_string("ended"));
		return o;
	}
	struct vmm_service_stats st = s->live[i];
	swappable |= st.swap.outs != 0; /* swapped through the control socket */
	struct vnet_port_counters c;
	if (s->vnet && plan->services[i].cfg.net.enabled && vnet_counters(s->vnet, i, &c) == 0)
		nic_stats(&st, &c);
	struct vmm_outcome none;
	memset(&none, 0, sizeof(none));
	json_t *o = vmm_stats_service_json(&plan->services[i], swappable, &none, &st);
	json_object_set_new(o, "state", json_string(state_word(s, i)));
	return o;
}

/* Every service's counters in the Prometheus text format (malloc'd), or NULL. */
static char *metrics_now(struct supervisor *s)
{
	json_t *list = json_array();
	for (unsigned i = 0; i < s->plan->count; i++)
		json_array_append_new(list, service_stats_json(s, i));
	struct vnet_nat_counters c;
	struct metrics_nat nat = {0, 0};
	int has_nat = s->vnet && vnet_nat_stats(s->vnet, &c) == 0;
	if (has_nat)
		nat = (struct metrics_nat){.up = c.pid != 0, .restarts = c.restarts};
	char *text = metrics_text(list, (double)(clock_mono_ns() - s->started_ns) / 1e9,
				  s->budget_bytes, has_nat ? &nat : NULL);
	json_decref(list);
	return text;
}

/* The user uplink's NAT process for a stats answer (docs/control.md), or NULL without one. */
static json_t *nat_stats_json(struct supervisor *s)
{
	struct vnet_nat_counters c;
	if (!s->vnet || vnet_nat_stats(s->vnet, &c) != 0)
		return NULL;
	return json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "pid", c.pid, "restarts",
			 (json_int_t)c.restarts, "tx_frames", (json_int_t)c.tx_frames, "tx_dropped",
			 (json_int_t)c.tx_dropped, "rx_frames", (json_int_t)c.rx_frames,
			 "rx_malformed", (json_int_t)c.rx_malformed, "tx_batches",
			 (json_int_t)c.tx_batches, "rx_batches", (json_int_t)c.rx_batches);
}

/* The answer to a stats or metrics request, from what the round gathered. */
static json_t *stats_answer(struct supervisor *s, int what)
{
	if (what == STATS_METRICS) {
		char *text = metrics_now(s);
		json_t *answer = text ? json_pack("{s:b, s:s}", "ok", 1, "text", text)
				      : control_error("failed", "metrics: out of memory");
		free(text);
		return answer;
	}
	json_t *list = json_array();
	if (what >= 0)
		json_array_append_new(list, service_stats_json(s, (unsigned)what));
	for (unsigned i = 0; what < 0 && i < s->plan->count; i++)
		json_array_append_new(list, service_stats_json(s, i));
	json_t *answer = json_pack("{s:b, s:o}", "ok", 1, "services", list);
	json_t *nat = nat_stats_json(s);
	if (answer && nat)
		json_object_set_new(answer, "nat", nat);
	else
		json_decref(nat);
	return answer;
}

/* Every cell has answered (or died): the waiting clients get their answers. */
static void stats_round_done(struct supervisor *s)
{
	for (unsigned k = 0; k < s->nstats_waiters; k++) {
		const struct stats_waiter *w = &s->stats_waiters[k];
		if (w->http)
			metrics_http_answer(s->metrics, w->client, metrics_now(s));
		else
			control_answer(s->control, w->client, stats_answer(s, w->what));
	}
	s->nstats_waiters = 0;
}

static void stats_cell_answered(struct supervisor *s, struct sup_cell *c)
{
	if (!c->stats_due)
		return;
	c->stats_due = 0;
	if (--s->stats_cells_due == 0)
		stats_round_done(s);
}

/* Asks every live cell for its services' counters; returns how many will answer. */
static unsigned stats_round_start(struct supervisor *s)
{
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = CELL_MSG_STATS_ASK;
	msg.outcome.status = ++s->stats_round;
	for (unsigned c = 0; c < s->ncells; c++) {
		struct sup_cell *cell = &s->cells[c];
		if (cell->sock < 0)
			continue;
		send_cell(s, cell, &msg);
		cell->stats_due = 1;
		s->stats_cells_due++;
	}
	return s->stats_cells_due;
}

/* Queues a client for the next round of counters, starting one if none is under way;
 * returns 1 if it waits, 0 if there is no cell to ask (every service ended: answer now), -1
 * out of memory. */
static int stats_wait(struct supervisor *s, unsigned client, int what, int http)
{
	if (!s->stats_cells_due && !stats_round_start(s))
		return 0;
	if (s->nstats_waiters == s->stats_waiters_cap) {
		unsigned cap = s->stats_waiters_cap ? 2 * s->stats_waiters_cap : 8;
		struct stats_waiter *more = realloc(s->stats_waiters, cap * sizeof(*more));
		if (!more)
			return -1;
		s->stats_waiters = more;
		s->stats_waiters_cap = cap;
	}
	s->stats_waiters[s->nstats_waiters++] = (struct stats_waiter){client, what, http};
	return 1;
}

/* A stats or metrics request: answered once the next round of counters is in. */
static json_t *stats_request(struct supervisor *s, unsigned client, int what)
{
	int waits = stats_wait(s, client, what, 0);
	if (waits < 0)
		return control_error("failed", "stats: out of memory");
	return waits ? NULL : stats_answer(s, what);
}

/* GET /metrics on --metrics-listen. */
static void metrics_wanted(void *ctx, unsigned client)
{
	struct supervisor *s = ctx;
	int waits = stats_wait(s, client, STATS_METRICS, 1);
	if (waits <= 0)
		metrics_http_answer(s->metrics, client, waits == 0 ? metrics_now(s) : NULL);
}

/* A cell's answer to a round: one service's live counters. */
static void take_live_stats(struct supervisor *s, const struct sup_cell *c,
			    const struct cell_msg *msg)
{
	unsigned i = msg->service;
	if (i < c->first || i - c->first >= c->count)
		return;
	s->live[i] = msg->stats;
	s->live_state[i] = (uint8_t)msg->outcome.status;
}

/* A message about one service to its cell. */
static void to_cell(struct supervisor *s, unsigned i, enum cell_msg_type type, const char *reason)
{
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = type;
	msg.service = i;
	if (reason)
		snprintf(msg.outcome.reason, sizeof(msg.outcome.reason), "%s", reason);
	send_cell(s, cell_of(s, i), &msg);
}

static void on_signal(struct supervisor *s, int signo);

#define STOP_GRACE_MAX_S 86400.0

/* The service a request names ("name"): its index, or -1 with the answer in *error. */
static int named_service(struct supervisor *s, const json_t *request, json_t **error)
{
	int i = find_service(s, request);
	if (i < 0)
		*error = control_error("failed", "%s: no service named \"%.64s\"",
				       json_string_value(json_object_get(request, "cmd")),
				       json_string_value(json_object_get(request, "name")));
	return i;
}

/* The same, for a command that needs the service not ended. */
static int live_service(struct supervisor *s, const json_t *request, json_t **error)
{
	int i = named_service(s, request, error);
	if (i >= 0 && s->outcomes[i].kind != VMM_OUTCOME_NONE) {
		*error = control_error("failed", "%s: %s has ended",
				       json_string_value(json_object_get(request, "cmd")),
				       s->plan->services[i].cfg.name);
		return -1;
	}
	return i;
}

/* stop NAME [grace]: DN_EV_STOP now, a kill once grace (default --grace) is over. */
static json_t *control_stop(struct supervisor *s, unsigned client, const json_t *request)
{
	(void)client;
	json_t *error = NULL;
	int i = live_service(s, request, &error);
	if (i < 0)
		return error;
	const json_t *grace = json_object_get(request, "grace");
	double seconds = grace ? json_number_value(grace) : s->plan->grace_s;
	if (!(seconds >= 0 && seconds <= STOP_GRACE_MAX_S)) /* also NaN */
		return control_error("usage", "stop: grace must be 0 to %.0f seconds",
				     STOP_GRACE_MAX_S);
	to_cell(s, (unsigned)i, CELL_MSG_STOP_ONE, NULL);
	int64_t at = clock_mono_ns() + (int64_t)(seconds * 1e9);
	if (!s->stop_at[i] || at < s->stop_at[i])
		s->stop_at[i] = at ? at : 1;
	return json_pack("{s:b, s:s}", "ok", 1, "name", s->plan->services[i].cfg.name);
}

/* Kills the services whose stop grace is over; returns the ms until the next one is, or -1. */
static int kill_stopped(struct supervisor *s)
{
	if (!s->stop_at)
		return -1;
	int64_t now = clock_mono_ns(), next = INT64_MAX;
	for (unsigned i = 0; i < s->plan->count; i++) {
		if (!s->stop_at[i])
			continue;
		if (s->outcomes[i].kind != VMM_OUTCOME_NONE) {
			s->stop_at[i] = 0;
		} else if (s->stop_at[i] <= now) {
			s->stop_at[i] = 0;
			to_cell(s, i, CELL_MSG_HALT, "it did not stop within its grace period");
		} else if (s->stop_at[i] < next) {
			next = s->stop_at[i];
		}
	}
	return next == INT64_MAX ? -1 : (int)((next - now) / 1000000) + 1;
}

/* Whether the NAT launcher is needed: a user uplink in the plan (it must start: 2), or a
 * control socket (a service started later may have one: 1). 0 if not. */
static int nat_launcher_wanted(const struct supervisor *s)
{
	for (unsigned i = 0; i < s->plan->count; i++)
		if (s->plan->services[i].cfg.net.enabled &&
		    s->plan->services[i].cfg.net.uplink == VNET_UPLINK_USER)
			return 2;
	return s->plan->control_path ? 1 : 0;
}

/* A NAT launcher that cannot be had: the run stops if a service needs it now, else a warning
 * (without it, a later start of a service with a user uplink fails). 0, or -1. */
static int no_nat_launcher(int wanted, const char *err)
{
	if (wanted == 2) {
		fprintf(stderr, "denali-run: user uplink: %s\n", err);
		return -1;
	}
	fprintf(stderr,
		"denali-run: warning: %s: a service started later cannot have a user "
		"uplink\n",
		err);
	return 0;
}

/* Opens denali-nat while the rights to reach it are still held. 0, or -1 (said). */
static int open_nat_helper(struct supervisor *s)
{
	int wanted = nat_launcher_wanted(s);
	if (!wanted)
		return 0;
	char err[512];
	s->nat_helper = nat_launcher_open_helper(NULL, err, sizeof(err));
	return s->nat_helper >= 0 ? 0 : no_nat_launcher(wanted, err);
}

/* Starts the NAT launcher from the helper opened before the drop, then closes that. 0, or -1
 * (said). */
static int start_nat_launcher(struct supervisor *s)
{
	if (s->nat_helper < 0)
		return 0;
	char err[512];
	s->nat_launcher = nat_launcher_start_fd(s->nat_helper, err, sizeof(err));
	close(s->nat_helper);
	s->nat_helper = -1;
	return s->nat_launcher ? 0 : no_nat_launcher(nat_launcher_wanted(s), err);
}

/* Gives service i's NIC, if it has one, its port on the network. 0, or -1 with err. */
static int add_port(struct vnet *vn, const struct vmm_plan *plan, unsigned i, char *err,
		    size_t errlen)
{
	if (!plan->services[i].cfg.net.enabled)
		return 0;
	struct vnet_port_config pc;
	vmm_plan_net_port(plan, i, &pc);
	return vnet_add_port(vn, i, &pc, err, errlen);
}

/* The network of the plan's services (its thread not started yet), or NULL with err. */
static struct vnet *network_create(const struct vmm_plan *plan, char *err, size_t errlen)
{
	struct vnet *vn = vnet_create(err, errlen);
	for (unsigned i = 0; vn && i < plan->count; i++)
		if (add_port(vn, plan, i, err, errlen) != 0) {
			vnet_destroy(vn);
			vn = NULL;
		}
	return vn;
}

/* Connects service i (added to the plan) to the network: the switch learns of it, and is
 * created if no service had a NIC before. 0, or -1 with err. */
static int start_network(struct supervisor *s, unsigned i, char *err, size_t errlen)
{
	if (!s->plan->services[i].cfg.net.enabled)
		return 0;
	if (s->vnet)
		return add_port(s->vnet, s->plan, i, err, errlen);
	s->vnet = network_create(s->plan, err, errlen);
	if (s->vnet && (vnet_open_nat(s->vnet, s->nat_launcher, err, errlen) != 0 ||
			vnet_start(s->vnet, err, errlen) != 0)) {
		vnet_destroy(s->vnet);
		s->vnet = NULL;
	}
	return s->vnet ? 0 : -1;
}

/* start FILE: the file validated as at startup, then its service in a new cell of its own.
 * Answered once it has started, or failed to. */
static json_t *control_start(struct supervisor *s, unsigned client, const json_t *request)
{
	const char *file = json_string_value(json_object_get(request, "file"));
	struct vmm_plan *plan = s->plan;
	if (s->stop_signal || s->killed)
		return control_error("failed", "start: the fleet is stopping");
	struct vmm_config_limits limits = vmm_config_host_limits();
	char err[1024];
	unsigned i = plan->count;
	struct sup_cell *cells = realloc(s->cells, (s->ncells + 1) * sizeof(*cells));
	if (cells)
		s->cells = cells;
	if (!cells || grow_services(s, i + 1) != 0)
		return control_error("failed", "start: out of memory");
	if (vmm_plan_add(plan, file, &limits, err, sizeof(err)) != 0)
		return control_error("failed", "start: %s", err);
	if (vmm_plan_check(plan, err, sizeof(err)) != 0 ||
	    start_network(s, i, err, sizeof(err)) != 0) {
		const struct vmm_net_config *net = &plan->services[i].cfg.net;
		char tap[VNET_IFNAMSIZ] = "";
		if (i < plan->count && net->enabled && net->uplink == VNET_UPLINK_TAP &&
		    s->was_root && strncmp(err, "tap:", 4) == 0)
			snprintf(tap, sizeof(tap), "%s", net->tap);
		vmm_plan_drop_last(plan);
		if (*tap) /* the fleet gave up root once it started (privileges_drop) */
			return control_error(
				"failed",
				"start: tap:%s: a new TAP device needs root, which the "
				"fleet gave up after startup: name its TAP services at "
				"startup",
				tap);
		return control_error("failed", "start: %s", err);
	}
	struct sup_cell *c = &s->cells[s->ncells];
	*c = (struct sup_cell){.sock = -1, .first = i, .count = 1};
	if (s->budget)
		memset(&s->budget[i], 0, sizeof(s->budget[i]));
	s->ncells++;
	if (spawn_cell(s, s->ncells - 1) != 0) {
		/* It stays in the plan, ended: the network may know it already. */
		struct cell_msg msg = {.type = CELL_MSG_ENDED, .service = i};
		msg.outcome.kind = VMM_OUTCOME_HOST_ERROR;
		snprintf(msg.outcome.reason, sizeof(msg.outcome.reason),
			 "cannot make a cell for it (out of processes or memory?)");
		record(s, &msg);
		return control_error("failed", "start: %s: %s", plan->services[i].cfg.name,
				     msg.outcome.reason);
	}
	s->starter[i] = client;
	return NULL;
}

static json_t *control_stats(struct supervisor *s, unsigned client, const json_t *request)
{
	if (strcmp(json_string_value(json_object_get(request, "name")), "all") == 0)
		return stats_request(s, client, STATS_ALL);
	json_t *error = NULL;
	int i = named_service(s, request, &error);
	return i < 0 ? error : stats_request(s, client, i);
}

static json_t *control_metrics(struct supervisor *s, unsigned client, const json_t *request)
{
	(void)request;
	return stats_request(s, client, STATS_METRICS);
}

/* kill, swap-out and swap-in: a message to the service's cell. */
static json_t *to_live_service(struct supervisor *s, const json_t *request, enum cell_msg_type type,
			       const char *reason)
{
	json_t *error = NULL;
	int i = live_service(s, request, &error);
	if (i < 0)
		return error;
	to_cell(s, (unsigned)i, type, reason);
	return json_pack("{s:b, s:s}", "ok", 1, "name", s->plan->services[i].cfg.name);
}

static json_t *control_kill(struct supervisor *s, unsigned client, const json_t *request)
{
	(void)client;
	return to_live_service(s, request, CELL_MSG_HALT, "killed through the control socket");
}

static json_t *control_swap_out(struct supervisor *s, unsigned client, const json_t *request)
{
	(void)client;
	return to_live_service(s, request, CELL_MSG_SWAP_OUT, NULL);
}

static json_t *control_swap_in(struct supervisor *s, unsigned client, const json_t *request)
{
	(void)client;
	return to_live_service(s, request, CELL_MSG_WAKE, NULL);
}

static json_t *control_budget(struct supervisor *s, unsigned client, const json_t *request)
{
	(void)client;
	const char *size = json_string_value(json_object_get(request, "size"));
	uint64_t bytes = 0;
	if (strcmp(size, "none") != 0 &&
	    (vmm_size_parse(size, &bytes) != 0 || bytes < DN_PAGE_SIZE))
		return control_error(
			"usage", "budget: \"%.64s\" is not a size of at least 4K, or none", size);
	if (!s->budget)
		return control_error("failed", "budget: no memory budget table in this run");
	s->budget_bytes = bytes;
	return json_pack("{s:b, s:I}", "ok", 1, "budget_bytes", (json_int_t)bytes);
}

/* wait NAME: answered once it has ended (at once if it has). */
static json_t *control_wait(struct supervisor *s, unsigned client, const json_t *request)
{
	json_t *error = NULL;
	int i = named_service(s, request, &error);
	if (i < 0)
		return error;
	if (s->outcomes[i].kind != VMM_OUTCOME_NONE)
		return wait_answer(s, (unsigned)i);
	if (s->waiter[i] != ~0u)
		control_answer(s->control, s->waiter[i],
			       control_error("failed", "wait: another client waits for %s",
					     s->plan->services[i].cfg.name));
	s->waiter[i] = client;
	return NULL;
}

static json_t *control_shutdown(struct supervisor *s, unsigned client, const json_t *request)
{
	(void)client, (void)request;
	on_signal(s, SIGTERM);
	return json_pack("{s:b}", "ok", 1);
}

/* Each command's handler, by its id in the protocol's table (ctl/ctl_proto.h): the response,
 * or NULL to answer later with control_answer. */
typedef json_t *control_handler(struct supervisor *s, unsigned client, const json_t *request);

static control_handler *const control_handlers[CTL_CMD_COUNT] = {
	[CTL_LIST] = control_list,	   [CTL_STATS] = control_stats,
	[CTL_START] = control_start,	   [CTL_STOP] = control_stop,
	[CTL_KILL] = control_kill,	   [CTL_SWAP_OUT] = control_swap_out,
	[CTL_SWAP_IN] = control_swap_in,   [CTL_BUDGET] = control_budget,
	[CTL_WAIT] = control_wait,	   [CTL_METRICS] = control_metrics,
	[CTL_SHUTDOWN] = control_shutdown,
};

int vmm_control_handled(unsigned cmd)
{
	return cmd < CTL_CMD_COUNT && control_handlers[cmd] != NULL;
}

/* A checked request (control.c): to its command's handler. */
static json_t *control_handle(void *ctx, unsigned client, const json_t *request)
{
	enum ctl_cmd cmd = ctl_command_of(request);
	if (!vmm_control_handled(cmd))
		return control_error("failed", "%s: not served by this run",
				     json_string_value(json_object_get(request, "cmd")));
	return control_handlers[cmd](ctx, client, request);
}

/* The switch gave up on guests that kept breaking their rings: have their cells stop them. */
static void on_network_faults(struct supervisor *s)
{
	unsigned i;
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	while (vnet_take_fault(s->vnet, &i, msg.outcome.reason, sizeof(msg.outcome.reason))) {
		struct sup_cell *c = cell_of(s, i);
		msg.type = CELL_MSG_HALT;
		msg.service = i;
		send_cell(s, c, &msg); /* queued if need be: never lost, never blocking */
	}
}

/* Over budget: ask the cells to swap out the least recently run services. */
static void enforce_budget(struct supervisor *s)
{
	uint64_t ticks;
	if (read(s->budget_fd, &ticks, sizeof(ticks)) < 0)
		return;
	const struct vmm_plan *plan = s->plan;
	unsigned victims[BUDGET_PICK_MAX];
	int64_t now = clock_mono_ns();
	if (!s->budget_bytes)
		return;
	/* One that went to sleep since it was asked has done so: when it wakes it may be asked
	 * again at once, not only a second after the last ask. */
	for (unsigned i = 0; i < plan->count; i++)
		if (s->asked_at[i] != INT64_MIN &&
		    !__atomic_load_n(&s->budget[i].awake, __ATOMIC_RELAXED))
			s->asked_at[i] = INT64_MIN;
	unsigned n = budget_pick(s->budget, plan->count, s->budget_bytes / DN_PAGE_SIZE,
				 s->asked_at, now - BUDGET_ASK_AGAIN_NS,
				 now - BUDGET_MIN_RESIDENT_NS, victims, BUDGET_PICK_MAX);
	for (unsigned k = 0; k < n; k++) {
		unsigned i = victims[k];
		struct sup_cell *c = cell_of(s, i);
		struct cell_msg msg;
		memset(&msg, 0, sizeof(msg));
		msg.type = CELL_MSG_SWAP_OUT;
		msg.service = i;
		s->asked_at[i] = now;
		send_cell(s, c, &msg);
	}
}

/* A by-service array of size-byte rows grown from old to cap rows, the new ones zero; NULL if
 * out of memory (p is then unchanged). */
static void *grow_rows(void *p, size_t size, unsigned old, unsigned cap)
{
	/* The first time calloc: a large array comes as fresh zero pages, resident only once a
	 * row is written (most of a sleeping fleet's rows never are). */
	if (!p)
		return calloc(cap, size);
	char *bigger = realloc(p, (size_t)cap * size);
	if (bigger)
		memset(bigger + (size_t)old * size, 0, (size_t)(cap - old) * size);
	return bigger;
}

#define GROW_ROWS(s, field, old, cap, rc)                                                          \
	do {                                                                                       \
		void *grown = grow_rows((s)->field, sizeof(*(s)->field), old, cap);                \
		if (grown)                                                                         \
			(s)->field = grown;                                                        \
		else                                                                               \
			rc = -1;                                                                   \
	} while (0)

/* Room for count services in the per-service arrays (exactly count at the start: a sleeper
 * should cost little; doubling for started ones). 0, or -1 out of memory. */
static int grow_services(struct supervisor *s, unsigned count)
{
	if (count <= s->cap)
		return 0;
	unsigned old = s->cap, cap = old ? 2 * old : count;
	while (cap < count)
		cap *= 2;
	int rc = 0;
	GROW_ROWS(s, outcomes, old, cap, rc);
	GROW_ROWS(s, stats, old, cap, rc);
	GROW_ROWS(s, held, old, cap, rc);
	if (s->plan->memory_budget || s->controlled)
		GROW_ROWS(s, asked_at, old, cap, rc);
	if (s->controlled) {
		GROW_ROWS(s, waiter, old, cap, rc);
		GROW_ROWS(s, starter, old, cap, rc);
		GROW_ROWS(s, live, old, cap, rc);
		GROW_ROWS(s, live_state, old, cap, rc);
		GROW_ROWS(s, stop_at, old, cap, rc);
	}
	if (rc != 0)
		return -1;
	for (unsigned i = old; i < cap; i++) {
		s->held[i][0] = s->held[i][1] = -1;
		if (s->asked_at)
			s->asked_at[i] = INT64_MIN;
		if (s->waiter)
			s->waiter[i] = s->starter[i] = ~0u;
	}
	s->cap = cap;
	return 0;
}

static int start_budget(struct supervisor *s)
{
	const struct vmm_plan *plan = s->plan;
	s->budget_bytes = plan->memory_budget;
	/* The control socket may set a budget later, and lists states from the table. */
	if (!plan->memory_budget && !s->controlled)
		return 0;
	/* Rows for every service the control socket may start: pages never touched cost
	 * nothing. */
	s->budget_rows = plan->control_path ? VMM_PLAN_SERVICES_MAX : plan->count;
	s->budget = budget_table_create(s->budget_rows);
	s->budget_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (!s->budget || s->budget_fd < 0) {
		fprintf(stderr, "denali-run: cannot set up the memory budget: %s\n",
			strerror(errno));
		return -1;
	}
	struct itimerspec its = {.it_interval = {0, BUDGET_PERIOD_NS},
				 .it_value = {0, BUDGET_PERIOD_NS}};
	return timerfd_settime(s->budget_fd, 0, &its, NULL);
}

/* Forks cell c for its services. 0, or -1 (said why). */
static int spawn_cell(struct supervisor *s, unsigned c)
{
	struct sup_cell *cell = &s->cells[c];
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		perror("denali-run: socketpair");
		return -1;
	}
	fflush(NULL);
	vnet_fork_prepare(s->vnet); /* its thread (if it runs) must not be in malloc */
	pid_t pid = fork();
	if (pid == 0) {
		/* The cell: /dev/kvm and its own socket as fds 3 and 4, nothing else of the
		 * supervisor's (no sentinel, no other cell's socket, no network sockets), and
		 * the caller's signal mask. */
		int kvm_fd = fcntl(s->kvm->fd, F_DUPFD, 10), sock = fcntl(sv[1], F_DUPFD, 10);
		if (kvm_fd < 0 || sock < 0 || dup2(kvm_fd, 3) != 3 || dup2(sock, 4) != 4)
			_exit(DENALI_EXIT_HOST);
		close_range(5, ~0u, 0);
		struct vcpu_kvm cell_kvm = *s->kvm;
		cell_kvm.fd = 3;
		sigprocmask(SIG_SETMASK, &s->cell_mask, NULL);
		char name[32];
		snprintf(name, sizeof(name), "cell %u", c);
		sandbox_set_process(name);
		_exit(cell_run(s->plan, &cell_kvm, 4, cell->first, cell->count, s->budget));
	}
	vnet_fork_done(s->vnet);
	close(sv[1]);
	if (pid < 0) {
		perror("denali-run: fork");
		close(sv[0]);
		return -1;
	}
	cell->pid = pid;
	cell->sock = sv[0];
	return 0;
}

static int spawn_cells(struct supervisor *s)
{
	const struct vmm_plan *plan = s->plan;
	for (unsigned c = 0; c < s->ncells; c++) {
		struct sup_cell *cell = &s->cells[c];
		cell->first = c * plan->cell_size;
		cell->count = plan->count - cell->first < plan->cell_size
				      ? plan->count - cell->first
				      : plan->cell_size;
		if (spawn_cell(s, c) != 0)
			return -1;
	}
	return 0;
}

/* The run's exit status (docs/cli.md): after a stop signal (or shutdown), 0 if the stop lost
 * nothing (every service exited 0 or was saved), else 128+N, one service or many; otherwise
 * one service's own, or for several 0, 1 or 124. */
static int run_status(const struct supervisor *s)
{
	const struct vmm_plan *plan = s->plan;
	int timeout = 0, failed = 0;
	for (unsigned i = 0; i < plan->count; i++) {
		const struct vmm_outcome *o = &s->outcomes[i];
		timeout |= o->kind == VMM_OUTCOME_TIMEOUT;
		failed |= o->kind != VMM_OUTCOME_SAVED &&
			  (o->kind != VMM_OUTCOME_EXITED || o->status != 0);
	}
	if (s->stop_signal)
		return failed ? 128 + s->stop_signal : 0;
	if (plan->count == 1)
		return s->outcomes[0].kind == VMM_OUTCOME_NONE
			       ? DENALI_EXIT_HOST
			       : vmm_outcome_exit_status(&s->outcomes[0]);
	return timeout ? DENALI_EXIT_TIMEOUT : failed ? DENALI_EXIT_SOME_FAILED : 0;
}

int vmm_supervise(struct vmm_plan *plan, const struct vcpu_kvm *kvm)
{
	struct supervisor s = {.plan = plan,
			       .kvm = kvm,
			       .timeout_fd = -1,
			       .grace_fd = -1,
			       .budget_fd = -1,
			       .nat_helper = -1,
			       .controlled = plan->control_path || plan->metrics_listen,
			       .first_count = plan->count};
	s.ncells = s.first_ncells = (plan->count + plan->cell_size - 1) / plan->cell_size;
	s.cells = calloc(s.ncells, sizeof(*s.cells));
	if (!s.cells || grow_services(&s, plan->count) != 0) {
		fprintf(stderr, "denali-run: out of memory\n");
		return DENALI_EXIT_HOST;
	}
	for (unsigned c = 0; c < s.ncells; c++)
		s.cells[c].sock = -1;
	int sentinel = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (sentinel < 0) {
		fprintf(stderr, "denali-run: KVM_CREATE_VM (sentinel): %s\n", strerror(errno));
		return DENALI_EXIT_HOST;
	}
	sigset_t mask, old_mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &old_mask);
	s.cell_mask = old_mask;
	s.sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	s.timeout_fd = arm_timer(plan->timeout_s);
	s.grace_fd = arm_timer(0);
	int status = DENALI_EXIT_HOST;
	guestmem_sigbus_install(); /* the switch copies into guests' windows */
	if (vmm_plan_has_net(plan)) {
		char err[512];
		s.vnet = network_create(plan, err, sizeof(err));
		if (!s.vnet) {
			fprintf(stderr, "denali-run: %s\n", err);
			goto out;
		}
	}
	s.started_ns = clock_mono_ns();
	if (plan->control_path || plan->metrics_listen) {
		char err[512];
		struct control_ops ops = {.ctx = &s, .handle = control_handle};
		struct metrics_http_ops mops = {.ctx = &s, .want = metrics_wanted};
		if (plan->control_path &&
		    !(s.control = control_open(plan->control_path, &ops, err, sizeof(err)))) {
			fprintf(stderr, "denali-run: %s\n", err);
			goto out;
		}
		if (plan->metrics_listen &&
		    !(s.metrics =
			      metrics_http_open(plan->metrics_listen, &mops, err, sizeof(err)))) {
			fprintf(stderr, "denali-run: %s\n", err);
			goto out;
		}
	}
	/* Sandbox, rights: all that needs root is open (/dev/kvm, TAP devices, the control and
	 * metrics sockets), no thread runs yet, and every cell and the NAT launcher are started
	 * after this, so each process of the fleet has given them up (docs/security.md#rights). The
	 * NAT binds the forwards' host ports with what is left. Landlock
	 * comes next, in each cell (cell.c); then the seccomp filters. */
	char why[512];
	s.was_root = geteuid() == 0;
	if (open_nat_helper(&s) != 0)
		goto out;
	if (privileges_drop(&plan->rights, why, sizeof(why)) != 0) {
		fprintf(stderr, "denali-run: %s\n", why);
		goto out;
	}
	/* The NAT launcher, with the rights left, before anything seals (it is exec'd): it forks
	 * each NAT process, so that the network thread need not (docs/security.md). A fleet with
	 * a control socket may get a user uplink later (start FILE). */
	if (start_nat_launcher(&s) != 0)
		goto out;
	if (s.vnet) {
		char err[512];
		if (vnet_open_nat(s.vnet, s.nat_launcher, err, sizeof(err)) != 0) {
			fprintf(stderr, "denali-run: %s\n", err);
			goto out;
		}
	}
	if (s.sigfd < 0 || s.timeout_fd < 0 || s.grace_fd < 0 || start_budget(&s) != 0 ||
	    spawn_cells(&s) != 0) {
		broadcast(&s, CELL_MSG_KILL, VMM_OUTCOME_HOST_ERROR, 0);
		goto out;
	}
	if (s.vnet) {
		char err[512];
		if (vnet_start(s.vnet, err, sizeof(err)) != 0) {
			fprintf(stderr, "denali-run: %s\n", err);
			broadcast(&s, CELL_MSG_KILL, VMM_OUTCOME_HOST_ERROR, 0);
			goto out;
		}
	}
	detach_ready(plan->ready_fd);
	progress_init(&s.progress, plan->resume ? "resuming" : "starting", plan->count,
		      isatty(STDERR_FILENO), clock_mono_ns());
	/* The main loop's filter, before its first control or metrics client. The cells of the
	 * start were forked unsealed and seal themselves; a cell forked later (start FILE) starts
	 * from this filter, which is why it holds a cell's whole list. Privileges and Landlock
	 * (src/sandbox) come just before this. */
	{
		char err[256];
		if (sandbox_seal(SANDBOX_SUPERVISOR, err, sizeof(err)) != 0) {
			fprintf(stderr, "denali-run: %s\n", err);
			broadcast(&s, CELL_MSG_KILL, VMM_OUTCOME_HOST_ERROR, 0);
			goto out;
		}
	}
	int cells_alive = (int)s.ncells;
	while (s.ended < plan->count || cells_alive > 0) {
		/* A start while serving the control socket adds a cell: not polled this turn. */
		unsigned npolled = s.ncells;
		struct pollfd fds[6 + npolled + 2 + CONTROL_CLIENTS_MAX + METRICS_HTTP_CLIENTS_MAX];
		fds[0] = (struct pollfd){.fd = s.sigfd, .events = POLLIN};
		fds[1] = (struct pollfd){.fd = s.timeout_fd, .events = POLLIN};
		fds[2] = (struct pollfd){.fd = s.grace_fd, .events = POLLIN};
		fds[3] = (struct pollfd){.fd = s.vnet ? vnet_fault_fd(s.vnet) : -1,
					 .events = POLLIN};
		fds[4] =
			(struct pollfd){.fd = s.vnet ? vnet_wake_fd(s.vnet) : -1, .events = POLLIN};
		fds[5] = (struct pollfd){.fd = s.budget_fd, .events = POLLIN};
		for (unsigned c = 0; c < npolled; c++)
			fds[6 + c] = (struct pollfd){
				.fd = s.cells[c].sock,
				.events = (short)(POLLIN | (s.cells[c].queued ? POLLOUT : 0))};
		unsigned nctl = s.control ? control_pollfds(s.control, fds + 6 + npolled) : 0;
		struct pollfd *mfds = fds + 6 + npolled + nctl;
		unsigned nmet = s.metrics ? metrics_http_pollfds(s.metrics, mfds) : 0;
		/* Idle control clients are dropped: look again at least every few seconds. */
		int timeout = kill_stopped(&s);
		if ((s.control || s.metrics) && (timeout < 0 || timeout > 1000))
			timeout = 1000;
		if (poll(fds, 6 + npolled + nctl + nmet, timeout) < 0 && errno != EINTR)
			break;
		if (s.control)
			control_serve(s.control, fds + 6 + npolled, nctl, clock_mono_ns());
		if (s.metrics)
			metrics_http_serve(s.metrics, mfds, nmet, clock_mono_ns());
		if (fds[5].revents & POLLIN)
			enforce_budget(&s);
		if (fds[3].revents & POLLIN)
			on_network_faults(&s);
		if (fds[4].revents & POLLIN)
			on_network_wakes(&s);
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(s.sigfd, &si, sizeof(si)) == sizeof(si))
				on_signal(&s, (int)si.ssi_signo);
		}
		uint64_t ticks;
		if ((fds[1].revents & POLLIN) && read(s.timeout_fd, &ticks, sizeof(ticks)) > 0 &&
		    !s.killed) {
			s.killed = 1;
			broadcast(&s, CELL_MSG_KILL, VMM_OUTCOME_TIMEOUT, 0);
		}
		if ((fds[2].revents & POLLIN) && read(s.grace_fd, &ticks, sizeof(ticks)) > 0 &&
		    !s.killed) {
			s.killed = 1;
			broadcast(&s, CELL_MSG_KILL, VMM_OUTCOME_SIGNALED, s.stop_signal);
		}
		for (unsigned c = 0; c < npolled; c++) {
			if (s.cells[c].sock >= 0 &&
			    (fds[6 + c].revents & (POLLIN | POLLHUP | POLLERR)))
				drain(&s, &s.cells[c]);
			if (s.cells[c].queued && (fds[6 + c].revents & POLLOUT))
				flush_cell(&s.cells[c]);
		}
		progress_update(&s.progress, s.up, s.failed_to_start, clock_mono_ns());
		cells_alive = 0;
		for (unsigned c = 0; c < s.ncells; c++)
			cells_alive += s.cells[c].pid != 0;
	}
	progress_finish(&s.progress);
	if (plan->stats_path)
		vmm_stats_write(plan, s.outcomes, s.stats);
	status = run_status(&s);
out:
	for (unsigned c = 0; c < s.ncells; c++) {
		if (s.cells[c].pid > 0) {
			kill(s.cells[c].pid, SIGKILL);
			waitpid(s.cells[c].pid, NULL, 0);
		}
		if (s.cells[c].sock >= 0)
			close(s.cells[c].sock);
		free(s.cells[c].queue);
	}
	vnet_destroy(s.vnet);
	nat_launcher_stop(s.nat_launcher);
	if (s.nat_helper >= 0)
		close(s.nat_helper);
	control_close(s.control);
	metrics_http_close(s.metrics);
	free(s.waiter);
	free(s.live);
	free(s.live_state);
	free(s.stop_at);
	free(s.stats_waiters);
	for (unsigned i = 0; i < plan->count; i++)
		release_held(&s, i);
	close(sentinel);
	close(s.sigfd);
	close(s.timeout_fd);
	close(s.grace_fd);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	free(s.cells);
	free(s.outcomes);
	for (unsigned i = 0; s.stats && i < plan->count; i++)
		free(s.stats[i]);
	free(s.stats);
	free(s.held);
	budget_table_free(s.budget, s.budget_rows);
	free(s.starter);
	free(s.asked_at);
	if (s.budget_fd >= 0)
		close(s.budget_fd);
	return status;
}
