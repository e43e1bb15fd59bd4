/* A saved vcpu state made safe to restore: the monitor's part set as at boot, the guest's part
 * checked. A checkpoint file is as hostile as the guest, so nothing in it may choose the
 * privilege level, the page tables or the descriptor tables the guest runs with. */
#include <stdio.h>
#include <string.h>

#include "sysarea.h"
#include "vcpu.h"

#define MXCSR_VALID 0xffffu /* bits 16-31 are reserved: LDMXCSR refuses them */
#define VECTOR_DB 1u	    /* the single-step trap KVM may hold pending at a park */

/* Canonical with 48-bit linear addresses: bits 63-47 all equal. */
static int canonical(uint64_t addr)
{
	uint64_t top = addr >> 47;
	return top == 0 || top == 0x1ffff;
}

/* Keeps of the pending events what the guest can have had at a park: a single-step trap and
 * the interrupt shadow of a `mov ss` or `sti` just before it. Injected interrupts, NMIs, SMIs
 * (SMM would run guest memory with every privilege), SIPIs and triple faults go. */
static int sanitize_events(struct kvm_vcpu_events *ev, char *err, size_t errlen)
{
	struct kvm_vcpu_events kept;
	memset(&kept, 0, sizeof(kept));
	if (ev->exception.injected || ev->exception.pending) {
		if (ev->exception.nr != VECTOR_DB) {
			snprintf(err, errlen,
				 "its saved vcpu has exception %u pending (only a single-step trap "
				 "can be)",
				 ev->exception.nr);
			return -1;
		}
		kept.exception.injected = 1;
		kept.exception.nr = VECTOR_DB; /* #DB pushes no error code */
	}
	if (ev->flags & KVM_VCPUEVENT_VALID_SHADOW) {
		kept.flags = KVM_VCPUEVENT_VALID_SHADOW;
		kept.interrupt.shadow =
			ev->interrupt.shadow & (KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI);
	}
	*ev = kept;
	return 0;
}

int vcpu_state_sanitize(struct vcpu_state *st, int64_t now_ns, char *err, size_t errlen)
{
	if (!canonical(st->regs.rip)) {
		snprintf(err, errlen, "its saved vcpu has a non-canonical RIP 0x%llx",
			 (unsigned long long)st->regs.rip);
		return -1;
	}
	if (st->fpu.mxcsr & ~MXCSR_VALID) {
		snprintf(err, errlen, "its saved vcpu has reserved MXCSR bits set (0x%x)",
			 st->fpu.mxcsr);
		return -1;
	}
	/* The time away is now_ns - host_ns: it must not overflow, nor be negative. */
	if (st->host_ns <= 0 || st->host_ns > now_ns) {
		snprintf(err, errlen, "its saved vcpu was parked at a time this host has not seen");
		return -1;
	}
	if (sanitize_events(&st->events, err, errlen) != 0)
		return -1;
	vcpu_sregs_fixed(&st->sregs);
	st->regs.rflags = (st->regs.rflags & VCPU_RFLAGS_GUEST) | VCPU_RFLAGS_FIXED;
	st->has_offset = st->has_offset != 0;
	return 0;
}
