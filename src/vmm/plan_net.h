/* The fleet-wide half of the network configuration: defaults and uniqueness across a plan. */
#ifndef VMM_PLAN_NET_H
#define VMM_PLAN_NET_H

#include <stddef.h>

#include "plan.h"

/* Gives every NIC without a MAC, address or gateway its default (MAC from the name, the next
 * free address of the virtual LAN), and refuses duplicate MACs, addresses or host forwards.
 * Returns 0, or -1 with err naming the services. */
int vmm_plan_net_finish(struct vmm_plan *plan, char *err, size_t errlen);

/* 1 if some service of the plan has a NIC. */
int vmm_plan_has_net(const struct vmm_plan *plan);

/* Service i's NIC as the switch is told of it (vnet_add_port): its name, file, addresses,
 * uplink, forwards and rate limits, once vmm_plan_net_finish has given it its defaults. */
void vmm_plan_net_port(const struct vmm_plan *plan, unsigned i, struct vnet_port_config *out);

#endif
