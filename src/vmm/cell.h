/* A cell: a monitor process that runs some of a plan's services, one thread per vcpu. */
#ifndef VMM_CELL_H
#define VMM_CELL_H

#include "plan.h"
#include "vcpu/vcpu.h"

/* Runs services [first, first+count) of the plan, reporting each end to the supervisor on
 * sock, and obeying its STOP and KILL messages. Returns when every service has ended; the
 * caller exits with the returned status. Called in the child right after fork. */
int cell_run(const struct vmm_plan *plan, const struct vcpu_kvm *kvm, int sock, unsigned first,
	     unsigned count);

#endif
