/* bench/hypercall: round trip of a no-op hypercall (an empty console write, through the real
 * table: copy in, validate, copy out) from ring 3, beside a bare `out` exit from ring 3 handled
 * by a minimal loop, measured in the same run, as a ratio.
 * Usage: hypercall HCLOOP_IMAGE [CALLS] [STATE_DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "clock.h"
#include "config.h"
#include "loader.h"
#include "service.h"

#define RAM (8u << 20)
#define ROUNDS 5

/* Wall time of booting hcloop with `calls` hypercalls and running it to exit, in ns. */
static int64_t denali_run_calls(const struct vcpu_kvm *kvm, const struct vmm_image *img,
				const char *state_dir, unsigned long calls)
{
	static struct vmm_service svc;
	static struct vmm_service_config cfg;
	static char count[32];
	static char *args[1] = {count};
	snprintf(count, sizeof(count), "%lu", calls);
	cfg.ram_size = RAM;
	cfg.argc = 1;
	cfg.args = args;
	snprintf(cfg.name, sizeof(cfg.name), "bench-hypercall");
	char err[1024];
	int64_t t0 = clock_mono_ns();
	if (vmm_service_start(&svc, &cfg, img, kvm, state_dir, NULL, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "hypercall: %s\n", err);
		exit(1);
	}
	vmm_service_run(&svc);
	int64_t t = clock_mono_ns() - t0;
	if (svc.outcome.kind != VMM_OUTCOME_EXITED ||
	    svc.stats.hypercalls[DN_HC_CONSOLE] != calls) {
		fprintf(stderr, "hypercall: guest failed: %s\n", svc.outcome.reason);
		exit(1);
	}
	vmm_service_destroy(&svc, 0);
	return t;
}

static int64_t raw_run_outs(const struct vcpu_kvm *kvm, uint32_t outs)
{
	char err[1024];
	struct bench_raw_vm vm;
	int64_t t0 = clock_mono_ns();
	if (bench_raw_vm_create(&vm, kvm, RAM, outs, err, sizeof(err)) != 0) {
		fprintf(stderr, "hypercall: raw VM: %s\n", err);
		exit(1);
	}
	if (bench_raw_vm_run(&vm) != (long)outs) {
		fprintf(stderr, "hypercall: raw VM run failed\n");
		exit(1);
	}
	int64_t t = clock_mono_ns() - t0;
	bench_raw_vm_destroy(&vm);
	return t;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: hypercall HCLOOP_IMAGE [CALLS] [STATE_DIR]\n");
		return 2;
	}
	unsigned long calls = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
	const char *state_dir = argc > 3 ? argv[3] : "/var/tmp/denali-bench";
	FILE *out = bench_results_stream();
	struct vcpu_kvm kvm;
	struct vmm_image img;
	bench_open("hypercall", argv[1], RAM, &kvm, &img);
	/* Per-call cost = (run with N calls - run with 0 calls) / N, so boot cost cancels out.
	 * Rounds alternate between the two so both see the same machine. */
	double raw[ROUNDS], hc[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		raw[r] = (double)(raw_run_outs(&kvm, (uint32_t)calls) - raw_run_outs(&kvm, 0)) /
			 (double)calls;
		hc[r] = (double)(denali_run_calls(&kvm, &img, state_dir, calls) -
				 denali_run_calls(&kvm, &img, state_dir, 0)) /
			(double)calls;
	}
	double raw_p50 = bench_percentile(raw, ROUNDS, 50),
	       hc_p50 = bench_percentile(hc, ROUNDS, 50);
	fprintf(out, "bench/hypercall: %lu calls x %d rounds, median per call\n", calls, ROUNDS);
	fprintf(out, "bare ring-3 out exit (raw KVM loop): %8.2f us\n", raw_p50 / 1000.0);
	fprintf(out, "denali no-op hypercall (console, 0 bytes): %8.2f us\n", hc_p50 / 1000.0);
	fprintf(out, "ratio hypercall / bare exit: %.3fx\n", hc_p50 / raw_p50);
	vmm_image_free(&img);
	vcpu_kvm_close(&kvm);
	return 0;
}
