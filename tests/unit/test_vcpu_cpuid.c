/* The fixed virtual CPU: the table built from fake KVM_GET_SUPPORTED_CPUID tables is exactly
 * docs/abi.md's, whatever the host offers beyond the promised features, and a host that lacks
 * one is refused with the feature named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "vcpu/vcpu.h"

#define LEAF_EXT 0x80000000u

/* A generous host: an AMD server with AVX-512, its brand, a hypervisor leaf, subleaves. */
static const struct kvm_cpuid_entry2 rich_host[] = {
	{.function = 0, .eax = 0x10, .ebx = 0x68747541, .ecx = 0x444d4163, .edx = 0x69746e65},
	{.function = 1, .eax = 0x00a00f11, .ebx = 0x00020800, .ecx = 0xfed83203, .edx = 0x178bfbff},
	{.function = 7,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .ebx = 0xf1bf07ab,
	 .ecx = 0x405fce},
	{.function = 0xd,
	 .index = 0,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .eax = 0xe7,
	 .ebx = 0x980,
	 .ecx = 0x988},
	{.function = 0xd, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0xf},
	{.function = 0x40000000,
	 .eax = 0x40000001,
	 .ebx = 0x4b4d564b,
	 .ecx = 0x564b4d56,
	 .edx = 0x4d},
	{.function = LEAF_EXT,
	 .eax = 0x80000021,
	 .ebx = 0x68747541,
	 .ecx = 0x444d4163,
	 .edx = 0x69746e65},
	{.function = LEAF_EXT + 1, .eax = 0x00a00f11, .ecx = 0x75c237ff, .edx = 0x2fd3fbff},
	{.function = LEAF_EXT + 2,
	 .eax = 0x20444d41,
	 .ebx = 0x43595045,
	 .ecx = 0x36373720,
	 .edx = 0x36312033},
	{.function = LEAF_EXT + 3,
	 .eax = 0x726f432d,
	 .ebx = 0x72502065,
	 .ecx = 0x7365636f,
	 .edx = 0x20726f73},
	{.function = LEAF_EXT + 4,
	 .eax = 0x20202020,
	 .ebx = 0x20202020,
	 .ecx = 0x20202020,
	 .edx = 0x202020},
	{.function = LEAF_EXT + 5,
	 .eax = 0xff40ff40,
	 .ebx = 0xff40ff40,
	 .ecx = 0x20080140,
	 .edx = 0x20080140},
	{.function = LEAF_EXT + 6, .ebx = 0x42004200, .ecx = 0x02006140, .edx = 0x00808140},
	{.function = LEAF_EXT + 7, .edx = 0x100},
	{.function = LEAF_EXT + 8, .eax = 0x3030, .ebx = 0x111ef657, .ecx = 0x707f},
};
#define NRICH (sizeof(rich_host) / sizeof(rich_host[0]))

/* The test VM's KVM (QEMU's qemu64 CPU, nested): a modest host, and an Intel-less one. */
static const struct kvm_cpuid_entry2 modest_host[] = {
	{.function = 0, .eax = 0xd, .ebx = 0x68747541, .ecx = 0x444d4163, .edx = 0x69746e65},
	{.function = 1, .eax = 0x00060fb1, .ebx = 0x800, .ecx = 0x00202001, .edx = 0x078bfbfd},
	{.function = LEAF_EXT, .eax = 0x8000000a},
	{.function = LEAF_EXT + 1, .eax = 0x00060fb1, .ecx = 0x5, .edx = 0x2593fbfd},
	{.function = LEAF_EXT + 8, .eax = 0x3028},
};
#define NMODEST (sizeof(modest_host) / sizeof(modest_host[0]))

/* docs/abi.md's CPUID table, rows "| `0xLEAF` | `0xEAX` | `0xEBX` | `0xECX` | `0xEDX` |". */
static unsigned documented(struct kvm_cpuid_entry2 *rows, unsigned max)
{
	FILE *f = fopen(UNIT_ABI_MD, "r");
	ck_assert_msg(f != NULL, "cannot open %s", UNIT_ABI_MD);
	char line[1024];
	unsigned n = 0;
	int in_section = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "## ", 3) == 0)
			in_section = strcmp(line, "## CPUID\n") == 0;
		struct kvm_cpuid_entry2 e = {0};
		if (in_section && sscanf(line, "| `0x%x` | `0x%x` | `0x%x` | `0x%x` | `0x%x` |",
					 &e.function, &e.eax, &e.ebx, &e.ecx, &e.edx) == 5) {
			ck_assert_uint_lt(n, max);
			rows[n++] = e;
		}
	}
	fclose(f);
	return n;
}

static void assert_documented(const struct vcpu_cpuid *t)
{
	struct kvm_cpuid_entry2 rows[32];
	unsigned n = documented(rows, 32);
	ck_assert_uint_eq(t->nent, n);
	for (unsigned i = 0; i < n; i++) {
		const struct kvm_cpuid_entry2 *e = &t->entries[i], *d = &rows[i];
		ck_assert_msg(e->function == d->function && e->index == 0 && e->flags == 0 &&
				      e->eax == d->eax && e->ebx == d->ebx && e->ecx == d->ecx &&
				      e->edx == d->edx,
			      "leaf %#x: built %08x %08x %08x %08x, docs/abi.md has leaf %#x %08x "
			      "%08x %08x %08x",
			      e->function, e->eax, e->ebx, e->ecx, e->edx, d->function, d->eax,
			      d->ebx, d->ecx, d->edx);
	}
}

START_TEST(test_rich_host_gives_only_the_promised)
{
	struct vcpu_cpuid t;
	char err[256];
	ck_assert_msg(vcpu_cpuid_build(&t, rich_host, NRICH, err, sizeof(err)) == 0, "%s", err);
	assert_documented(&t);
	/* Nothing of the host's: not its vendor, brand, AVX-512 or hypervisor leaf. */
	for (unsigned i = 0; i < t.nent; i++) {
		ck_assert_uint_ne(t.entries[i].function, 7);
		ck_assert_uint_ne(t.entries[i].function, 0x40000000);
		ck_assert_uint_ne(t.entries[i].ebx, 0x68747541);
	}
}
END_TEST

START_TEST(test_same_table_on_every_host)
{
	struct vcpu_cpuid rich, modest;
	char err[256];
	ck_assert_msg(vcpu_cpuid_build(&rich, rich_host, NRICH, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(vcpu_cpuid_build(&modest, modest_host, NMODEST, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_int_eq(memcmp(&rich, &modest, sizeof(rich)), 0);
	assert_documented(&modest);
	ck_assert_uint_ne(vcpu_cpuid_id(), 0);
	ck_assert_uint_eq(vcpu_cpuid_id(), vcpu_cpuid_id());
}
END_TEST

/* The modest host with one entry changed by change; build must refuse naming want. */
static void assert_refused(void (*change)(struct kvm_cpuid_entry2 *host, unsigned *n),
			   const char *want)
{
	struct kvm_cpuid_entry2 host[NMODEST];
	unsigned n = NMODEST;
	memcpy(host, modest_host, sizeof(host));
	change(host, &n);
	struct vcpu_cpuid t;
	char err[256] = "";
	ck_assert_int_eq(vcpu_cpuid_build(&t, host, n, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want) != NULL, "\"%s\" does not name %s", err, want);
	ck_assert_ptr_nonnull(strstr(err, "cannot offer the Denali virtual CPU"));
	ck_assert_ptr_null(strchr(err, '\n'));
}

static void no_sse2(struct kvm_cpuid_entry2 *host, unsigned *n)
{
	(void)n;
	host[1].edx &= ~(1u << 26);
}

static void no_cmov_no_tsc(struct kvm_cpuid_entry2 *host, unsigned *n)
{
	(void)n;
	host[1].edx &= ~(1u << 15 | 1u << 4); /* the first in the promised order is named */
}

static void no_ext_leaf(struct kvm_cpuid_entry2 *host, unsigned *n)
{
	host[3] = host[--*n]; /* 0x80000001 gone: no LM */
}

static void narrow_addresses(struct kvm_cpuid_entry2 *host, unsigned *n)
{
	(void)n;
	host[4].eax = 0x3020; /* 32-bit physical */
}

static void nothing(struct kvm_cpuid_entry2 *host, unsigned *n)
{
	(void)host;
	*n = 0;
}

START_TEST(test_host_lacking_a_feature_is_refused)
{
	assert_refused(no_sse2, "lacks SSE2 (CPUID 0x1 EDX bit 26)");
	assert_refused(no_cmov_no_tsc, "lacks TSC (CPUID 0x1 EDX bit 4)");
	assert_refused(no_ext_leaf, "lacks LM (CPUID 0x80000001 EDX bit 29)");
	assert_refused(narrow_addresses, "36-bit physical and 48-bit linear addresses");
	assert_refused(nothing, "lacks FPU");
}
END_TEST

Suite *vcpu_cpuid_suite(void)
{
	Suite *s = suite_create("vcpu_cpuid");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_rich_host_gives_only_the_promised);
	tcase_add_test(tc, test_same_table_on_every_host);
	tcase_add_test(tc, test_host_lacking_a_feature_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
