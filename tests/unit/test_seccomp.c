/* The seccomp allowlists: each role's builds and loads, a forbidden call ends the process with
 * one line naming the process, the role and the call, allowed calls go through, and the
 * arguments checked (ioctl requests, PROT_EXEC, clone flags, socket domains, open flags) are.
 * Each case runs in a forked child, since a filter cannot be taken off. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "unit.h"

/* Sanitizer builds allow their runtime's calls in every list (mmap with any protection,
 * clone, openat): the checks of those arguments hold in the release build only. */
#ifdef DENALI_SANITIZE
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* Runs fn in a child whose stderr goes to a pipe; returns its wait status, its stderr in out. */
static int in_child(void (*fn)(void), char *out, size_t outlen)
{
	int pipefd[2];
	ck_assert_int_eq(pipe(pipefd), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(pipefd[0]);
		dup2(pipefd[1], STDERR_FILENO);
		fn();
		_exit(0);
	}
	close(pipefd[1]);
	size_t len = 0;
	ssize_t n;
	while (len + 1 < outlen && (n = read(pipefd[0], out + len, outlen - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(pipefd[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/* fn, run in a child, ends it with the one line naming the role (role_words) and the call. */
static void expect_forbidden(void (*fn)(void), const char *role_words, const char *call)
{
	char out[512];
	int status = in_child(fn, out, sizeof(out));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == SANDBOX_EXIT_FORBIDDEN,
		      "status 0x%x, stderr: %s", status, out);
	char want[256];
	snprintf(want, sizeof(want), "denali-run: unit: %s: forbidden system call %s (", role_words,
		 call);
	ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "stderr: %s", out);
	ck_assert_msg(strstr(out, "): ending the process\n") && !strchr(out, '\n')[1],
		      "not one line: %s", out);
}

/* fn, run in a child, returns and the child exits 0, having printed nothing. */
static void expect_lived(void (*fn)(void))
{
	char out[512];
	int status = in_child(fn, out, sizeof(out));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x, stderr: %s",
		      status, out);
	ck_assert_str_eq(out, "");
}

static enum sandbox_role child_role;

static void seal(enum sandbox_role role)
{
	char err[256];
	sandbox_init(1);
	sandbox_set_process("unit");
	if (sandbox_seal(role, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		_exit(3);
	}
}

static void forbidden_after_seal(void)
{
	seal(child_role);
	syscall(SYS_syslog, 10, NULL, 0); /* in no list */
}

START_TEST(test_every_role_builds_and_refuses)
{
	for (int r = 0; r < SANDBOX_ROLES; r++) {
		int size = sandbox_role_size((enum sandbox_role)r);
		ck_assert_msg(size > 20 && size < 160, "%s: %d calls",
			      sandbox_role_name((enum sandbox_role)r), size);
		child_role = (enum sandbox_role)r;
		char words[64];
		snprintf(words, sizeof(words), "%s thread", sandbox_role_name(child_role));
		expect_forbidden(forbidden_after_seal, words, "syslog");
	}
	/* A vcpu thread's list stays near Firecracker's (a few dozen), below its cell's. */
	if (!SANITIZED)
		ck_assert_int_le(sandbox_role_size(SANDBOX_VCPU), 60);
	ck_assert_int_lt(sandbox_role_size(SANDBOX_VCPU), sandbox_role_size(SANDBOX_CELL));
	ck_assert_int_lt(sandbox_role_size(SANDBOX_CELL), sandbox_role_size(SANDBOX_SUPERVISOR));
	ck_assert_int_eq(sandbox_role_size(SANDBOX_ROLES), -1);
}
END_TEST

/* What a running vcpu thread does: memory, time, its fds, KVM_RUN (here on a file that is not
 * a vcpu: the filter lets it through, the kernel says ENOTTY). */
static void vcpu_allowed(void)
{
	int fd = open("/dev/null", O_RDWR);
	sandbox_set_service("web");
	seal(SANDBOX_VCPU);
	struct timespec ts;
	void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *q = malloc(100000);
	if (fd < 0 || p == MAP_FAILED || !q || munmap(p, 1 << 20) != 0 ||
	    clock_gettime(CLOCK_MONOTONIC, &ts) != 0 || write(fd, "x", 1) != 1 || getpid() <= 0)
		_exit(4);
	free(q);
	if (ioctl(fd, KVM_RUN, 0) != -1 || errno != ENOTTY)
		_exit(5);
	close(fd);
}

START_TEST(test_vcpu_allowed_calls_live)
{
	expect_lived(vcpu_allowed);
}
END_TEST

static void vcpu_create_vm(void)
{
	int fd = open("/dev/null", O_RDWR);
	sandbox_set_service("web");
	seal(SANDBOX_VCPU);
	ioctl(fd, KVM_CREATE_VM, 0);
}

START_TEST(test_vcpu_no_create_vm)
{
	expect_forbidden(vcpu_create_vm, "vcpu thread (service web)", "ioctl");
}
END_TEST

/* A vcpu thread stacks its filter on its cell's: the intersection holds. */
static void cell_then_vcpu_create_vm(void)
{
	int fd = open("/dev/null", O_RDWR);
	seal(SANDBOX_CELL);
	if (ioctl(fd, KVM_CREATE_VM, 0) != -1 || errno != ENOTTY) /* the cell may */
		_exit(4);
	seal(SANDBOX_VCPU);
	ioctl(fd, KVM_CREATE_VM, 0);
}

START_TEST(test_stacked_filters_intersect)
{
	expect_forbidden(cell_then_vcpu_create_vm, "vcpu thread", "ioctl");
}
END_TEST

static void vcpu_exec_mmap(void)
{
	seal(SANDBOX_VCPU);
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

START_TEST(test_no_executable_memory)
{
	if (SANITIZED)
		return;
	expect_forbidden(vcpu_exec_mmap, "vcpu thread", "mmap");
}
END_TEST

static void *nothing(void *arg)
{
	return arg;
}

/* A cell makes threads (glibc's clone3 is answered ENOSYS, its clone checked), never a
 * process. */
static void cell_thread_then_fork(void)
{
	seal(SANDBOX_CELL);
	pthread_t t;
	if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
		_exit(4);
	fork();
}

START_TEST(test_cell_threads_but_no_fork)
{
	if (SANITIZED)
		return;
	expect_forbidden(cell_thread_then_fork, "cell thread", "clone");
}
END_TEST

/* (pthread_create would block every signal around its clone: the kernel then ends the
 * process with SIGSYS itself, without the line.) */
static void disk_fork(void)
{
	seal(SANDBOX_DISK);
	fork();
}

START_TEST(test_disk_no_fork)
{
	if (SANITIZED)
		return;
	expect_forbidden(disk_fork, "disk thread", "clone");
}
END_TEST

/* The NAT: IP sockets, read-only opens; no netlink, no writable open. */
static void nat_allowed(void)
{
	seal(SANDBOX_NAT);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t len = sizeof(a);
	int fd = open("/dev/null", O_RDONLY);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) != 0 || fd < 0 ||
	    fcntl(s, F_SETFL, O_NONBLOCK) != 0)
		_exit(4);
	close(s);
	close(fd);
}

static void nat_netlink(void)
{
	seal(SANDBOX_NAT);
	socket(AF_NETLINK, SOCK_RAW, 0);
}

static void nat_open_write(void)
{
	seal(SANDBOX_NAT);
	open("/dev/null", O_WRONLY);
}

static void nat_fcntl_setown(void)
{
	seal(SANDBOX_NAT);
	fcntl(0, F_SETOWN, getpid());
}

START_TEST(test_nat_arguments)
{
	expect_lived(nat_allowed);
	expect_forbidden(nat_netlink, "nat thread", "socket");
	if (!SANITIZED)
		expect_forbidden(nat_open_write, "nat thread", "openat");
	expect_forbidden(nat_fcntl_setown, "nat thread", "fcntl");
}
END_TEST

/* The network thread reads frames from guests: it neither execs, forks nor maps code (the NAT
 * launcher starts the NAT processes). */
static void net_execve(void)
{
	seal(SANDBOX_NET);
	char *const argv[] = {(char *)(uintptr_t) "true", NULL};
	execve("/bin/true", argv, argv + 1);
}

static void net_fork(void)
{
	seal(SANDBOX_NET);
	if (fork() == 0)
		_exit(0);
}

static void net_exec_mmap(void)
{
	seal(SANDBOX_NET);
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void supervisor_execve(void)
{
	seal(SANDBOX_SUPERVISOR);
	char *const argv[] = {(char *)(uintptr_t) "true", NULL};
	execve("/bin/true", argv, argv + 1);
}

START_TEST(test_net_no_exec)
{
	expect_forbidden(net_execve, "net thread", "execve");
	expect_forbidden(supervisor_execve, "supervisor thread", "execve");
	if (SANITIZED)
		return;
	expect_forbidden(net_fork, "net thread", "clone");
	expect_forbidden(net_exec_mmap, "net thread", "mmap");
}
END_TEST

/* The NAT launcher forks (its child runs and is reaped), and that is all it may start: no
 * execve, no thread. */
static void launcher_forks(void)
{
	seal(SANDBOX_NAT_LAUNCHER);
	pid_t pid = fork();
	if (pid == 0)
		_exit(7);
	siginfo_t si;
	if (pid < 0 || waitid(P_PID, (id_t)pid, &si, WEXITED) != 0 || si.si_status != 7)
		_exit(4);
}

static void launcher_execve(void)
{
	seal(SANDBOX_NAT_LAUNCHER);
	char *const argv[] = {(char *)(uintptr_t) "true", NULL};
	execve("/bin/true", argv, argv + 1);
}

static void launcher_thread(void)
{
	seal(SANDBOX_NAT_LAUNCHER);
	syscall(SYS_clone, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD, NULL,
		NULL, NULL, 0);
}

START_TEST(test_nat_launcher_forks_only)
{
	expect_lived(launcher_forks);
	expect_forbidden(launcher_execve, "nat-launcher thread", "execve");
	if (!SANITIZED)
		expect_forbidden(launcher_thread, "nat-launcher thread", "clone");
}
END_TEST

/* The test hook: DENALI_SECCOMP_PROBE=ROLE[:WHO] makes the sealed thread call what no role
 * allows; WHO picks a service (or a cell's number). */
static const char *probe_value;

static void probed_vcpu(void)
{
	setenv("DENALI_SECCOMP_PROBE", probe_value, 1);
	sandbox_set_service("web");
	seal(SANDBOX_VCPU);
}

START_TEST(test_probe)
{
	probe_value = "vcpu";
	expect_forbidden(probed_vcpu, "vcpu thread (service web)", "syslog");
	probe_value = "vcpu:web";
	expect_forbidden(probed_vcpu, "vcpu thread (service web)", "syslog");
	probe_value = "vcpu:other";
	expect_lived(probed_vcpu);
	probe_value = "disk";
	expect_lived(probed_vcpu);
}
END_TEST

/* A sealed process still ends through exit(): stdio's flush, and under the sanitizers the
 * leak checker's thread, which ptraces the others (it hung on a forbidden getdents). */
static void sealed_exit(void)
{
	FILE *null = fopen("/dev/null", "w"); /* flushed by exit() */
	seal(child_role);
	fprintf(null ? null : stdout, "bye\n");
	exit(0);
}

START_TEST(test_sealed_exit)
{
	for (int r = 0; r < SANDBOX_ROLES; r++) {
		child_role = (enum sandbox_role)r;
		expect_lived(sealed_exit);
	}
}
END_TEST

static void sealed_off(void)
{
	char err[256];
	sandbox_init(0);
	if (sandbox_seal(SANDBOX_VCPU, err, sizeof(err)) != 0 || sandbox_thread_sealed())
		_exit(4);
	syscall(SYS_syslog, 10, NULL, 0);
}

START_TEST(test_off_seals_nothing)
{
	expect_lived(sealed_off);
}
END_TEST

Suite *seccomp_suite(void)
{
	Suite *s = suite_create("seccomp");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_every_role_builds_and_refuses);
	tcase_add_test(tc, test_vcpu_allowed_calls_live);
	tcase_add_test(tc, test_vcpu_no_create_vm);
	tcase_add_test(tc, test_stacked_filters_intersect);
	tcase_add_test(tc, test_no_executable_memory);
	tcase_add_test(tc, test_cell_threads_but_no_fork);
	tcase_add_test(tc, test_disk_no_fork);
	tcase_add_test(tc, test_nat_arguments);
	tcase_add_test(tc, test_net_no_exec);
	tcase_add_test(tc, test_nat_launcher_forks_only);
	tcase_add_test(tc, test_probe);
	tcase_add_test(tc, test_off_seals_nothing);
	tcase_add_test(tc, test_sealed_exit);
	suite_add_tcase(s, tc);
	return s;
}
