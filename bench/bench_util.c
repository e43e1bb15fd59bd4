/* Shared helpers for the benchmarks: timing, percentiles, and a raw KVM guest for baselines. */
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "denali/abi.h"
#include "loader.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double bench_percentile(double *samples, size_t n, double p)
{
	qsort(samples, n, sizeof(double), cmp_double);
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return samples[i < n ? i : n - 1];
}

int bench_raw_vm_create(struct bench_raw_vm *vm, const struct vcpu_kvm *kvm, uint64_t ram_size,
			uint32_t count, char *err, size_t errlen)
{
	memset(vm, 0, sizeof(*vm));
	vm->ram_size = ram_size;
	vm->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->ram == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		return -1;
	}
	vcpu_sysarea_build(vm->ram, ram_size);
	/* mov $count, %ecx; mov $0x600, %dx; 1: out %eax, %dx; dec %ecx; jnz 1b;
	 * mov $0x601, %dx; out %eax, %dx */
	uint8_t code[] = {0xb9, 0,    0,    0,	  0,	0x66, 0xba, 0x00, 0x06, 0xef,
			  0xff, 0xc9, 0x75, 0xfb, 0x66, 0xba, 0x01, 0x06, 0xef};
	memcpy(code + 1, &count, 4);
	if (count == 0) /* skip the loop */
		memset(code + 5, 0x90, 9);
	memcpy(vm->ram + DN_GPA_IMAGE_BASE, code, sizeof(code));
	if (vcpu_create(&vm->vcpu, kvm, NULL, vm->ram, ram_size, err, errlen) != 0)
		goto fail;
	if (vcpu_boot(&vm->vcpu, DN_GPA_IMAGE_BASE, ram_size, 0, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	bench_raw_vm_destroy(vm);
	return -1;
}

long bench_raw_vm_run(struct bench_raw_vm *vm)
{
	long outs = 0;
	for (;;) {
		if (ioctl(vm->vcpu.fd, KVM_RUN, 0) != 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		struct kvm_run *run = vm->vcpu.run;
		if (run->exit_reason != KVM_EXIT_IO)
			return -1;
		if (run->io.port == 0x601)
			return outs;
		outs++;
	}
}

void bench_raw_vm_destroy(struct bench_raw_vm *vm)
{
	vcpu_destroy(&vm->vcpu);
	if (vm->ram && vm->ram != MAP_FAILED)
		munmap(vm->ram, vm->ram_size);
	vm->ram = NULL;
}

void bench_open(const char *who, const char *image, uint64_t ram_size, struct vcpu_kvm *kvm,
		struct vmm_image *img)
{
	char err[1024];
	if (vcpu_kvm_open(kvm, err, sizeof(err)) != 0 ||
	    vmm_image_read(image, ram_size, img, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", who, err);
		exit(1);
	}
}

void *bench_results_stream(void)
{
	fflush(stdout);
	int keep = dup(1);
	int null = open("/dev/null", O_WRONLY);
	if (keep < 0 || null < 0 || dup2(null, 1) < 0) {
		perror("redirecting stdout");
		exit(1);
	}
	close(null);
	FILE *out = fdopen(keep, "w");
	if (!out) {
		perror("fdopen");
		exit(1);
	}
	setvbuf(out, NULL, _IOLBF, 0);
	return out;
}
