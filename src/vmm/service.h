/* One service: its guest RAM, its VM and vcpu, its console, its events and timer, and how it
 * ended. A service runs on one thread, its vcpu thread; other threads may raise its events or
 * ask it to stop. */
#ifndef VMM_SERVICE_H
#define VMM_SERVICE_H

#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "budget.h"
#include "checkpoint.h"
#include "config.h"
#include "console.h"
#include "denali/abi.h"
#include "guestmem.h"
#include "loader.h"
#include "swap.h"
#include "vcpu.h"
#include "vcpu_quota.h"
#include "vdisk_worker.h"

enum vmm_outcome_kind {
	VMM_OUTCOME_NONE = 0,	/* still running */
	VMM_OUTCOME_EXITED,	/* DN_HC_EXIT: status holds the guest's exit status */
	VMM_OUTCOME_STOPPED,	/* stopped by the monitor: abort, fault, broken contract */
	VMM_OUTCOME_TIMEOUT,	/* ran past --timeout */
	VMM_OUTCOME_SIGNALED,	/* denali-run got a signal: status holds it */
	VMM_OUTCOME_HOST_ERROR, /* the host failed (an ioctl, the state directory) */
	VMM_OUTCOME_LOST,	/* its cell died before it ended, or it could not be resumed */
	VMM_OUTCOME_SAVED,	/* stopped asleep, its checkpoint kept for --resume */
};

struct vmm_outcome {
	enum vmm_outcome_kind kind;
	int status;
	int has_rip;
	uint64_t rip;
	char reason[768];
};

/* Counters for --stats; plain values so that a cell can send them as they are. */
struct vmm_service_stats {
	uint64_t exits[VCPU_EXIT_REASONS]; /* by KVM_EXIT_* reason */
	uint64_t hypercalls[DN_HC_MAX];	   /* by number */
	uint64_t events_raised;		   /* events raised, also while already pending */
	uint64_t events_delivered;	   /* event bits handed to the guest (idle or interrupt) */
	uint64_t interrupts;		   /* virtual interrupt deliveries */
	uint64_t idles;			   /* DN_HC_IDLE calls that waited */
	uint64_t cpu_ns;		   /* CPU time of the vcpu thread */
	uint64_t cpu_throttled_ns;	   /* time its vcpu slept for its cpu_limit */
	uint64_t wall_ns;		   /* from start to end */
	uint64_t resident_peak_bytes;	   /* guest pages resident at the end (peak while mapped) */
	struct { /* the switch's view of its NIC (the supervisor fills it) */
		int present;
		uint64_t tx_frames, tx_spoofed, tx_dropped, rx_frames, rx_dropped, ring_errors;
		uint64_t held, held_dropped, asleep_ignored; /* frames that came while it slept */
		uint64_t tx_blocked; /* its TX ring waited for a sleeper's hold to have room */
		uint64_t tx_throttled, tx_throttled_ns; /* frames its TX limit held back, time */
		uint64_t rx_throttled;			/* frames its RX limit dropped */
	} nic;
	struct swap_stats swap; /* swap-outs and swap-ins while it ran */
	int disk_present;
	struct vdisk_dev_stats disk; /* its virtual disk's counters, final once it ended */
};

struct vmm_service;

/* What the cell does for a service that goes to sleep (swapped out, holding nothing) and wakes:
 * the supervisor's switch must let go of its NIC before its RAM is dropped, and take it again
 * at wake. Both return 0, or -1 (then the service stays awake, or cannot run). */
struct vmm_service_host {
	void *ctx;
	int (*nic_sleep)(void *ctx, struct vmm_service *svc);
	int (*nic_attach)(void *ctx, struct vmm_service *svc);
	/* A VM made ahead for a swap-in into *out: 0, or -1 if there is none (may be NULL). */
	int (*take_spare)(void *ctx, struct vcpu_shell *out);
};

struct vmm_service {
	const struct vmm_service_config *cfg;
	struct guestmem mem;
	struct vcpu vcpu;
	struct dn_vregs *vregs; /* in guest RAM; the guest may write it at any time */
	struct vmm_console console;
	struct vmm_outcome outcome;
	volatile sig_atomic_t stop_kind; /* set asynchronously: why the stop was requested */
	volatile sig_atomic_t stop_signal;
	char stop_reason[256]; /* for VMM_OUTCOME_STOPPED requests: why */
	/* The virtual NIC, if the service has one. kick: the guest's `outl` to DN_NIC_KICK_PORT
	 * signals it in the kernel (KVM_IOEVENTFD); wake: the switch signals it when frames
	 * arrive for an idle guest. Both also go to the supervisor's switch. */
	struct dn_nic *nic;
	int nic_kick_fd, nic_wake_fd;
	/* The virtual disk, if the service has one: served by the cell's disk worker, which the
	 * guest's `outl` to DN_DISK_KICK_PORT wakes through disk_kick_fd (KVM_IOEVENTFD). */
	struct vdisk_dev *disk;
	struct vdisk_port *disk_port;
	int disk_kick_fd;
	timer_t timer; /* the guest's one-shot timer; kicks the vcpu thread when it fires */
	int timer_created;
	uint64_t timer_deadline_ns; /* guest time; 0 = disarmed */
	struct vmm_service_stats stats;
	const struct vcpu_kvm *kvm; /* to build its VM again after a swap-out */
	struct swap_state swap;
	int64_t started_ns;	  /* host clock when the vcpu was ready */
	struct vcpu_quota quota;  /* its cpu_limit, on its vcpu thread */
	uint64_t run_cpu0;	  /* its thread's CPU time when it last began to run */
	int64_t first_console_ns; /* host clock of the first console output, 0 if none */
	/* Sleep: swapped out inside an idle with its thread, VM, mapping and fds all released;
	 * only this struct is left. The idle call is finished when it wakes. */
	const struct vmm_service_host *host;
	struct vdisk_worker *disk_worker;
	int asleep;
	uint32_t idle_arg;	     /* the guest's dn_hc_idle struct, whose call is pending */
	struct dn_hc_idle idle_call; /* ... and our copy of it */
	uint64_t wake_events;	     /* raised while it slept: pending once it is back */
	struct vdisk_dev_saved disk_saved;
	volatile int swap_asked; /* swap it out at its next idle (the memory budget) */
	volatile int save_asked; /* a stop under --resume: swap it out, at a later idle if busy */
	/* Odd while its vcpu waits in an idle, even while the guest runs (atomic): an idle guest
	 * maps no new pages, so its cell need not measure it again. */
	uint32_t idle_seq;
	int locks_held;		     /* the supervisor holds its files' locks: it may sleep */
	struct budget_entry *budget; /* its row of the memory budget's table, or NULL */
	int persist;		     /* --resume: a checkpoint is saved each time it sleeps */
	int checkpoint_failed;	     /* said once: it will not be resumable */
	int held_disk_fd;	     /* restored: its disk image, until the supervisor holds it */
	uint32_t hc_arg;	     /* the argument of the hypercall being handled */
};

/* Creates the service's RAM file and VM, loads the image, boot info and vregs, opens its disk
 * (served by disk_worker, which a service with a disk needs), and leaves the vcpu ready at the
 * entry point. On failure everything is undone and err says why. */
int vmm_service_start(struct vmm_service *svc, const struct vmm_service_config *cfg,
		      const struct vmm_image *img, const struct vcpu_kvm *kvm,
		      const char *state_dir, const char *console_prefix,
		      struct vdisk_worker *disk_worker, char *err, size_t errlen);

/* Runs the service on the calling thread until it exits or is stopped; svc->outcome says how
 * it ended and svc->stats what it did. */
void vmm_service_run(struct vmm_service *svc);

/* Raises events (DN_EV_* bits) for the service and wakes its vcpu. Any thread. */
void vmm_service_raise(struct vmm_service *svc, uint64_t events);

/* Asks a running service to stop now (kind TIMEOUT or SIGNALED). From a signal handler on the
 * service's thread, or from any thread once it runs. */
void vmm_service_request_stop(struct vmm_service *svc, enum vmm_outcome_kind kind, int signo);

/* Asks a running service to stop as VMM_OUTCOME_STOPPED with reason. Any thread. */
void vmm_service_request_halt(struct vmm_service *svc, const char *reason);

/* Tells the switch that the guest's TX ring has frames (the guest queued them and idles
 * instead of kicking). */
void vmm_service_nic_flush(struct vmm_service *svc);

/* Tells the disk worker that the guest's request ring has requests (the same, for the disk). */
void vmm_service_disk_flush(struct vmm_service *svc);

/* Records how the service ended and returns VCPU_HALT, for hypercall handlers. The RIP of the
 * guest is added to the record. */
enum vcpu_action vmm_service_halt(struct vmm_service *svc, enum vmm_outcome_kind kind, int status,
				  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Arms (deadline > 0) or disarms the guest's one-shot timer; deadline is guest time in ns. */
void vmm_service_timer_set(struct vmm_service *svc, uint64_t deadline_ns);

/* Raises DN_EV_TIMER if the timer is due. Returns the host time of the next deadline, or
 * INT64_MAX if none is armed. */
int64_t vmm_service_timer_poll(struct vmm_service *svc);

/* Host CLOCK_MONOTONIC time of guest time ns, saturating. */
int64_t vmm_service_host_time(const struct vmm_service *svc, uint64_t guest_ns);

/* Swaps the idle service out of memory (swap.h), or back in; on its vcpu thread, inside an
 * idle. 0, or -1 with err. */
int vmm_service_swap_out(struct vmm_service *svc, char *err, size_t errlen);
int vmm_service_swap_in(struct vmm_service *svc, char *err, size_t errlen);

/* Tries to put an idle service to sleep, on its thread, inside DN_HC_IDLE: quiet disk, NIC let
 * go by the switch, no event pending, then swapped out. 1: asleep (the run loop must return
 * and the thread release it with vmm_service_release); 0: not now (it has work; everything is
 * as it was); -1 with err: the swap-out failed (it stays in memory). */
int vmm_service_sleep(struct vmm_service *svc, char *err, size_t errlen);

/* Releases what a sleeping service held (timer, disk, NIC fds, RAM mapping): its thread may
 * end. */
void vmm_service_release(struct vmm_service *svc);

/* Takes back what a sleeping service needs to run: RAM (its system area rebuilt), VM and vcpu
 * (swapped in, the state sanitized), NIC and disk. On the thread that will run it. 0, or -1
 * with err (it cannot run). */
int vmm_service_wake(struct vmm_service *svc, char *err, size_t errlen);

/* Raises events for a sleeping service: they are pending when it wakes. Under the lock that
 * guards its sleep (the cell's). */
void vmm_service_raise_asleep(struct vmm_service *svc, uint64_t events);

/* Its counters now, for live stats, from another thread while its own may run it: counters
 * only (a read may be a moment old). running: its thread runs it now, and thread_cpu_ns is that
 * thread's CPU time; the caller keeps the service from sleeping or ending meanwhile (its disk
 * is freed only once it no longer runs). */
void vmm_service_stats_now(const struct vmm_service *svc, int running, uint64_t thread_cpu_ns,
			   struct vmm_service_stats *out);

/* Ends a sleeping service without waking it, as kind/status (reason for STOPPED). */
void vmm_service_end_asleep(struct vmm_service *svc, enum vmm_outcome_kind kind, int status,
			    const char *reason);

/* Finishes the idle a sleeping service was swapped out in, once it is awake: waits for its
 * events or deadline as DN_HC_IDLE does (it may go to sleep again: VCPU_SUSPEND). */
enum vcpu_action vmm_hypercall_idle_resume(struct vmm_service *svc);

/* --resume: brings back a service saved by an earlier run, asleep (its memory file open and
 * locked, its disk image too, nothing mapped). 1: restored; 0: nothing saved (start it
 * afresh); -1 with err saying why it cannot be resumed (its files are removed: what it was is
 * lost, and the caller starts it afresh). */
int vmm_service_restore(struct vmm_service *svc, const struct vmm_service_config *cfg,
			const struct vcpu_kvm *kvm, const char *state_dir,
			const char *console_prefix, struct vdisk_worker *disk_worker, char *err,
			size_t errlen);

/* Once the supervisor holds a restored service's files (CELL_MSG_HOLD): closes its own. */
void vmm_service_restored(struct vmm_service *svc);

/* Notes that the service runs now (for the memory budget's least-recently-run order). */
void vmm_service_ran(struct vmm_service *svc);

/* Releases the VM, timer and RAM; the memory file stays only if keep_state. */
void vmm_service_destroy(struct vmm_service *svc, int keep_state);

/* The hypercall table's entry point: nr is below DN_HC_MAX, arg the guest's 32-bit value. */
enum vcpu_action vmm_hypercall_dispatch(struct vmm_service *svc, unsigned nr, uint32_t arg);

#endif
