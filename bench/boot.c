/* bench/boot: create and boot the hello service to its first console line and to its exit,
 * beside the raw KVM cost of creating a VM and running it to its first exit, same run.
 * Usage: boot HELLO_IMAGE [RUNS] [STATE_DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "clock.h"
#include "config.h"
#include "loader.h"
#include "service.h"

#define RAM (16u << 20)

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: boot HELLO_IMAGE [RUNS] [STATE_DIR]\n");
		return 2;
	}
	int runs = argc > 2 ? atoi(argv[2]) : 200;
	const char *state_dir = argc > 3 ? argv[3] : "/var/tmp/denali-bench";
	if (runs < 1)
		runs = 1;
	FILE *out = bench_results_stream();
	char err[1024];
	struct vcpu_kvm kvm;
	struct vmm_image img;
	bench_open("boot", argv[1], RAM, &kvm, &img);
	struct vmm_service_config cfg = {.ram_size = RAM};
	snprintf(cfg.name, sizeof(cfg.name), "bench-boot");

	double *raw = calloc((size_t)runs, sizeof(double));
	double *first_line = calloc((size_t)runs, sizeof(double));
	double *to_exit = calloc((size_t)runs, sizeof(double));
	static struct vmm_service svc;
	/* Interleave the two so that drift on this noisy host affects both alike. */
	for (int i = 0; i < runs; i++) {
		int64_t t0 = clock_mono_ns();
		struct bench_raw_vm vm;
		if (bench_raw_vm_create(&vm, &kvm, RAM, 0, err, sizeof(err)) != 0 ||
		    bench_raw_vm_run(&vm) != 0) {
			fprintf(stderr, "boot: raw VM: %s\n", err);
			return 1;
		}
		raw[i] = (double)(clock_mono_ns() - t0) / 1000.0;
		bench_raw_vm_destroy(&vm);

		t0 = clock_mono_ns();
		if (vmm_service_start(&svc, &cfg, &img, &kvm, state_dir, NULL, NULL, err,
				      sizeof(err)) != 0) {
			fprintf(stderr, "boot: %s\n", err);
			return 1;
		}
		vmm_service_run(&svc);
		int64_t t_exit = clock_mono_ns();
		if (svc.outcome.kind != VMM_OUTCOME_EXITED || svc.first_console_ns == 0) {
			fprintf(stderr, "boot: hello did not exit cleanly: %s\n",
				svc.outcome.reason);
			return 1;
		}
		first_line[i] = (double)(svc.first_console_ns - t0) / 1000.0;
		to_exit[i] = (double)(t_exit - t0) / 1000.0;
		vmm_service_destroy(&svc, 0);
		if (getenv("BENCH_VERBOSE"))
			fprintf(stderr, "run %d: raw %.0f us, exit %.0f us\n", i, raw[i],
				to_exit[i]);
	}
	fprintf(out, "bench/boot: %d runs, 16 MiB guests, times in us\n", runs);
	fprintf(out, "%-38s %9s %9s %9s\n", "", "p50", "p90", "p99");
	const char *names[] = {"raw KVM: create VM, run to first exit",
			       "denali: hello to first console line", "denali: hello to exit"};
	double *sets[] = {raw, first_line, to_exit};
	double p50[3];
	for (int s = 0; s < 3; s++) {
		p50[s] = bench_percentile(sets[s], (size_t)runs, 50);
		fprintf(out, "%-38s %9.1f %9.1f %9.1f\n", names[s], p50[s],
			bench_percentile(sets[s], (size_t)runs, 90),
			bench_percentile(sets[s], (size_t)runs, 99));
	}
	fprintf(out, "ratio first console line / raw (p50): %.2fx\n", p50[1] / p50[0]);
	fprintf(out, "ratio exit / raw (p50): %.2fx\n", p50[2] / p50[0]);
	vmm_image_free(&img);
	vcpu_kvm_close(&kvm);
	free(raw);
	free(first_line);
	free(to_exit);
	return 0;
}
