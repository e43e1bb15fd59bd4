/* The device side of one guest's NIC rings, in its I/O window as the switch maps it. Every
 * field the guest writes is read once and checked before use; the device's own counters are
 * kept here, not trusted from shared memory. */
#ifndef VNET_RING_H
#define VNET_RING_H

#include <stddef.h>
#include <stdint.h>

#include "denali/abi.h"

struct vnet_ring {
	uint8_t *win; /* the I/O window, DN_IOWIN_SIZE bytes */
	struct dn_nic *nic;
	uint32_t tx_used, rx_used; /* ours: what we finished; written out after each change */
	uint64_t errors;	   /* bad descriptors and counters, also in nic->errors */
	char last_error[160];	   /* the latest one, for the stop message */
};

/* The bytes of a frame the switch decides on: the Ethernet header and the ARP sender (MAC
 * and IPv4 address, through byte 41) or the IPv4 source. */
#define VNET_HDR_SNAPSHOT 42u

/* A frame taken from a TX ring: data points into the sender's window (the guest may still
 * change those bytes), hdr is our copy of its first hdr_len bytes: every check is made on it,
 * and every delivery lays it over what was copied, so a sender that changes its buffer
 * meanwhile cannot change what it was checked for. */
struct vnet_frame {
	const uint8_t *data;
	uint16_t len;
	uint16_t hdr_len; /* min(len, VNET_HDR_SNAPSHOT) */
	uint8_t hdr[VNET_HDR_SNAPSHOT];
};

/* Fills f for a frame in stable memory (an uplink's buffer). */
void vnet_frame_init(struct vnet_frame *f, const uint8_t *data, uint16_t len);

void vnet_ring_init(struct vnet_ring *r, uint8_t *win);

/* Points the ring at its window mapped again (NULL: none, while the port sleeps). The cursors
 * and error count are ours and stay: nothing is read back from shared memory. */
void vnet_ring_rebind(struct vnet_ring *r, uint8_t *win);

/* The number of TX descriptors waiting, or 0 (a bad avail counter counts an error and is
 * resynchronised: those descriptors are skipped). */
uint32_t vnet_ring_tx_pending(struct vnet_ring *r);

/* 1 once the ring has had DN_NIC_ERRORS_MAX errors: its guest is to be stopped, and neither
 * ring is served any more (no descriptor is read, so the count stops there). */
int vnet_ring_broken(const struct vnet_ring *r);

/* Takes the next TX descriptor. Returns 1 with *f filled; 0 if the descriptor was bad or its
 * buffer unreadable (it is finished with DN_NIC_BAD_DESC and counted); -1 if none is waiting
 * or the ring is broken. A frame taken must be finished with vnet_ring_tx_finish. */
int vnet_ring_tx_take(struct vnet_ring *r, struct vnet_frame *f);
void vnet_ring_tx_finish(struct vnet_ring *r, enum dn_nic_status status);

/* The number of RX buffers the guest has published and the device not yet filled (checked as
 * vnet_ring_tx_pending checks TX). */
uint32_t vnet_ring_rx_free(struct vnet_ring *r);

/* 1 if the TX ring was full (the guest may be waiting for buffers). */
int vnet_ring_tx_full(const struct vnet_ring *r);

/* Copies f into the next RX buffer and publishes it. Returns 1 if delivered, 0 if dropped
 * (counted in rx_dropped): no buffer published, or the ring broken. Bad RX descriptors are
 * finished with DN_NIC_BAD_DESC, counted, and the next one is tried, but only among those
 * published when the call began (at most DN_NIC_RING_SIZE descriptors per call, good or bad)
 * and only until the ring is broken; then the frame is dropped. Copies survive a window whose
 * file cannot back a page (SIGBUS): the frame is dropped and counted as a ring error. */
int vnet_ring_rx_put(struct vnet_ring *r, const struct vnet_frame *f);

#endif
