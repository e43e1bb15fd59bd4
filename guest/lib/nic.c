/* The guest side of the virtual NIC: fixed TX and RX buffers in the I/O window, frames in and
 * out by copy, and kicks only when the loop will not idle soon (idle flushes for free). */
#include <denali.h>
#include <string.h>

#define NIC_BUF 2048u
#define TX_BUF(i) (DN_IOWIN_BUFS + (i)*NIC_BUF)
#define RX_BUF(i) (DN_IOWIN_BUFS + (DN_NIC_RING_SIZE + (i)) * NIC_BUF)
_Static_assert(DN_IOWIN_BUFS + 2 * DN_NIC_RING_SIZE * NIC_BUF <= DN_IOWIN_SIZE, "buffers fit");

static struct dn_nic *nic;
static uint8_t *win;
static uint32_t tx_avail;  /* ours: what we published */
static uint32_t tx_kicked; /* tx_avail at the last kick or idle */
static uint32_t rx_seen;   /* received frames we have taken */
static struct dn_nic_stats stats;

int dn_nic_init(void)
{
	const struct dn_boot_info *bi = dn_boot_info();
	if (!bi->nic)
		return DN_E_INVAL;
	win = (uint8_t *)(uintptr_t)(bi->nic - DN_IOWIN_NIC);
	nic = (struct dn_nic *)(uintptr_t)bi->nic;
	tx_avail = tx_kicked = nic->tx.avail;
	rx_seen = nic->rx.used;
	/* Publish every RX buffer. */
	uint32_t avail = nic->rx.avail;
	for (uint32_t i = 0; i < DN_NIC_RING_SIZE; i++) {
		struct dn_nic_desc *d = &nic->rx.desc[(avail + i) % DN_NIC_RING_SIZE];
		d->offset = RX_BUF((avail + i) % DN_NIC_RING_SIZE);
		d->len = NIC_BUF;
		d->status = 0;
	}
	__atomic_store_n(&nic->rx.avail, avail + DN_NIC_RING_SIZE, __ATOMIC_RELEASE);
	return DN_OK;
}

const uint8_t *dn_nic_mac(void)
{
	return dn_boot_info()->mac;
}

void dn_nic_kick(void)
{
	stats.kicks++;
	tx_kicked = tx_avail;
	__asm__ volatile("outl %0, %w1" : : "a"(0), "Nd"((uint16_t)DN_NIC_KICK_PORT) : "memory");
}

void dn_nic_flush(void)
{
	if (nic && tx_kicked != tx_avail)
		dn_nic_kick();
}

void dn_nic_idle_flushes(void)
{
	tx_kicked = tx_avail;
}

int dn_nic_send(const void *frame, size_t len)
{
	if (!nic || len < DN_NIC_FRAME_MIN || len > DN_NIC_FRAME_MAX)
		return DN_E_INVAL;
	uint32_t used = __atomic_load_n(&nic->tx.used, __ATOMIC_ACQUIRE);
	if (tx_avail - used >= DN_NIC_RING_SIZE) {
		/* Full: let the switch catch up. If it is slow, the frame is dropped and counted,
		 * as a real NIC would; protocols above retransmit. */
		dn_nic_flush();
		stats.tx_full++;
		return DN_E_AGAIN;
	}
	uint32_t slot = tx_avail % DN_NIC_RING_SIZE;
	memcpy(win + TX_BUF(slot), frame, len);
	nic->tx.desc[slot].offset = TX_BUF(slot);
	nic->tx.desc[slot].len = (uint16_t)len;
	nic->tx.desc[slot].status = 0;
	tx_avail++;
	__atomic_store_n(&nic->tx.avail, tx_avail, __ATOMIC_RELEASE);
	stats.tx_frames++;
	/* Half a ring unflushed: kick now rather than risk running out. */
	if (tx_avail - tx_kicked >= DN_NIC_RING_SIZE / 2)
		dn_nic_kick();
	return DN_OK;
}

unsigned dn_nic_receive(dn_frame_fn fn, void *arg, unsigned budget)
{
	if (!nic)
		return 0;
	unsigned n = 0;
	uint32_t used = __atomic_load_n(&nic->rx.used, __ATOMIC_ACQUIRE);
	while (rx_seen != used && n < budget) {
		struct dn_nic_desc *d = &nic->rx.desc[rx_seen % DN_NIC_RING_SIZE];
		uint32_t slot = rx_seen % DN_NIC_RING_SIZE;
		if (d->status == DN_NIC_OK && d->len <= NIC_BUF)
			fn(win + RX_BUF(slot), d->len, arg);
		else
			stats.rx_bad++;
		stats.rx_frames++;
		/* Give the buffer back at once: the callback has consumed the frame. */
		d->offset = RX_BUF(slot);
		d->len = NIC_BUF;
		d->status = 0;
		rx_seen++;
		__atomic_store_n(&nic->rx.avail, nic->rx.avail + 1, __ATOMIC_RELEASE);
		n++;
	}
	return n;
}

const struct dn_nic_stats *dn_nic_stats(void)
{
	stats.dev_tx_dropped = nic ? nic->tx_dropped : 0;
	stats.dev_rx_dropped = nic ? nic->rx_dropped : 0;
	return &stats;
}
