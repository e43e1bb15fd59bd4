/* --detach (see detach.h). */
#include "detach.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exit_status.h"
#include "sandbox.h"

/* Copies what the child wrote to the log from offset on to stderr: the reason it failed. */
static void echo_log(int fd, off_t offset)
{
	char buf[4096];
	ssize_t n;
	while ((n = pread(fd, buf, sizeof(buf), offset)) > 0) {
		if (write(STDERR_FILENO, buf, (size_t)n) != n)
			break;
		offset += n;
	}
}

static int parent_waits(pid_t child, int ready, int log, off_t offset, const char *socket_path)
{
	char byte;
	ssize_t n;
	do
		n = read(ready, &byte, 1);
	while (n < 0 && errno == EINTR);
	close(ready);
	if (n == 1) {
		printf("%s\n", socket_path);
		return 0;
	}
	/* The child ended, or will, before its fleet was up. */
	int status;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	echo_log(log, offset);
	return WIFEXITED(status) ? WEXITSTATUS(status) : DENALI_EXIT_HOST;
}

int detach_open_log(int state_fd, const char *state_dir, char *err, size_t errlen)
{
	/* In the checked folder, and never through a symbolic link: a log planted there by
	 * someone else would have us append to any file. */
	int fd = openat(state_fd, DETACH_LOG, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
			0600);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid())
		return fd;
	snprintf(err, errlen, "--detach: cannot open its log %s/" DETACH_LOG ": %s", state_dir,
		 fd < 0 && errno == ELOOP ? "it is a symbolic link"
		 : fd < 0		  ? strerror(errno)
					  : "it is not a regular file of yours");
	if (fd >= 0)
		close(fd);
	return -1;
}

int detach_start(int log, const char *socket_path, const struct privileges_target *rights,
		 int *ready_fd, char *err, size_t errlen)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int pipefd[2] = {-1, -1};
	if (null < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "--detach: %s", strerror(errno));
		goto fail;
	}
	struct stat st;
	off_t offset = fstat(log, &st) == 0 ? st.st_size : 0;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "--detach: fork: %s", strerror(errno));
		goto fail;
	}
	if (pid > 0) {
		close(null);
		close(pipefd[1]);
		/* It only waits and copies the log: no rights needed (docs/security.md#rights). */
		char why[256];
		if (privileges_drop(rights, why, sizeof(why)) != 0) {
			fprintf(stderr, "denali-run: --detach: %s\n", why);
			kill(pid, SIGKILL);
			exit(DENALI_EXIT_HOST);
		}
		/* Privileges and Landlock (src/sandbox) come just before this seal. */
		sandbox_set_process("detach parent");
		sandbox_seal_or_exit(SANDBOX_DETACH);
		exit(parent_waits(pid, pipefd[0], log, offset, socket_path));
	}
	close(pipefd[0]);
	setsid();
	if (dup2(null, STDIN_FILENO) < 0 || dup2(log, STDOUT_FILENO) < 0 ||
	    dup2(log, STDERR_FILENO) < 0)
		_exit(DENALI_EXIT_HOST);
	close(log);
	close(null);
	setvbuf(stdout, NULL, _IOLBF, 0); /* a log read while the fleet runs */
	*ready_fd = pipefd[1];
	return 0;
fail:
	if (log >= 0)
		close(log);
	if (null >= 0)
		close(null);
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
		close(pipefd[1]);
	}
	return -1;
}

void detach_ready(int fd)
{
	if (fd < 0)
		return;
	if (write(fd, "1", 1) != 1)
		perror("denali-run: --detach");
	close(fd);
}
