/* What a swap-in or a resume trusts of a saved vcpu and of the memory file's system area: none
 * of what the monitor owns. Tampered states are set back to the fixed virtual architecture or
 * refused; a tampered system area is written again. No KVM. */
#include <stdlib.h>
#include <string.h>

#include "denali/abi.h"
#include "unit.h"
#include "vcpu/sysarea.h"
#include "vcpu/vcpu.h"

#define NOW_NS 5000000000ll
#define APIC_BASE 0xfee00900ull

/* A state as a park of a well-behaved guest leaves it. */
static struct vcpu_state parked(void)
{
	struct vcpu_state st;
	memset(&st, 0, sizeof(st));
	st.sregs.apic_base = APIC_BASE;
	vcpu_sregs_fixed(&st.sregs);
	st.regs.rip = 0x201234;
	st.regs.rsp = 0x1fffff0;
	st.regs.rax = 42;
	st.regs.rflags = VCPU_RFLAGS_FIXED | 0x1 | 0x40 | 0x200; /* CF ZF IF */
	st.fpu.mxcsr = 0x1f80;
	st.events.flags = KVM_VCPUEVENT_VALID_SHADOW;
	st.tsc = 123456789;
	st.host_ns = NOW_NS - 1000;
	return st;
}

static struct kvm_sregs fixed_sregs(void)
{
	struct kvm_sregs s;
	memset(&s, 0xa5, sizeof(s));
	s.apic_base = APIC_BASE;
	vcpu_sregs_fixed(&s);
	return s;
}

static void assert_sanitized(struct vcpu_state *st)
{
	char err[256] = "";
	ck_assert_msg(vcpu_state_sanitize(st, NOW_NS, err, sizeof(err)) == 0, "%s", err);
	struct kvm_sregs want = fixed_sregs();
	ck_assert_int_eq(memcmp(&st->sregs, &want, sizeof(want)), 0);
	/* Ring 3: CS and SS with RPL 3 and DPL 3, over the monitor's tables. */
	ck_assert_uint_eq(st->sregs.cs.selector & 3, 3);
	ck_assert_uint_eq(st->sregs.ss.selector & 3, 3);
	ck_assert_uint_eq(st->sregs.cs.dpl, 3);
	ck_assert_uint_eq(st->sregs.ss.dpl, 3);
	ck_assert_uint_eq(st->sregs.cr3, SYS_PML4);
	ck_assert_uint_eq(st->sregs.gdt.base, SYS_GDT);
	ck_assert_uint_eq(st->sregs.idt.base, SYS_IDT);
	ck_assert_uint_eq(st->sregs.apic_base, 0);	     /* no local APIC: CPUID shows none */
	ck_assert_uint_eq(st->regs.rflags & 0x3000, 0x3000); /* IOPL as at boot */
}

static void assert_refused(struct vcpu_state *st, const char *field)
{
	char err[256] = "";
	ck_assert_int_eq(vcpu_state_sanitize(st, NOW_NS, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, field) != NULL, "\"%s\" does not name %s", err, field);
	ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(test_good_state_unchanged)
{
	struct vcpu_state st = parked(), was = parked();
	assert_sanitized(&st);
	ck_assert_int_eq(memcmp(&st, &was, sizeof(st)), 0);
}
END_TEST

START_TEST(test_ring0_segments_set_back)
{
	struct vcpu_state st = parked();
	st.sregs.cs.selector = SYS_SEL_KCODE; /* CPL 0 */
	st.sregs.cs.dpl = 0;
	st.sregs.ss.selector = SYS_SEL_KDATA; /* RPL 0 */
	st.sregs.ss.dpl = 0;
	st.sregs.ds.selector = 0x10;
	st.sregs.fs.base = 0x7000; /* the page table */
	st.sregs.gs.base = 0xffffffff80000000ull;
	assert_sanitized(&st);
}
END_TEST

START_TEST(test_control_registers_set_back)
{
	struct vcpu_state st = parked();
	st.sregs.cr3 = 0x400000;		       /* page tables in the guest's own RAM */
	st.sregs.cr0 &= ~(0x80000000ull | 0x10000ull); /* no PG, no WP */
	st.sregs.cr4 |= 0x100000;		       /* SMEP games, or anything */
	st.sregs.efer = 0x1 | 0x400;		       /* SCE, LMA without LME */
	st.sregs.cr8 = 15;
	st.sregs.apic_base = APIC_BASE; /* an APIC, enabled: CPUID would show its bit */
	assert_sanitized(&st);
	ck_assert_uint_eq(st.sregs.cr0, VCPU_CR0);
	ck_assert_uint_eq(st.sregs.cr4, VCPU_CR4);
	ck_assert_uint_eq(st.sregs.efer, VCPU_EFER);
}
END_TEST

START_TEST(test_descriptor_tables_set_back)
{
	struct vcpu_state st = parked();
	st.sregs.gdt.base = 0x400000; /* a GDT the guest wrote, with a ring-0 call gate */
	st.sregs.gdt.limit = 0xffff;
	st.sregs.idt.base = 0x400000;
	st.sregs.idt.limit = 0xfff;
	st.sregs.ldt =
		(struct kvm_segment){.base = 0x400000, .limit = 0xffff, .type = 2, .present = 1};
	st.sregs.tr.base = 0x400000;
	st.sregs.interrupt_bitmap[0] = 1;
	assert_sanitized(&st);
	ck_assert_uint_eq(st.sregs.ldt.unusable, 1);
	ck_assert_uint_eq(st.sregs.tr.base, SYS_TSS);
}
END_TEST

START_TEST(test_rflags_monitor_bits_set_back)
{
	struct vcpu_state st = parked();
	st.regs.rflags = 0x2 | 0x1 | 0x100 | 0x400 | 0x40000; /* IOPL 0; CF TF DF AC */
	assert_sanitized(&st);
	ck_assert_uint_eq(st.regs.rflags, VCPU_RFLAGS_FIXED | 0x1 | 0x100 | 0x400 | 0x40000);
	st.regs.rflags =
		0x3002 | 0x20000 | 0x80000 | 0x100000 | 0x8 | (1ull << 40); /* VM VIF VIP */
	assert_sanitized(&st);
	ck_assert_uint_eq(st.regs.rflags, VCPU_RFLAGS_FIXED);
	st.regs.rflags = 0; /* the reserved bit 1 clear */
	assert_sanitized(&st);
	ck_assert_uint_eq(st.regs.rflags, VCPU_RFLAGS_FIXED);
}
END_TEST

START_TEST(test_guest_values_out_of_range_refused)
{
	struct vcpu_state st = parked();
	st.regs.rip = 0x0000800000000000ull;
	assert_refused(&st, "RIP");
	st = parked();
	st.regs.rip = 0x8000000000001000ull;
	assert_refused(&st, "RIP");
	st = parked();
	st.regs.rip = 0xffff800000000000ull; /* canonical: a fault in the guest, not refused */
	assert_sanitized(&st);
	st = parked();
	st.fpu.mxcsr = 0x10000 | 0x1f80;
	assert_refused(&st, "MXCSR");
	st = parked();
	st.host_ns = NOW_NS + 1;
	assert_refused(&st, "parked");
	st = parked();
	st.host_ns = INT64_MIN;
	assert_refused(&st, "parked");
}
END_TEST

START_TEST(test_events_kept_only_as_a_park_leaves_them)
{
	struct vcpu_state st = parked();
	st.events.exception.injected = 1;
	st.events.exception.nr = 13;
	st.events.exception.has_error_code = 1;
	assert_refused(&st, "exception 13");
	st = parked();
	st.events.exception.pending = 1;
	st.events.exception.nr = 2; /* NMI */
	assert_refused(&st, "exception 2");
	/* A single-step trap stays, with the interrupt shadow; NMI, interrupt and SMM go. */
	st = parked();
	st.events.exception.injected = 1;
	st.events.exception.nr = 1;
	st.events.exception.has_error_code = 1;
	st.events.exception.error_code = 99;
	st.events.interrupt.injected = 1;
	st.events.interrupt.nr = 0x80;
	st.events.interrupt.shadow = KVM_X86_SHADOW_INT_STI | 0x80;
	st.events.nmi.injected = 1;
	st.events.nmi.pending = 1;
	st.events.smi.smm = 1;
	st.events.smi.pending = 1;
	st.events.sipi_vector = 7;
	st.events.flags |= KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	assert_sanitized(&st);
	struct kvm_vcpu_events want;
	memset(&want, 0, sizeof(want));
	want.exception.injected = 1;
	want.exception.nr = 1;
	want.interrupt.shadow = KVM_X86_SHADOW_INT_STI;
	want.flags = KVM_VCPUEVENT_VALID_SHADOW;
	ck_assert_int_eq(memcmp(&st.events, &want, sizeof(want)), 0);
}
END_TEST

/* The system area of a memory file, tampered, comes back as at boot; the boot-info page stays. */
START_TEST(test_sysarea_rebuilt)
{
	const uint64_t ram_size = 64ull << 20;
	uint8_t *want = calloc(1, SYS_END), *ram = calloc(1, SYS_END);
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(ram);
	vcpu_sysarea_build(want, ram_size);
	memset(want + SYS_BOOT_INFO, 0x5a, DN_PAGE_SIZE);
	memset(ram, 0xcc, SYS_END);
	memset(ram + SYS_BOOT_INFO, 0x5a, DN_PAGE_SIZE);
	vcpu_sysarea_rebuild(ram, ram_size);
	ck_assert_int_eq(memcmp(ram, want, SYS_END), 0);
	/* One PTE made user-writable, the stub patched: both undone. */
	ram[SYS_PT0 + (SYS_GDT / DN_PAGE_SIZE) * 8] |= (uint8_t)(PTE_US | PTE_RW);
	ram[SYS_STUB_COMMON] = 0xcc;
	vcpu_sysarea_rebuild(ram, ram_size);
	ck_assert_int_eq(memcmp(ram, want, SYS_END), 0);
	free(want);
	free(ram);
}
END_TEST

Suite *vcpu_state_suite(void)
{
	Suite *s = suite_create("vcpu_state");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_good_state_unchanged);
	tcase_add_test(tc, test_ring0_segments_set_back);
	tcase_add_test(tc, test_control_registers_set_back);
	tcase_add_test(tc, test_descriptor_tables_set_back);
	tcase_add_test(tc, test_rflags_monitor_bits_set_back);
	tcase_add_test(tc, test_guest_values_out_of_range_refused);
	tcase_add_test(tc, test_events_kept_only_as_a_park_leaves_them);
	tcase_add_test(tc, test_sysarea_rebuilt);
	suite_add_tcase(s, tc);
	return s;
}
