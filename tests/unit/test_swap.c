/* The memory half of swapping that needs no KVM: where memory may be swapped to, and counting
 * resident guest pages. */
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>

#include "swap/swap.h"
#include "unit.h"

START_TEST(test_state_dir_on_tmpfs)
{
	char err[512];
	struct statfs fs;
	if (statfs("/dev/shm", &fs) == 0 && fs.f_type == TMPFS_MAGIC) {
		/* Not made yet: judged by the filesystem it would be made on. */
		ck_assert_int_eq(swap_check_state_dir("/dev/shm/denali-none/a/b", err, sizeof(err)),
				 -1);
		ck_assert_ptr_nonnull(strstr(err, "is on tmpfs"));
		ck_assert_ptr_nonnull(strstr(err, "/dev/shm/denali-none/a/b"));
	}
	ck_assert_int_eq(swap_check_state_dir("/proc/self", err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_resident_pages)
{
	char err[512];
	struct guestmem gm;
	ck_assert_msg(guestmem_open(&gm, unit_tmpdir(), "swapcount", 4u << 20, err, sizeof(err)) ==
			      0,
		      "%s", err);
	ck_assert_uint_eq(swap_resident_pages(&gm), 0); /* sparse and untouched */
	for (unsigned i = 0; i < 10; i++)
		gm.host[i * 2 * 4096] = 1;
	uint64_t n = swap_resident_pages(&gm);
	ck_assert_uint_ge(n, 10);
	/* Written back and dropped, they are gone (unless the filesystem keeps them in RAM). */
	ck_assert_int_eq(msync(gm.host, gm.size, MS_SYNC), 0);
	ck_assert_int_eq(madvise(gm.host, gm.size, MADV_DONTNEED), 0);
	posix_fadvise(gm.fd, 0, (off_t)gm.size, POSIX_FADV_DONTNEED);
	struct statfs fs;
	if (fstatfs(gm.fd, &fs) == 0 && fs.f_type != TMPFS_MAGIC)
		ck_assert_uint_lt(swap_resident_pages(&gm), n);
	guestmem_close(&gm, 0);
}
END_TEST

Suite *swap_suite(void)
{
	Suite *s = suite_create("swap");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_state_dir_on_tmpfs);
	tcase_add_test(tc, test_resident_pages);
	suite_add_tcase(s, tc);
	return s;
}
