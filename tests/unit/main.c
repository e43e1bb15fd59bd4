/* Runs the unit-test suites.
 * Usage: unit HELLO_IMAGE MISBEHAVE_IMAGE [SUITE...]   the named suites, else every one
 *        unit --list                                  every suite's name, a line each
 * The build runs each suite as a test of its own, so that they run in parallel. */
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

const char *unit_hello_image;
const char *unit_misbehave_image;

const char *unit_tmpdir(void)
{
	static char dir[4096];
	static int made;
	if (!made) {
		const char *base = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/denali-unit-XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(1);
		}
		made = 1;
	}
	return dir;
}

void unit_cpus_apart(pthread_t other)
{
	cpu_set_t allowed, one;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) < 2)
		return;
	int cpu[2], n = 0;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &allowed))
			cpu[n++] = c;
	CPU_ZERO(&one);
	CPU_SET(cpu[0], &one);
	pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	CPU_ZERO(&one);
	CPU_SET(cpu[1], &one);
	pthread_setaffinity_np(other, sizeof(one), &one);
}

void unit_wait_running(const uint32_t *beats)
{
	uint32_t b = __atomic_load_n(beats, __ATOMIC_RELAXED);
	while (__atomic_load_n(beats, __ATOMIC_RELAXED) - b < 2)
		sched_yield();
}

/* Every suite, by the name a command line picks it with. */
static const struct {
	const char *name;
	Suite *(*make)(void);
} suites[] = {
	{"size", size_suite},
	{"config", config_suite},
	{"loader", loader_suite},
	{"abi", abi_suite},
	{"guestmem", guestmem_suite},
	{"console", console_suite},
	{"vnet", vnet_suite},
	{"vdisk", vdisk_suite},
	{"vdisk_dev", vdisk_dev_suite},
	{"swap", swap_suite},
	{"vcpu_state", vcpu_state_suite},
	{"vcpu_cpuid", vcpu_cpuid_suite},
	{"net_ip", net_ip_suite},
	{"net_tcp", net_tcp_suite},
	{"net_fuzz", net_fuzz_suite},
	{"http", http_suite},
	{"http_server", http_server_suite},
	{"kv_store", kv_store_suite},
	{"kv_crash", kv_crash_suite},
	{"kv_proto", kv_proto_suite},
	{"kv_server", kv_server_suite},
	{"ctl", ctl_suite},
	{"ctl_proto", ctl_proto_suite},
	{"control", control_suite},
	{"metrics", metrics_suite},
	{"progress", progress_suite},
	{"private_dir", private_dir_suite},
	{"sandbox", sandbox_suite},
	{"nat", nat_suite},
	{"seccomp", seccomp_suite},
	{"ratelimit", ratelimit_suite},
};
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	return remove(path);
}

static int find_suite(const char *name)
{
	for (unsigned i = 0; i < NSUITES; i++)
		if (strcmp(suites[i].name, name) == 0)
			return (int)i;
	return -1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (unsigned i = 0; i < NSUITES; i++)
			printf("%s\n", suites[i].name);
		return 0;
	}
	if (argc < 3) {
		fprintf(stderr,
			"usage: unit HELLO_IMAGE MISBEHAVE_IMAGE [SUITE...] | unit --list\n");
		return 2;
	}
	unit_hello_image = argv[1];
	unit_misbehave_image = argv[2];
	SRunner *sr = srunner_create(NULL);
	for (int a = 3; a < argc; a++) {
		int i = find_suite(argv[a]);
		if (i < 0) {
			fprintf(stderr, "unit: no suite named %s (unit --list names them)\n",
				argv[a]);
			srunner_free(sr);
			return 2;
		}
		srunner_add_suite(sr, suites[i].make());
	}
	for (unsigned i = 0; argc == 3 && i < NSUITES; i++)
		srunner_add_suite(sr, suites[i].make());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (nftw(unit_tmpdir(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "could not remove %s\n", unit_tmpdir());
	return failed ? 1 : 0;
}
