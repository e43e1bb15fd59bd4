/* The guest side of the virtual disk: requests go straight into the submission ring (buffers
 * are the caller's own memory, read and written in place by the device), completions come
 * back by id, and kicks happen only when the loop will not idle soon (idle kicks for free). */
#include <denali.h>
#include <string.h>

/* One outstanding request: its slot number is its id. */
struct pending {
	dn_disk_done_fn done;
	void *arg;
	int busy;
};

static struct dn_disk *disk;
static struct pending pending[DN_DISK_RING_SIZE];
static unsigned outstanding;
static uint32_t sq_avail;  /* ours: requests published */
static uint32_t sq_kicked; /* sq_avail at the last kick or idle */
static uint32_t cq_seen;   /* completions taken */
static unsigned next_slot;
static struct dn_disk_stats stats;

static void on_disk_event(uint64_t events, void *arg)
{
	(void)events;
	(void)arg;
	dn_disk_poll();
}

int dn_disk_init(void)
{
	if (disk)
		return DN_OK;
	const struct dn_boot_info *bi = dn_boot_info();
	if (!bi->disk)
		return DN_E_INVAL;
	disk = (struct dn_disk *)(uintptr_t)bi->disk;
	sq_avail = sq_kicked = disk->sq_avail;
	cq_seen = disk->cq_used;
	return dn_loop_on(DN_EV_DISK, on_disk_event, NULL);
}

uint64_t dn_disk_blocks(void)
{
	return disk ? disk->blocks : 0;
}

int dn_disk_readonly(void)
{
	return disk && (disk->flags & DN_DISK_F_READONLY);
}

void dn_disk_kick(void)
{
	if (!disk || sq_kicked == sq_avail)
		return;
	stats.kicks++;
	sq_kicked = sq_avail;
	__asm__ volatile("outl %0, %w1" : : "a"(0), "Nd"((uint16_t)DN_DISK_KICK_PORT) : "memory");
}

void dn_disk_idle_kicks(void)
{
	sq_kicked = sq_avail;
}

int dn_disk_submit(unsigned op, uint64_t block, uint32_t count, void *buf, dn_disk_done_fn done,
		   void *arg)
{
	if (!disk)
		return DN_E_INVAL;
	if (outstanding == DN_DISK_RING_SIZE) {
		dn_disk_kick(); /* let the device catch up */
		stats.ring_full++;
		return DN_E_AGAIN;
	}
	while (pending[next_slot].busy)
		next_slot = (next_slot + 1) % DN_DISK_RING_SIZE;
	unsigned id = next_slot;
	next_slot = (next_slot + 1) % DN_DISK_RING_SIZE;
	pending[id] = (struct pending){.done = done, .arg = arg, .busy = 1};
	outstanding++;
	/* Fewer than DN_DISK_RING_SIZE outstanding means the device has taken all but as many
	 * requests, so this slot of the ring is free. */
	struct dn_disk_req *r = &disk->sq[sq_avail % DN_DISK_RING_SIZE];
	r->id = id;
	r->block = block;
	r->buf = (uint64_t)(uintptr_t)buf;
	r->count = count;
	r->op = (uint16_t)op;
	r->reserved = 0;
	sq_avail++;
	__atomic_store_n(&disk->sq_avail, sq_avail, __ATOMIC_RELEASE);
	stats.submitted++;
	/* Half a ring not kicked: kick now rather than let the device idle. */
	if (sq_avail - sq_kicked >= DN_DISK_RING_SIZE / 2)
		dn_disk_kick();
	return DN_OK;
}

unsigned dn_disk_poll(void)
{
	if (!disk)
		return 0;
	unsigned n = 0;
	/* cq_avail is read again each time: a callback may poll too (a blocking call). */
	while (cq_seen != __atomic_load_n(&disk->cq_avail, __ATOMIC_ACQUIRE)) {
		struct dn_disk_cpl c = disk->cq[cq_seen % DN_DISK_RING_SIZE];
		cq_seen++;
		/* Hand the slot back before running the callback, which may submit again. */
		__atomic_store_n(&disk->cq_used, cq_seen, __ATOMIC_RELEASE);
		if (c.id >= DN_DISK_RING_SIZE || !pending[c.id].busy)
			dn_abort("disk: completion for no outstanding request");
		struct pending p = pending[c.id];
		pending[c.id].busy = 0;
		outstanding--;
		stats.completed++;
		if (c.status != DN_DISK_OK)
			stats.failed++;
		if (p.done)
			p.done(c.status, p.arg);
		n++;
	}
	return n;
}

unsigned dn_disk_outstanding(void)
{
	return outstanding;
}

/* Idles until pred(arg) holds, running completions as they come; events that are not the
 * disk's are deferred for the event loop. */
static void wait_until(int (*pred)(void *arg), void *arg)
{
	dn_disk_kick();
	dn_disk_poll();
	uint64_t other = 0;
	while (!pred(arg)) {
		other |= dn_idle_hypercall(UINT64_MAX) & ~DN_EV_DISK;
		dn_disk_poll();
	}
	if (other)
		dn_events_defer(other);
}

struct blocking {
	int done;
	int status;
};

static void blocking_done(int status, void *arg)
{
	struct blocking *b = arg;
	b->status = status;
	b->done = 1;
}

static int blocking_finished(void *arg)
{
	return ((struct blocking *)arg)->done;
}

static int blocking(unsigned op, uint64_t block, uint32_t count, void *buf)
{
	struct blocking b = {0, 0};
	int rc;
	while ((rc = dn_disk_submit(op, block, count, buf, blocking_done, &b)) == DN_E_AGAIN) {
		/* Completions may be waiting whose DN_EV_DISK the loop has already taken. */
		if (dn_disk_poll())
			continue;
		uint64_t ev = dn_idle_hypercall(UINT64_MAX) & ~DN_EV_DISK;
		if (ev)
			dn_events_defer(ev);
	}
	if (rc != DN_OK)
		return rc;
	wait_until(blocking_finished, &b);
	return b.status;
}

int dn_disk_read(uint64_t block, uint32_t count, void *buf)
{
	return blocking(DN_DISK_READ, block, count, buf);
}

int dn_disk_write(uint64_t block, uint32_t count, const void *buf)
{
	return blocking(DN_DISK_WRITE, block, count, (void *)(uintptr_t)buf);
}

int dn_disk_flush(void)
{
	return blocking(DN_DISK_FLUSH, 0, 0, NULL);
}

static int none_outstanding(void *arg)
{
	(void)arg;
	return outstanding == 0;
}

void dn_disk_drain(void)
{
	if (disk)
		wait_until(none_outstanding, NULL);
}

const struct dn_disk_stats *dn_disk_stats(void)
{
	return &stats;
}
