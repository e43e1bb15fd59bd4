/* Opening /dev/kvm with helpful errors, and creating or destroying one VM with one vcpu (in a
 * shell made ahead, or at once). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vcpu.h"

#define KVM_EXPECTED_API 12

int vcpu_kvm_open(struct vcpu_kvm *kvm, char *err, size_t errlen)
{
	kvm->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errlen,
				 "/dev/kvm does not exist: this host has no KVM (load "
				 "kvm_intel or kvm_amd, or enable nested virtualization; "
				 "tests/vm/kvm-vm.sh runs a command in a VM that has it)");
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen,
				 "/dev/kvm: permission denied (add your user to the group "
				 "that owns /dev/kvm, usually 'kvm', then log in again)");
		else
			snprintf(err, errlen, "/dev/kvm: %s", strerror(e));
		return -e;
	}
	int api = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_EXPECTED_API) {
		snprintf(err, errlen,
			 "KVM_GET_API_VERSION: this kernel speaks KVM API %d, denali needs %d", api,
			 KVM_EXPECTED_API);
		goto fail;
	}
	if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0) {
		snprintf(err, errlen, "KVM_CHECK_EXTENSION: KVM_CAP_USER_MEMORY is missing");
		goto fail;
	}
	if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		snprintf(err, errlen,
			 "KVM_CHECK_EXTENSION: KVM_CAP_IMMEDIATE_EXIT is missing (Linux >= 4.11 "
			 "needed)");
		goto fail;
	}
	int size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s",
			 size < 0 ? strerror(errno) : "too small");
		goto fail;
	}
	kvm->run_size = (size_t)size;
	if (vcpu_cpuid_load(&kvm->cpuid, kvm->fd, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	close(kvm->fd);
	kvm->fd = -1;
	return -EINVAL;
}

void vcpu_kvm_close(struct vcpu_kvm *kvm)
{
	if (kvm->fd >= 0)
		close(kvm->fd);
	kvm->fd = -1;
}

int vcpu_shell_make(struct vcpu_shell *sh, const struct vcpu_kvm *kvm, char *err, size_t errlen)
{
	sh->run = NULL;
	sh->fd = -1;
	sh->vm_fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (sh->vm_fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return -1;
	}
	/* The vcpu comes before its memory: KVM takes memory slots at any time. */
	sh->fd = ioctl(sh->vm_fd, KVM_CREATE_VCPU, 0);
	if (sh->fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VCPU: %s", strerror(errno));
		vcpu_shell_free(sh);
		return -1;
	}
	/* Before the vcpu first runs (KVM refuses a change after), and before KVM_SET_SREGS:
	 * EFER.LME is valid only with CPUID's LM. Every vcpu, spare or not, is made here. */
	if (vcpu_cpuid_set(sh->fd, &kvm->cpuid, err, errlen) != 0) {
		vcpu_shell_free(sh);
		return -1;
	}
	void *run = mmap(NULL, kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, sh->fd, 0);
	if (run == MAP_FAILED) {
		snprintf(err, errlen, "mmap of kvm_run: %s", strerror(errno));
		vcpu_shell_free(sh);
		return -1;
	}
	sh->run = run;
	sh->run_size = kvm->run_size;
	return 0;
}

void vcpu_shell_free(struct vcpu_shell *sh)
{
	if (sh->run)
		munmap(sh->run, sh->run_size);
	if (sh->fd >= 0)
		close(sh->fd);
	if (sh->vm_fd >= 0)
		close(sh->vm_fd);
	sh->run = NULL;
	sh->fd = sh->vm_fd = -1;
}

int vcpu_create(struct vcpu *v, const struct vcpu_kvm *kvm, struct vcpu_shell *shell, uint8_t *ram,
		uint64_t ram_size, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->fd = v->vm_fd = -1;
	v->ram = ram;
	v->ram_size = ram_size;
	struct vcpu_shell made;
	if (!shell) {
		if (vcpu_shell_make(&made, kvm, err, errlen) != 0)
			return -1;
		shell = &made;
	}
	v->vm_fd = shell->vm_fd;
	v->fd = shell->fd;
	v->run = shell->run;
	v->run_size = shell->run_size;
	shell->run = NULL;
	shell->fd = shell->vm_fd = -1; /* the vcpu owns them now */
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = ram_size,
		.userspace_addr = (uint64_t)(uintptr_t)ram,
	};
	if (ioctl(v->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) != 0) {
		snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		vcpu_destroy(v);
		return -1;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	struct vcpu_shell held = {
		.vm_fd = v->vm_fd, .fd = v->fd, .run = v->run, .run_size = v->run_size};
	vcpu_shell_free(&held);
	v->run = NULL;
	v->fd = v->vm_fd = -1;
}

uint64_t vcpu_rip(const struct vcpu *v)
{
	if (v->fd < 0)
		return v->parked_rip;
	struct kvm_regs regs;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) != 0)
		return 0;
	return regs.rip;
}
