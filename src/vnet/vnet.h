/* The virtual network of a run: the switch, its uplinks, and the thread in the supervisor that
 * moves frames. Cells hand over each service's I/O window and its two eventfds (kick: the
 * guest has frames to send; wake: tell the vcpu a frame arrived); the switch maps only the
 * window. A swapped-out service's port sleeps: the switch holds no fd or mapping of it, keeps
 * (bounded) the frames that come for it, and asks the supervisor to wake it.
 * Each call takes the switch's lock: the network thread runs beside the caller, and gives way
 * to a waiting caller between ports, so no call waits for more than one port's worth of
 * guest-driven work (its TX budget). */
#ifndef VNET_H
#define VNET_H

#include <stddef.h>
#include <stdint.h>

#include "vnet_config.h"
#include "vnet_nat.h"
#include "vnet_switch.h"

struct vnet;

/* Creates the switch, with no port yet (vnet_add_port). Returns NULL with err set. */
struct vnet *vnet_create(char *err, size_t errlen);

/* Starts the `user` uplink's NAT process through launcher (the supervisor's, which must outlive
 * vn; NULL when none could start: then a `user` uplink fails), with every forward listening,
 * and keeps launcher for the services added later. Before vnet_start, after the privileges'
 * drop (the NAT gets the rights left). 0, or -1 with err. */
int vnet_open_nat(struct vnet *vn, struct nat_launcher *launcher, char *err, size_t errlen);

/* Starts its thread. Only once every cell is forked: a process that forks while another of
 * its threads may hold an allocator lock (ASan's has no fork handler) gives the child a lock
 * no one will release. 0, or -1 with err. */
int vnet_start(struct vnet *vn, char *err, size_t errlen);

/* Makes room for service's port and keeps a copy of its configuration (for vnet_attach), and
 * opens what it needs: its TAP uplink (created on first use), and, once vnet_open_nat gave the
 * launcher, the `user` uplink's NAT process and its host forwards, listening (before that, they
 * wait for vnet_open_nat). Before or after vnet_start (the control socket's start). 0, or -1
 * with err (no forward of it stays published, nothing of it is kept). Services without a NIC
 * need no call; a service is added once. */
int vnet_add_port(struct vnet *vn, unsigned service, const struct vnet_port_config *pc, char *err,
		  size_t errlen);

/* Around a fork once the thread runs: the thread waits (it holds no allocator lock then), and
 * the child must not touch the switch. NULL is allowed. */
void vnet_fork_prepare(struct vnet *vn);
void vnet_fork_done(struct vnet *vn);

/* Stops the thread and releases every port and uplink. */
void vnet_destroy(struct vnet *vn);

/* Connects service's NIC: maps its I/O window from mem_fd (the guest RAM file; only the window
 * is mapped) and takes ownership of kick_fd and wake_fd. mem_fd stays the caller's. On a
 * sleeping port it wakes it: its ring goes on from where it stopped (cursors and error count
 * are the switch's own, never read back from the window), the frames held for it are put in
 * its RX ring in the order they came (what does not fit yet follows as it gives buffers back),
 * DN_EV_NET is raised, its TX ring is served, and so are the senders that waited for it. Returns 0,
 * or -1 with err set, kick_fd and wake_fd closed (a sleeping port then sleeps on, its frames still
 * held). */
int vnet_attach(struct vnet *vn, unsigned service, int mem_fd, int kick_fd, int wake_fd, char *err,
		size_t errlen);

/* Puts service's port to sleep, for its service to be swapped out: sends what its TX ring
 * holds one last time (at most one ring's worth), then lets go of its window, kick fd and
 * wake fd. The port stays: its MAC, counters, ring cursors and errors are kept. While it
 * sleeps, unicast frames for it and ARP requests for its IPv4 address are held, at most
 * VNET_HELD_PORT_BYTES for it and VNET_HELD_BYTES_MAX in the switch; beyond, a guest sending
 * to it waits (its TX ring is not served until it wakes) and a frame from an uplink is dropped
 * (held_dropped); other broadcasts and multicasts are not given to it (asleep_ignored). The first
 * frame for it queues it on the wake list. Returns 0, or -1 if service has no attached, awake port.
 */
int vnet_sleep(struct vnet *vn, unsigned service);

/* Disconnects service's NIC (if attached, asleep or not: what was held for it is dropped)
 * and returns its counters in out (may be NULL). */
void vnet_detach(struct vnet *vn, unsigned service, struct vnet_port_counters *out);

/* The counters of a service's port now (live stats): 0, or -1 (zeros) if it has none. */
int vnet_counters(struct vnet *vn, unsigned service, struct vnet_port_counters *out);

/* An eventfd that becomes readable when a guest has broken its rings too often; then
 * vnet_take_fault returns each such service (1) with the reason, until none is left (0). */
int vnet_fault_fd(const struct vnet *vn);
int vnet_take_fault(struct vnet *vn, unsigned *service, char *reason, size_t reasonlen);

/* An eventfd that becomes readable when a frame came for a sleeping service; then
 * vnet_take_wake returns each such service (1), once per sleep, until none is left (0). A
 * service woken (or detached) before it is taken is not returned. */
int vnet_wake_fd(const struct vnet *vn);
int vnet_take_wake(struct vnet *vn, unsigned *service);

/* The NAT process's counters (pid, restarts...): 0, or -1 (zeros) if the run has no user
 * uplink. */
int vnet_nat_stats(struct vnet *vn, struct vnet_nat_counters *out);

/* The most ports the network thread served while one call waited for the switch's lock, since
 * vnet_create: at most 1 (for the tests). */
uint64_t vnet_caller_wait_max(struct vnet *vn);

#endif
