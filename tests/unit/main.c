/* Runs every unit-test suite. Usage: unit HELLO_IMAGE MISBEHAVE_IMAGE */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

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

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: unit HELLO_IMAGE MISBEHAVE_IMAGE\n");
		return 2;
	}
	unit_hello_image = argv[1];
	unit_misbehave_image = argv[2];
	SRunner *sr = srunner_create(size_suite());
	srunner_add_suite(sr, config_suite());
	srunner_add_suite(sr, loader_suite());
	srunner_add_suite(sr, abi_suite());
	srunner_add_suite(sr, guestmem_suite());
	srunner_add_suite(sr, console_suite());
	srunner_add_suite(sr, vnet_suite());
	srunner_add_suite(sr, vdisk_suite());
	srunner_add_suite(sr, vdisk_dev_suite());
	srunner_add_suite(sr, swap_suite());
	srunner_add_suite(sr, net_ip_suite());
	srunner_add_suite(sr, net_tcp_suite());
	srunner_add_suite(sr, net_fuzz_suite());
	srunner_add_suite(sr, http_suite());
	srunner_add_suite(sr, http_server_suite());
	srunner_add_suite(sr, kv_store_suite());
	srunner_add_suite(sr, kv_crash_suite());
	srunner_add_suite(sr, kv_proto_suite());
	srunner_add_suite(sr, kv_server_suite());
	srunner_add_suite(sr, ctl_suite());
	srunner_add_suite(sr, control_suite());
	srunner_add_suite(sr, metrics_suite());
	srunner_add_suite(sr, progress_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (nftw(unit_tmpdir(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "could not remove %s\n", unit_tmpdir());
	return failed ? 1 : 0;
}
