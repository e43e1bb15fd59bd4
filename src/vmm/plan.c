/* Building a plan: one service file at a time, at startup and for the control socket's start. */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_disk.h"
#include "plan_net.h"
#include "swap.h"

/* A fleet often runs one image many times: reuse an earlier service's copy when the path is
 * the same and it also fits this service's RAM (segments are checked against RAM size). */
static int share_image(struct vmm_plan *p, unsigned i)
{
	struct vmm_plan_service *ps = &p->services[i];
	for (unsigned j = 0; j < i; j++) {
		const struct vmm_plan_service *other = &p->services[j];
		if (other->owns_image && strcmp(other->cfg.image, ps->cfg.image) == 0 &&
		    other->cfg.ram_size == ps->cfg.ram_size) {
			ps->img = other->img;
			return 0;
		}
	}
	return -1;
}

int vmm_plan_reserve(struct vmm_plan *p, unsigned n)
{
	if (n <= p->capacity)
		return 0;
	struct vmm_plan_service *bigger = realloc(p->services, n * sizeof(*bigger));
	if (!bigger)
		return -1;
	p->services = bigger;
	p->capacity = n;
	return 0;
}

int vmm_plan_add(struct vmm_plan *p, const char *file, const struct vmm_config_limits *limits,
		 char *err, size_t errlen)
{
	if (p->count >= VMM_PLAN_SERVICES_MAX) {
		snprintf(err, errlen, "%s: more than %u services", file, VMM_PLAN_SERVICES_MAX);
		return -1;
	}
	if (p->count == p->capacity &&
	    vmm_plan_reserve(p, p->capacity ? 2 * p->capacity : 16) != 0) {
		snprintf(err, errlen, "%s: out of memory", file);
		return -1;
	}
	struct vmm_plan_service *ps = &p->services[p->count];
	memset(ps, 0, sizeof(*ps));
	if (vmm_config_load(file, limits, &ps->cfg, err, errlen) != 0) {
		vmm_config_free(&ps->cfg);
		return -1;
	}
	p->count++; /* from here on, vmm_plan_drop_last undoes it */
	for (unsigned j = 0; j + 1 < p->count; j++)
		if (strcmp(p->services[j].cfg.name, ps->cfg.name) == 0) {
			snprintf(err, errlen, "%s: service name \"%s\" is already used by %s",
				 ps->cfg.source, ps->cfg.name, p->services[j].cfg.source);
			vmm_plan_drop_last(p);
			return -1;
		}
	if (share_image(p, p->count - 1) == 0)
		return 0;
	char why[768];
	if (vmm_image_read(ps->cfg.image, ps->cfg.ram_size, &ps->img, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", ps->cfg.name, why);
		vmm_plan_drop_last(p);
		return -1;
	}
	ps->owns_image = 1;
	return 0;
}

int vmm_plan_check(struct vmm_plan *p, char *err, size_t errlen)
{
	int swaps = p->memory_budget != 0 || p->resume; /* then any service may be swapped out */
	for (unsigned i = 0; i < p->count; i++)
		swaps |= p->services[i].cfg.swap.enabled;
	if (vmm_plan_net_finish(p, err, errlen) != 0 ||
	    vmm_plan_disk_check(p->services, p->count, err, errlen) != 0 ||
	    (swaps && swap_check_state_dir(p->state_dir, err, errlen) != 0))
		return -1;
	return 0;
}

void vmm_plan_drop_last(struct vmm_plan *p)
{
	if (!p->count)
		return;
	struct vmm_plan_service *ps = &p->services[--p->count];
	if (ps->owns_image)
		vmm_image_free(&ps->img);
	vmm_config_free(&ps->cfg);
	memset(ps, 0, sizeof(*ps));
}

void vmm_plan_free(struct vmm_plan *p)
{
	while (p->count)
		vmm_plan_drop_last(p);
	free(p->services);
	p->services = NULL;
	p->capacity = 0;
}
