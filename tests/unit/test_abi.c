/* The ABI's layout rules and the system area the monitor builds: what ring 3 can and cannot
 * reach, walked through the page tables as the CPU would. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "denali/abi.h"
#include "unit.h"
#include "vcpu/sysarea.h"
#include "vcpu/vcpu.h"

#define RAM (16u << 20)

static uint64_t get64(const uint8_t *ram, uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, ram + gpa, sizeof(v));
	return v;
}

struct walk {
	int present, user, writable;
	uint64_t pa;
};

/* A 4-level walk of va; user/writable are the AND over every level, as the CPU checks. */
static struct walk walk(const uint8_t *ram, uint64_t va)
{
	struct walk w = {0, 1, 1, 0};
	uint64_t table = SYS_PML4;
	unsigned shifts[] = {39, 30, 21, 12};
	for (int level = 0; level < 4; level++) {
		uint64_t e = get64(ram, table + ((va >> shifts[level]) & 511) * 8);
		if (!(e & PTE_P))
			return w;
		w.user &= (e & PTE_US) != 0;
		w.writable &= (e & PTE_RW) != 0;
		uint64_t addr = e & 0x000ffffffffff000ull;
		if (level == 2 && (e & PTE_PS)) {
			w.present = 1;
			w.pa = (addr & ~0x1fffffull) + (va & 0x1fffff);
			return w;
		}
		if (level == 3) {
			w.present = 1;
			w.pa = addr + (va & 0xfff);
			return w;
		}
		table = addr;
	}
	return w;
}

START_TEST(test_layout_constants)
{
	ck_assert_uint_eq(DN_GPA_IMAGE_BASE % DN_RAM_ALIGN, 0);
	ck_assert_uint_le(SYS_END, DN_GPA_IMAGE_BASE);
	ck_assert_uint_eq(SYS_BOOT_INFO % DN_PAGE_SIZE, 0);
	ck_assert_uint_le(sizeof(struct dn_boot_info), DN_PAGE_SIZE);
	ck_assert_uint_le(SYS_END, DN_GPA_IOWIN);
	ck_assert_uint_eq(DN_GPA_IOWIN % DN_PAGE_SIZE, 0);
	ck_assert_uint_eq(DN_IOWIN_SIZE % DN_PAGE_SIZE, 0);
	ck_assert_uint_eq(vcpu_sysarea_vregs_gpa() % DN_PAGE_SIZE, 0);
	ck_assert_uint_eq((DN_IOWIN_BUFS) % DN_PAGE_SIZE, 0);
	ck_assert_uint_eq(DN_NIC_RING_SIZE & (DN_NIC_RING_SIZE - 1), 0); /* power of two */
	ck_assert_uint_le(DN_NIC_FRAME_MAX, UINT16_MAX);
	ck_assert_uint_le(sizeof(struct dn_vregs), DN_PAGE_SIZE);
	ck_assert_uint_eq(offsetof(struct dn_vregs, saved_rip), DN_VREGS_SAVED_RIP);
	ck_assert_uint_eq(offsetof(struct dn_vregs, saved_rsp), DN_VREGS_SAVED_RSP);
	ck_assert_uint_eq(offsetof(struct dn_vregs, saved_rflags), DN_VREGS_SAVED_RFLAGS);
	ck_assert_uint_eq(offsetof(struct dn_vregs, vif), DN_VREGS_VIF);
	ck_assert_uint_eq(offsetof(struct dn_vregs, handler), DN_VREGS_HANDLER);
	ck_assert_uint_le(SYS_STUB_COMMON + 16, SYS_STACK0);
	ck_assert_uint_le(SYS_TSS + 104, SYS_IDT);
	ck_assert_uint_eq(DN_RAM_MAX, 1ull << 32); /* a hypercall argument is a 32-bit GPA */
	/* Hypercall ports stay clear of the in-kernel PIC's and of the fault port. */
	unsigned pic[] = {0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, SYS_FAULT_PORT, DN_NIC_KICK_PORT};
	for (unsigned i = 0; i < sizeof(pic) / sizeof(pic[0]); i++)
		ck_assert(pic[i] < DN_HC_PORT_BASE || pic[i] >= DN_HC_PORT_BASE + DN_HC_MAX);
}
END_TEST

START_TEST(test_ring3_view)
{
	uint8_t *ram = calloc(1, RAM);
	vcpu_sysarea_build(ram, RAM);
	struct walk w = walk(ram, 0);
	ck_assert_msg(!w.present, "GPA 0 must be unmapped so null pointers fault");
	for (uint64_t gpa = SYS_PML4; gpa < SYS_END; gpa += DN_PAGE_SIZE) {
		w = walk(ram, gpa);
		ck_assert(w.present);
		ck_assert_uint_eq(w.pa, gpa);
		if (gpa == SYS_BOOT_INFO) {
			ck_assert_msg(w.user && !w.writable, "boot info must be user read-only");
		} else {
			ck_assert_msg(!w.user, "system page 0x%llx reachable from ring 3",
				      (unsigned long long)gpa);
		}
	}
	ck_assert(!walk(ram, SYS_END).present);
	ck_assert(!walk(ram, DN_GPA_IOWIN - 1).present);
	for (uint64_t gpa = DN_GPA_IOWIN; gpa < DN_GPA_IOWIN + DN_IOWIN_SIZE; gpa += DN_PAGE_SIZE) {
		w = walk(ram, gpa);
		ck_assert_msg(w.present && w.user && w.writable && w.pa == gpa,
			      "I/O window page 0x%llx must be user read-write",
			      (unsigned long long)gpa);
	}
	w = walk(ram, DN_GPA_IMAGE_BASE);
	ck_assert(w.present && w.user && w.writable);
	ck_assert_uint_eq(w.pa, DN_GPA_IMAGE_BASE);
	w = walk(ram, RAM - 1);
	ck_assert(w.present && w.user && w.writable);
	ck_assert_uint_eq(w.pa, RAM - 1);
	ck_assert(!walk(ram, RAM).present);
	ck_assert(!walk(ram, 1ull << 32).present);
	free(ram);
}
END_TEST

START_TEST(test_descriptors_and_stub)
{
	uint8_t *ram = calloc(1, RAM);
	vcpu_sysarea_build(ram, RAM);
	/* User code: 64-bit, DPL 3. */
	uint64_t ucode = get64(ram, SYS_GDT + (SYS_SEL_UCODE & ~3u));
	ck_assert_uint_eq((ucode >> 45) & 3, 3);
	ck_assert_uint_eq((ucode >> 53) & 1, 1);
	/* TSS RSP0 is the top of the ring-0 stack. */
	ck_assert_uint_eq(get64(ram, SYS_TSS + 4), SYS_STACK0 + DN_PAGE_SIZE);
	/* Every vector's gate leads to its slot, and each slot jumps to the common report code. */
	for (unsigned v = 0; v < SYS_STUB_VECTORS; v++) {
		uint64_t lo = get64(ram, SYS_IDT + v * 16);
		uint64_t target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000);
		ck_assert_uint_eq(target, SYS_STUB + v * SYS_STUB_SLOT);
		ck_assert_uint_eq((lo >> 47) & 1, 1); /* present */
		const uint8_t *slot = ram + target;
		unsigned n = slot[0] == 0x6a && slot[1] == 0 && slot[2] == 0x6a ? 2 : 0;
		ck_assert_uint_eq(slot[n], 0x6a);
		ck_assert_uint_eq(slot[n + 1], v);
		ck_assert_uint_eq(slot[n + 2], 0xe9);
		int32_t rel;
		memcpy(&rel, slot + n + 3, 4);
		ck_assert_uint_eq(target + n + 7 + (int64_t)rel, SYS_STUB_COMMON);
	}
	const uint8_t *common = ram + SYS_STUB_COMMON;
	ck_assert_uint_eq(common[0], 0x66);
	ck_assert_uint_eq(common[2] | (common[3] << 8), SYS_FAULT_PORT);
	ck_assert_uint_eq(common[4], 0xef);
	free(ram);
}
END_TEST

START_TEST(test_largest_ram)
{
	/* 4 GiB of RAM needs all four page directories; check the last 2 MiB page without
	 * allocating 4 GiB: only the system area is touched. */
	uint8_t *ram = calloc(1, SYS_END);
	/* vcpu_sysarea_build writes only below SYS_END. */
	vcpu_sysarea_build(ram, DN_RAM_MAX);
	struct walk w = walk(ram, DN_RAM_MAX - 1);
	ck_assert(w.present && w.user && w.writable);
	ck_assert_uint_eq(w.pa, DN_RAM_MAX - 1);
	free(ram);
}
END_TEST

Suite *abi_suite(void)
{
	Suite *s = suite_create("abi");
	TCase *tc = tcase_create("layout");
	tcase_add_test(tc, test_layout_constants);
	tcase_add_test(tc, test_ring3_view);
	tcase_add_test(tc, test_descriptors_and_stub);
	tcase_add_test(tc, test_largest_ram);
	suite_add_tcase(s, tc);
	return s;
}
