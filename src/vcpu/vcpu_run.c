/* The vcpu run loop: KVM_RUN, then hypercalls go to the table and everything else stops the VM
 * with a reason. */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "denali/abi.h"
#include "sysarea.h"
#include "vcpu.h"

/* The vcpu this thread runs: the kick handler marks it to leave KVM_RUN. */
static __thread struct vcpu *thread_vcpu;

static void on_kick(int signo)
{
	(void)signo;
	struct vcpu *v = thread_vcpu;
	if (v && v->run)
		v->run->immediate_exit = 1; /* a kick just before KVM_RUN is not lost */
}

void vcpu_kick_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_kick; /* no SA_RESTART: KVM_RUN and waits must return EINTR */
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

void vcpu_bind_thread(struct vcpu *v)
{
	thread_vcpu = v;
	v->thread = pthread_self();
	v->thread_bound = 1;
}

void vcpu_take_kicks(struct vcpu *v)
{
	if (v->run && !v->stop_requested)
		v->run->immediate_exit = 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (v->thread_bound)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_request_stop(struct vcpu *v)
{
	v->stop_requested = 1;
	/* Another thread never writes run (a parked vcpu has none): the kick's handler sets
	 * immediate_exit on the vcpu's own thread. */
	if (v->thread_bound && !pthread_equal(v->thread, pthread_self()))
		vcpu_kick(v);
	else if (v->run)
		v->run->immediate_exit = 1;
}

/* An I/O exit is complete (RIP past the `out`) only after the next KVM_RUN. Before the
 * registers are read or changed, finish it without running guest code. */
int vcpu_complete_io(struct vcpu *v)
{
	if (!v->io_pending)
		return 0;
	v->run->immediate_exit = 1;
	int r = ioctl(v->fd, KVM_RUN, 0);
	v->run->immediate_exit = 0;
	if (r == 0 || (errno != EINTR && errno != EAGAIN))
		return -1;
	v->io_pending = 0;
	return 0;
}

int vcpu_divert(struct vcpu *v, uint64_t new_rip, uint64_t *old_rip, uint64_t *old_rsp,
		uint64_t *old_rflags)
{
	struct kvm_regs regs;
	if (vcpu_complete_io(v) != 0 || ioctl(v->fd, KVM_GET_REGS, &regs) != 0)
		return -1;
	*old_rip = regs.rip;
	*old_rsp = regs.rsp;
	*old_rflags = regs.rflags;
	regs.rip = new_rip;
	regs.rsp = (regs.rsp - 128) & ~15ull;
	return ioctl(v->fd, KVM_SET_REGS, &regs);
}

static void stop_with(struct vcpu_stop *stop, enum vcpu_stop_kind kind, uint64_t rip,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void stop_with(struct vcpu_stop *stop, enum vcpu_stop_kind kind, uint64_t rip,
		      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(stop->reason, sizeof(stop->reason), fmt, ap);
	va_end(ap);
	stop->kind = kind;
	stop->rip = rip;
}

static const char *const exception_names[SYS_STUB_VECTORS] = {
	[0] = "divide error (#DE)",
	[1] = "debug exception (#DB)",
	[2] = "non-maskable interrupt",
	[3] = "breakpoint (#BP)",
	[4] = "overflow (#OF)",
	[5] = "bound range exceeded (#BR)",
	[6] = "invalid opcode (#UD)",
	[7] = "device not available (#NM)",
	[8] = "double fault (#DF)",
	[10] = "invalid TSS (#TS)",
	[11] = "segment not present (#NP)",
	[12] = "stack fault (#SS)",
	[13] = "general protection fault (#GP)",
	[14] = "page fault (#PF)",
	[16] = "x87 floating-point error (#MF)",
	[17] = "alignment check (#AC)",
	[18] = "machine check (#MC)",
	[19] = "SIMD floating-point exception (#XM)",
	[20] = "virtualization exception (#VE)",
	[21] = "control protection (#CP)",
};

/* The ring-0 stub reported an exception: its frame is on the ring-0 stack, pushed by the CPU
 * (SS, RSP, RFLAGS, CS, RIP, error code) and the stub (vector). */
static void report_exception(struct vcpu *v, struct vcpu_stop *stop)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) != 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) != 0) {
		stop_with(stop, VCPU_STOP_HOST, 0, "KVM_GET_REGS: %s", strerror(errno));
		return;
	}
	uint64_t frame = SYS_STACK0 + DN_PAGE_SIZE - 7 * 8;
	/* Only the stub's own `out`, on the frame the CPU builds for a ring-3 fault, is a report.
	 * Ring 3 cannot run the stub (supervisor pages), so an `out` to this port from elsewhere
	 * is the guest's own, to a port that does not exist for it. */
	if (regs.rip < SYS_STUB_COMMON || regs.rip > SYS_STUB_COMMON + 8) {
		stop_with(stop, VCPU_STOP_FAULT, regs.rip,
			  "write to port 0x%x, which does not exist", SYS_FAULT_PORT);
		return;
	}
	if (regs.rsp != frame) {
		stop_with(stop, VCPU_STOP_FAULT, regs.rip, "fault while reporting a fault");
		return;
	}
	uint64_t f[7];
	memcpy(f, v->ram + frame, sizeof(f));
	uint64_t vector = f[0], error = f[1], rip = f[2];
	const char *name = vector < SYS_STUB_VECTORS && exception_names[vector]
				   ? exception_names[vector]
				   : "reserved exception";
	if (vector == 14)
		stop_with(stop, VCPU_STOP_FAULT, rip, "%s %s 0x%llx (%s, error 0x%llx)", name,
			  (error & 0x10) || sregs.cr2 == rip ? "fetching"
			  : (error & 0x2)		     ? "writing"
							     : "reading",
			  (unsigned long long)sregs.cr2,
			  (error & 0x1) ? "protection violation" : "not mapped",
			  (unsigned long long)error);
	else if (vector == 8 || (vector >= 10 && vector <= 13) || vector == 17 || vector == 21)
		stop_with(stop, VCPU_STOP_FAULT, rip, "%s, error 0x%llx", name,
			  (unsigned long long)error);
	else
		stop_with(stop, VCPU_STOP_FAULT, rip, "%s", name);
}

static enum vcpu_action handle_io(struct vcpu *v, const struct vcpu_ops *ops, void *ctx,
				  struct vcpu_stop *stop)
{
	const struct kvm_run *run = v->run;
	unsigned port = run->io.port;
	int out = run->io.direction == KVM_EXIT_IO_OUT;
	if (port >= DN_HC_PORT_BASE && port < DN_HC_PORT_BASE + DN_HC_MAX) {
		if (!out || run->io.size != 4 || run->io.count != 1) {
			stop_with(
				stop, VCPU_STOP_FAULT, vcpu_rip(v),
				"hypercall %u: %s of %u x %u bytes (a hypercall is one 32-bit out)",
				port - DN_HC_PORT_BASE, out ? "out" : "in", run->io.count,
				run->io.size);
			return VCPU_HALT;
		}
		uint32_t arg;
		memcpy(&arg, (const uint8_t *)run + run->io.data_offset, sizeof(arg));
		enum vcpu_action action = ops->hypercall(ctx, port - DN_HC_PORT_BASE, arg);
		if (action != VCPU_CONTINUE)
			stop->kind = action == VCPU_HALT ? VCPU_STOP_HANDLER : VCPU_STOP_SUSPENDED;
		return action;
	}
	if (port == SYS_FAULT_PORT && out) {
		report_exception(v, stop);
		return VCPU_HALT;
	}
	stop_with(stop, VCPU_STOP_FAULT, vcpu_rip(v), "%s port 0x%x, which does not exist",
		  out ? "write to" : "read from", port);
	return VCPU_HALT;
}

void vcpu_run(struct vcpu *v, const struct vcpu_ops *ops, void *ctx, struct vcpu_stop *stop)
{
	memset(stop, 0, sizeof(*stop));
	for (;;) {
		if (v->stop_requested) {
			stop_with(stop, VCPU_STOP_REQUESTED, vcpu_rip(v), "stop requested");
			return;
		}
		if (ops->before_entry && ops->before_entry(ctx) == VCPU_HALT) {
			stop->kind = VCPU_STOP_HANDLER;
			return;
		}
		int r = ioctl(v->fd, KVM_RUN, 0);
		v->io_pending = 0; /* KVM_RUN finishes a pending I/O even when it returns EINTR */
		if (r != 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* A kick: take it (stop requests have their own flag), look again.
				 * It is an exit like any other, counted as KVM's own signal exits.
				 */
				v->exits[KVM_EXIT_INTR]++;
				v->run->immediate_exit = 0;
				continue;
			}
			if (errno == EFAULT) /* a guest page its memory file could not back */
				stop_with(stop, VCPU_STOP_HOST, vcpu_rip(v),
					  "cannot write guest memory (is its filesystem full?)");
			else
				stop_with(stop, VCPU_STOP_HOST, 0, "KVM_RUN: %s", strerror(errno));
			return;
		}
		struct kvm_run *run = v->run;
		v->exits[run->exit_reason < VCPU_EXIT_REASONS ? run->exit_reason
							      : VCPU_EXIT_REASONS - 1]++;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			v->io_pending = 1;
			if (handle_io(v, ops, ctx, stop) != VCPU_CONTINUE)
				return;
			break;
		case KVM_EXIT_INTR: break;
		case KVM_EXIT_MMIO:
			stop_with(stop, VCPU_STOP_FAULT, vcpu_rip(v),
				  "memory access outside RAM at 0x%llx",
				  (unsigned long long)run->mmio.phys_addr);
			return;
		case KVM_EXIT_SHUTDOWN:
			stop_with(stop, VCPU_STOP_FAULT, vcpu_rip(v), "triple fault");
			return;
		case KVM_EXIT_HLT: stop_with(stop, VCPU_STOP_FAULT, vcpu_rip(v), "halted"); return;
		case KVM_EXIT_FAIL_ENTRY:
			stop_with(
				stop, VCPU_STOP_HOST, vcpu_rip(v),
				"VM entry failed (hardware reason 0x%llx)",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			return;
		case KVM_EXIT_INTERNAL_ERROR:
			stop_with(stop, VCPU_STOP_FAULT, vcpu_rip(v),
				  "KVM internal error (suberror %u)", run->internal.suberror);
			return;
		default:
			stop_with(stop, VCPU_STOP_FAULT, vcpu_rip(v), "unexpected exit (reason %u)",
				  run->exit_reason);
			return;
		}
	}
}
