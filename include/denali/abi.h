/* The Denali virtual architecture: the one contract between a guest and the monitor.
 *
 * Self-contained C11, included by the monitor (src/) and by guests (guest/). Every struct has
 * fixed-width fields only, an explicit size check and offset checks; a guest pointer is a
 * uint64_t guest-physical address (GPA). Guest RAM is identity-mapped, so a guest's virtual
 * address of a buffer is its GPA. Field notes: IN = written by the guest, read by the monitor;
 * OUT = written by the monitor. docs/abi.md explains every rule here. */
#ifndef DENALI_ABI_H
#define DENALI_ABI_H

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>
#endif

/* Bumped on any incompatible change. A guest image carries the version it was built for in an
 * ELF note (struct dn_abi_note); the monitor refuses images built for another version. */
#define DN_ABI_VERSION 4

#define DN_PAGE_SIZE 4096u

/* ---- Guest physical memory layout ----
 * [0, DN_GPA_IOWIN)             monitor-owned system area: page tables, GDT, IDT, TSS, the
 *                               fault-report stub. Not accessible from the guest's ring 3,
 *                               except the boot-info page (read-only, address in RDI).
 *                               GPA 0 is never mapped, so null-pointer accesses fault.
 * [DN_GPA_IOWIN, +DN_IOWIN_SIZE) the I/O window, guest read-write: the virtual-register page,
 *                               the device rings and the frame buffers. The supervisor's
 *                               network switch maps this window (and nothing else of the guest).
 * [DN_GPA_IMAGE_BASE, ram_size) the guest's own: its ELF image, heap and stack.
 * ram_size is a multiple of DN_RAM_ALIGN, at least DN_RAM_MIN and at most DN_RAM_MAX (the
 * hypercall argument address is 32 bits wide, so every guest byte must be below 4 GiB). */
#define DN_GPA_IOWIN 0x100000u
#define DN_IOWIN_SIZE 0x100000u
#define DN_GPA_IMAGE_BASE 0x200000u
#define DN_RAM_ALIGN (2u * 1024 * 1024)
#define DN_RAM_MIN (4u * 1024 * 1024)
#define DN_RAM_MAX (4ull * 1024 * 1024 * 1024)
/* The image must end at least this far below the top of RAM, where the stack starts. */
#define DN_STACK_MIN (64u * 1024)

/* ---- Boot ----
 * The vcpu starts in 64-bit mode, ring 3, at the ELF entry point with RDI = GPA of a
 * struct dn_boot_info, RSP = ram_size (16-byte aligned, the stack grows down), RFLAGS.IF = 0. */
#define DN_BOOT_MAGIC 0x494c4e44u /* "DNLI" */
#define DN_BOOT_ARGS_MAX 3072u	  /* bytes of NUL-terminated argument strings */
#define DN_BOOT_ARGC_MAX 64u
#define DN_NAME_MAX 64u /* service name, including the NUL */

#ifndef __ASSEMBLER__
struct dn_boot_info {
	uint32_t magic;	      /* OUT: DN_BOOT_MAGIC */
	uint32_t abi_version; /* OUT: DN_ABI_VERSION of the monitor */
	uint64_t ram_size;    /* OUT: bytes of guest RAM */
	uint64_t heap_start;  /* OUT: first page after the loaded image: free memory starts here */
	uint64_t stack_top;   /* OUT: initial RSP (== ram_size) */
	uint64_t vregs;	      /* OUT: GPA of the struct dn_vregs page */
	uint64_t nic;	      /* OUT: GPA of the struct dn_nic, 0 if the service has no NIC */
	uint64_t disk;	      /* OUT: GPA of the struct dn_disk, 0 if the service has no disk */
	uint32_t argc;	      /* OUT: number of strings in args */
	uint32_t args_len;    /* OUT: bytes of args used, NULs included */
	char name[DN_NAME_MAX];	     /* OUT: the service name, NUL-terminated */
	char args[DN_BOOT_ARGS_MAX]; /* OUT: argc NUL-terminated strings, back to back */
	/* The network configuration (all 0 without a NIC). IPv4 addresses are numbers:
	 * 10.0.0.16 is 0x0a000010. */
	uint8_t mac[6]; /* OUT: the NIC's MAC address: the only source address it may use */
	uint8_t reserved2;
	uint8_t prefix;	  /* OUT: IPv4 prefix length of the virtual LAN */
	uint32_t ip;	  /* OUT: the service's IPv4 address */
	uint32_t gateway; /* OUT: the virtual LAN's router (the user uplink's NAT), 0 if none */
	uint32_t dns;	  /* OUT: a DNS resolver reachable through the gateway, 0 if none */
};
_Static_assert(offsetof(struct dn_boot_info, abi_version) == 4, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, ram_size) == 8, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, heap_start) == 16, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, stack_top) == 24, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, vregs) == 32, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, argc) == 56, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, args_len) == 60, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, name) == 64, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, args) == 128, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, nic) == 40, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, disk) == 48, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, mac) == 3200, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, prefix) == 3207, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, ip) == 3208, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, gateway) == 3212, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, dns) == 3216, "boot info layout");
_Static_assert(sizeof(struct dn_boot_info) == 3224, "boot info size");
_Static_assert(sizeof(struct dn_boot_info) <= DN_PAGE_SIZE, "boot info fits one page");

/* ---- Events ----
 * Devices and timers raise events by setting bits in dn_vregs.pending; nothing else happens
 * until the guest looks (at its next loop turn, no exit needed), idles, or has virtual
 * interrupts enabled. */
#define DN_EV_TIMER (1ull << 0) /* the one-shot timer set with DN_HC_TIMER_SET expired */
#define DN_EV_STOP (1ull << 1)	/* the service is asked to stop: exit soon, or be stopped */
#define DN_EV_NET (1ull << 2)	/* the NIC's RX ring has new frames (or TX buffers came back) */
#define DN_EV_DISK (1ull << 3)	/* the disk's completion ring has new completions */

/* ---- Virtual registers ----
 * One page shared by the guest and the monitor, read and written with no exit. The monitor
 * sets pending bits with atomic OR from any thread; the guest takes them with an atomic
 * exchange. Virtual interrupts: when events are pending, vif is 1 and handler is set, the
 * monitor, at its next entry into the guest, saves RIP, RSP and RFLAGS in saved_*, clears vif,
 * and enters handler in ring 3 with RSP 16-byte aligned at least 128 bytes below the
 * interrupted RSP. The handler takes the events, and returns by setting vif again and jumping
 * back to the saved frame (the guest library's trampoline does this with iretq). One delivery
 * covers every event pending at that entry. */
struct dn_vregs {
	uint64_t pending; /* IN/OUT: events raised and not yet taken */
	uint32_t vif;	  /* IN/OUT: virtual interrupts enabled; cleared at delivery */
	uint32_t reserved0;
	uint64_t handler;      /* IN: ring-3 entry point for virtual interrupts, 0 = none */
	uint64_t saved_rip;    /* OUT: where the guest was when the interrupt was delivered */
	uint64_t saved_rsp;    /* OUT */
	uint64_t saved_rflags; /* OUT */
	/* Time: guest monotonic nanoseconds since boot, read with rdtsc and no exit:
	 *   ns = ((rdtsc() - tsc_base) * tsc_mul) >> 32   (128-bit product) */
	uint64_t tsc_hz;     /* OUT: TSC ticks per second */
	uint64_t tsc_base;   /* OUT: TSC value at guest time 0 */
	uint64_t tsc_mul;    /* OUT: ns per tick, 32.32 fixed point */
	uint64_t deliveries; /* OUT: virtual interrupts delivered so far */
};
_Static_assert(offsetof(struct dn_vregs, vif) == 8, "vregs layout");
_Static_assert(offsetof(struct dn_vregs, handler) == 16, "vregs layout");
_Static_assert(offsetof(struct dn_vregs, saved_rip) == 24, "vregs layout");
_Static_assert(offsetof(struct dn_vregs, saved_rsp) == 32, "vregs layout");
_Static_assert(offsetof(struct dn_vregs, saved_rflags) == 40, "vregs layout");
_Static_assert(offsetof(struct dn_vregs, tsc_hz) == 48, "vregs layout");
_Static_assert(offsetof(struct dn_vregs, tsc_base) == 56, "vregs layout");
_Static_assert(offsetof(struct dn_vregs, tsc_mul) == 64, "vregs layout");
_Static_assert(offsetof(struct dn_vregs, deliveries) == 72, "vregs layout");
_Static_assert(sizeof(struct dn_vregs) == 80, "vregs size");
#endif

#define DN_VREGS_PENDING 0
#define DN_VREGS_VIF 8
#define DN_VREGS_HANDLER 16
#define DN_VREGS_SAVED_RIP 24
#define DN_VREGS_SAVED_RSP 32
#define DN_VREGS_SAVED_RFLAGS 40

#ifndef __ASSEMBLER__
/* ---- ABI note ----
 * Every guest image has a PT_NOTE segment holding this note (the guest library emits it). */
#define DN_NOTE_NAME "Denali"
#define DN_NOTE_TYPE_ABI 1u
struct dn_abi_note {
	uint32_t namesz; /* 7: strlen(DN_NOTE_NAME) + 1 */
	uint32_t descsz; /* 4 */
	uint32_t type;	 /* DN_NOTE_TYPE_ABI */
	char name[8];	 /* DN_NOTE_NAME, NUL-padded to 4-byte alignment */
	uint32_t abi_version;
};
_Static_assert(offsetof(struct dn_abi_note, name) == 12, "note layout");
_Static_assert(offsetof(struct dn_abi_note, abi_version) == 20, "note layout");
_Static_assert(sizeof(struct dn_abi_note) == 24, "note size");
#endif

/* ---- The I/O window ----
 * Offsets inside [DN_GPA_IOWIN, DN_GPA_IOWIN + DN_IOWIN_SIZE). Everything here is shared
 * memory that both sides may change at any time: the monitor and the switch read each guest
 * field once, validate it, and act on their copy. */
#define DN_IOWIN_VREGS 0x0000u /* struct dn_vregs */
#define DN_IOWIN_NIC 0x1000u   /* struct dn_nic */
#define DN_IOWIN_DISK 0x2000u  /* struct dn_disk (two pages) */
#define DN_IOWIN_BUFS 0x8000u  /* frame buffers: [DN_IOWIN_BUFS, DN_IOWIN_SIZE), guest-managed */

/* ---- Virtual NIC ----
 * Ethernet frames without FCS, at most DN_NIC_FRAME_MAX bytes (MTU 1500, no VLAN tag). Two
 * rings of DN_NIC_RING_SIZE descriptors, each descriptor naming a buffer in the I/O window by
 * its offset. A ring has two free-running counters: avail (guest: descriptors published) and
 * used (device: descriptors finished); descriptor i lives in desc[i % DN_NIC_RING_SIZE].
 * The guest owns desc[used..avail) only until it publishes them, the device until it
 * finishes them.
 * TX: the guest writes a frame into a buffer, fills desc {offset, len}, then increments
 *     tx.avail (release). The device sends it and increments tx.used; the buffer is then the
 *     guest's again. status says what became of it.
 * RX: the guest publishes empty buffers: desc {offset, len = capacity}, then rx.avail++. The
 *     device fills them in order, sets len to the frame length and status, increments rx.used
 *     and raises DN_EV_NET. With no buffer published, an arriving frame is dropped (counted).
 * Kick: after publishing TX descriptors the guest writes any 32-bit value to DN_NIC_KICK_PORT
 * with `outl` (an in-kernel exit, no monitor round trip). DN_HC_IDLE kicks on the guest's
 * behalf, so frames queued before an idle need no kick at all.
 * Hostile rings: a descriptor outside the buffers, a bad length or an avail counter more than
 * DN_NIC_RING_SIZE ahead of used is skipped and counted; after DN_NIC_ERRORS_MAX such errors
 * the service is stopped. */
#define DN_NIC_RING_SIZE 128u
#define DN_NIC_MTU 1500u
#define DN_NIC_FRAME_MIN 14u   /* an Ethernet header */
#define DN_NIC_FRAME_MAX 1514u /* header + MTU */
#define DN_NIC_KICK_PORT 0x600u
#define DN_NIC_ERRORS_MAX 64u

#ifndef __ASSEMBLER__
enum dn_nic_status {
	DN_NIC_OK = 0,
	DN_NIC_BAD_DESC = 1, /* offset or length outside the rules: nothing was done */
	DN_NIC_DROPPED = 2,  /* TX: not delivered (spoofed source MAC, no route) */
};

struct dn_nic_desc {
	uint32_t offset; /* IN: buffer offset in the I/O window, inside [DN_IOWIN_BUFS, SIZE) */
	uint16_t len;	 /* IN: TX frame bytes, RX buffer capacity; OUT (RX): frame bytes */
	uint16_t status; /* OUT: enum dn_nic_status */
};
_Static_assert(sizeof(struct dn_nic_desc) == 8, "nic desc size");

struct dn_nic_ring {
	uint32_t avail; /* IN: descriptors published, free-running */
	uint32_t reserved0[15];
	uint32_t used; /* OUT: descriptors finished, free-running (own cache line) */
	uint32_t reserved1[15];
	struct dn_nic_desc desc[DN_NIC_RING_SIZE];
};
_Static_assert(offsetof(struct dn_nic_ring, used) == 64, "nic ring layout");
_Static_assert(offsetof(struct dn_nic_ring, desc) == 128, "nic ring layout");
_Static_assert(sizeof(struct dn_nic_ring) == 128 + 8 * DN_NIC_RING_SIZE, "nic ring size");

struct dn_nic {
	struct dn_nic_ring tx;
	struct dn_nic_ring rx;
	uint64_t tx_frames;  /* OUT: frames taken from the TX ring and delivered */
	uint64_t tx_dropped; /* OUT: TX frames not delivered (bad, spoofed, no route) */
	uint64_t rx_frames;  /* OUT: frames written to the RX ring */
	uint64_t rx_dropped; /* OUT: frames for this NIC dropped: no RX buffer published */
	uint64_t errors;     /* OUT: ring errors (bad descriptors or counters) */
};
_Static_assert(offsetof(struct dn_nic, rx) == sizeof(struct dn_nic_ring), "nic layout");
_Static_assert(offsetof(struct dn_nic, tx_frames) == 2 * sizeof(struct dn_nic_ring), "nic");
_Static_assert(sizeof(struct dn_nic) == 2 * sizeof(struct dn_nic_ring) + 40, "nic size");
_Static_assert(DN_IOWIN_NIC + sizeof(struct dn_nic) <= DN_IOWIN_BUFS, "nic fits its slot");
_Static_assert(sizeof(struct dn_vregs) <= DN_IOWIN_NIC - DN_IOWIN_VREGS, "vregs fit");
_Static_assert(DN_GPA_IOWIN + DN_IOWIN_SIZE <= DN_GPA_IMAGE_BASE, "window below the image");
#endif

/* ---- Virtual disk ----
 * A disk of DN_DISK_BLOCK-byte blocks, blocks of them in all (struct dn_disk says how many).
 * Two rings, as NVMe: the guest publishes requests in sq, the device publishes one completion
 * per request in cq, in the order requests finish (not the order they were made); a
 * completion carries the request's id. Each ring has two free-running counters; entry i
 * lives in ring[i % DN_DISK_RING_SIZE].
 * Requests: the guest fills sq[sq_avail % SIZE] and increments sq_avail (release). The
 * device copies each request once, increments sq_used (the slot is the guest's again), and
 * acts on its copy. READ and WRITE move count blocks between the disk at block and the
 * buffer at GPA buf, which must lie wholly in the guest's own RAM ([DN_GPA_IMAGE_BASE,
 * ram_size), as hypercall buffers); the device reads or writes guest memory in place.
 * FLUSH (count, block and buf 0) completes only once every write completed before it was
 * made is durable on the host's disk; requests made after a FLUSH start after it finishes.
 * Completions: the device writes cq[cq_avail % SIZE], increments cq_avail and raises
 * DN_EV_DISK. The guest reads completions and increments cq_used. The device keeps at most
 * DN_DISK_RING_SIZE requests taken and not yet consumed, so cq never overflows; a guest that
 * does not consume completions stops the device taking requests, nothing else.
 * Kick: after publishing requests the guest writes any 32-bit value to DN_DISK_KICK_PORT with
 * `outl` (an in-kernel exit, as the NIC's). DN_HC_IDLE kicks on the guest's behalf.
 * Hostile input: a bad request completes with an error status and touches nothing; a bad
 * counter is ignored. A malformed request (DN_DISK_E_INVAL) and a bad counter are ring
 * errors, and after DN_DISK_ERRORS_MAX of them the service is stopped. A well-formed request
 * that only asks for what it may not have (E_RANGE, E_FAULT, E_READONLY) just fails, and a
 * failure of the host's own I/O is DN_DISK_E_IO: neither is a ring error. */
#define DN_DISK_BLOCK 4096u
#define DN_DISK_RING_SIZE 128u
#define DN_DISK_REQ_BLOCKS_MAX 256u /* blocks per READ or WRITE: 1 MiB */
#define DN_DISK_KICK_PORT 0x601u
#define DN_DISK_ERRORS_MAX 64u

#ifndef __ASSEMBLER__
enum dn_disk_op {
	DN_DISK_READ = 1,
	DN_DISK_WRITE = 2,
	DN_DISK_FLUSH = 3,
};

enum dn_disk_status {
	DN_DISK_OK = 0,
	DN_DISK_E_INVAL = 1,	/* unknown op, count 0 or too large, reserved fields not 0 */
	DN_DISK_E_RANGE = 2,	/* [block, block + count) is not inside the disk */
	DN_DISK_E_FAULT = 3,	/* the buffer is not wholly inside the guest's RAM */
	DN_DISK_E_READONLY = 4, /* WRITE to a read-only disk (FLUSH there is a no-op) */
	DN_DISK_E_IO = 5,	/* the host's I/O failed (its disk is full, or broken) */
};

#define DN_DISK_F_READONLY 1u /* dn_disk.flags: the disk refuses WRITE */

struct dn_disk_req {
	uint64_t id;	   /* IN: any value; the completion carries it back */
	uint64_t block;	   /* IN: first block */
	uint64_t buf;	   /* IN: GPA of count * DN_DISK_BLOCK bytes in guest RAM */
	uint32_t count;	   /* IN: blocks, 1..DN_DISK_REQ_BLOCKS_MAX (FLUSH: 0) */
	uint16_t op;	   /* IN: enum dn_disk_op */
	uint16_t reserved; /* IN: must be 0 */
};
_Static_assert(offsetof(struct dn_disk_req, block) == 8, "disk req layout");
_Static_assert(offsetof(struct dn_disk_req, buf) == 16, "disk req layout");
_Static_assert(offsetof(struct dn_disk_req, count) == 24, "disk req layout");
_Static_assert(offsetof(struct dn_disk_req, op) == 28, "disk req layout");
_Static_assert(sizeof(struct dn_disk_req) == 32, "disk req size");

struct dn_disk_cpl {
	uint64_t id;	/* OUT: the request's id */
	int32_t status; /* OUT: enum dn_disk_status */
	uint32_t reserved;
};
_Static_assert(offsetof(struct dn_disk_cpl, status) == 8, "disk cpl layout");
_Static_assert(sizeof(struct dn_disk_cpl) == 16, "disk cpl size");

struct dn_disk {
	uint64_t blocks; /* OUT: the disk's size in blocks */
	uint32_t flags;	 /* OUT: DN_DISK_F_* */
	uint32_t reserved0[13];
	uint32_t sq_avail; /* IN: requests published, free-running (own cache line) */
	uint32_t reserved1[15];
	uint32_t sq_used; /* OUT: requests taken by the device */
	uint32_t reserved2[15];
	uint32_t cq_avail; /* OUT: completions published */
	uint32_t reserved3[15];
	uint32_t cq_used; /* IN: completions consumed by the guest */
	uint32_t reserved4[15];
	uint64_t reads, writes, flushes; /* OUT: requests completed with DN_DISK_OK, by op */
	uint64_t failed;		 /* OUT: requests completed with an error */
	uint64_t errors;		 /* OUT: ring errors (malformed requests, bad counters) */
	uint64_t reserved5[3];
	struct dn_disk_req sq[DN_DISK_RING_SIZE];
	struct dn_disk_cpl cq[DN_DISK_RING_SIZE];
};
_Static_assert(offsetof(struct dn_disk, sq_avail) == 64, "disk layout");
_Static_assert(offsetof(struct dn_disk, sq_used) == 128, "disk layout");
_Static_assert(offsetof(struct dn_disk, cq_avail) == 192, "disk layout");
_Static_assert(offsetof(struct dn_disk, cq_used) == 256, "disk layout");
_Static_assert(offsetof(struct dn_disk, reads) == 320, "disk layout");
_Static_assert(offsetof(struct dn_disk, sq) == 384, "disk layout");
_Static_assert(offsetof(struct dn_disk, cq) == 384 + 32 * DN_DISK_RING_SIZE, "disk layout");
_Static_assert(sizeof(struct dn_disk) == 384 + 48 * DN_DISK_RING_SIZE, "disk size");
_Static_assert(DN_IOWIN_DISK + sizeof(struct dn_disk) <= DN_IOWIN_BUFS, "disk fits its slot");
_Static_assert(DN_IOWIN_NIC + sizeof(struct dn_nic) <= DN_IOWIN_DISK, "nic below the disk");
#endif

/* ---- Hypercalls ----
 * A hypercall is one 32-bit `out` to port DN_HC_PORT_BASE + nr whose value is the GPA of that
 * call's argument struct. The struct must be 8-byte aligned and lie wholly inside the guest's
 * own RAM ([DN_GPA_IMAGE_BASE, ram_size)); so must every buffer it points to. The monitor copies
 * the struct once, validates every field, acts, and writes the struct back (OUT fields set).
 * A bad request gets a negative status; breaking the memory contract (a pointer outside the
 * guest's RAM, a length that wraps, a misaligned struct, an unknown hypercall) stops the VM. */
#define DN_HC_PORT_BASE 0x500u

#ifndef __ASSEMBLER__
enum dn_hypercall {
	DN_HC_CONSOLE = 0,   /* struct dn_hc_console */
	DN_HC_EXIT = 1,	     /* struct dn_hc_exit: never returns */
	DN_HC_ABORT = 2,     /* struct dn_hc_abort: never returns */
	DN_HC_IDLE = 3,	     /* struct dn_hc_idle */
	DN_HC_TIMER_SET = 4, /* struct dn_hc_timer_set */
	DN_HC_MAX
};

/* Status codes returned in the `status` OUT field. */
enum dn_status {
	DN_OK = 0,
	DN_E_INVAL = -1, /* a field is out of its documented range */
	DN_E_AGAIN = -2, /* no room now: try again later (guest library only) */
};

/* Write len bytes to the service's console. The monitor buffers by line. */
#define DN_CONSOLE_MAX 4096u
struct dn_hc_console {
	uint64_t buf;	/* IN: GPA of the bytes */
	uint32_t len;	/* IN: at most DN_CONSOLE_MAX, else status DN_E_INVAL */
	int32_t status; /* OUT */
};
_Static_assert(offsetof(struct dn_hc_console, len) == 8, "console layout");
_Static_assert(offsetof(struct dn_hc_console, status) == 12, "console layout");
_Static_assert(sizeof(struct dn_hc_console) == 16, "console size");

/* End the VM. status 0..DN_EXIT_STATUS_MAX becomes denali-run's exit status. */
#define DN_EXIT_STATUS_MAX 123
struct dn_hc_exit {
	int32_t status;	   /* IN */
	uint32_t reserved; /* IN: ignored */
};
_Static_assert(sizeof(struct dn_hc_exit) == 8, "exit size");

/* End the VM with a reason; the monitor prints at most DN_ABORT_MSG_MAX bytes of it. */
#define DN_ABORT_MSG_MAX 512u
struct dn_hc_abort {
	uint64_t msg;	   /* IN: GPA of the message (not NUL-terminated) */
	uint32_t len;	   /* IN */
	uint32_t reserved; /* IN: ignored */
};
_Static_assert(offsetof(struct dn_hc_abort, len) == 8, "abort layout");
_Static_assert(sizeof(struct dn_hc_abort) == 16, "abort size");

/* Block until deadline_ns (guest monotonic time) or until an event is pending, then take and
 * return every pending event at once (pending is cleared). deadline_ns <= now (0 included)
 * is a yield. */
struct dn_hc_idle {
	uint64_t deadline_ns; /* IN */
	uint64_t events;      /* OUT: the DN_EV_* bits that were pending */
	int32_t status;	      /* OUT */
	uint32_t reserved;    /* IN: must be 0 */
};
_Static_assert(offsetof(struct dn_hc_idle, events) == 8, "idle layout");
_Static_assert(offsetof(struct dn_hc_idle, status) == 16, "idle layout");
_Static_assert(sizeof(struct dn_hc_idle) == 24, "idle size");

/* Arm the one-shot timer: DN_EV_TIMER is raised at deadline_ns (guest monotonic time), whether
 * the guest runs or idles. A later call replaces the deadline; 0 disarms it. */
struct dn_hc_timer_set {
	uint64_t deadline_ns; /* IN */
	int32_t status;	      /* OUT */
	uint32_t reserved;    /* IN: must be 0 */
};
_Static_assert(sizeof(struct dn_hc_timer_set) == 16, "timer size");
#endif

#endif /* DENALI_ABI_H */
