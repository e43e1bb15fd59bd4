/* Shared helpers for the benchmarks: timing, percentiles, and a raw KVM guest for baselines. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "vcpu/vcpu.h"

/* Sorts the samples and returns the p-th percentile (0-100). */
double bench_percentile(double *samples, size_t n, double p);

/* The raw KVM baseline: a VM with ram_size bytes of anonymous RAM whose ring-3 code does
 * `out` to port 0x600 count times, then `out` to 0x601. */
struct bench_raw_vm {
	struct vcpu vcpu;
	uint8_t *ram;
	uint64_t ram_size;
};

/* Creates and boots it (every ioctl a real VM needs). Returns 0 or -1 with err. */
int bench_raw_vm_create(struct bench_raw_vm *vm, const struct vcpu_kvm *kvm, uint64_t ram_size,
			uint32_t count, char *err, size_t errlen);

/* Runs until the 0x601 exit; returns the number of 0x600 exits seen, or -1 on error. */
long bench_raw_vm_run(struct bench_raw_vm *vm);

void bench_raw_vm_destroy(struct bench_raw_vm *vm);

struct vmm_image;

/* Opens /dev/kvm and reads the guest image for ram_size bytes of RAM; on failure prints
 * "<who>: <reason>" and exits 1. */
void bench_open(const char *who, const char *image, uint64_t ram_size, struct vcpu_kvm *kvm,
		struct vmm_image *img);

/* Redirects stdout to /dev/null and returns a FILE for the results (the old stdout). */
void *bench_results_stream(void);

#endif
