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

/* The name of hypercall nr ("console", ...), or NULL. */
const char *vmm_hypercall_name(unsigned nr);

#endif
