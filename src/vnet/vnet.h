/* The virtual network of a run: the switch, its uplinks, and the thread in the supervisor that
 * moves frames. Cells hand over each service's I/O window and its two eventfds (kick: the
 * guest has frames to send; wake: tell the vcpu a frame arrived); the switch maps only the
 * window. */
#ifndef VNET_H
#define VNET_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/plan.h"
#include "vnet_switch.h"

struct vnet;

/* Creates the switch and the uplinks the plan's services use (libslirp for `user`, with every
 * forward listening; TAP devices), and starts the network thread. Returns NULL with err set. */
struct vnet *vnet_create(const struct vmm_plan *plan, char *err, size_t errlen);

/* Stops the thread and releases every port and uplink. */
void vnet_destroy(struct vnet *vn);

/* Connects service's NIC: maps its I/O window from mem_fd (the guest RAM file; only the window
 * is mapped) and takes ownership of kick_fd and wake_fd. mem_fd stays the caller's. Returns 0
 * or -1 with err set. */
int vnet_attach(struct vnet *vn, unsigned service, int mem_fd, int kick_fd, int wake_fd, char *err,
		size_t errlen);

/* Disconnects service's NIC (if attached) and returns its counters in out (may be NULL). */
void vnet_detach(struct vnet *vn, unsigned service, struct vnet_port_counters *out);

/* An eventfd that becomes readable when a guest has broken its rings too often; then
 * vnet_take_fault returns each such service (1) with the reason, until none is left (0). */
int vnet_fault_fd(const struct vnet *vn);
int vnet_take_fault(struct vnet *vn, unsigned *service, char *reason, size_t reasonlen);

#endif
