/* Tests: rights given up (privileges.c) and a cell confined by Landlock (landlock.c,
 * cell_confine.c). Each check runs in a forked child: confinement and dropped rights cannot be
 * undone, and the child's exit status says which check failed. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cell_confine.h"
#include "sandbox/landlock.h"
#include "sandbox/privileges.h"
#include "unit.h"

static char tmp[64];

static void make_tmp(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/denali-sandbox-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void rm_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static int child_status(pid_t pid)
{
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

/* 0 when open(path, flags) fails with EACCES (what Landlock answers), else why not. */
static int denied(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return errno == EACCES ? 0 : 2;
}

#define CHECK(n, cond)                                                                             \
	do {                                                                                       \
		if (!(cond))                                                                       \
			_exit(n);                                                                  \
	} while (0)

/* A cell's ruleset: its state folder read-write (folders, files, rename, truncate), its
 * read-only disk for reading only, its missing writable disk made and writable; /etc/passwd, a
 * sibling of the state folder and a file beside the disk are out of reach. */
START_TEST(test_cell_confined)
{
	if (!landlock_abi()) {
		printf("SKIP: sandbox: this kernel has no Landlock: the cell ruleset is not "
		       "tested here (the test VM's kernel runs it)\n");
		return;
	}
	make_tmp();
	char state[128], sibling[128], secret[128], ro[128], rw[128], beside[128];
	snprintf(state, sizeof(state), "%s/state", tmp);
	snprintf(sibling, sizeof(sibling), "%s/other", tmp);
	snprintf(secret, sizeof(secret), "%s/other/secret", tmp);
	snprintf(ro, sizeof(ro), "%s/ro.img", tmp);
	snprintf(rw, sizeof(rw), "%s/new.img", tmp);
	snprintf(beside, sizeof(beside), "%s/beside", tmp);
	ck_assert_int_eq(mkdir(state, 0700), 0);
	ck_assert_int_eq(mkdir(sibling, 0700), 0);
	write_file(secret, "secret\n");
	write_file(ro, "disk\n");
	write_file(beside, "beside\n");
	struct vmm_plan_service svcs[2];
	memset(svcs, 0, sizeof(svcs));
	svcs[0].cfg.disk = (struct vmm_disk_config){.enabled = 1, .path = ro, .readonly = 1};
	svcs[1].cfg.disk = (struct vmm_disk_config){.enabled = 1, .path = rw, .size = 8192};
	struct vmm_plan plan;
	memset(&plan, 0, sizeof(plan));
	plan.services = svcs;
	plan.count = 2;
	snprintf(plan.state_dir, sizeof(plan.state_dir), "%s", state);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char err[256], path[256];
		CHECK(10, privileges_no_new_privs(err, sizeof(err)) == 0);
		CHECK(11, cell_confine(&plan, 0, 2, err, sizeof(err)) == 1);
		CHECK(20, denied("/etc/passwd", O_RDONLY) == 0);
		CHECK(21, denied(secret, O_RDONLY) == 0);
		CHECK(22, denied(beside, O_RDONLY) == 0);
		snprintf(path, sizeof(path), "%s/planted", sibling);
		CHECK(23, denied(path, O_WRONLY | O_CREAT) == 0);
		CHECK(24, denied(ro, O_RDWR) == 0);
		CHECK(25, denied(ro, O_RDONLY) == 1);
		CHECK(26, denied(rw, O_RDWR) == 1);
		/* What a cell does in its state folder: folders, memory files, checkpoints. */
		snprintf(path, sizeof(path), "%s/services", state);
		CHECK(30, mkdir(path, 0700) == 0);
		snprintf(path, sizeof(path), "%s/services/a", state);
		CHECK(31, mkdir(path, 0700) == 0);
		snprintf(path, sizeof(path), "%s/services/a/mem", state);
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		CHECK(32, fd >= 0 && ftruncate(fd, 1 << 20) == 0);
		close(fd);
		CHECK(33, truncate(path, 4096) == 0);
		char tmpname[256];
		snprintf(tmpname, sizeof(tmpname), "%s/services/a/state.tmp", state);
		fd = open(tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		CHECK(34, fd >= 0);
		close(fd);
		snprintf(path, sizeof(path), "%s/services/a/state", state);
		CHECK(35, rename(tmpname, path) == 0);
		CHECK(36, unlink(path) == 0);
		CHECK(37, denied("/dev/null", O_RDONLY) == 0);
		/* ABI 6: no signal out of the domain (the test runner here; root's daemons when a
		 * cell runs as root), but its own threads and children may be signalled. */
		if (landlock_abi() >= 6) {
			CHECK(40, kill(getppid(), 0) != 0 && errno == EPERM);
			CHECK(41, kill(getpid(), 0) == 0);
		}
		_exit(0);
	}
	int st = child_status(pid);
	ck_assert_msg(st == 0, "confined child failed check %d", st);
	struct stat sb;
	ck_assert_int_eq(stat(rw, &sb), 0); /* made before the ruleset, at its size */
	ck_assert_int_eq(sb.st_size, 8192);
	rm_tmp();
}
END_TEST

/* landlock_deny_all_files: nothing can be opened by path, not even what was reachable. */
START_TEST(test_deny_all_files)
{
	if (!landlock_abi()) {
		printf("SKIP: sandbox: this kernel has no Landlock\n");
		return;
	}
	make_tmp();
	char mine[128];
	snprintf(mine, sizeof(mine), "%s/mine", tmp);
	write_file(mine, "mine\n");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char err[256];
		int fd = open(mine, O_RDONLY | O_CLOEXEC); /* opened before: still readable */
		CHECK(10, fd >= 0);
		CHECK(11, privileges_no_new_privs(err, sizeof(err)) == 0);
		CHECK(12, landlock_deny_all_files(err, sizeof(err)) == 1);
		CHECK(20, denied(mine, O_RDONLY) == 0);
		CHECK(21, denied("/etc/passwd", O_RDONLY) == 0);
		char c;
		CHECK(22, read(fd, &c, 1) == 1 && c == 'm');
		_exit(0);
	}
	int st = child_status(pid);
	ck_assert_msg(st == 0, "confined child failed check %d", st);
	rm_tmp();
}
END_TEST

/* The value of field (e.g. "CapEff:") in /proc/self/status, or "" if absent. */
static void status_field(const char *field, char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[512];
	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0) {
			const char *v = line + strlen(field);
			v += strspn(v, " \t");
			snprintf(out, outlen, "%.*s", (int)strcspn(v, "\n"), v);
			break;
		}
	if (f)
		fclose(f);
}

/* In a child that is root: privileges_drop, then /proc/self/status shows no capability in any
 * set, NoNewPrivs 1, and the ids it should. want_uid "0" for root that stays root. */
static int drop_and_check(const struct privileges_target *t, const char *want_ids)
{
	char err[256], v[128];
	if (privileges_no_new_privs(err, sizeof(err)) != 0)
		return 10;
	if (privileges_drop(t, err, sizeof(err)) != 0) {
		fprintf(stderr, "privileges_drop: %s\n", err);
		return 11;
	}
	const char *caps[] = {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"};
	for (int i = 0; i < 5; i++) {
		status_field(caps[i], v, sizeof(v));
		if (strcmp(v, "0000000000000000") != 0) {
			fprintf(stderr, "%s %s\n", caps[i], v);
			return 20 + i;
		}
	}
	status_field("NoNewPrivs:", v, sizeof(v));
	if (strcmp(v, "1") != 0)
		return 30;
	status_field("Uid:", v, sizeof(v));
	if (strcmp(v, want_ids) != 0) {
		fprintf(stderr, "Uid: %s\n", v);
		return 31;
	}
	status_field("Gid:", v, sizeof(v));
	if (strcmp(v, want_ids) != 0)
		return 32;
	if (!privileges_none_left())
		return 33;
	/* Nothing comes back: not root, not another user's files, not a new TAP. */
	if (t->switch_user ? setresuid(0, 0, 0) == 0 || setgid(0) == 0
			   : setresuid(1, 1, 1) == 0 || setgid(1) == 0)
		return 40;
	if (t->switch_user && open("/etc/shadow", O_RDONLY | O_CLOEXEC) >= 0)
		return 41;
	return 0;
}

START_TEST(test_drop_to_user)
{
	if (geteuid() != 0) {
		printf("SKIP: sandbox: the privilege drop needs root\n");
		return;
	}
	struct privileges_target t;
	char err[256];
	ck_assert_msg(privileges_parse_user("65534:65534", &t, err, sizeof(err)) == 0, "%s", err);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(drop_and_check(&t, "65534\t65534\t65534\t65534"));
	int st = child_status(pid);
	ck_assert_msg(st == 0, "dropped child failed check %d", st);
}
END_TEST

START_TEST(test_drop_root_stays)
{
	if (geteuid() != 0) {
		printf("SKIP: sandbox: the privilege drop needs root\n");
		return;
	}
	struct privileges_target t;
	memset(&t, 0, sizeof(t));
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int rc = drop_and_check(&t, "0\t0\t0\t0");
		/* uid 0 without CAP_DAC_OVERRIDE: another user's private file is closed. */
		if (rc == 0) {
			int fd = open("/proc/1/environ", O_RDONLY | O_CLOEXEC);
			if (fd >= 0 && getppid() != 1) /* pid 1 is another process: root's, but
							* ptrace-read needs a capability */
				rc = 50;
		}
		_exit(rc);
	}
	int st = child_status(pid);
	ck_assert_msg(st == 0, "dropped child failed check %d", st);
}
END_TEST

/* A process that is not root keeps its uid, and --user naming someone else is refused. */
START_TEST(test_drop_unprivileged)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char err[256];
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
		     setresuid(65534, 65534, 65534) != 0))
			_exit(10);
		struct privileges_target t;
		memset(&t, 0, sizeof(t));
		uid_t me = getuid();
		CHECK(11, privileges_drop(&t, err, sizeof(err)) == 0 && getuid() == me);
		t = (struct privileges_target){.switch_user = 1, .uid = me + 1, .gid = getgid()};
		CHECK(12, privileges_drop(&t, err, sizeof(err)) != 0 &&
				  strstr(err, "only root can switch"));
		_exit(0);
	}
	int st = child_status(pid);
	ck_assert_msg(st == 0, "child failed check %d", st);
}
END_TEST

START_TEST(test_parse_user)
{
	struct privileges_target t;
	char err[256];
	ck_assert_int_eq(privileges_parse_user("4321:98", &t, err, sizeof(err)), 0);
	ck_assert(t.switch_user && t.uid == 4321 && t.gid == 98);
	/* Root is the explicit opt-out: it keeps uid 0 (no switch), never with a group. */
	ck_assert_int_eq(privileges_parse_user("root", &t, err, sizeof(err)), 0);
	ck_assert(!t.switch_user && t.uid == 0 && t.gid == 0);
	ck_assert_str_eq(t.name, "root");
	ck_assert_int_eq(privileges_parse_user("0", &t, err, sizeof(err)), 0);
	ck_assert(!t.switch_user);
	ck_assert_int_ne(privileges_parse_user("root:5", &t, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "without a group"), "%s", err);
	ck_assert_int_ne(privileges_parse_user("0:0", &t, err, sizeof(err)), 0);
	ck_assert_int_ne(privileges_parse_user("4321:0", &t, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "has group 0 (root's)"), "%s", err);
	ck_assert_int_ne(privileges_parse_user("no-such-user-here", &t, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "no user named \"no-such-user-here\""), "%s", err);
	ck_assert_int_ne(privileges_parse_user("4321:x", &t, err, sizeof(err)), 0);
	ck_assert_int_ne(privileges_parse_user("", &t, err, sizeof(err)), 0);
	ck_assert_int_ne(privileges_parse_user(":5", &t, err, sizeof(err)), 0);
	ck_assert_int_ne(privileges_parse_user("4294967295:5", &t, err, sizeof(err)), 0);
	if (!getpwuid(3999999)) {
		ck_assert_int_ne(privileges_parse_user("3999999", &t, err, sizeof(err)), 0);
		ck_assert_msg(strstr(err, "give UID:GID"), "%s", err);
	}
	struct passwd *pw = getpwnam("nobody");
	if (pw) {
		ck_assert_int_eq(privileges_parse_user("nobody", &t, err, sizeof(err)), 0);
		ck_assert(t.uid == pw->pw_uid && t.gid == pw->pw_gid);
		ck_assert_str_eq(t.name, "nobody");
	}
}
END_TEST

/* Without --user, root becomes $DENALI_USER (parsed as --user, errors naming the variable),
 * else the system user denali, whose absence is refused with how to make it. */
START_TEST(test_default_user)
{
	struct privileges_target t;
	char err[512];
	ck_assert_int_eq(privileges_default_user("4321:98", &t, err, sizeof(err)), 0);
	ck_assert(t.switch_user && t.uid == 4321 && t.gid == 98);
	ck_assert_int_eq(privileges_default_user("root", &t, err, sizeof(err)), 0);
	ck_assert(!t.switch_user && t.uid == 0);
	ck_assert_int_ne(privileges_default_user("no-such-user-here", &t, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "DENALI_USER: no user named \"no-such-user-here\"");
	struct passwd *pw = getpwnam("denali");
	for (int empty = 0; empty < 2; empty++) {
		int rc = privileges_default_user(empty ? "" : NULL, &t, err, sizeof(err));
		if (pw && pw->pw_uid != 0 && pw->pw_gid != 0) {
			ck_assert_msg(rc == 0, "%s", err);
			ck_assert(t.switch_user && t.uid == pw->pw_uid && t.gid == pw->pw_gid);
			ck_assert_str_eq(t.name, "denali");
		} else if (!pw) {
			ck_assert_int_ne(rc, 0);
			ck_assert_str_eq(err, "started as root, the fleet runs as the system user "
					      "denali, which does not exist: create it (useradd "
					      "--system --no-create-home --shell /usr/sbin/nologin "
					      "denali), or name a user with --user "
					      "(docs/security.md#rights)");
		}
	}
}
END_TEST

Suite *sandbox_suite(void)
{
	Suite *s = suite_create("sandbox");
	TCase *tc = tcase_create("sandbox");
	tcase_add_test(tc, test_cell_confined);
	tcase_add_test(tc, test_deny_all_files);
	tcase_add_test(tc, test_drop_to_user);
	tcase_add_test(tc, test_drop_root_stays);
	tcase_add_test(tc, test_drop_unprivileged);
	tcase_add_test(tc, test_parse_user);
	tcase_add_test(tc, test_default_user);
	suite_add_tcase(s, tc);
	return s;
}
