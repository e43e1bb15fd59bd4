/* A run's plan: every validated service and the options that apply to all of them. Built by
 * main before anything starts; the supervisor and (through fork) every cell read it. The
 * control socket's start adds services to the supervisor's copy: a cell sees the plan as it
 * was when the cell was forked, which holds its own services. */
#ifndef VMM_PLAN_H
#define VMM_PLAN_H

#include <limits.h>
#include <stdint.h>

#include "config.h"
#include "loader.h"
#include "privileges.h"

struct vmm_plan_service {
	struct vmm_service_config cfg;
	struct vmm_image img; /* services with the same image path share one copy */
	int owns_image;	      /* this entry frees img.data */
};

#define VMM_PLAN_SERVICES_MAX 100000u
#define VMM_SPARE_VMS_MAX 8u /* --spare-vms */

struct vmm_plan {
	struct vmm_plan_service *services;
	unsigned count, capacity;
	char state_dir[PATH_MAX];
	int keep_state;
	unsigned cell_size; /* services per cell process */
	unsigned spare_vms; /* VMs a cell keeps made for swap-ins, once a service of it slept */
	double timeout_s;   /* 0: none */
	double grace_s;	    /* after DN_EV_STOP, before a forced stop */
	int quiet;
	const char *stats_path; /* NULL: no --stats */
	uint64_t memory_budget; /* --memory-budget: bytes of guest memory resident, 0: none */
	int resume; /* --resume: bring back saved services; a stop saves them rather than ends */
	const char *control_path;   /* --control: the control socket, NULL: none */
	const char *metrics_listen; /* --metrics-listen ADDR:PORT, NULL: none */
	int ready_fd;		    /* --detach: told once the fleet is up (detach.h), else -1 */
	struct privileges_target rights; /* --user; what the processes give up after setup */
};

/* Room for n services without growing (startup knows its count: a sleeper should not pay for
 * slack). 0, or -1 out of memory. */
int vmm_plan_reserve(struct vmm_plan *p, unsigned n);

/* Loads and checks the service file (its own keys, a name no service of the plan has, its image)
 * and appends the service. Returns 0, or -1 with err naming the file and the problem (the plan
 * unchanged). */
int vmm_plan_add(struct vmm_plan *p, const char *file, const struct vmm_config_limits *limits,
		 char *err, size_t errlen);

/* The fleet-wide checks, once services are added: NIC defaults and uniqueness, disk images,
 * a disk-backed state folder when some service may swap. 0, or -1 with err. */
int vmm_plan_check(struct vmm_plan *p, char *err, size_t errlen);

/* Removes the last service added (a start that failed its checks). */
void vmm_plan_drop_last(struct vmm_plan *p);

void vmm_plan_free(struct vmm_plan *p);

#endif
