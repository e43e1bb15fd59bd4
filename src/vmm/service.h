/* One service: its guest RAM, its VM and vcpu, its console, and how it ended. */
#ifndef VMM_SERVICE_H
#define VMM_SERVICE_H

#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "console.h"
#include "denali/abi.h"
#include "guestmem.h"
#include "loader.h"
#include "vcpu/vcpu.h"

enum vmm_outcome_kind {
	VMM_OUTCOME_NONE = 0,	/* still running */
	VMM_OUTCOME_EXITED,	/* DN_HC_EXIT: status holds the guest's exit status */
	VMM_OUTCOME_STOPPED,	/* stopped by the monitor: abort, fault, broken contract */
	VMM_OUTCOME_TIMEOUT,	/* ran past --timeout */
	VMM_OUTCOME_SIGNALED,	/* denali-run got a signal: status holds it */
	VMM_OUTCOME_HOST_ERROR, /* the host failed (an ioctl) */
};

struct vmm_outcome {
	enum vmm_outcome_kind kind;
	int status;
	int has_rip;
	uint64_t rip;
	char reason[768];
};

struct vmm_service {
	const struct vmm_service_config *cfg;
	struct guestmem mem;
	struct vcpu vcpu;
	struct vmm_console console;
	struct vmm_outcome outcome;
	volatile sig_atomic_t stop_kind; /* set asynchronously: why the stop was requested */
	volatile sig_atomic_t stop_signal;
	uint64_t hypercalls[DN_HC_MAX]; /* calls made, by number */
	int64_t started_ns;		/* host clock when the vcpu was ready */
	int64_t first_console_ns;	/* host clock of the first console output, 0 if none */
};

/* Creates the service's RAM file and VM, loads the image and boot info, and leaves the vcpu
 * ready at the entry point. On failure everything is undone and err says why. */
int vmm_service_start(struct vmm_service *svc, const struct vmm_service_config *cfg,
		      const struct vmm_image *img, const struct vcpu_kvm *kvm,
		      const char *state_dir, const char *console_prefix, char *err, size_t errlen);

/* Runs the service until it exits or is stopped; svc->outcome says how it ended. */
void vmm_service_run(struct vmm_service *svc);

/* Asks a running service to stop (kind TIMEOUT or SIGNALED). Async-signal-safe. */
void vmm_service_request_stop(struct vmm_service *svc, enum vmm_outcome_kind kind, int signo);

/* Records how the service ended and returns VCPU_HALT, for hypercall handlers. The RIP of the
 * guest is added to the record. */
enum vcpu_action vmm_service_halt(struct vmm_service *svc, enum vmm_outcome_kind kind, int status,
				  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Releases the VM and RAM; the memory file stays only if keep_state. */
void vmm_service_destroy(struct vmm_service *svc, int keep_state);

/* The hypercall table's entry point: nr is below DN_HC_MAX, arg the guest's 32-bit value. */
enum vcpu_action vmm_hypercall_dispatch(struct vmm_service *svc, unsigned nr, uint32_t arg);

#endif
