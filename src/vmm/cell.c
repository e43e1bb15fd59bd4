/* A cell: a monitor process that runs some of a plan's services, one thread per vcpu. The main
 * thread only relays the supervisor's STOP and KILL messages to the service threads. */
#include "cell.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cell_proto.h"
#include "guestmem.h"

enum slot_state { SLOT_STARTING, SLOT_RUNNING, SLOT_DONE };

struct cell_slot {
	struct cell *cell;
	unsigned index; /* in the plan */
	struct vmm_service svc;
	pthread_t thread;
	int thread_started;
	enum slot_state state;
	int stop_event;		 /* DN_EV_STOP asked for before the service ran */
	struct vmm_outcome kill; /* a forced stop asked for before it ran (kind != NONE) */
};

struct cell {
	const struct vmm_plan *plan;
	const struct vcpu_kvm *kvm;
	int sock;
	int done_fd; /* eventfd: a service thread finished */
	pthread_mutex_t lock;
	struct cell_slot *slots;
	unsigned count;
	struct vdisk_worker disks;	  /* serves the virtual disks, if any service has one */
	struct vdisk_worker *disk_worker; /* &disks once started, else NULL */
};

static void send_ended(struct cell *cell, struct cell_slot *slot)
{
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = CELL_MSG_ENDED;
	msg.service = slot->index;
	msg.outcome = slot->svc.outcome;
	msg.stats = slot->svc.stats;
	pthread_mutex_lock(&cell->lock);
	cell_msg_send(cell->sock, &msg, NULL, 0, 0);
	pthread_mutex_unlock(&cell->lock);
}

/* Hands the service's NIC to the supervisor's switch: its RAM file (the switch maps only the
 * I/O window of it) and the kick and wake eventfds. */
static int send_nic(struct cell *cell, struct cell_slot *slot)
{
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = CELL_MSG_NIC;
	msg.service = slot->index;
	int fds[3] = {slot->svc.mem.fd, slot->svc.nic_kick_fd, slot->svc.nic_wake_fd};
	pthread_mutex_lock(&cell->lock);
	int rc = cell_msg_send(cell->sock, &msg, fds, 3, 0);
	pthread_mutex_unlock(&cell->lock);
	return rc;
}

static void *service_thread(void *arg)
{
	struct cell_slot *slot = arg;
	struct cell *cell = slot->cell;
	const struct vmm_plan_service *ps = &cell->plan->services[slot->index];
	const char *prefix = cell->plan->count > 1 ? ps->cfg.name : NULL;
	char err[512];
	struct vmm_service *svc = &slot->svc;
	int started = vmm_service_start(svc, &ps->cfg, &ps->img, cell->kvm, cell->plan->state_dir,
					prefix, cell->disk_worker, err, sizeof(err)) == 0;
	if (started && svc->nic && send_nic(cell, slot) != 0) {
		snprintf(err, sizeof(err), "cannot hand its NIC to the switch: %s",
			 strerror(errno));
		started = 0;
	}
	if (!started) {
		svc->outcome.kind = VMM_OUTCOME_HOST_ERROR;
		snprintf(svc->outcome.reason, sizeof(svc->outcome.reason), "%s", err);
	} else {
		pthread_mutex_lock(&cell->lock);
		slot->state = SLOT_RUNNING;
		if (slot->stop_event)
			vmm_service_raise(svc, DN_EV_STOP);
		if (slot->kill.kind != VMM_OUTCOME_NONE)
			vmm_service_request_stop(svc, slot->kill.kind, slot->kill.status);
		pthread_mutex_unlock(&cell->lock);
		vmm_service_run(svc);
	}
	send_ended(cell, slot);
	pthread_mutex_lock(&cell->lock);
	slot->state = SLOT_DONE;
	pthread_mutex_unlock(&cell->lock);
	vmm_service_destroy(svc, cell->plan->keep_state);
	uint64_t one = 1;
	if (write(cell->done_fd, &one, sizeof(one)) < 0)
		perror("denali-run: cell: eventfd");
	return NULL;
}

/* Applies a supervisor message to the services of the cell it concerns. */
static void relay(struct cell *cell, const struct cell_msg *msg)
{
	pthread_mutex_lock(&cell->lock);
	if (msg->type == CELL_MSG_HALT) {
		unsigned first = cell->slots[0].index;
		if (msg->service >= first && msg->service - first < cell->count) {
			struct cell_slot *slot = &cell->slots[msg->service - first];
			char reason[sizeof(slot->svc.stop_reason)];
			snprintf(reason, sizeof(reason), "%.*s", (int)sizeof(reason) - 1,
				 msg->outcome.reason);
			if (slot->state == SLOT_RUNNING)
				vmm_service_request_halt(&slot->svc, reason);
		}
		pthread_mutex_unlock(&cell->lock);
		return;
	}
	for (unsigned i = 0; i < cell->count; i++) {
		struct cell_slot *slot = &cell->slots[i];
		if (msg->type == CELL_MSG_STOP) {
			if (slot->state == SLOT_RUNNING)
				vmm_service_raise(&slot->svc, DN_EV_STOP);
			slot->stop_event = 1;
		} else if (msg->type == CELL_MSG_KILL) {
			if (slot->state == SLOT_RUNNING)
				vmm_service_request_stop(&slot->svc, msg->outcome.kind,
							 msg->outcome.status);
			slot->kill = msg->outcome;
		}
	}
	pthread_mutex_unlock(&cell->lock);
}

static void cell_signals(void)
{
	/* The supervisor decides how a fleet stops; a terminal's ^C reaches the whole process
	 * group, so cells ignore it. A cell never outlives its supervisor. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	vcpu_kick_install();
	guestmem_sigbus_install();
	sigset_t all;
	sigemptyset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
}

/* Starts the disk worker if a service of the cell has a disk; if it cannot start, those
 * services fail to start and say why. */
static void start_disk_worker(struct cell *cell, unsigned first, unsigned count)
{
	int needed = 0;
	for (unsigned i = 0; i < count; i++)
		needed |= cell->plan->services[first + i].cfg.disk.enabled;
	char err[256];
	if (!needed)
		return;
	if (vdisk_worker_start(&cell->disks, err, sizeof(err)) == 0)
		cell->disk_worker = &cell->disks;
	else
		fprintf(stderr, "denali-run: cell: %s\n", err);
}

int cell_run(const struct vmm_plan *plan, const struct vcpu_kvm *kvm, int sock, unsigned first,
	     unsigned count)
{
	cell_signals();
	struct cell cell = {.plan = plan, .kvm = kvm, .sock = sock, .count = count};
	pthread_mutex_init(&cell.lock, NULL);
	cell.done_fd = eventfd(0, EFD_CLOEXEC);
	cell.slots = calloc(count, sizeof(*cell.slots));
	if (cell.done_fd < 0 || !cell.slots) {
		perror("denali-run: cell");
		return 1;
	}
	start_disk_worker(&cell, first, count);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1u << 20);
	unsigned running = 0;
	for (unsigned i = 0; i < count; i++) {
		struct cell_slot *slot = &cell.slots[i];
		slot->cell = &cell;
		slot->index = first + i;
		if (pthread_create(&slot->thread, &attr, service_thread, slot) != 0) {
			slot->svc.outcome.kind = VMM_OUTCOME_HOST_ERROR;
			snprintf(slot->svc.outcome.reason, sizeof(slot->svc.outcome.reason),
				 "cannot create its vcpu thread");
			send_ended(&cell, slot);
			continue;
		}
		slot->thread_started = 1;
		running++;
	}
	unsigned done = 0;
	int supervisor_gone = 0;
	while (done < running) {
		struct pollfd fds[2] = {{.fd = cell.done_fd, .events = POLLIN},
					{.fd = sock, .events = supervisor_gone ? 0 : POLLIN}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].revents & POLLIN) {
			uint64_t n;
			if (read(cell.done_fd, &n, sizeof(n)) == sizeof(n))
				done += (unsigned)n;
		}
		if (fds[1].revents & POLLIN) {
			struct cell_msg msg;
			int passed[CELL_MSG_FDS_MAX];
			unsigned npassed;
			ssize_t got = cell_msg_recv(sock, &msg, passed, &npassed, 0);
			for (unsigned i = 0; i < npassed; i++)
				close(passed[i]); /* the supervisor sends none */
			if (got == (ssize_t)sizeof(msg))
				relay(&cell, &msg);
			else if (got == 0)
				fds[1].revents |= POLLHUP;
		}
		if (fds[1].revents & (POLLHUP | POLLERR)) {
			/* No one to report to: stop everything. */
			supervisor_gone = 1;
			struct cell_msg kill = {.type = CELL_MSG_KILL};
			kill.outcome.kind = VMM_OUTCOME_SIGNALED;
			kill.outcome.status = SIGHUP;
			relay(&cell, &kill);
		}
	}
	for (unsigned i = 0; i < count; i++)
		if (cell.slots[i].thread_started)
			pthread_join(cell.slots[i].thread, NULL);
	pthread_attr_destroy(&attr);
	if (cell.disk_worker)
		vdisk_worker_stop(cell.disk_worker);
	free(cell.slots);
	close(cell.done_fd);
	return 0;
}
