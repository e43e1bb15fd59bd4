/* Folders of ours that no other local user can plant or swap: the state folder, the service
 * folders in it and the control socket's folder are all opened through here. */
#ifndef BASE_PRIVATE_DIR_H
#define BASE_PRIVATE_DIR_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

enum private_dir_flags {
	PRIVATE_DIR_CREATE = 1u,    /* make it (mode 0700) if it does not exist */
	PRIVATE_DIR_PARENTS = 2u,   /* and the missing folders above it (0700) */
	PRIVATE_DIR_STRICT = 4u,    /* no access at all for group and others (else: no write) */
	PRIVATE_DIR_ANCESTORS = 8u, /* check every folder above it too, up to / */
};

enum private_dir_verdict {
	PRIVATE_DIR_OK = 0,
	PRIVATE_DIR_NOT_A_DIR,	/* not a folder */
	PRIVATE_DIR_NOT_OURS,	/* owned by another user (for a folder above: nor by root) */
	PRIVATE_DIR_OPEN,	/* group or others may write it (strict: may use it at all) */
	PRIVATE_DIR_OPEN_ABOVE, /* a folder above it that group or others may write, not sticky */
	PRIVATE_DIR_NOT_OURS_ABOVE, /* a folder above it owned by another user than us or root */
};

/* Judges the folder itself from its fstat: a directory owned by euid that group and others
 * may not write (strict: may not read, write or search either). Pure. */
enum private_dir_verdict private_dir_judge(const struct stat *st, uid_t euid, int strict);

/* Judges a folder above it: owned by euid or root, and either not writable by group and
 * others or sticky (then no one else can rename or remove what is ours in it, as /var/tmp).
 * Pure. */
enum private_dir_verdict private_dir_judge_above(const struct stat *st, uid_t euid);

/* Opens the folder path (relative to at, or AT_FDCWD) as O_DIRECTORY|O_NOFOLLOW, making it
 * first as flags ask, and checks it with private_dir_judge for the effective uid; with
 * PRIVATE_DIR_ANCESTORS also every folder above it (its real parents, found through "..",
 * whatever symbolic links the path went through) with private_dir_judge_above. Files in it
 * are then to be opened with openat(fd, name, ...|O_NOFOLLOW). Returns the folder's fd, or -1
 * with a one-line err that names what (e.g. "state folder"), shown (its path as the user
 * knows it) and the owner or mode at fault, e.g. "state folder /var/tmp/denali-0 is owned by
 * uid 65534 (nobody), not by you: refusing to use it". */
int private_dir_open(int at, const char *path, const char *what, const char *shown, unsigned flags,
		     char *err, size_t errlen);

/* Opens the folder that holds path (its last component's; "." for a bare name) as
 * private_dir_open does, and sets *base to that last component, inside path. -1 with err,
 * also when path ends with "/". */
int private_dir_open_parent(const char *path, const char *what, unsigned flags, const char **base,
			    char *err, size_t errlen);

/* What the default folders depend on: $XDG_RUNTIME_DIR, $XDG_STATE_HOME, $HOME (NULL or
 * empty: unset) and the effective uid. */
struct private_dir_env {
	const char *xdg_runtime_dir;
	const char *xdg_state_home;
	const char *home;
	unsigned euid;
};

/* Fills env from this process's environment and effective uid. */
void private_dir_env_get(struct private_dir_env *env);

/* The default folder for denali's files, never in a folder others may write (docs/cli.md).
 * on_disk 0 (the state folder, the control socket's folder): $XDG_RUNTIME_DIR/denali, else
 * /run/denali for root, else as on_disk 1. on_disk 1 (a state folder for services that swap):
 * /var/lib/denali for root, else $XDG_STATE_HOME/denali, else $HOME/.local/state/denali.
 * Variables that are not absolute paths count as unset. Returns 0, or -1 when there is none
 * (no usable variable) or it does not fit in out. Pure. */
int private_dir_default(const struct private_dir_env *env, int on_disk, char *out, size_t outlen);

#endif
