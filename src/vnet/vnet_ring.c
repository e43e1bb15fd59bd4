/* The device side of one guest's NIC rings: hostile descriptors in, checked frames out. */
#include "vnet_ring.h"

#include <stdio.h>
#include <string.h>

#include "guestmem.h"

void vnet_frame_init(struct vnet_frame *f, const uint8_t *data, uint16_t len)
{
	f->data = data;
	f->len = len;
	f->hdr_len = len < VNET_HDR_SNAPSHOT ? len : VNET_HDR_SNAPSHOT;
	memcpy(f->hdr, data, f->hdr_len);
}

void vnet_ring_init(struct vnet_ring *r, uint8_t *win)
{
	memset(r, 0, sizeof(*r));
	r->win = win;
	r->nic = (struct dn_nic *)(win + DN_IOWIN_NIC);
	/* A fresh NIC: the guest has not published anything yet, and trusts nothing it left. */
	r->tx_used = __atomic_load_n(&r->nic->tx.used, __ATOMIC_ACQUIRE);
	r->rx_used = __atomic_load_n(&r->nic->rx.used, __ATOMIC_ACQUIRE);
}

void vnet_ring_rebind(struct vnet_ring *r, uint8_t *win)
{
	r->win = win;
	r->nic = win ? (struct dn_nic *)(win + DN_IOWIN_NIC) : NULL;
}

static void ring_error(struct vnet_ring *r, const char *what, uint32_t index, uint32_t offset,
		       uint32_t len)
{
	r->errors++;
	__atomic_store_n(&r->nic->errors, r->errors, __ATOMIC_RELAXED);
	snprintf(r->last_error, sizeof(r->last_error), "%s descriptor %u: offset 0x%x length %u %s",
		 what, index % DN_NIC_RING_SIZE, offset, len,
		 strchr(what, '(') ? "could not be copied" : "outside the frame buffers");
}

static void counter_error(struct vnet_ring *r, const char *what, uint32_t avail, uint32_t used)
{
	r->errors++;
	__atomic_store_n(&r->nic->errors, r->errors, __ATOMIC_RELAXED);
	snprintf(r->last_error, sizeof(r->last_error),
		 "%s ring: avail %u is more than %u ahead of used %u", what, avail,
		 DN_NIC_RING_SIZE, used);
}

/* A buffer [offset, offset+len) the guest named: inside the buffer area, no wrap. */
static int buffer_ok(uint32_t offset, uint32_t len)
{
	return offset >= DN_IOWIN_BUFS && offset <= DN_IOWIN_SIZE && len <= DN_IOWIN_SIZE - offset;
}

static uint32_t pending(struct vnet_ring *r, struct dn_nic_ring *ring, uint32_t *used,
			const char *what)
{
	uint32_t avail = __atomic_load_n(&ring->avail, __ATOMIC_ACQUIRE);
	uint32_t n = avail - *used;
	if (n > DN_NIC_RING_SIZE) {
		counter_error(r, what, avail, *used);
		/* Skip everything the guest claims: nothing valid can be told apart. */
		*used = avail;
		__atomic_store_n(&ring->used, *used, __ATOMIC_RELEASE);
		return 0;
	}
	return n;
}

uint32_t vnet_ring_tx_pending(struct vnet_ring *r)
{
	return pending(r, &r->nic->tx, &r->tx_used, "TX");
}

uint32_t vnet_ring_rx_free(struct vnet_ring *r)
{
	return pending(r, &r->nic->rx, &r->rx_used, "RX");
}

int vnet_ring_tx_full(const struct vnet_ring *r)
{
	uint32_t avail = __atomic_load_n(&r->nic->tx.avail, __ATOMIC_ACQUIRE);
	return avail - r->tx_used == DN_NIC_RING_SIZE;
}

int vnet_ring_broken(const struct vnet_ring *r)
{
	return r->errors >= DN_NIC_ERRORS_MAX;
}

int vnet_ring_tx_take(struct vnet_ring *r, struct vnet_frame *f)
{
	if (vnet_ring_broken(r) || vnet_ring_tx_pending(r) == 0)
		return -1;
	struct dn_nic_desc d;
	volatile const struct dn_nic_desc *slot = &r->nic->tx.desc[r->tx_used % DN_NIC_RING_SIZE];
	d.offset = slot->offset;
	d.len = slot->len;
	if (d.len < DN_NIC_FRAME_MIN || d.len > DN_NIC_FRAME_MAX || !buffer_ok(d.offset, d.len)) {
		ring_error(r, "TX", r->tx_used, d.offset, d.len);
		vnet_ring_tx_finish(r, DN_NIC_BAD_DESC);
		return 0;
	}
	f->data = r->win + d.offset;
	f->len = d.len;
	f->hdr_len = d.len < VNET_HDR_SNAPSHOT ? d.len : VNET_HDR_SNAPSHOT;
	if (guestmem_copy(f->hdr, f->data, f->hdr_len) != 0) {
		ring_error(r, "TX (unreadable buffer)", r->tx_used, d.offset, d.len);
		vnet_ring_tx_finish(r, DN_NIC_BAD_DESC);
		return 0;
	}
	return 1;
}

void vnet_ring_tx_finish(struct vnet_ring *r, enum dn_nic_status status)
{
	r->nic->tx.desc[r->tx_used % DN_NIC_RING_SIZE].status = (uint16_t)status;
	if (status == DN_NIC_OK)
		r->nic->tx_frames++;
	else
		r->nic->tx_dropped++;
	r->tx_used++;
	__atomic_store_n(&r->nic->tx.used, r->tx_used, __ATOMIC_RELEASE);
}

int vnet_ring_rx_put(struct vnet_ring *r, const struct vnet_frame *f)
{
	/* What the guest published when the frame came, read once: a guest that keeps
	 * publishing bad descriptors from its vcpu cannot keep this loop going (at most one
	 * ring's worth), and it stops at the error limit, not after. */
	uint32_t n = vnet_ring_broken(r) ? 0 : pending(r, &r->nic->rx, &r->rx_used, "RX");
	for (uint32_t i = 0; i < n && !vnet_ring_broken(r); i++) {
		volatile struct dn_nic_desc *slot = &r->nic->rx.desc[r->rx_used % DN_NIC_RING_SIZE];
		uint32_t offset = slot->offset, cap = slot->len;
		int ok = cap >= f->len && buffer_ok(offset, cap);
		if (!ok) {
			ring_error(r, "RX", r->rx_used, offset, cap);
			slot->len = 0;
			slot->status = DN_NIC_BAD_DESC;
		} else {
			/* One copy of the payload; the header from our checked copy, so that what
			 * the sender changes meanwhile cannot alter where the frame claims to be
			 * from. */
			if (guestmem_copy(r->win + offset, f->data, f->len) != 0 ||
			    guestmem_copy(r->win + offset, f->hdr, f->hdr_len) != 0) {
				/* Either window's file could not back a page: drop, count. */
				ring_error(r, "RX (unwritable buffer)", r->rx_used, offset, cap);
				r->nic->rx_dropped++;
				return 0;
			}
			slot->len = f->len;
			slot->status = DN_NIC_OK;
		}
		r->rx_used++;
		__atomic_store_n(&r->nic->rx.used, r->rx_used, __ATOMIC_RELEASE);
		if (ok) {
			r->nic->rx_frames++;
			return 1;
		}
	}
	/* No buffer, or only bad ones: the frame is lost, as for a ring without room. */
	r->nic->rx_dropped++;
	return 0;
}
