/* --stats: every service's counters, written as JSON when the run ends. */
#ifndef VMM_STATS_H
#define VMM_STATS_H

#include <jansson.h>

#include "plan.h"
#include "service.h"

/* Writes {"services": [...]} to plan->stats_path; complains on stderr if it cannot. */
void vmm_stats_write(const struct vmm_plan *plan, const struct vmm_outcome *outcomes,
		     struct vmm_service_stats *const *stats);

/* One service's object in that file (and in the control socket's stats); swappable: it has a
 * "swap" object. A new reference. */
json_t *vmm_stats_service_json(const struct vmm_plan_service *ps, int swappable,
			       const struct vmm_outcome *o, const struct vmm_service_stats *st);

/* The exit status denali-run gives for outcome o of a service alone (docs/cli.md): its own when
 * it exited, 126 when it was stopped (by the monitor, or killed through the control socket),
 * 124 for --timeout, 128+N for signal N, 0 saved, 125 for a host error or a loss; 0 while it
 * runs. Pure. */
int vmm_outcome_exit_status(const struct vmm_outcome *o);

/* The name of hypercall nr ("console", ...), or NULL. */
const char *vmm_hypercall_name(unsigned nr);

#endif
