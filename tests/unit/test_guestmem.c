/* Guest memory: the checked translation, and the locked sparse memory file. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "denali/abi.h"
#include "guestmem.h"
#include "unit.h"

#define RAM (16u << 20)

START_TEST(test_range_check)
{
	ck_assert_int_eq(guestmem_range_check(RAM, DN_GPA_IMAGE_BASE, 16, 8), GUESTMEM_OK);
	ck_assert_int_eq(guestmem_range_check(RAM, RAM - 16, 16, 8), GUESTMEM_OK);
	ck_assert_int_eq(guestmem_range_check(RAM, RAM, 0, 1), GUESTMEM_OK);
	ck_assert_int_eq(guestmem_range_check(RAM, RAM - 8, 16, 8), GUESTMEM_OUTSIDE);
	ck_assert_int_eq(guestmem_range_check(RAM, RAM, 1, 1), GUESTMEM_OUTSIDE);
	ck_assert_int_eq(guestmem_range_check(RAM, 0, 8, 8), GUESTMEM_OUTSIDE);
	ck_assert_int_eq(guestmem_range_check(RAM, 0x1000, 8, 8),
			 GUESTMEM_OUTSIDE); /* page tables */
	ck_assert_int_eq(guestmem_range_check(RAM, DN_GPA_IMAGE_BASE - 8, 16, 8), GUESTMEM_OUTSIDE);
	ck_assert_int_eq(guestmem_range_check(RAM, UINT64_MAX - 16, 64, 1), GUESTMEM_WRAPS);
	ck_assert_int_eq(guestmem_range_check(RAM, DN_GPA_IMAGE_BASE + 4, 16, 8),
			 GUESTMEM_MISALIGNED);
	ck_assert_int_eq(guestmem_range_check(RAM, DN_GPA_IMAGE_BASE + 4, 16, 1), GUESTMEM_OK);
	ck_assert_int_eq(guestmem_range_check(RAM, RAM + 4096, 8, 8), GUESTMEM_OUTSIDE);
	ck_assert_str_eq(guestmem_check_str(GUESTMEM_WRAPS), "wraps around the address space");
}
END_TEST

START_TEST(test_memory_file)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/state", unit_tmpdir());
	struct guestmem gm, other;
	char err[512] = "";
	ck_assert_msg(guestmem_open(&gm, dir, "svc", RAM, err, sizeof(err)) == 0, "%s", err);
	struct stat st;
	ck_assert_int_eq(fstat(gm.fd, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, RAM);
	ck_assert_uint_eq((uint64_t)st.st_blocks, 0); /* sparse: nothing written yet */
	gm.host[DN_GPA_IMAGE_BASE] = 7;
	ck_assert_ptr_eq(guestmem_user_ptr(&gm, DN_GPA_IMAGE_BASE, 1, 1),
			 gm.host + DN_GPA_IMAGE_BASE);
	ck_assert_ptr_null(guestmem_user_ptr(&gm, RAM - 4, 8, 1));

	/* A second owner of the same service is refused and leaves the first one's file alone. */
	ck_assert_int_eq(guestmem_open(&other, dir, "svc", RAM, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "already running") != NULL, "%s", err);
	ck_assert_int_eq(access(gm.path, F_OK), 0);

	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", gm.path);
	guestmem_close(&gm, 1);
	ck_assert_int_eq(access(path, F_OK), 0); /* kept */

	/* Reopening starts from zeroed RAM. */
	ck_assert_msg(guestmem_open(&gm, dir, "svc", RAM, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(gm.host[DN_GPA_IMAGE_BASE], 0);
	guestmem_close(&gm, 0);
	ck_assert_int_ne(access(path, F_OK), 0); /* removed */
}
END_TEST

START_TEST(test_bad_state_dir)
{
	struct guestmem gm;
	char err[512] = "";
	ck_assert_int_eq(
		guestmem_open(&gm, "/proc/denali-cannot-be-here", "svc", RAM, err, sizeof(err)),
		-1);
	ck_assert_msg(strstr(err, "cannot create state folder /proc/denali-cannot-be-here") != NULL,
		      "%s", err);
}
END_TEST

/* Another local user must not be able to plant the memory file or its folder. */
START_TEST(test_hostile_state_dir)
{
	char dir[512], path[600], target[600];
	struct guestmem gm;
	char err[512] = "";

	snprintf(dir, sizeof(dir), "%s/open", unit_tmpdir());
	ck_assert_int_eq(mkdir(dir, 0777), 0);
	ck_assert_int_eq(chmod(dir, 0777), 0);
	ck_assert_int_eq(guestmem_open(&gm, dir, "svc", RAM, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "is open to others (mode 0777): refusing to use it") != NULL,
		      "%s", err);

	snprintf(dir, sizeof(dir), "%s/planted", unit_tmpdir());
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(target, sizeof(target), "%s/victim", unit_tmpdir());
	FILE *f = fopen(target, "w");
	fputs("precious", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/services", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	/* The service folder is a symlink. */
	snprintf(path, sizeof(path), "%s/services/svc", dir);
	ck_assert_int_eq(symlink(unit_tmpdir(), path), 0);
	ck_assert_int_eq(guestmem_open(&gm, dir, "svc", RAM, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "symbolic link") != NULL, "%s", err);
	/* The memory file is a symlink to a file of ours. */
	snprintf(path, sizeof(path), "%s/services/svc2", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/services/svc2/mem", dir);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(guestmem_open(&gm, dir, "svc2", RAM, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "symbolic link") != NULL, "%s", err);
	/* The memory file is a hard link to it. */
	snprintf(path, sizeof(path), "%s/services/svc3", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/services/svc3/mem", dir);
	ck_assert_int_eq(link(target, path), 0);
	ck_assert_int_eq(guestmem_open(&gm, dir, "svc3", RAM, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not a private regular file") != NULL, "%s", err);
	/* The victim is untouched. */
	struct stat st;
	ck_assert_int_eq(stat(target, &st), 0);
	ck_assert_int_eq(st.st_size, 8);
}
END_TEST

/* A service may take the name of a file the monitor keeps in the state folder: its own
 * folder is in services/, never beside them. */
START_TEST(test_names_of_monitor_files)
{
	char dir[512], path[600], err[512] = "";
	snprintf(dir, sizeof(dir), "%s/fixed", unit_tmpdir());
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	static const char *const names[] = {"denali-run.log", "control", "control.lock"};
	for (unsigned i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		FILE *f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fclose(f);
	}
	int fd = guestmem_state_open(dir, 0, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	for (unsigned i = 0; i < 3; i++) {
		struct guestmem gm;
		ck_assert_msg(guestmem_open(&gm, dir, names[i], RAM, err, sizeof(err)) == 0,
			      "%s: %s", names[i], err);
		snprintf(path, sizeof(path), "%s/services/%s/mem", dir, names[i]);
		ck_assert_str_eq(gm.path, path);
		guestmem_close(&gm, 0);
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		struct stat st;
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert(S_ISREG(st.st_mode)); /* the monitor's file is untouched */
	}
	guestmem_state_close(dir);
	snprintf(path, sizeof(path), "%s/services", dir);
	ck_assert_int_ne(access(path, F_OK), 0); /* removed once empty */
}
END_TEST

Suite *guestmem_suite(void)
{
	Suite *s = suite_create("guestmem");
	TCase *tc = tcase_create("guestmem");
	tcase_add_test(tc, test_range_check);
	tcase_add_test(tc, test_memory_file);
	tcase_add_test(tc, test_bad_state_dir);
	tcase_add_test(tc, test_hostile_state_dir);
	tcase_add_test(tc, test_names_of_monitor_files);
	suite_add_tcase(s, tc);
	return s;
}
