/* The supervisor: places a plan's services on cell processes, relays stop requests, reports
 * how every service ended, and turns that into denali-run's exit status. */
#ifndef VMM_SUPERVISOR_H
#define VMM_SUPERVISOR_H

#include "plan.h"
#include "vcpu.h"

/* Runs the plan to the end (services started through the control socket are added to it).
 * Returns denali-run's exit status (docs/cli.md). */
int vmm_supervise(struct vmm_plan *plan, const struct vcpu_kvm *kvm);

/* Whether the supervisor has a handler for control command cmd (an enum ctl_cmd): every
 * command of the protocol's table should have one (a unit test checks). */
int vmm_control_handled(unsigned cmd);

#endif
