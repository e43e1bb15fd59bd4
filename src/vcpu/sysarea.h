/* The monitor-owned system area in the low 1 MiB of guest RAM: where each structure lives.
 * Private to the monitor; the guest only knows the boot-info page and the I/O window above. */
#ifndef VCPU_SYSAREA_H
#define VCPU_SYSAREA_H

#define SYS_PML4 0x1000u
#define SYS_PDPT 0x2000u
#define SYS_PD 0x3000u	/* 4 pages: one page directory per GiB of the 4 GiB maximum */
#define SYS_PT0 0x7000u /* 4 KiB page table for the first 2 MiB */
#define SYS_GDT 0x8000u
#define SYS_TSS 0x8080u
#define SYS_IDT 0x9000u
#define SYS_STUB 0xa000u   /* ring-0 fault stub: one 16-byte slot per vector, then common code */
#define SYS_STACK0 0xb000u /* ring-0 stack page; the TSS points RSP0 at its top */
#define SYS_BOOT_INFO 0xc000u
#define SYS_END 0xd000u

#define SYS_STUB_VECTORS 32u
#define SYS_STUB_SLOT 16u
#define SYS_STUB_COMMON (SYS_STUB + SYS_STUB_VECTORS * SYS_STUB_SLOT)

/* The fault stub's report port. Outside the hypercall range, and only honoured from the stub. */
#define SYS_FAULT_PORT 0x4f0u

#define MSR_IA32_TSC 0x10u /* the guest clock is its TSC: read at boot, moved on at unpark */

#define SYS_SEL_KCODE 0x08u
#define SYS_SEL_KDATA 0x10u
#define SYS_SEL_UCODE 0x1bu /* 0x18 | RPL 3 */
#define SYS_SEL_UDATA 0x23u /* 0x20 | RPL 3 */
#define SYS_SEL_TSS 0x28u

/* The fixed virtual architecture: control registers, EFER and RFLAGS as the monitor sets them
 * at boot and again at every swap-in. The guest's ring 3 can change none of it. */
#define VCPU_CR0 0x80050033ull /* PE MP ET NE WP AM PG */
#define VCPU_CR4 0x620ull      /* PAE OSFXSR OSXMMEXCPT */
#define VCPU_EFER 0x500ull     /* LME LMA */
#define VCPU_GDT_LIMIT 0x37u   /* null, kernel code and data, user code and data, the TSS */
#define VCPU_IDT_LIMIT (SYS_STUB_VECTORS * 16 - 1)
/* RFLAGS: the reserved bit 1, and IOPL 3 so that `out` from ring 3 exits instead of raising #GP
 * on real hardware. */
#define VCPU_RFLAGS_FIXED 0x3002ull
/* What ring 3 can change itself: CF PF AF ZF SF TF IF DF OF NT RF AC ID (not IOPL, VM, VIF, VIP:
 * popf at CPL 3 leaves those as they are). */
#define VCPU_RFLAGS_GUEST 0x254fd5ull

/* Page-table entry bits. */
#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull

#endif
