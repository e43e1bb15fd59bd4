/* Landlock rulesets through the raw system calls (glibc has no wrappers). */
#include "landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Rights newer than the oldest headers we build with; their values are the kernel's ABI. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13) /* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif

/* Scopes (ABI 6): no signal to a process outside the domain, no connection to an abstract
 * unix socket made outside it. */
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SCOPE_SIGNAL (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6, for headers older than it; the kernel takes the
 * size we pass and reads no further. */
struct ruleset_attr {
	__u64 handled_access_fs;
	__u64 handled_access_net;
	__u64 scoped;
};

#define FS_V1                                                                                      \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |                              \
	 LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |                          \
	 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |                              \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |                              \
	 LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |                            \
	 LANDLOCK_ACCESS_FS_MAKE_SYM)

/* Rights that make sense on a file (a rule on a file may carry no others). */
#define FS_FILE                                                                                    \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |                              \
	 LANDLOCK_ACCESS_FS_IOCTL_DEV)

int landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi > 0 ? (int)abi : 0;
}

/* Every file-system right the kernel's ABI knows: one it does not know cannot be handled, and
 * one it knows but we did not handle would be left allowed. */
static unsigned long long handled_for(int abi)
{
	unsigned long long fs = FS_V1;
	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return fs;
}

int landlock_rules_init(struct landlock_rules *r, char *err, size_t errlen)
{
	r->fd = -1;
	r->abi = landlock_abi();
	r->handled = handled_for(r->abi);
	if (!r->abi)
		return 0;
	struct ruleset_attr attr = {.handled_access_fs = r->handled};
	size_t size = sizeof(attr.handled_access_fs);
	if (r->abi >= 6) {
		attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	long fd = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd < 0) {
		snprintf(err, errlen, "landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	r->fd = (int)fd;
	return 0;
}

/* The rights uses grant on a folder (dir) or a file. */
static unsigned long long rights_for(const struct landlock_rules *r, unsigned uses, int dir)
{
	unsigned long long a = 0;
	if (uses & LANDLOCK_READ)
		a |= LANDLOCK_ACCESS_FS_READ_FILE | (dir ? LANDLOCK_ACCESS_FS_READ_DIR : 0);
	if (uses & LANDLOCK_WRITE) {
		a |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
		/* No devices, sockets, FIFOs or symbolic links are made, and nothing runs. */
		if (dir)
			a |= LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_DIR |
			     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
			     LANDLOCK_ACCESS_FS_REFER;
	}
	if (uses & LANDLOCK_DEVICE)
		a |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	if (!dir)
		a &= FS_FILE;
	return a & r->handled;
}

int landlock_allow(struct landlock_rules *r, const char *path, unsigned uses, const char *what,
		   char *err, size_t errlen)
{
	if (r->fd < 0)
		return 0;
	int fd = open(path, O_PATH | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		snprintf(err, errlen, "landlock: %s %s: %s", what, path, strerror(e));
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	struct landlock_path_beneath_attr rule = {
		.allowed_access = rights_for(r, uses, S_ISDIR(st.st_mode)),
		.parent_fd = fd,
	};
	long rc = syscall(SYS_landlock_add_rule, r->fd, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
	int e = errno;
	close(fd);
	if (rc != 0) {
		snprintf(err, errlen, "landlock: %s %s: landlock_add_rule: %s", what, path,
			 strerror(e));
		errno = e;
		return -1;
	}
	return 0;
}

void landlock_rules_free(struct landlock_rules *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

int landlock_enforce(struct landlock_rules *r, char *err, size_t errlen)
{
	if (r->fd < 0)
		return 0;
	long rc = syscall(SYS_landlock_restrict_self, r->fd, 0);
	int e = errno;
	landlock_rules_free(r);
	if (rc != 0) {
		snprintf(err, errlen, "landlock_restrict_self: %s%s", strerror(e),
			 e == EPERM ? " (PR_SET_NO_NEW_PRIVS is not set)" : "");
		return -1;
	}
	return 1;
}

int landlock_deny_all_files(char *err, size_t errlen)
{
	struct landlock_rules r;
	if (landlock_rules_init(&r, err, errlen) != 0)
		return -1;
	return landlock_enforce(&r, err, errlen);
}
