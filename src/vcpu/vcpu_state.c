/* A vcpu's architectural state, saved so that its VM can be destroyed (the service swapped out)
 * and rebuilt later with the guest none the wiser, its clock included. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "clock.h"
#include "sysarea.h"
#include "vcpu.h"

static int tsc_msr(struct vcpu *v, int set, uint64_t *tsc)
{
	union {
		struct kvm_msrs msrs;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} buf;
	memset(&buf, 0, sizeof(buf));
	buf.msrs.nmsrs = 1;
	buf.msrs.entries[0].index = MSR_IA32_TSC;
	buf.msrs.entries[0].data = *tsc;
	if (ioctl(v->fd, set ? KVM_SET_MSRS : KVM_GET_MSRS, &buf) != 1)
		return -1;
	*tsc = buf.msrs.entries[0].data;
	return 0;
}

/* The TSC offset attribute (Linux 5.16): guest TSC = host TSC + offset. */
static int tsc_offset(struct vcpu *v, int set, uint64_t *offset)
{
	struct kvm_device_attr attr = {
		.group = KVM_VCPU_TSC_CTRL,
		.attr = KVM_VCPU_TSC_OFFSET,
		.addr = (uint64_t)(uintptr_t)offset,
	};
	return ioctl(v->fd, set ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR, &attr);
}

int vcpu_park(struct vcpu *v, struct vcpu_state *st, char *err, size_t errlen)
{
	if (vcpu_complete_io(v) != 0 || ioctl(v->fd, KVM_GET_REGS, &st->regs) != 0 ||
	    ioctl(v->fd, KVM_GET_SREGS, &st->sregs) != 0 ||
	    ioctl(v->fd, KVM_GET_FPU, &st->fpu) != 0 ||
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &st->events) != 0 || tsc_msr(v, 0, &st->tsc) != 0) {
		snprintf(err, errlen, "cannot save the vcpu's state: %s", strerror(errno));
		return -1;
	}
	/* The offset makes the guest's TSC follow the host's exactly across the swap; without
	 * the attribute, the TSC is moved on by the time away at unpark. */
	st->has_offset = tsc_offset(v, 0, &st->tsc_offset) == 0;
	st->host_ns = clock_mono_ns();
	/* Only this thread touches run (other threads kick it instead), and its kick handler
	 * checks for NULL. */
	struct kvm_run *run = v->run;
	v->run = NULL;
	munmap(run, v->run_size);
	close(v->fd);
	close(v->vm_fd);
	v->fd = v->vm_fd = -1;
	v->parked_rip = st->regs.rip;
	return 0;
}

int vcpu_unpark(struct vcpu *v, const struct vcpu_kvm *kvm, struct vcpu_shell *shell,
		const struct vcpu_state *st, char *err, size_t errlen)
{
	struct vcpu fresh;
	if (vcpu_create(&fresh, kvm, shell, v->ram, v->ram_size, err, errlen) != 0)
		return -1;
	struct vcpu_state copy = *st; /* the ioctls take non-const arguments */
	if (vcpu_state_sanitize(&copy, clock_mono_ns(), err, errlen) != 0) {
		vcpu_destroy(&fresh);
		return -1;
	}
	int tsc_ok;
	if (copy.has_offset) {
		tsc_ok = tsc_offset(&fresh, 1, &copy.tsc_offset) == 0;
	} else {
		int64_t away = clock_mono_ns() - copy.host_ns;
		uint64_t tsc = copy.tsc + (uint64_t)((unsigned __int128)(away > 0 ? away : 0) *
						     v->tsc_hz / 1000000000u);
		tsc_ok = tsc_msr(&fresh, 1, &tsc) == 0;
	}
	if (ioctl(fresh.fd, KVM_SET_SREGS, &copy.sregs) != 0 ||
	    ioctl(fresh.fd, KVM_SET_REGS, &copy.regs) != 0 ||
	    ioctl(fresh.fd, KVM_SET_FPU, &copy.fpu) != 0 ||
	    ioctl(fresh.fd, KVM_SET_VCPU_EVENTS, &copy.events) != 0 || !tsc_ok) {
		snprintf(err, errlen, "cannot restore the vcpu's state: %s", strerror(errno));
		vcpu_destroy(&fresh);
		return -1;
	}
	fresh.run->immediate_exit = v->stop_requested;
	v->vm_fd = fresh.vm_fd;
	v->fd = fresh.fd;
	v->run = fresh.run;
	v->io_pending = 0;
	return 0;
}
