/* Tests: the checks on the folders denali uses (private_dir.c) and its default folders. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "private_dir.h"
#include "unit.h"

#define NOBODY 65534

static struct stat dir_stat(uid_t uid, unsigned mode)
{
	struct stat st;
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR | mode;
	st.st_uid = uid;
	return st;
}

START_TEST(test_judge)
{
	struct stat st = dir_stat(1000, 0755);
	ck_assert_int_eq(private_dir_judge(&st, 1000, 0), PRIVATE_DIR_OK);
	ck_assert_int_eq(private_dir_judge(&st, 1000, 1), PRIVATE_DIR_OPEN);
	st = dir_stat(1000, 0700);
	ck_assert_int_eq(private_dir_judge(&st, 1000, 1), PRIVATE_DIR_OK);
	/* Another user's, root's included: whoever owns it can plant files in it. */
	ck_assert_int_eq(private_dir_judge(&st, 1001, 0), PRIVATE_DIR_NOT_OURS);
	st = dir_stat(0, 0700);
	ck_assert_int_eq(private_dir_judge(&st, 1000, 0), PRIVATE_DIR_NOT_OURS);
	st = dir_stat(1000, 0777);
	ck_assert_int_eq(private_dir_judge(&st, 1000, 0), PRIVATE_DIR_OPEN);
	st = dir_stat(1000, 0720);
	ck_assert_int_eq(private_dir_judge(&st, 1000, 0), PRIVATE_DIR_OPEN);
	/* Sticky is no excuse for the folder itself: others could still create names in it. */
	st = dir_stat(1000, 01777);
	ck_assert_int_eq(private_dir_judge(&st, 1000, 0), PRIVATE_DIR_OPEN);
	st.st_mode = S_IFREG | 0600;
	ck_assert_int_eq(private_dir_judge(&st, 1000, 0), PRIVATE_DIR_NOT_A_DIR);
}
END_TEST

START_TEST(test_judge_above)
{
	struct stat st = dir_stat(0, 01777); /* /var/tmp */
	ck_assert_int_eq(private_dir_judge_above(&st, 1000), PRIVATE_DIR_OK);
	st = dir_stat(0, 0777);
	ck_assert_int_eq(private_dir_judge_above(&st, 1000), PRIVATE_DIR_OPEN_ABOVE);
	st = dir_stat(0, 0775);
	ck_assert_int_eq(private_dir_judge_above(&st, 1000), PRIVATE_DIR_OPEN_ABOVE);
	st = dir_stat(1000, 0755);
	ck_assert_int_eq(private_dir_judge_above(&st, 1000), PRIVATE_DIR_OK);
	st = dir_stat(1001, 0700);
	ck_assert_int_eq(private_dir_judge_above(&st, 1000), PRIVATE_DIR_NOT_OURS_ABOVE);
	st = dir_stat(NOBODY, 01777);
	ck_assert_int_eq(private_dir_judge_above(&st, 0), PRIVATE_DIR_NOT_OURS_ABOVE);
}
END_TEST

START_TEST(test_default)
{
	char out[128];
	struct private_dir_env env = {"/run/user/1000", "/xdg/state", "/home/u", 1000};
	ck_assert_int_eq(private_dir_default(&env, 0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/run/user/1000/denali");
	ck_assert_int_eq(private_dir_default(&env, 1, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/xdg/state/denali");
	env.xdg_runtime_dir = "relative"; /* not absolute: unset */
	env.xdg_state_home = "";
	ck_assert_int_eq(private_dir_default(&env, 0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/home/u/.local/state/denali");
	ck_assert_int_eq(private_dir_default(&env, 1, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/home/u/.local/state/denali");
	/* Root: its own folders whatever $HOME says (sudo may keep the user's). */
	env.euid = 0;
	ck_assert_int_eq(private_dir_default(&env, 0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/run/denali");
	ck_assert_int_eq(private_dir_default(&env, 1, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/var/lib/denali");
	env.xdg_runtime_dir = "/run/user/0";
	ck_assert_int_eq(private_dir_default(&env, 0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/run/user/0/denali");
	/* No usable variable: no default, never /var/tmp. */
	struct private_dir_env none = {NULL, NULL, "", 1000};
	ck_assert_int_eq(private_dir_default(&none, 0, out, sizeof(out)), -1);
	ck_assert_int_eq(private_dir_default(&none, 1, out, sizeof(out)), -1);
	ck_assert_int_eq(private_dir_default(&env, 0, out, 8), -1);
}
END_TEST

static void path_in_tmp(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", unit_tmpdir(), name);
}

/* Opens path with flags; asserts it is refused with an error containing want. */
static void refused(const char *path, unsigned flags, const char *want)
{
	char err[1024] = "";
	int fd = private_dir_open(AT_FDCWD, path, "state folder", path, flags, err, sizeof(err));
	ck_assert_msg(fd < 0, "%s accepted", path);
	ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(test_open_makes_and_checks)
{
	char path[PATH_MAX], err[1024] = "";
	path_in_tmp(path, sizeof(path), "made/a/b");
	int fd = private_dir_open(AT_FDCWD, path, "state folder", path,
				  PRIVATE_DIR_PARENTS | PRIVATE_DIR_ANCESTORS, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	struct stat st;
	path_in_tmp(path, sizeof(path), "made/a");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	/* Without PARENTS only the last one is made. */
	path_in_tmp(path, sizeof(path), "nothere/x");
	refused(path, PRIVATE_DIR_CREATE, "cannot create state folder");

	path_in_tmp(path, sizeof(path), "open");
	ck_assert_int_eq(mkdir(path, 0777), 0);
	ck_assert_int_eq(chmod(path, 0777), 0);
	refused(path, PRIVATE_DIR_CREATE, "is open to others (mode 0777): refusing to use it");
	ck_assert_int_eq(chmod(path, 0755), 0);
	fd = private_dir_open(AT_FDCWD, path, "state folder", path, 0, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	refused(path, PRIVATE_DIR_STRICT, "is open to others (mode 0755)");

	/* A symbolic link to a good folder of ours is still refused: it could be re-pointed. */
	char link[PATH_MAX];
	path_in_tmp(link, sizeof(link), "link");
	path_in_tmp(path, sizeof(path), "made");
	ck_assert_int_eq(symlink(path, link), 0);
	refused(link, PRIVATE_DIR_CREATE, "is a symbolic link or not a folder: refusing to use it");
}
END_TEST

START_TEST(test_open_above)
{
	char path[PATH_MAX], err[1024] = "";
	/* In a folder everyone may write and that is not sticky, another user could rename ours
	 * away and put theirs in its place. */
	path_in_tmp(path, sizeof(path), "shared");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(chmod(path, 0777), 0);
	path_in_tmp(path, sizeof(path), "shared/mine");
	int fd = private_dir_open(AT_FDCWD, path, "state folder", path, PRIVATE_DIR_CREATE, err,
				  sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err); /* the folder alone is fine */
	close(fd);
	refused(path, PRIVATE_DIR_ANCESTORS,
		"/shared, which others may write (mode 0777, not sticky): refusing to use it");
	/* Sticky, as /tmp and /var/tmp: no one else may rename or remove what is ours. */
	path_in_tmp(path, sizeof(path), "shared");
	ck_assert_int_eq(chmod(path, 01777), 0);
	path_in_tmp(path, sizeof(path), "shared/mine");
	fd = private_dir_open(AT_FDCWD, path, "state folder", path, PRIVATE_DIR_ANCESTORS, err,
			      sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
}
END_TEST

/* Folders of another user: only root can make them here. */
START_TEST(test_open_not_ours)
{
	if (geteuid() != 0)
		return;
	char path[PATH_MAX], err[1024] = "";
	path_in_tmp(path, sizeof(path), "planted");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(chown(path, NOBODY, NOBODY), 0);
	refused(path, PRIVATE_DIR_CREATE, "/planted is owned by uid 65534");
	refused(path, PRIVATE_DIR_CREATE, ", not by you: refusing to use it");
	/* Ours, but in a folder of another user's: they can swap it. */
	path_in_tmp(path, sizeof(path), "theirs");
	ck_assert_int_eq(mkdir(path, 0755), 0);
	path_in_tmp(path, sizeof(path), "theirs/mine");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	path_in_tmp(path, sizeof(path), "theirs");
	ck_assert_int_eq(chown(path, NOBODY, NOBODY), 0);
	path_in_tmp(path, sizeof(path), "theirs/mine");
	int fd = private_dir_open(AT_FDCWD, path, "state folder", path, 0, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	refused(path, PRIVATE_DIR_ANCESTORS, "/theirs, owned by uid 65534");
}
END_TEST

START_TEST(test_open_parent)
{
	char path[PATH_MAX], err[1024] = "";
	const char *base = NULL;
	path_in_tmp(path, sizeof(path), "sockdir/control");
	refused(path, 0, "cannot open"); /* warm-up: nothing there yet */
	int fd = private_dir_open_parent(path, "control socket folder",
					 PRIVATE_DIR_PARENTS | PRIVATE_DIR_ANCESTORS, &base, err,
					 sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	ck_assert_str_eq(base, "control");
	ck_assert_int_eq(access(path, F_OK), -1); /* the socket itself is not made */
	fd = private_dir_open_parent("control", "control socket folder", 0, &base, err,
				     sizeof(err));
	if (fd >= 0) /* "." may be any folder: only the name matters here */
		close(fd);
	ck_assert_str_eq(base, "control");
	ck_assert_int_eq(private_dir_open_parent("/tmp/", "control socket folder", 0, &base, err,
						 sizeof(err)),
			 -1);
	/* The socket's folder in a shared folder such as /tmp itself is refused. */
	path_in_tmp(path, sizeof(path), "pub");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(chmod(path, 01777), 0);
	path_in_tmp(path, sizeof(path), "pub/control");
	ck_assert_int_eq(
		private_dir_open_parent(path, "control socket folder", 0, &base, err, sizeof(err)),
		-1);
	ck_assert_msg(strstr(err, "control socket folder ") &&
			      strstr(err, "/pub is open to others"),
		      "%s", err);
}
END_TEST

Suite *private_dir_suite(void)
{
	Suite *s = suite_create("private_dir");
	TCase *tc = tcase_create("private_dir");
	tcase_add_test(tc, test_judge);
	tcase_add_test(tc, test_judge_above);
	tcase_add_test(tc, test_default);
	tcase_add_test(tc, test_open_makes_and_checks);
	tcase_add_test(tc, test_open_above);
	tcase_add_test(tc, test_open_not_ours);
	tcase_add_test(tc, test_open_parent);
	suite_add_tcase(s, tc);
	return s;
}
