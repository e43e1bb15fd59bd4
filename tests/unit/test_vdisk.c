/* The disk image on the host: creation, size rules, and the locks that keep one writer. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "vdisk/vdisk_file.h"

static void disk_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", unit_tmpdir(), name);
	unlink(out);
}

START_TEST(test_create_sparse)
{
	char path[4096], err[512];
	disk_path(path, sizeof(path), "new.img");
	struct vdisk_file d;
	ck_assert_int_eq(vdisk_file_open(&d, path, 64u << 20, 0, NULL, err, sizeof(err)), 0);
	ck_assert_uint_eq(d.size, 64u << 20);
	ck_assert_uint_eq(d.blocks, (64u << 20) / VDISK_BLOCK);
	struct stat st;
	ck_assert_int_eq(fstat(d.fd, &st), 0);
	ck_assert_int_eq(st.st_size, 64 << 20);
	ck_assert_int_lt(st.st_blocks, 64); /* sparse: nothing written yet */
	vdisk_file_close(&d);
	/* It exists now: opened as it is, with or without the size. */
	ck_assert_int_eq(vdisk_file_open(&d, path, 0, 0, NULL, err, sizeof(err)), 0);
	ck_assert_uint_eq(d.size, 64u << 20);
	vdisk_file_close(&d);
	ck_assert_int_ne(vdisk_file_open(&d, path, 32u << 20, 0, NULL, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "is 67108864 bytes, but its size is given as 33554432"));
}
END_TEST

START_TEST(test_refusals)
{
	char path[4096], err[512];
	struct vdisk_file d;
	disk_path(path, sizeof(path), "missing.img");
	ck_assert_int_ne(vdisk_file_open(&d, path, 0, 0, NULL, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "give a size to create it"));
	ck_assert_int_ne(vdisk_file_open(&d, path, 1u << 20, 1, NULL, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "a read-only disk must exist"));
	ck_assert_int_ne(vdisk_file_open(&d, path, 1000, 0, NULL, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "not a multiple of 4K"));
	ck_assert_int_ne(access(path, F_OK), 0); /* nothing left behind */
	/* Odd sizes and empty files on disk; a directory. */
	disk_path(path, sizeof(path), "odd.img");
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	ck_assert_int_eq(ftruncate(fd, 5000), 0);
	close(fd);
	ck_assert_int_ne(vdisk_file_open(&d, path, 0, 1, NULL, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "5000 bytes: not a non-zero multiple of 4K"));
	disk_path(path, sizeof(path), "empty.img");
	close(open(path, O_RDWR | O_CREAT, 0600));
	ck_assert_int_ne(vdisk_file_open(&d, path, 0, 0, NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(vdisk_file_open(&d, unit_tmpdir(), 0, 1, NULL, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
}
END_TEST

START_TEST(test_one_writer_or_many_readers)
{
	char path[4096], err[512];
	disk_path(path, sizeof(path), "shared.img");
	struct vdisk_file w, w2, r1, r2;
	ck_assert_int_eq(vdisk_file_open(&w, path, 1u << 20, 0, NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(vdisk_file_open(&w2, path, 0, 0, NULL, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "a writable disk belongs to one service"));
	ck_assert_int_ne(vdisk_file_open(&r1, path, 0, 1, NULL, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "open for writing"));
	vdisk_file_close(&w);
	ck_assert_int_eq(vdisk_file_open(&r1, path, 0, 1, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(vdisk_file_open(&r2, path, 0, 1, NULL, err, sizeof(err)), 0);
	ck_assert_int_ne(vdisk_file_open(&w, path, 0, 0, NULL, err, sizeof(err)), 0);
	vdisk_file_close(&r1);
	vdisk_file_close(&r2);
	ck_assert_int_eq(vdisk_file_open(&w, path, 0, 0, NULL, err, sizeof(err)), 0);
	vdisk_file_close(&w);
}
END_TEST

Suite *vdisk_suite(void)
{
	Suite *s = suite_create("vdisk");
	TCase *tc = tcase_create("file");
	tcase_add_test(tc, test_create_sparse);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_one_writer_or_many_readers);
	suite_add_tcase(s, tc);
	return s;
}
