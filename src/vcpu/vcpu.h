/* KVM vcpus: opening /dev/kvm, creating a VM with one vcpu over guest RAM, building the
 * Denali system area (page tables, GDT, IDT, TSS, fault stub), and the run loop. */
#ifndef VCPU_H
#define VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct kvm_run;

#define VCPU_EXIT_REASONS 40 /* KVM_EXIT_* reasons counted; larger ones count as the last */

/* The signal that kicks a vcpu thread out of KVM_RUN or an idle wait. */
#define VCPU_KICK_SIGNAL SIGUSR1

/* The fixed virtual CPU's CPUID table (docs/abi.md "CPUID"): every leaf a guest can read. */
#define VCPU_CPUID_ENTRIES 11
struct vcpu_cpuid {
	uint32_t nent;
	struct kvm_cpuid_entry2 entries[VCPU_CPUID_ENTRIES];
};

/* Builds the fixed table into t, after checking that the host's supported table (from
 * KVM_GET_SUPPORTED_CPUID) offers every promised feature; nothing else of the host's goes in.
 * 0, or -1 with the first missing feature named in err. Pure. */
int vcpu_cpuid_build(struct vcpu_cpuid *t, const struct kvm_cpuid_entry2 *supported,
		     uint32_t nsupported, char *err, size_t errlen);

/* vcpu_cpuid_build over this host's KVM_GET_SUPPORTED_CPUID (a /dev/kvm ioctl). 0, or -1. */
int vcpu_cpuid_load(struct vcpu_cpuid *t, int kvm_fd, char *err, size_t errlen);

/* KVM_SET_CPUID2 of t on a vcpu that has not run yet. 0, or -1 with err. */
int vcpu_cpuid_set(int vcpu_fd, const struct vcpu_cpuid *t, char *err, size_t errlen);

/* An id of the fixed table (a hash of every leaf): a checkpoint records it, and a resume under
 * a monitor whose table differs is refused. Pure. */
uint64_t vcpu_cpuid_id(void);

/* The host's /dev/kvm. */
struct vcpu_kvm {
	int fd;
	size_t run_size;	 /* bytes of the per-vcpu kvm_run mapping */
	struct vcpu_cpuid cpuid; /* what every vcpu is given before it first runs */
};

/* Opens /dev/kvm, checks the API and builds the CPUID table (vcpu_cpuid_load: a host that
 * lacks a promised feature is refused). Returns 0, or a negative errno with a helpful message
 * in err: -ENOENT when KVM is absent (tests skip on it), -EACCES without permission. */
int vcpu_kvm_open(struct vcpu_kvm *kvm, char *err, size_t errlen);
void vcpu_kvm_close(struct vcpu_kvm *kvm);

struct vcpu {
	int vm_fd;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram; /* host mapping of guest RAM, GPA 0 at ram[0] */
	uint64_t ram_size;
	uint64_t tsc_hz;      /* guest TSC frequency */
	uint64_t tsc_base;    /* guest TSC at guest time 0 */
	int64_t time_base_ns; /* host CLOCK_MONOTONIC at guest time 0 */
	volatile sig_atomic_t stop_requested;
	pthread_t thread; /* the thread that runs it, once vcpu_bind_thread was called */
	int thread_bound;
	int io_pending;	     /* the last exit was I/O that the next KVM_RUN completes */
	uint64_t parked_rip; /* while parked (fd -1): where the guest is */
	uint64_t exits[VCPU_EXIT_REASONS]; /* KVM exits to userspace, by KVM_EXIT_* reason */
};

/* A VM with its one vcpu and no memory yet. Made ahead of need (a cell keeps spares), it
 * spares a swap-in the costliest ioctls: KVM_CREATE_VM and KVM_CREATE_VCPU. */
struct vcpu_shell {
	int vm_fd, fd;
	struct kvm_run *run;
	size_t run_size;
};

/* Makes a shell, its vcpu given the fixed CPUID table. 0, or -1 with the failing ioctl named
 * in err (nothing left open). */
int vcpu_shell_make(struct vcpu_shell *sh, const struct vcpu_kvm *kvm, char *err, size_t errlen);
void vcpu_shell_free(struct vcpu_shell *sh);

/* Creates a VM with ram_size bytes of RAM at GPA 0 backed by ram, and its vcpu: in shell if it
 * is not NULL (vcpu_create then owns it), else in a new one. Returns 0, or -1 with the failing
 * ioctl named in err; on failure nothing is left open, the shell included. */
int vcpu_create(struct vcpu *v, const struct vcpu_kvm *kvm, struct vcpu_shell *shell, uint8_t *ram,
		uint64_t ram_size, char *err, size_t errlen);
void vcpu_destroy(struct vcpu *v);

/* Writes the system area (page tables, GDT, TSS, IDT, fault stub) into the low pages of ram.
 * The guest's ring 3 can reach none of it except the boot-info page, read-only. Pure. */
void vcpu_sysarea_build(uint8_t *ram, uint64_t ram_size);

/* Writes again every monitor structure of the system area (all but the boot-info page, which
 * holds only what the guest was told): at swap-in and resume, whatever the memory file holds
 * there now. Pure. */
void vcpu_sysarea_rebuild(uint8_t *ram, uint64_t ram_size);

/* GPA of the boot-info page the system area leaves for the loader to fill. */
uint64_t vcpu_sysarea_boot_info_gpa(void);

/* GPA of the virtual-register page (struct dn_vregs), user read-write. */
uint64_t vcpu_sysarea_vregs_gpa(void);

/* Sets the vcpu to 64-bit ring 3 at entry with RSP = stack_top and RDI = arg, and records the
 * time base (TSC and host clock at guest time 0). Returns 0 or -1 with err set. */
int vcpu_boot(struct vcpu *v, uint64_t entry, uint64_t stack_top, uint64_t arg, char *err,
	      size_t errlen);

/* Sets every field of s to the fixed virtual architecture (64-bit ring 3 over the system area:
 * control registers, EFER, segments, LDT, TR, GDT, IDT; apic_base 0, no local APIC). Pure. */
void vcpu_sregs_fixed(struct kvm_sregs *s);

/* What the run loop does after a hypercall handler returns. */
enum vcpu_action {
	VCPU_CONTINUE = 0,
	VCPU_HALT = 1,	  /* the handler ended the VM and recorded why */
	VCPU_SUSPEND = 2, /* the handler parked the vcpu (the service was swapped out) */
};

/* Why vcpu_run returned. */
enum vcpu_stop_kind {
	VCPU_STOP_HANDLER,   /* a hypercall handler returned VCPU_HALT */
	VCPU_STOP_FAULT,     /* the guest broke the architecture: reason and rip are set */
	VCPU_STOP_REQUESTED, /* vcpu_request_stop was called (signal, timeout) */
	VCPU_STOP_HOST,	     /* an ioctl failed: reason is set */
	VCPU_STOP_SUSPENDED, /* a hypercall handler parked the vcpu: it resumes later */
};

struct vcpu_stop {
	enum vcpu_stop_kind kind;
	uint64_t rip;
	char reason[256];
};

struct vcpu_ops {
	/* Hypercall nr (< DN_HC_MAX) with its 32-bit argument. */
	enum vcpu_action (*hypercall)(void *ctx, unsigned nr, uint32_t arg);
	/* Called before every entry into the guest (timers, virtual interrupts); may be NULL. */
	enum vcpu_action (*before_entry)(void *ctx);
};

/* Runs the vcpu until a handler halts it, the guest faults, a stop is requested or KVM fails. */
void vcpu_run(struct vcpu *v, const struct vcpu_ops *ops, void *ctx, struct vcpu_stop *stop);

/* Asks the vcpu to stop at its next exit, or at once if it is in KVM_RUN: from a signal handler
 * on the vcpu's own thread, or from any thread once the vcpu is bound (it is kicked). */
void vcpu_request_stop(struct vcpu *v);

/* Installs the process-wide handler of VCPU_KICK_SIGNAL. Call once, before any vcpu runs. */
void vcpu_kick_install(void);

/* Makes the calling thread the vcpu's: kicks and stop requests go to it. */
void vcpu_bind_thread(struct vcpu *v);

/* Forgets kicks that arrived while the vcpu was not in KVM_RUN (they were handled). */
void vcpu_take_kicks(struct vcpu *v);

/* Interrupts the vcpu's thread (KVM_RUN returns, an idle wait wakes). Any thread. */
void vcpu_kick(struct vcpu *v);

/* Diverts the guest to new_rip in ring 3 with RSP 16-byte aligned at least 128 bytes below its
 * current one, returning the old RIP, RSP and RFLAGS. Returns 0 or -1 (ioctl failed). */
int vcpu_divert(struct vcpu *v, uint64_t new_rip, uint64_t *old_rip, uint64_t *old_rsp,
		uint64_t *old_rflags);

/* Finishes an I/O exit (RIP past the `out`) without running guest code, so that the
 * registers can be read or changed. 0, or -1 with errno. */
int vcpu_complete_io(struct vcpu *v);

/* What a parked vcpu keeps: its registers, SSE state and clock. The guest runs in ring 3 with
 * CR4.OSXSAVE clear, so kvm_fpu holds all of its FPU and SSE state. */
struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_vcpu_events events; /* exceptions KVM holds pending (a single-step trap) */
	uint64_t tsc;		       /* the guest's TSC when parked */
	int64_t host_ns;	       /* the host clock then */
	uint64_t tsc_offset;	       /* guest TSC - host TSC, if has_offset */
	int has_offset;
};

/* Makes a saved state safe to restore, trusting none of it (a checkpoint file is hostile): what
 * the monitor owns is set as at boot (vcpu_sregs_fixed; RFLAGS' IOPL, VM, VIF, VIP and reserved
 * bits; pending events but a single-step trap and the interrupt shadow), and what the guest
 * owns is checked: RIP canonical, MXCSR without reserved bits, a pending exception that is a
 * single-step trap, host_ns a time of this boot not after now_ns. 0, or -1 with the bad field
 * named in err (st is then partly changed). Pure. */
int vcpu_state_sanitize(struct vcpu_state *st, int64_t now_ns, char *err, size_t errlen);

/* Saves the vcpu's state into st and destroys its VM and vcpu (the guest RAM mapping stays;
 * run becomes NULL). On the vcpu's own thread, between runs, with its kick signal blocked.
 * 0, or -1 with err (the vcpu is then untouched). */
int vcpu_park(struct vcpu *v, struct vcpu_state *st, char *err, size_t errlen);

/* Creates a new VM over the same RAM (in shell, if not NULL: it is then owned and used or
 * freed) and restores st into its vcpu, sanitized (vcpu_state_sanitize); the guest's TSC keeps
 * its offset from the host's, so its clock never notices. 0, or -1 with err (it stays parked;
 * the shell is then freed). */
int vcpu_unpark(struct vcpu *v, const struct vcpu_kvm *kvm, struct vcpu_shell *shell,
		const struct vcpu_state *st, char *err, size_t errlen);

/* The guest's current RIP (one ioctl), or 0 if it cannot be read. */
uint64_t vcpu_rip(const struct vcpu *v);

#endif
