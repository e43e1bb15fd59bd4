/* The Denali system area and the boot state of the vcpu: 64-bit long mode, ring 3, identity-
 * mapped RAM in 2 MiB pages. Exceptions go to a tiny ring-0 stub that only reports them. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "clock.h"
#include "denali/abi.h"
#include "sysarea.h"
#include "vcpu.h"

static void put64(uint8_t *ram, uint64_t gpa, uint64_t value)
{
	memcpy(ram + gpa, &value, sizeof(value));
}

static void build_page_tables(uint8_t *ram, uint64_t ram_size)
{
	const uint64_t table = PTE_P | PTE_RW | PTE_US;
	put64(ram, SYS_PML4, SYS_PDPT | table);
	for (uint64_t gib = 0; gib < 4; gib++)
		put64(ram, SYS_PDPT + gib * 8, (SYS_PD + gib * DN_PAGE_SIZE) | table);
	/* The first 2 MiB in 4 KiB pages: GPA 0 unmapped, the system area supervisor-only, the
	 * boot-info page user read-only, the I/O window user read-write, the rest unmapped. */
	put64(ram, SYS_PD, SYS_PT0 | table);
	for (uint64_t page = SYS_PML4; page < SYS_END; page += DN_PAGE_SIZE) {
		uint64_t flags = page == SYS_BOOT_INFO ? PTE_P | PTE_US : PTE_P | PTE_RW;
		put64(ram, SYS_PT0 + (page / DN_PAGE_SIZE) * 8, page | flags);
	}
	for (uint64_t page = DN_GPA_IOWIN; page < DN_GPA_IOWIN + DN_IOWIN_SIZE;
	     page += DN_PAGE_SIZE)
		put64(ram, SYS_PT0 + (page / DN_PAGE_SIZE) * 8, page | PTE_P | PTE_RW | PTE_US);
	/* The guest's own RAM: 2 MiB pages, user read-write. */
	for (uint64_t gpa = DN_RAM_ALIGN; gpa < ram_size; gpa += DN_RAM_ALIGN)
		put64(ram, SYS_PD + (gpa / DN_RAM_ALIGN) * 8,
		      gpa | PTE_P | PTE_RW | PTE_US | PTE_PS);
}

static void build_gdt_tss(uint8_t *ram)
{
	put64(ram, SYS_GDT + 0x08, 0x00af9b000000ffffull); /* kernel code, 64-bit */
	put64(ram, SYS_GDT + 0x10, 0x00cf93000000ffffull); /* kernel data */
	put64(ram, SYS_GDT + 0x18, 0x00affb000000ffffull); /* user code, 64-bit, DPL 3 */
	put64(ram, SYS_GDT + 0x20, 0x00cff3000000ffffull); /* user data, DPL 3 */
	uint64_t base = SYS_TSS, limit = 103;
	uint64_t tss_lo = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
			  (((base >> 24) & 0xff) << 56);
	put64(ram, SYS_GDT + 0x28, tss_lo);
	put64(ram, SYS_GDT + 0x30, base >> 32);
	/* TSS: RSP0 = top of the ring-0 stack; no I/O bitmap (offset past the limit). */
	put64(ram, SYS_TSS + 4, SYS_STACK0 + DN_PAGE_SIZE);
	uint16_t iomap = 104;
	memcpy(ram + SYS_TSS + 102, &iomap, sizeof(iomap));
}

static int vector_has_error_code(unsigned v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

/* One slot per vector: [push $0 if the CPU pushes no error code] push $vector; jmp common.
 * Common: out %eax, $SYS_FAULT_PORT; hlt. The monitor reads the frame and stops the VM. */
static void build_idt_stub(uint8_t *ram)
{
	for (unsigned v = 0; v < SYS_STUB_VECTORS; v++) {
		uint64_t slot = SYS_STUB + v * SYS_STUB_SLOT;
		uint8_t *p = ram + slot;
		memset(p, 0x90, SYS_STUB_SLOT);
		unsigned n = 0;
		if (!vector_has_error_code(v)) {
			p[n++] = 0x6a;
			p[n++] = 0x00;
		}
		p[n++] = 0x6a;
		p[n++] = (uint8_t)v;
		p[n++] = 0xe9;
		int32_t rel = (int32_t)(SYS_STUB_COMMON - (slot + n + 4));
		memcpy(p + n, &rel, 4);

		/* Interrupt gate to the slot; DPL 3 for int3/into so that they report as
		 * themselves. */
		uint64_t dpl = (v == 3 || v == 4) ? 3 : 0;
		uint64_t lo = (slot & 0xffff) | ((uint64_t)SYS_SEL_KCODE << 16) |
			      ((0x8eull | (dpl << 5)) << 40) | (((slot >> 16) & 0xffff) << 48);
		put64(ram, SYS_IDT + v * 16, lo);
		put64(ram, SYS_IDT + v * 16 + 8, slot >> 32);
	}
	static const uint8_t common[] = {
		0x66, 0xba, SYS_FAULT_PORT & 0xff, SYS_FAULT_PORT >> 8, /* mov $port, %dx */
		0xef,							/* out %eax, %dx */
		0xf4,							/* hlt */
		0xeb, 0xfd,						/* jmp back to hlt */
	};
	memcpy(ram + SYS_STUB_COMMON, common, sizeof(common));
}

_Static_assert(SYS_BOOT_INFO + DN_PAGE_SIZE == SYS_END && SYS_STACK0 < SYS_BOOT_INFO,
	       "every monitor structure lies below the boot-info page, the last of the area");

/* Everything in the system area but the boot-info page, written whole from nothing. */
static void build_monitor_pages(uint8_t *ram, uint64_t ram_size)
{
	memset(ram, 0, SYS_BOOT_INFO);
	build_page_tables(ram, ram_size);
	build_gdt_tss(ram);
	build_idt_stub(ram);
}

void vcpu_sysarea_build(uint8_t *ram, uint64_t ram_size)
{
	build_monitor_pages(ram, ram_size);
	memset(ram + SYS_BOOT_INFO, 0, SYS_END - SYS_BOOT_INFO);
}

void vcpu_sysarea_rebuild(uint8_t *ram, uint64_t ram_size)
{
	build_monitor_pages(ram, ram_size);
}

uint64_t vcpu_sysarea_boot_info_gpa(void)
{
	return SYS_BOOT_INFO;
}

uint64_t vcpu_sysarea_vregs_gpa(void)
{
	return DN_GPA_IOWIN + DN_IOWIN_VREGS;
}

static struct kvm_segment user_segment(uint16_t selector, uint8_t type, int code)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.dpl = 3,
		.db = code ? 0 : 1,
		.s = 1,
		.l = code ? 1 : 0,
		.g = 1,
	};
}

/* Records guest time 0: the guest's TSC now, bracketed by two host clock reads. */
static int read_time_base(struct vcpu *v, char *err, size_t errlen)
{
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0) {
		snprintf(err, errlen, "KVM_GET_TSC_KHZ: %s",
			 khz < 0 ? strerror(errno) : "returned 0");
		return -1;
	}
	v->tsc_hz = (uint64_t)khz * 1000;
	union {
		struct kvm_msrs msrs;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} buf;
	memset(&buf, 0, sizeof(buf));
	buf.msrs.nmsrs = 1;
	buf.msrs.entries[0].index = MSR_IA32_TSC;
	int64_t before = clock_mono_ns();
	int got = ioctl(v->fd, KVM_GET_MSRS, &buf);
	int64_t after = clock_mono_ns();
	if (got != 1) {
		snprintf(err, errlen, "KVM_GET_MSRS(IA32_TSC): %s",
			 got < 0 ? strerror(errno) : "not read");
		return -1;
	}
	v->tsc_base = buf.msrs.entries[0].data;
	v->time_base_ns = before + (after - before) / 2;
	return 0;
}

void vcpu_sregs_fixed(struct kvm_sregs *s)
{
	/* apic_base 0 too: there is no local APIC, and KVM shows CPUID's APIC bit while its
	 * enable bit is set (its default), which the fixed CPUID table does not promise. */
	memset(s, 0, sizeof(*s));
	s->cr0 = VCPU_CR0;
	s->cr3 = SYS_PML4;
	s->cr4 = VCPU_CR4;
	s->efer = VCPU_EFER;
	s->cs = user_segment(SYS_SEL_UCODE, 11, 1);
	s->ds = s->es = s->fs = s->gs = s->ss = user_segment(SYS_SEL_UDATA, 3, 0);
	s->tr = (struct kvm_segment){
		.base = SYS_TSS,
		.limit = 103,
		.selector = SYS_SEL_TSS,
		.type = 11,
		.present = 1,
	};
	/* No LDT: a selector with TI set faults, so no descriptor can come from guest memory. */
	s->ldt = (struct kvm_segment){.unusable = 1};
	s->gdt.base = SYS_GDT;
	s->gdt.limit = VCPU_GDT_LIMIT;
	s->idt.base = SYS_IDT;
	s->idt.limit = VCPU_IDT_LIMIT;
}

int vcpu_boot(struct vcpu *v, uint64_t entry, uint64_t stack_top, uint64_t arg, char *err,
	      size_t errlen)
{
	struct kvm_sregs sregs;
	vcpu_sregs_fixed(&sregs);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) != 0) {
		snprintf(err, errlen, "KVM_SET_SREGS: %s", strerror(errno));
		return -1;
	}
	struct kvm_regs regs = {
		.rip = entry,
		.rsp = stack_top,
		.rdi = arg,
		.rflags = VCPU_RFLAGS_FIXED,
	};
	if (ioctl(v->fd, KVM_SET_REGS, &regs) != 0) {
		snprintf(err, errlen, "KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return read_time_base(v, err, errlen);
}
