/* The fixed virtual CPU: the CPUID table every guest reads, the same on every host. It is
 * denali's own (vendor, signature, brand, features); the host's KVM_GET_SUPPORTED_CPUID is only
 * asked whether it can offer each promised feature. docs/abi.md "CPUID" documents it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vcpu.h"

#define LEAF_MAX_BASIC 0x1u
#define LEAF_EXT 0x80000000u
#define LEAF_MAX_EXT 0x80000008u

/* Not Intel's or AMD's: a guest must not take this for a real processor. KVM treats any
 * vendor but AMD's and Hygon's as it treats Intel's (a leaf above the highest reads as the
 * highest basic leaf), and that on every host, whatever the host's own vendor. */
static const char vendor[12] = {'D', 'e', 'n', 'a', 'l', 'i', 'D', 'e', 'n', 'a', 'l', 'i'};
static const char brand[48] = "Denali virtual CPU";

#define SIGNATURE 0x00000600u /* family 6, model 0, stepping 0: no real processor */
#define ADDRESS_SIZES 0x3024u /* 48-bit linear, 36-bit physical addresses */

/* The promised features, each with where it lives; docs/abi.md "CPUID" lists the same. */
enum reg { EAX, EBX, ECX, EDX };
static const char *const reg_names[] = {"EAX", "EBX", "ECX", "EDX"};
struct feature {
	uint32_t leaf;
	enum reg reg;
	unsigned bit;
	const char *name;
};
static const struct feature promised[] = {
	{0x1, EDX, 0, "FPU"},	{0x1, EDX, 4, "TSC"},	{0x1, EDX, 8, "CX8"},
	{0x1, EDX, 15, "CMOV"}, {0x1, EDX, 23, "MMX"},	{0x1, EDX, 24, "FXSR"},
	{0x1, EDX, 25, "SSE"},	{0x1, EDX, 26, "SSE2"}, {0x80000001, EDX, 29, "LM"},
};
#define NPROMISED (sizeof(promised) / sizeof(promised[0]))

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, enum reg r)
{
	switch (r) {
	case EAX: return &e->eax;
	case EBX: return &e->ebx;
	case ECX: return &e->ecx;
	default: return &e->edx;
	}
}

static uint32_t chars(const char *s)
{
	uint32_t v;
	memcpy(&v, s, sizeof(v));
	return v;
}

/* One leaf's values, features included. Leaves not named here read zero. */
static struct kvm_cpuid_entry2 fixed_leaf(uint32_t leaf)
{
	struct kvm_cpuid_entry2 e = {.function = leaf};
	if (leaf == 0) {
		e.eax = LEAF_MAX_BASIC;
		e.ebx = chars(vendor);
		e.edx = chars(vendor + 4);
		e.ecx = chars(vendor + 8);
	} else if (leaf == 1) {
		e.eax = SIGNATURE;
	} else if (leaf == LEAF_EXT) {
		e.eax = LEAF_MAX_EXT;
	} else if (leaf >= LEAF_EXT + 2 && leaf <= LEAF_EXT + 4) {
		const char *b = brand + (leaf - LEAF_EXT - 2) * 16;
		e.eax = chars(b);
		e.ebx = chars(b + 4);
		e.ecx = chars(b + 8);
		e.edx = chars(b + 12);
	} else if (leaf == LEAF_MAX_EXT) {
		e.eax = ADDRESS_SIZES;
	}
	for (unsigned i = 0; i < NPROMISED; i++)
		if (promised[i].leaf == leaf)
			*reg_of(&e, promised[i].reg) |= 1u << promised[i].bit;
	return e;
}

/* Every leaf of both ranges is listed, zero ones too, so that nothing of KVM's choosing fills a
 * leaf the guest may read. */
_Static_assert(VCPU_CPUID_ENTRIES == LEAF_MAX_BASIC + 1 + (LEAF_MAX_EXT - LEAF_EXT + 1),
	       "one entry per leaf in range");

static void fixed_table(struct vcpu_cpuid *t)
{
	memset(t, 0, sizeof(*t));
	for (uint32_t leaf = 0; leaf <= LEAF_MAX_BASIC; leaf++)
		t->entries[t->nent++] = fixed_leaf(leaf);
	for (uint32_t leaf = LEAF_EXT; leaf <= LEAF_MAX_EXT; leaf++)
		t->entries[t->nent++] = fixed_leaf(leaf);
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid_entry2 *entries, uint32_t n,
					   uint32_t leaf)
{
	for (uint32_t i = 0; i < n; i++)
		if (entries[i].function == leaf && entries[i].index == 0)
			return &entries[i];
	return NULL;
}

int vcpu_cpuid_build(struct vcpu_cpuid *t, const struct kvm_cpuid_entry2 *supported,
		     uint32_t nsupported, char *err, size_t errlen)
{
	fixed_table(t);
	for (unsigned i = 0; i < NPROMISED; i++) {
		const struct feature *f = &promised[i];
		const struct kvm_cpuid_entry2 *s = find(supported, nsupported, f->leaf);
		struct kvm_cpuid_entry2 copy = s ? *s : (struct kvm_cpuid_entry2){0};
		if (!(*reg_of(&copy, f->reg) >> f->bit & 1)) {
			snprintf(err, errlen,
				 "this host's KVM cannot offer the Denali virtual CPU: it lacks %s "
				 "(CPUID 0x%x %s bit %u)",
				 f->name, f->leaf, reg_names[f->reg], f->bit);
			return -1;
		}
	}
	/* The address sizes the guest is told must not exceed the host's. */
	const struct kvm_cpuid_entry2 *s = find(supported, nsupported, LEAF_MAX_EXT);
	uint32_t have = s ? s->eax : 0;
	if ((have & 0xff) < (ADDRESS_SIZES & 0xff) || (have >> 8 & 0xff) < (ADDRESS_SIZES >> 8)) {
		snprintf(err, errlen,
			 "this host's KVM cannot offer the Denali virtual CPU: it lacks %u-bit "
			 "physical and %u-bit linear addresses (CPUID 0x%x EAX is 0x%x)",
			 ADDRESS_SIZES & 0xff, ADDRESS_SIZES >> 8, LEAF_MAX_EXT, have);
		return -1;
	}
	return 0;
}

/* Enough for any host today (about 60 leaves); KVM says E2BIG if not, and we try twice that. */
#define SUPPORTED_FIRST 256u
#define SUPPORTED_MAX 4096u

int vcpu_cpuid_load(struct vcpu_cpuid *t, int kvm_fd, char *err, size_t errlen)
{
	for (uint32_t n = SUPPORTED_FIRST; n <= SUPPORTED_MAX; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c) {
			snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: out of memory");
			return -1;
		}
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			int rc = vcpu_cpuid_build(t, c->entries, c->nent < n ? c->nent : n, err,
						  errlen);
			free(c);
			return rc;
		}
		int e = errno;
		free(c);
		if (e != E2BIG) {
			snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
			return -1;
		}
	}
	snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: more than %u leaves", SUPPORTED_MAX);
	return -1;
}

int vcpu_cpuid_set(int vcpu_fd, const struct vcpu_cpuid *t, char *err, size_t errlen)
{
	union {
		struct kvm_cpuid2 c;
		uint8_t bytes[sizeof(struct kvm_cpuid2) +
			      VCPU_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2)];
	} buf;
	memset(&buf, 0, sizeof(buf));
	if (t->nent == 0 || t->nent > VCPU_CPUID_ENTRIES) {
		snprintf(err, errlen, "KVM_SET_CPUID2: no CPUID table was built");
		return -1;
	}
	buf.c.nent = t->nent;
	memcpy(buf.c.entries, t->entries, t->nent * sizeof(t->entries[0]));
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, &buf.c) != 0) {
		snprintf(err, errlen, "KVM_SET_CPUID2: %s", strerror(errno));
		return -1;
	}
	return 0;
}

uint64_t vcpu_cpuid_id(void)
{
	struct vcpu_cpuid t;
	fixed_table(&t);
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < t.nent; i++) {
		const struct kvm_cpuid_entry2 *e = &t.entries[i];
		const uint32_t words[] = {e->function, e->index, e->flags, e->eax,
					  e->ebx,      e->ecx,	 e->edx};
		const uint8_t *p = (const uint8_t *)words;
		for (size_t b = 0; b < sizeof(words); b++)
			h = (h ^ p[b]) * 0x100000001b3ull;
	}
	return h;
}
