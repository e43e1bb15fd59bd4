/* A cell: a monitor process that runs some of a plan's services, one thread per vcpu. */
#ifndef VMM_CELL_H
#define VMM_CELL_H

#include "budget.h"
#include "plan.h"
#include "vcpu.h"

/* Runs services [first, first+count) of the plan (their rows of budget, shared with the
 * supervisor, kept up to date when there is a memory budget), reporting each end to the supervisor
 * on sock, and obeying its STOP and KILL messages. Returns when every service has ended; the caller
 * exits with the returned status. Called in the child right after fork. */
int cell_run(const struct vmm_plan *plan, const struct vcpu_kvm *kvm, int sock, unsigned first,
	     unsigned count, struct budget_entry *budget);

#endif
