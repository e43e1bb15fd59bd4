/* The Denali guest API: console, exit, abort, time and idle, over the hypercalls of abi.h. */
#ifndef DENALI_H
#define DENALI_H

#include <stddef.h>
#include <stdint.h>

#include "denali/abi.h"

/* Issues hypercall nr with args, the GPA (== address) of its argument struct. */
static inline void dn_hypercall(unsigned nr, void *args)
{
	uint32_t gpa = (uint32_t)(uintptr_t)args;
	__asm__ volatile("outl %0, %w1"
			 :
			 : "a"(gpa), "Nd"((uint16_t)(DN_HC_PORT_BASE + nr))
			 : "memory");
}

/* The boot info the monitor left for this service. */
const struct dn_boot_info *dn_boot_info(void);

/* Writes bytes to the console. Returns DN_OK or a negative dn_status. */
int dn_console_write(const char *buf, size_t len);

/* Ends the service with status (0-DN_EXIT_STATUS_MAX); pending printf output is flushed. */
__attribute__((noreturn)) void dn_exit(int status);

/* Ends the service with a message that the monitor reports. */
__attribute__((noreturn)) void dn_abort(const char *msg);

/* Nanoseconds since boot, from the TSC: no exit. */
uint64_t dn_time_ns(void);

/* Blocks until deadline_ns (dn_time_ns scale) or an event; returns the pending events.
 * A deadline in the past is a yield; deferred events (dn_events_defer) return at once. */
uint64_t dn_idle(uint64_t deadline_ns);

/* The virtual-register page: pending events, virtual interrupt state, time base. */
struct dn_vregs *dn_vregs(void);

/* Takes every pending event (DN_EV_* bits) without an exit, deferred ones included. */
uint64_t dn_events_take(void);

/* Keeps events taken but not handled (a blocking call waited for another one) for the next
 * dn_events_take or dn_idle, which then returns at once. */
void dn_events_defer(uint64_t events);

/* Arms the one-shot timer: DN_EV_TIMER at deadline_ns; 0 disarms. Returns DN_OK or < 0. */
int dn_timer_set(uint64_t deadline_ns);

/* Virtual interrupts: handler runs, in ring 3 on the interrupted stack, whenever events are
 * pending while interrupts are enabled; it receives the events it took. It may use any
 * registers and SSE: the trampoline saves and restores them. */
typedef void (*dn_interrupt_fn)(uint64_t events);
void dn_interrupts_enable(dn_interrupt_fn handler);
void dn_interrupts_disable(void);

/* ---- The event loop (as Denali's Ilwaco): callbacks for events and timers; when nothing is
 * ready it idles with the earliest timer as the deadline. ---- */
typedef void (*dn_timer_fn)(void *arg);
typedef void (*dn_event_fn)(uint64_t events, void *arg);

struct dn_timer {
	uint64_t deadline_ns;
	dn_timer_fn fn;
	void *arg;
	struct dn_timer *next;
	int armed;
};

/* Calls fn(arg) from the loop once dn_time_ns() >= deadline_ns. Re-arming a timer moves it. */
void dn_timer_start(struct dn_timer *t, uint64_t deadline_ns, dn_timer_fn fn, void *arg);
void dn_timer_cancel(struct dn_timer *t);

/* Calls fn(events, arg) whenever any of the events bits arrive (one callback per mask bit set;
 * at most 8 callbacks). */
int dn_loop_on(uint64_t events, dn_event_fn fn, void *arg);

/* Calls fn(arg) every loop turn, before the loop decides whether to idle; fn does its due work
 * (e.g. drains the NIC, runs protocol timers) and returns the earliest time it needs to run
 * again (UINT64_MAX: only when an event comes; <= now: at once). At most 4 pollers. */
typedef uint64_t (*dn_poll_fn)(void *arg);
int dn_loop_add_poller(dn_poll_fn fn, void *arg);

/* Runs until dn_loop_stop() is called from a callback. */
void dn_loop_run(void);
void dn_loop_stop(void);

/* ---- The virtual NIC (abi.h describes the rings) ---- */
struct dn_nic_stats {
	uint64_t tx_frames, tx_full;		 /* sent; refused because the ring was full */
	uint64_t kicks;				 /* kicks of the NIC (in-kernel exits) */
	uint64_t rx_frames, rx_bad;		 /* received; completed with an error */
	uint64_t dev_tx_dropped, dev_rx_dropped; /* the switch's counts (dn_nic_stats reads them) */
};
typedef void (*dn_frame_fn)(const void *frame, size_t len, void *arg);

/* Sets up the NIC and publishes every RX buffer. DN_E_INVAL if the service has none. */
int dn_nic_init(void);
/* The NIC's MAC address (the only source address the switch lets through). */
const uint8_t *dn_nic_mac(void);
/* Queues one Ethernet frame (14 to DN_NIC_FRAME_MAX bytes). DN_E_AGAIN if the TX ring is full.
 * Frames leave at the next idle, dn_nic_flush or when half the ring is queued. */
int dn_nic_send(const void *frame, size_t len);
/* Calls fn for up to budget received frames (the frame is valid during the call only). */
unsigned dn_nic_receive(dn_frame_fn fn, void *arg, unsigned budget);
/* Kicks the NIC if frames were queued since the last kick or idle (the event loop calls this
 * when it goes round without idling). */
void dn_nic_flush(void);
void dn_nic_kick(void);
/* Internal: an idle hypercall has flushed the TX ring. */
void dn_nic_idle_flushes(void);
const struct dn_nic_stats *dn_nic_stats(void);

/* ---- The virtual disk (abi.h describes the rings) ----
 * Requests are asynchronous: dn_disk_submit queues one, the device is kicked at the next idle,
 * loop turn or dn_disk_kick, and done(status, arg) runs from dn_disk_poll, which the event loop
 * calls on DN_EV_DISK. The blocking helpers wait for their own request (idling; other events
 * are kept for the loop) and may be called from anywhere, event callbacks included. */
typedef void (*dn_disk_done_fn)(int status, void *arg); /* status: enum dn_disk_status */
struct dn_disk_stats {
	uint64_t submitted, completed, failed; /* requests; completed with an error */
	uint64_t kicks;			       /* kicks of the disk (in-kernel exits) */
	uint64_t ring_full;		       /* submits refused: DN_DISK_RING_SIZE outstanding */
};

/* Sets up the disk and hooks it into the event loop. DN_E_INVAL if the service has none. */
int dn_disk_init(void);
/* The disk's size in blocks (0 without one), and whether it refuses writes. */
uint64_t dn_disk_blocks(void);
int dn_disk_readonly(void);
/* Queues a request: DN_DISK_READ or DN_DISK_WRITE of count blocks at block to or from buf
 * (count * DN_DISK_BLOCK bytes, left alone until done runs), or DN_DISK_FLUSH (block 0,
 * count 0, buf NULL): done once every write completed before it is durable. Returns DN_OK,
 * DN_E_AGAIN when DN_DISK_RING_SIZE requests are outstanding, DN_E_INVAL without a disk. */
int dn_disk_submit(unsigned op, uint64_t block, uint32_t count, void *buf, dn_disk_done_fn done,
		   void *arg);
/* Kicks the disk if requests were queued since the last kick or idle. */
void dn_disk_kick(void);
/* Runs done for every completion that arrived; returns how many. */
unsigned dn_disk_poll(void);
/* Blocking: returns the request's enum dn_disk_status (or DN_E_INVAL without a disk). */
int dn_disk_read(uint64_t block, uint32_t count, void *buf);
int dn_disk_write(uint64_t block, uint32_t count, const void *buf);
int dn_disk_flush(void);
/* Blocks until no request is outstanding. */
void dn_disk_drain(void);
/* Requests outstanding (submitted, done not yet run). */
unsigned dn_disk_outstanding(void);
const struct dn_disk_stats *dn_disk_stats(void);
/* Internal: dn_idle without looking at deferred events (blocking helpers wait with it). */
uint64_t dn_idle_hypercall(uint64_t deadline_ns);
/* Internal: an idle hypercall has kicked the disk. */
void dn_disk_idle_kicks(void);

/* Starts the network: the NIC and the TCP/IP stack of net.h, configured from the boot info
 * and driven by the event loop (dn_loop_run). NULL if the service has no NIC. */
struct net_stack;
struct net_stack *dn_net_start(void);

/* Reads the TSC. */
static inline uint64_t dn_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

#endif
