/* A run's plan: every validated service and the options that apply to all of them. Built by
 * main before anything starts; the supervisor and (through fork) every cell read it. */
#ifndef VMM_PLAN_H
#define VMM_PLAN_H

#include <limits.h>
#include <stdint.h>

#include "config.h"
#include "loader.h"

struct vmm_plan_service {
	struct vmm_service_config cfg;
	struct vmm_image img; /* services with the same image path share one copy */
	int owns_image;	      /* this entry frees img.data */
};

struct vmm_plan {
	struct vmm_plan_service *services;
	unsigned count;
	char state_dir[PATH_MAX];
	int keep_state;
	unsigned cell_size; /* services per cell process */
	double timeout_s;   /* 0: none */
	double grace_s;	    /* after DN_EV_STOP, before a forced stop */
	int quiet;
	const char *stats_path; /* NULL: no --stats */
	uint64_t memory_budget; /* --memory-budget: bytes of guest memory resident, 0: none */
	int resume; /* --resume: bring back saved services; a stop saves them rather than ends */
	const char *control_path;   /* --control: the control socket, NULL: none */
	const char *metrics_listen; /* --metrics-listen ADDR:PORT, NULL: none */
	int ready_fd;		    /* --detach: told once the fleet is up (detach.h), else -1 */
};

#endif
