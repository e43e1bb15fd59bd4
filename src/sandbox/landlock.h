/* Landlock (Linux 5.13+): a process confines itself to the files it names, without root. Cells
 * are confined to their state folder, /dev/kvm and their disks (docs/security.md#rights). */
#ifndef SANDBOX_LANDLOCK_H
#define SANDBOX_LANDLOCK_H

#include <stddef.h>

/* The highest Landlock ABI this kernel offers (1 for 5.13, 3 adds the truncate right, ...),
 * or 0 when it has none (not built in, or disabled at boot). */
int landlock_abi(void);

/* A ruleset being built: every file-system right the kernel's ABI knows is handled, so what no
 * rule allows is denied; from ABI 6 it is also scoped: no signal to a process outside it (the
 * threads and children of the confined process are inside), no abstract unix socket of
 * others. fd -1 when the kernel has no Landlock: every call below is then a
 * no-op that succeeds, and landlock_enforce says so through its return. */
struct landlock_rules {
	int fd;
	int abi;
	unsigned long long handled;
};

/* How a path may be used beneath a rule. */
enum landlock_use {
	LANDLOCK_READ = 1u,   /* read files (and list folders) */
	LANDLOCK_WRITE = 2u,  /* write and truncate files; for a folder also make and remove
			       * files and folders in it, and move them within it */
	LANDLOCK_DEVICE = 4u, /* a device file: ioctls on it too (ABI 5+) */
};

/* Starts a ruleset. 0, or -1 with a one-line err. */
int landlock_rules_init(struct landlock_rules *r, char *err, size_t errlen);

/* Allows uses (enum landlock_use) of path: a folder and everything beneath it, or one file.
 * what names it in err (e.g. "state folder"). A missing path is -1 with errno ENOENT, so a
 * caller may skip what does not exist (nothing there to open). 0, or -1 with err. */
int landlock_allow(struct landlock_rules *r, const char *path, unsigned uses, const char *what,
		   char *err, size_t errlen);

/* Confines the calling thread, and the threads and processes it starts from now on, to the
 * rules (needs PR_SET_NO_NEW_PRIVS, privileges.h), and frees the ruleset. Descriptors opened
 * before keep working. 1 when enforced, 0 when the kernel has no Landlock (nothing done), -1
 * with err. */
int landlock_enforce(struct landlock_rules *r, char *err, size_t errlen);

/* Drops a ruleset that is not to be enforced. */
void landlock_rules_free(struct landlock_rules *r);

/* Confines the calling thread to no file at all: a process that needs none once set up (the
 * NAT) opens nothing by path after this. 1, 0 or -1 as landlock_enforce. */
int landlock_deny_all_files(char *err, size_t errlen);

#endif
