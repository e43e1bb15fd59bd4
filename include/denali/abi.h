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
#define DN_ABI_VERSION 1

#define DN_PAGE_SIZE 4096u

/* ---- Guest physical memory layout ----
 * [0, DN_GPA_IMAGE_BASE)        monitor-owned system area: page tables, GDT, IDT, TSS, the
 *                               fault-report stub. Not accessible from the guest's ring 3,
 *                               except the boot-info page (read-only, address in RDI).
 *                               GPA 0 is never mapped, so null-pointer accesses fault.
 * [DN_GPA_IMAGE_BASE, ram_size) the guest's own: its ELF image, heap and stack.
 * ram_size is a multiple of DN_RAM_ALIGN, at least DN_RAM_MIN and at most DN_RAM_MAX (the
 * hypercall argument address is 32 bits wide, so every guest byte must be below 4 GiB). */
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
	/* Time: guest monotonic nanoseconds since boot, read with rdtsc and no exit:
	 *   ns = ((rdtsc() - tsc_base) * tsc_mul) >> 32   (128-bit product) */
	uint64_t tsc_hz;	     /* OUT: TSC ticks per second */
	uint64_t tsc_base;	     /* OUT: TSC value at guest time 0 */
	uint64_t tsc_mul;	     /* OUT: ns per tick, 32.32 fixed point */
	uint32_t argc;		     /* OUT: number of strings in args */
	uint32_t args_len;	     /* OUT: bytes of args used, NULs included */
	char name[DN_NAME_MAX];	     /* OUT: the service name, NUL-terminated */
	char args[DN_BOOT_ARGS_MAX]; /* OUT: argc NUL-terminated strings, back to back */
};
_Static_assert(offsetof(struct dn_boot_info, abi_version) == 4, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, ram_size) == 8, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, heap_start) == 16, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, stack_top) == 24, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, tsc_hz) == 32, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, tsc_base) == 40, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, tsc_mul) == 48, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, argc) == 56, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, args_len) == 60, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, name) == 64, "boot info layout");
_Static_assert(offsetof(struct dn_boot_info, args) == 128, "boot info layout");
_Static_assert(sizeof(struct dn_boot_info) == 3200, "boot info size");
_Static_assert(sizeof(struct dn_boot_info) <= DN_PAGE_SIZE, "boot info fits one page");

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
	DN_HC_CONSOLE = 0, /* struct dn_hc_console */
	DN_HC_EXIT = 1,	   /* struct dn_hc_exit: never returns */
	DN_HC_ABORT = 2,   /* struct dn_hc_abort: never returns */
	DN_HC_IDLE = 3,	   /* struct dn_hc_idle */
	DN_HC_MAX
};

/* Status codes returned in the `status` OUT field. */
enum dn_status {
	DN_OK = 0,
	DN_E_INVAL = -1, /* a field is out of its documented range */
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

/* Block until deadline_ns (guest monotonic time) or until an event is pending, then return
 * every pending event at once. deadline_ns <= now (0 included) is a yield. */
struct dn_hc_idle {
	uint64_t deadline_ns; /* IN */
	uint64_t events;      /* OUT: bitmask of events pending at return (none yet in ABI v1) */
	int32_t status;	      /* OUT */
	uint32_t reserved;    /* IN: must be 0 */
};
_Static_assert(offsetof(struct dn_hc_idle, events) == 8, "idle layout");
_Static_assert(offsetof(struct dn_hc_idle, status) == 16, "idle layout");
_Static_assert(sizeof(struct dn_hc_idle) == 24, "idle size");
#endif

#endif /* DENALI_ABI_H */
