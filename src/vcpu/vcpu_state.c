/* A vcpu's architectural state, saved so that its VM can be destroyed (the service swapped out)
 * and rebuilt later with the guest none the wiser, its clock included. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

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

/* Sets the guest's TSC. Writing the MSR is not enough: KVM takes a write within a second of
 * what it expects for a new VM as "keep in sync with the other vcpus" and ignores the value.
 * The offset attribute (Linux 5.16) is exact: guest TSC = host TSC + offset. */
static int set_tsc(struct vcpu *v, uint64_t want)
{
	uint64_t offset = 0, now = 0;
	struct kvm_device_attr attr = {
		.group = KVM_VCPU_TSC_CTRL,
		.attr = KVM_VCPU_TSC_OFFSET,
		.addr = (uint64_t)(uintptr_t)&offset,
	};
	if (ioctl(v->fd, KVM_GET_DEVICE_ATTR, &attr) != 0 || tsc_msr(v, 0, &now) != 0)
		return tsc_msr(v, 1, &want); /* an older kernel: the best it offers */
	offset += want - now;
	return ioctl(v->fd, KVM_SET_DEVICE_ATTR, &attr);
}

int vcpu_park(struct vcpu *v, struct vcpu_state *st, char *err, size_t errlen)
{
	if (vcpu_complete_io(v) != 0 || ioctl(v->fd, KVM_GET_REGS, &st->regs) != 0 ||
	    ioctl(v->fd, KVM_GET_SREGS, &st->sregs) != 0 ||
	    ioctl(v->fd, KVM_GET_FPU, &st->fpu) != 0 || tsc_msr(v, 0, &st->tsc) != 0) {
		snprintf(err, errlen, "cannot save the vcpu's state: %s", strerror(errno));
		return -1;
	}
	st->host_ns = vcpu_clock_ns();
	/* Another thread may be setting immediate_exit through v->run at any moment, so the
	 * address stays valid throughout: anonymous memory replaces the kvm_run mapping in one
	 * step, and unpark maps the new vcpu's over it the same way. */
	if (mmap(v->run, v->run_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		snprintf(err, errlen, "cannot park the vcpu's run area: %s", strerror(errno));
		return -1;
	}
	close(v->fd);
	close(v->vm_fd);
	v->fd = v->vm_fd = -1;
	return 0;
}

int vcpu_unpark(struct vcpu *v, const struct vcpu_kvm *kvm, const struct vcpu_state *st, char *err,
		size_t errlen)
{
	struct vcpu fresh;
	if (vcpu_create(&fresh, kvm, v->ram, v->ram_size, err, errlen) != 0)
		return -1;
	/* The guest's clock went on while it was away: its TSC too. */
	int64_t away = vcpu_clock_ns() - st->host_ns;
	uint64_t tsc = st->tsc + (uint64_t)((unsigned __int128)(away > 0 ? away : 0) * v->tsc_hz /
					    1000000000u);
	struct kvm_regs regs = st->regs;
	struct kvm_sregs sregs = st->sregs;
	struct kvm_fpu fpu = st->fpu;
	if (ioctl(fresh.fd, KVM_SET_SREGS, &sregs) != 0 ||
	    ioctl(fresh.fd, KVM_SET_REGS, &regs) != 0 || ioctl(fresh.fd, KVM_SET_FPU, &fpu) != 0 ||
	    set_tsc(&fresh, tsc) != 0) {
		snprintf(err, errlen, "cannot restore the vcpu's state: %s", strerror(errno));
		vcpu_destroy(&fresh);
		return -1;
	}
	if (mmap(v->run, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fresh.fd,
		 0) == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the vcpu's run area: %s", strerror(errno));
		vcpu_destroy(&fresh);
		return -1;
	}
	munmap(fresh.run, fresh.run_size); /* the second mapping, at the address v->run keeps */
	v->vm_fd = fresh.vm_fd;
	v->fd = fresh.fd;
	v->run->immediate_exit = v->stop_requested;
	v->io_pending = 0;
	return 0;
}
