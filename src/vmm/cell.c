/* A cell: a monitor process that runs some of a plan's services, one thread per vcpu. The main
 * thread only relays the supervisor's STOP and KILL messages to the service threads. */
#include "cell.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cell_confine.h"
#include "cell_proto.h"
#include "clock.h"
#include "exit_status.h"
#include "guestmem.h"
#include "sandbox.h"

/* STARTING: its thread builds or wakes it. RUNNING: its thread runs it. SLEEPING: it was
 * swapped out and its thread releases what it held. ASLEEP: no thread, no VM, no mapping: only
 * the slot. DONE: it ended and was reported. */
enum slot_state { SLOT_STARTING, SLOT_RUNNING, SLOT_SLEEPING, SLOT_ASLEEP, SLOT_DONE };

struct cell_slot {
	struct cell *cell;
	unsigned index; /* in the plan */
	struct vmm_service svc;
	pthread_t thread;
	int thread_started; /* a thread to join */
	int thread_exited;  /* ... which has finished */
	enum slot_state state;
	int stop_event; /* DN_EV_STOP asked for before the service ran */
	struct {	/* a forced stop asked for before it ran (kind != NONE) */
		enum vmm_outcome_kind kind;
		int status;
	} kill;
	int wake_wanted;       /* woken while SLEEPING: its thread carries on */
	int rewake;	       /* its sealed thread ended to have a fresh one wake it */
	int saving;	       /* --resume's stop: it is to sleep, and end saved */
	int nic_slept;	       /* the switch's answer to NIC_SLEEP: 1 done, -1 refused */
	unsigned epoch;	       /* counts state changes: a measurement taken across one is stale */
	uint32_t measured_seq; /* its service's idle_seq and epoch when last measured */
	unsigned measured_epoch;
};

struct cell {
	const struct vmm_plan *plan;
	const struct vcpu_kvm *kvm;
	int sock;
	int done_fd;  /* eventfd: a service thread finished */
	int timer_fd; /* the next deadline of a sleeping service */
	pthread_mutex_t lock;
	pthread_cond_t nic_answer; /* NIC_SLEPT arrived */
	int supervisor_gone;
	struct cell_slot *slots;
	unsigned count;
	struct vdisk_worker disks;	  /* serves the virtual disks, if any service has one */
	struct vdisk_worker *disk_worker; /* &disks once started, else NULL */
	struct vmm_service_host host;
	pthread_attr_t attr;
	struct budget_entry *budget; /* the plan's, shared with the supervisor; NULL: no budget */
	/* VMs made ahead for swap-ins (plan->spare_vms of them), once a service has slept. */
	struct vcpu_shell spares[VMM_SPARE_VMS_MAX];
	unsigned nspares;
	int spares_wanted; /* a service slept: swap-ins will come */
	int spare_failed;  /* making one failed, and said so */
};

#define RESIDENT_PERIOD_NS 100000000 /* how often the budget's resident pages are measured */

/* Under cell->lock. The budget counts a service's pages from the moment it runs until it
 * sleeps (its pages are gone by then) or ends. */
static void set_state_locked(struct cell_slot *slot, enum slot_state state)
{
	int came_up = state == SLOT_RUNNING && slot->state == SLOT_STARTING;
	slot->state = state;
	slot->epoch++;
	if (state == SLOT_SLEEPING)
		slot->cell->spares_wanted = 1;
	struct budget_entry *b = slot->svc.budget;
	if (!b)
		return;
	int awake = state == SLOT_RUNNING;
	if (came_up) /* before awake: the budget never sees it awake with an old time */
		__atomic_store_n(&b->woke_ns, clock_mono_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&b->awake, (uint32_t)awake, __ATOMIC_RELAXED);
	if (awake && !b->started_ns)
		__atomic_store_n(&b->started_ns, slot->svc.started_ns, __ATOMIC_RELAXED);
	uint64_t swapped = state == SLOT_SLEEPING || state == SLOT_ASLEEP
				   ? slot->svc.swap.stats.working_set_pages
				   : 0;
	__atomic_store_n(&b->swapped_pages, swapped, __ATOMIC_RELAXED);
	__atomic_store_n(&b->state, (uint32_t)state, __ATOMIC_RELAXED);
	/* Woken: until it is measured, it counts as the working set it is faulting back, so
	 * that the budget sees it at once. */
	if (awake && !__atomic_load_n(&b->resident_pages, __ATOMIC_RELAXED))
		__atomic_store_n(&b->resident_pages, slot->svc.swap.stats.working_set_pages,
				 __ATOMIC_RELAXED);
	if (!awake)
		__atomic_store_n(&b->resident_pages, 0, __ATOMIC_RELAXED);
}

/* Measures the resident guest pages of the running services, for the supervisor's budget.
 * The pages its cell has mapped (its RSS), not those the page cache holds. Each is counted
 * outside cell->lock (a walk of a large RAM is slow, and the service
 * threads and this thread's relaying must not wait for it), and the count is kept only if the
 * service did not change state meanwhile: its mapping was the one counted. One that has
 * idled since its last count is not counted again: with a thousand mostly idle services,
 * their walks ten times a second took most of the CPU. */
static void measure_resident(struct cell *cell)
{
	for (unsigned i = 0; i < cell->count; i++) {
		struct cell_slot *slot = &cell->slots[i];
		pthread_mutex_lock(&cell->lock);
		/* RUNNING: mapped until its thread sets SLEEPING, under this lock. */
		int running = slot->state == SLOT_RUNNING && slot->svc.budget && slot->svc.mem.host;
		const uint8_t *host = slot->svc.mem.host;
		size_t size = slot->svc.mem.size;
		unsigned epoch = slot->epoch;
		uint32_t seq = __atomic_load_n(&slot->svc.idle_seq, __ATOMIC_ACQUIRE);
		int unchanged =
			(seq & 1) && seq == slot->measured_seq && slot->measured_epoch == epoch;
		pthread_mutex_unlock(&cell->lock);
		if (!running || unchanged)
			continue;
		uint64_t pages = swap_count_mapped(host, size);
		pthread_mutex_lock(&cell->lock);
		if (slot->epoch == epoch) {
			__atomic_store_n(&slot->svc.budget->resident_pages, pages,
					 __ATOMIC_RELAXED);
			slot->measured_seq = seq;
			slot->measured_epoch = epoch;
		}
		pthread_mutex_unlock(&cell->lock);
	}
}

static struct cell_slot *slot_of(struct vmm_service *svc)
{
	return (struct cell_slot *)((char *)svc - offsetof(struct cell_slot, svc));
}

/* Under cell->lock. */
static void send_ended_locked(struct cell *cell, struct cell_slot *slot)
{
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = CELL_MSG_ENDED;
	msg.service = slot->index;
	msg.outcome = slot->svc.outcome;
	msg.stats = slot->svc.stats;
	if (cell_msg_send(cell->sock, &msg, NULL, 0, 0) != 0 && !cell->supervisor_gone)
		fprintf(stderr, "denali-run: %s: cannot report its end to the supervisor: %s\n",
			slot->svc.cfg ? slot->svc.cfg->name : "a service", strerror(errno));
}

static void send_ended(struct cell *cell, struct cell_slot *slot)
{
	pthread_mutex_lock(&cell->lock);
	send_ended_locked(cell, slot);
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

/* Has the supervisor keep the service's files open, so that their locks (one run, one
 * writer) outlive the fds the service closes when it sleeps. Without it, it never sleeps. */
static void send_hold(struct cell *cell, struct cell_slot *slot)
{
	struct vmm_service *svc = &slot->svc;
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = CELL_MSG_HOLD;
	msg.service = slot->index;
	int fds[2] = {svc->mem.fd, svc->disk ? svc->disk->file.fd : svc->held_disk_fd};
	pthread_mutex_lock(&cell->lock);
	int rc = cell_msg_send(cell->sock, &msg, fds, fds[1] >= 0 ? 2 : 1, 0);
	pthread_mutex_unlock(&cell->lock);
	svc->locks_held = rc == 0;
	svc->mem.lock_held = rc == 0;
}

/* Hands a spare VM to a service being woken, and has the main thread make the next. */
static int host_take_spare(void *ctx, struct vcpu_shell *out)
{
	struct cell *cell = ctx;
	pthread_mutex_lock(&cell->lock);
	int given = cell->nspares > 0;
	if (given)
		*out = cell->spares[--cell->nspares];
	pthread_mutex_unlock(&cell->lock);
	if (given) {
		uint64_t one = 1;
		(void)!write(cell->done_fd, &one, sizeof(one));
	}
	return given ? 0 : -1;
}

/* On the main thread: makes spare VMs up to the plan's count once a service has slept. A
 * failure (out of memory, of descriptors) is said once; the next sleep tries again, and
 * swap-ins meanwhile make their own VM. */
static void make_spares(struct cell *cell)
{
	for (;;) {
		pthread_mutex_lock(&cell->lock);
		int more = cell->spares_wanted && cell->nspares < cell->plan->spare_vms;
		pthread_mutex_unlock(&cell->lock);
		if (!more)
			return;
		struct vcpu_shell shell;
		char err[256];
		if (vcpu_shell_make(&shell, cell->kvm, err, sizeof(err)) != 0) {
			if (!cell->spare_failed)
				fprintf(stderr, "denali-run: cell: no spare VM for swap-ins (%s)\n",
					err);
			cell->spare_failed = 1;
			pthread_mutex_lock(&cell->lock);
			cell->spares_wanted = 0;
			pthread_mutex_unlock(&cell->lock);
			return;
		}
		pthread_mutex_lock(&cell->lock);
		cell->spares[cell->nspares++] = shell;
		pthread_mutex_unlock(&cell->lock);
	}
}

static int host_nic_attach(void *ctx, struct vmm_service *svc)
{
	return send_nic(ctx, slot_of(svc));
}

/* Asks the switch to let go of the NIC and waits for its answer (the main thread relays it).
 * The supervisor always answers, however busy it is: giving up early would leave the service
 * running while the switch, answering later, put its port to sleep. */
static int host_nic_sleep(void *ctx, struct vmm_service *svc)
{
	struct cell *cell = ctx;
	struct cell_slot *slot = slot_of(svc);
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = CELL_MSG_NIC_SLEEP;
	msg.service = slot->index;
	pthread_mutex_lock(&cell->lock);
	slot->nic_slept = 0;
	int rc = cell_msg_send(cell->sock, &msg, NULL, 0, 0);
	while (rc == 0 && !slot->nic_slept && !cell->supervisor_gone)
		rc = pthread_cond_wait(&cell->nic_answer, &cell->lock);
	int slept = slot->nic_slept == 1;
	pthread_mutex_unlock(&cell->lock);
	return slept ? 0 : -1;
}

/* Ends a service that sleeps, as its stop request says; under cell->lock. */
static void end_sleeper_locked(struct cell *cell, struct cell_slot *slot)
{
	struct vmm_service *svc = &slot->svc;
	vmm_service_end_asleep(svc, (enum vmm_outcome_kind)svc->stop_kind, svc->stop_signal,
			       svc->stop_kind == VMM_OUTCOME_STOPPED ? svc->stop_reason : NULL);
	send_ended_locked(cell, slot);
	set_state_locked(slot, SLOT_DONE);
	/* Under --resume its checkpoint is good: the next run goes on with it. */
	vmm_service_destroy(svc, cell->plan->keep_state ||
					 (svc->persist && !svc->checkpoint_failed && svc->asleep));
}

static void notify_main(struct cell *cell)
{
	uint64_t one = 1;
	if (write(cell->done_fd, &one, sizeof(one)) < 0)
		perror("denali-run: cell: eventfd");
}

enum start_result { START_FAILED = -1, START_RUNS, START_ASLEEP };

/* Builds the service, or under --resume brings it back asleep from what an earlier run saved.
 * One that cannot be resumed (it was running when the last run was killed: it has no
 * checkpoint) starts afresh, and says so. */
static enum start_result start_service(struct cell_slot *slot, char *err, size_t errlen)
{
	struct cell *cell = slot->cell;
	const struct vmm_plan_service *ps = &cell->plan->services[slot->index];
	const char *prefix = cell->plan->count > 1 ? ps->cfg.name : NULL;
	struct vmm_service *svc = &slot->svc;
	int restored = 0;
	if (cell->plan->resume) {
		restored = vmm_service_restore(svc, &ps->cfg, cell->kvm, cell->plan->state_dir,
					       prefix, cell->disk_worker, err, errlen);
		if (restored < 0) {
			fprintf(stderr, "denali-run: %s: %s: starting afresh\n", ps->cfg.name, err);
			restored = 0;
		}
	}
	if (!restored &&
	    vmm_service_start(svc, &ps->cfg, &ps->img, cell->kvm, cell->plan->state_dir, prefix,
			      cell->disk_worker, err, errlen) != 0)
		return START_FAILED;
	svc->host = &cell->host;
	svc->budget = cell->budget ? &cell->budget[slot->index] : NULL;
	svc->persist = cell->plan->resume;
	/* A checkpoint left without its memory file belongs to nothing: it must never meet the
	 * memory of this fresh start. */
	if (svc->persist && !restored && checkpoint_discard(svc->mem.dir) != 0) {
		snprintf(err, errlen, "cannot remove a stale checkpoint in %s", svc->mem.dir);
		return START_FAILED;
	}
	send_hold(cell, slot);
	if (restored) {
		vmm_service_restored(svc);
		return START_ASLEEP;
	}
	if (svc->nic && send_nic(cell, slot) != 0) {
		snprintf(err, errlen, "cannot hand its NIC to the switch: %s", strerror(errno));
		return START_FAILED;
	}
	return START_RUNS;
}

/* Ends a service that sleeps as saved (--resume's stop); under cell->lock. */
static void end_saved_locked(struct cell *cell, struct cell_slot *slot)
{
	struct vmm_service *svc = &slot->svc;
	vmm_service_end_asleep(svc, VMM_OUTCOME_SAVED, 0, NULL);
	send_ended_locked(cell, slot);
	set_state_locked(slot, SLOT_DONE);
	vmm_service_destroy(svc, 1);
}

/* A service that has just gone to sleep (its thread released what it held), or come back
 * asleep from a checkpoint: ends it if that was asked, else has its thread wake it again at
 * once (1), else leaves it ASLEEP (0: the thread ends). Under cell->lock. */
static int settle_sleeper_locked(struct cell *cell, struct cell_slot *slot)
{
	struct vmm_service *svc = &slot->svc;
	if (slot->kill.kind != VMM_OUTCOME_NONE) /* asked for while it was starting */
		vmm_service_request_stop(svc, slot->kill.kind, slot->kill.status);
	if (svc->stop_kind != VMM_OUTCOME_NONE) {
		end_sleeper_locked(cell, slot);
		return 0;
	}
	if (slot->saving) {
		if (!svc->checkpoint_failed) {
			end_saved_locked(cell, slot);
			return 0;
		}
		vmm_service_request_halt(svc, "its checkpoint could not be written");
		end_sleeper_locked(cell, slot);
		return 0;
	}
	/* A restored service with a NIC wakes at once: the switch knows it only once it is up. */
	if (slot->wake_wanted || slot->stop_event ||
	    (slot->state == SLOT_STARTING && svc->cfg->net.enabled)) {
		slot->wake_wanted = 0;
		set_state_locked(slot, SLOT_STARTING);
		return 1;
	}
	set_state_locked(slot, SLOT_ASLEEP);
	return 0;
}

static void *service_thread(void *arg)
{
	struct cell_slot *slot = arg;
	struct cell *cell = slot->cell;
	struct vmm_service *svc = &slot->svc;
	char err[512] = "";
	int woken = svc->asleep, ok;
	if (woken) {
		ok = vmm_service_wake(svc, err, sizeof(err)) == 0;
	} else {
		enum start_result started = start_service(slot, err, sizeof(err));
		ok = started != START_FAILED;
		if (started == START_ASLEEP) {
			pthread_mutex_lock(&cell->lock);
			int wake = settle_sleeper_locked(cell, slot);
			if (!wake)
				goto exit_locked;
			pthread_mutex_unlock(&cell->lock);
			woken = 1;
			ok = vmm_service_wake(svc, err, sizeof(err)) == 0;
		}
	}
	for (;;) {
		if (!ok) {
			svc->outcome.kind = VMM_OUTCOME_HOST_ERROR;
			snprintf(svc->outcome.reason, sizeof(svc->outcome.reason), "%s%s",
				 woken ? "cannot swap it back in: " : "", err);
			break;
		}
		svc->asleep = 0;
		vmm_service_ran(svc);
		pthread_mutex_lock(&cell->lock);
		set_state_locked(slot, SLOT_RUNNING);
		slot->wake_wanted = 0;
		if (slot->stop_event) /* asked for before it ran: once */
			vmm_service_raise(svc, DN_EV_STOP);
		slot->stop_event = 0;
		if (slot->saving)
			__atomic_store_n(&svc->save_asked, 1, __ATOMIC_RELEASE);
		if (slot->kill.kind != VMM_OUTCOME_NONE)
			vmm_service_request_stop(svc, slot->kill.kind, slot->kill.status);
		pthread_mutex_unlock(&cell->lock);
		vmm_service_run(svc);
		if (!svc->asleep)
			break;
		/* Swapped out: no kick may reach this thread from now on, and what it held goes. */
		pthread_mutex_lock(&cell->lock);
		set_state_locked(slot, SLOT_SLEEPING);
		svc->vcpu.thread_bound = 0;
		pthread_mutex_unlock(&cell->lock);
		vmm_service_release(svc);
		pthread_mutex_lock(&cell->lock);
		if (!settle_sleeper_locked(cell, slot))
			goto exit_locked;
		if (sandbox_thread_sealed()) {
			/* Its filter allows no new VM nor io_uring: a fresh thread, which
			 * inherits the cell's, wakes it and seals itself again. */
			set_state_locked(slot, SLOT_ASLEEP);
			slot->rewake = 1;
			goto exit_locked;
		}
		pthread_mutex_unlock(&cell->lock);
		woken = 1;
		ok = vmm_service_wake(svc, err, sizeof(err)) == 0;
	}
	send_ended(cell, slot);
	pthread_mutex_lock(&cell->lock);
	set_state_locked(slot, SLOT_DONE);
	pthread_mutex_unlock(&cell->lock);
	vmm_service_destroy(svc, cell->plan->keep_state);
	pthread_mutex_lock(&cell->lock);
exit_locked:
	slot->thread_exited = 1;
	pthread_mutex_unlock(&cell->lock);
	notify_main(cell);
	return NULL;
}

/* Gives a slot a thread to run (or wake) its service; under cell->lock. */
static void start_thread_locked(struct cell *cell, struct cell_slot *slot)
{
	if (slot->thread_started) /* the one that put it to sleep has ended, or is ending */
		pthread_join(slot->thread, NULL);
	slot->thread_started = 0;
	slot->thread_exited = 0;
	slot->rewake = 0; /* woken already (an event came before the main thread saw it) */
	set_state_locked(slot, SLOT_STARTING);
	if (pthread_create(&slot->thread, &cell->attr, service_thread, slot) == 0) {
		slot->thread_started = 1;
		return;
	}
	struct vmm_service *svc = &slot->svc;
	if (svc->asleep) {
		vmm_service_end_asleep(svc, VMM_OUTCOME_HOST_ERROR, 0,
				       "cannot create a vcpu thread to swap it back in");
		send_ended_locked(cell, slot);
		set_state_locked(slot, SLOT_DONE);
		vmm_service_destroy(svc, cell->plan->keep_state);
		return;
	}
	svc->outcome.kind = VMM_OUTCOME_HOST_ERROR;
	snprintf(svc->outcome.reason, sizeof(svc->outcome.reason), "cannot create its vcpu thread");
	send_ended_locked(cell, slot);
	set_state_locked(slot, SLOT_DONE);
}

/* Wakes a sleeping service (an event, a frame, its deadline); under cell->lock. */
static void wake_locked(struct cell *cell, struct cell_slot *slot)
{
	if (slot->state == SLOT_ASLEEP)
		start_thread_locked(cell, slot);
	else if (slot->state == SLOT_SLEEPING || slot->state == SLOT_RUNNING)
		slot->wake_wanted = 1; /* RUNNING: it is on its way to sleep (its NIC already is) */
}

static int64_t sleeper_due(const struct vmm_service *svc)
{
	int64_t due = vmm_service_host_time(svc, svc->idle_call.deadline_ns);
	if (svc->timer_deadline_ns) {
		int64_t timer = vmm_service_host_time(svc, svc->timer_deadline_ns);
		if (timer < due)
			due = timer;
	}
	return due;
}

/* Wakes the sleepers whose timer or idle deadline has come, and arms timer_fd for the next. */
static void wake_due(struct cell *cell)
{
	int64_t now = clock_mono_ns(), next = INT64_MAX;
	pthread_mutex_lock(&cell->lock);
	for (unsigned i = 0; i < cell->count; i++) {
		struct cell_slot *slot = &cell->slots[i];
		if (slot->state != SLOT_ASLEEP)
			continue;
		int64_t due = sleeper_due(&slot->svc);
		if (due <= now)
			wake_locked(cell, slot);
		else if (due < next)
			next = due;
	}
	pthread_mutex_unlock(&cell->lock);
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	if (next != INT64_MAX)
		its.it_value = clock_timespec(next);
	timerfd_settime(cell->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static struct cell_slot *slot_for(struct cell *cell, uint32_t service)
{
	unsigned first = cell->slots[0].index;
	if (service < first || service - first >= cell->count)
		return NULL;
	return &cell->slots[service - first];
}

/* Raises DN_EV_STOP in a service, whatever its state; under cell->lock. */
static void stop_event_locked(struct cell *cell, struct cell_slot *slot)
{
	struct vmm_service *svc = &slot->svc;
	if (slot->state == SLOT_RUNNING) {
		vmm_service_raise(svc, DN_EV_STOP);
		/* It may be on its way to sleep with the event in its memory. */
		slot->wake_wanted = 1;
	} else if (slot->state == SLOT_SLEEPING || slot->state == SLOT_ASLEEP) {
		vmm_service_raise_asleep(svc, DN_EV_STOP);
		wake_locked(cell, slot);
	} else if (slot->state == SLOT_STARTING)
		slot->stop_event = 1; /* raised when it runs */
}

/* Sends the live counters of one service (not ended) to the supervisor; under cell->lock,
 * which keeps it from sleeping or ending meanwhile. */
static void send_stats_locked(struct cell *cell, struct cell_slot *slot)
{
	struct cell_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = CELL_MSG_STATS;
	msg.service = slot->index;
	msg.outcome.status = (int)slot->state;
	/* A service being built or woken has nothing stable to read yet. */
	if (slot->state != SLOT_STARTING) {
		int running = slot->state == SLOT_RUNNING;
		uint64_t cpu = 0;
		clockid_t clock;
		if (running && pthread_getcpuclockid(slot->thread, &clock) == 0)
			cpu = clock_ns_of(clock);
		vmm_service_stats_now(&slot->svc, running, cpu, &msg.stats);
	}
	cell_msg_send(cell->sock, &msg, NULL, 0, 0);
}

static void send_all_stats_locked(struct cell *cell, int ask)
{
	for (unsigned i = 0; i < cell->count; i++)
		if (cell->slots[i].state != SLOT_DONE)
			send_stats_locked(cell, &cell->slots[i]);
	struct cell_msg done;
	memset(&done, 0, sizeof(done));
	done.type = CELL_MSG_STATS_DONE;
	done.outcome.status = ask;
	cell_msg_send(cell->sock, &done, NULL, 0, 0);
}

/* A message about one service. Under cell->lock. */
static void relay_one_locked(struct cell *cell, const struct cell_msg *msg)
{
	struct cell_slot *slot = slot_for(cell, msg->service);
	if (!slot)
		return;
	struct vmm_service *svc = &slot->svc;
	switch (msg->type) {
	case CELL_MSG_HALT: {
		char reason[sizeof(svc->stop_reason)];
		snprintf(reason, sizeof(reason), "%.*s", (int)sizeof(reason) - 1,
			 msg->outcome.reason);
		if (slot->state == SLOT_RUNNING || slot->state == SLOT_SLEEPING ||
		    slot->state == SLOT_ASLEEP)
			vmm_service_request_halt(svc, reason);
		if (slot->state == SLOT_ASLEEP)
			end_sleeper_locked(cell, slot);
		break;
	}
	case CELL_MSG_NIC_SLEPT:
		slot->nic_slept = msg->outcome.status == 0 ? 1 : -1;
		pthread_cond_broadcast(&cell->nic_answer);
		break;
	case CELL_MSG_WAKE: wake_locked(cell, slot); break;
	case CELL_MSG_STOP_ONE: stop_event_locked(cell, slot); break;
	case CELL_MSG_SWAP_OUT:
		if (slot->state == SLOT_RUNNING) {
			__atomic_store_n(&svc->swap_asked, 1, __ATOMIC_RELEASE);
			vcpu_kick(&svc->vcpu); /* an idle one goes now, a running one at its idle */
		}
		break;
	default: break;
	}
}

/* Applies a supervisor message to the services of the cell it concerns. */
static void relay(struct cell *cell, const struct cell_msg *msg)
{
	pthread_mutex_lock(&cell->lock);
	if (msg->type == CELL_MSG_STATS_ASK) {
		send_all_stats_locked(cell, msg->outcome.status);
		pthread_mutex_unlock(&cell->lock);
		return;
	}
	if (msg->type != CELL_MSG_STOP && msg->type != CELL_MSG_KILL &&
	    msg->type != CELL_MSG_SAVE) {
		relay_one_locked(cell, msg);
		pthread_mutex_unlock(&cell->lock);
		return;
	}
	for (unsigned i = 0; i < cell->count; i++) {
		struct cell_slot *slot = &cell->slots[i];
		struct vmm_service *svc = &slot->svc;
		if (msg->type == CELL_MSG_SAVE) {
			slot->saving = 1;
			if (slot->state == SLOT_RUNNING) {
				__atomic_store_n(&svc->save_asked, 1, __ATOMIC_RELEASE);
				vcpu_kick(&svc->vcpu); /* it sleeps, saved, at its next idle */
			}
			if (slot->state == SLOT_ASLEEP)
				end_saved_locked(cell, slot);
		} else if (msg->type == CELL_MSG_STOP) {
			stop_event_locked(cell, slot);
		} else {
			if (slot->state == SLOT_RUNNING || slot->state == SLOT_SLEEPING ||
			    slot->state == SLOT_ASLEEP)
				vmm_service_request_stop(svc, msg->outcome.kind,
							 msg->outcome.status);
			if (slot->state == SLOT_ASLEEP)
				end_sleeper_locked(cell, slot); /* without swapping it in */
			slot->kill.kind = msg->outcome.kind;
			slot->kill.status = msg->outcome.status;
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
	/* One malloc arena: vcpu threads come and go with their services' sleeps, and each
	 * arena they would make keeps pages that no sleeping service needs. */
	mallopt(M_ARENA_MAX, 1);
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

/* Joins the threads that have finished; returns 1 while some service is not done or some
 * thread still runs. */
static int reap_threads(struct cell *cell)
{
	int busy = 0, joined = 0;
	pthread_mutex_lock(&cell->lock);
	for (unsigned i = 0; i < cell->count; i++) {
		struct cell_slot *slot = &cell->slots[i];
		if (slot->thread_started && slot->thread_exited) {
			pthread_join(slot->thread, NULL);
			slot->thread_started = 0;
			joined++;
		}
		if (slot->rewake && !slot->thread_started) {
			slot->rewake = 0;
			if (slot->state == SLOT_ASLEEP) /* not ended or woken meanwhile */
				start_thread_locked(cell, slot);
		}
		busy |= slot->state != SLOT_DONE || slot->thread_started;
	}
	pthread_mutex_unlock(&cell->lock);
	/* What the ended threads freed (their service's buffers) goes back to the host, not to
	 * malloc's per-thread arenas: a sleeping service should cost its slot and no more. */
	if (joined)
		malloc_trim(0);
	return busy;
}

/* Relays every message the supervisor has sent: a busy fleet sends many at once (wakes,
 * swap-outs, NIC answers that vcpu threads wait for). */
static void read_supervisor(struct cell *cell)
{
	ssize_t got;
	for (;;) {
		struct cell_msg msg;
		int passed[CELL_MSG_FDS_MAX];
		unsigned npassed;
		got = cell_msg_recv(cell->sock, &msg, passed, &npassed, MSG_DONTWAIT);
		for (unsigned i = 0; i < npassed; i++)
			close(passed[i]); /* the supervisor sends none */
		if (got != (ssize_t)sizeof(msg))
			break;
		relay(cell, &msg);
	}
	if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (got != 0)
		fprintf(stderr,
			"denali-run: cell: cannot read from the supervisor (%s): stopping\n",
			got < 0 ? strerror(errno) : "a short message");
	/* No one to report to: stop everything. */
	pthread_mutex_lock(&cell->lock);
	cell->supervisor_gone = 1;
	pthread_cond_broadcast(&cell->nic_answer);
	pthread_mutex_unlock(&cell->lock);
	struct cell_msg kill = {.type = CELL_MSG_KILL};
	kill.outcome.kind = VMM_OUTCOME_SIGNALED;
	kill.outcome.status = SIGHUP;
	relay(cell, &kill);
}

int cell_run(const struct vmm_plan *plan, const struct vcpu_kvm *kvm, int sock, unsigned first,
	     unsigned count, struct budget_entry *budget)
{
	cell_signals();
	/* Sandbox: rights were given up in the supervisor before the fork (privileges.h); the
	 * cell confines itself to its files before its first thread, so that every thread has
	 * it. The seccomp filter comes after this. */
	char why[512];
	int confined = cell_confine(plan, first, count, why, sizeof(why));
	if (confined < 0) {
		fprintf(stderr, "denali-run: cell: %s\n", why);
		return DENALI_EXIT_HOST;
	}
	if (confined)
		cell_confine_probe();
	/* Sealed before any service thread: they and the disk worker inherit this filter and
	 * stack their own. What it reads comes from the supervisor. Privileges and Landlock
	 * (src/sandbox) come just before this. */
	sandbox_seal_or_exit(SANDBOX_CELL);
	struct cell cell = {
		.plan = plan, .kvm = kvm, .sock = sock, .count = count, .budget = budget};
	cell.host = (struct vmm_service_host){.ctx = &cell,
					      .nic_sleep = host_nic_sleep,
					      .nic_attach = host_nic_attach,
					      .take_spare = host_take_spare};
	pthread_mutex_init(&cell.lock, NULL);
	pthread_cond_init(&cell.nic_answer, NULL);
	cell.done_fd = eventfd(0, EFD_CLOEXEC);
	cell.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	cell.slots = calloc(count, sizeof(*cell.slots));
	if (cell.done_fd < 0 || cell.timer_fd < 0 || !cell.slots) {
		perror("denali-run: cell");
		free(cell.slots);
		if (cell.done_fd >= 0)
			close(cell.done_fd);
		if (cell.timer_fd >= 0)
			close(cell.timer_fd);
		pthread_cond_destroy(&cell.nic_answer);
		pthread_mutex_destroy(&cell.lock);
		return 1;
	}
	start_disk_worker(&cell, first, count);
	pthread_attr_init(&cell.attr);
	pthread_attr_setstacksize(&cell.attr, 1u << 20);
	pthread_mutex_lock(&cell.lock);
	for (unsigned i = 0; i < count; i++) {
		struct cell_slot *slot = &cell.slots[i];
		slot->cell = &cell;
		slot->index = first + i;
		slot->svc.budget = budget ? &budget[slot->index] : NULL;
		start_thread_locked(&cell, slot);
	}
	pthread_mutex_unlock(&cell.lock);
	int64_t measured = 0;
	while (reap_threads(&cell)) {
		wake_due(&cell);
		make_spares(&cell);
		int timeout = -1;
		if (cell.budget) {
			int64_t now = clock_mono_ns();
			if (now - measured >= RESIDENT_PERIOD_NS) {
				measure_resident(&cell);
				measured = now;
			}
			timeout = (int)((measured + RESIDENT_PERIOD_NS - now) / 1000000) + 1;
		}
		struct pollfd fds[3] = {
			{.fd = cell.done_fd, .events = POLLIN},
			{.fd = sock, .events = cell.supervisor_gone ? 0 : POLLIN},
			{.fd = cell.timer_fd, .events = POLLIN},
		};
		if (poll(fds, 3, timeout) < 0) {
			if (errno == EINTR)
				continue;
			/* Only ENOMEM is possible: wait a little rather than lose the services. */
			perror("denali-run: cell: poll");
			usleep(10000);
			continue;
		}
		uint64_t n;
		if (fds[0].revents & POLLIN)
			(void)!read(cell.done_fd, &n, sizeof(n));
		if (fds[2].revents & POLLIN)
			(void)!read(cell.timer_fd, &n, sizeof(n));
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR))
			read_supervisor(&cell);
	}
	pthread_attr_destroy(&cell.attr);
	for (unsigned i = 0; i < cell.nspares; i++)
		vcpu_shell_free(&cell.spares[i]);
	if (cell.disk_worker)
		vdisk_worker_stop(cell.disk_worker);
	free(cell.slots);
	close(cell.done_fd);
	close(cell.timer_fd);
	return 0;
}
