/* Folders of ours that no other local user can plant or swap (see private_dir.h). */
#include "private_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* More folders above than PATH_MAX allows names for: a loop or a hostile mount. */
#define ABOVE_MAX 2048

enum private_dir_verdict private_dir_judge(const struct stat *st, uid_t euid, int strict)
{
	if (!S_ISDIR(st->st_mode))
		return PRIVATE_DIR_NOT_A_DIR;
	if (st->st_uid != euid)
		return PRIVATE_DIR_NOT_OURS;
	if (st->st_mode & (strict ? 077u : 022u))
		return PRIVATE_DIR_OPEN;
	return PRIVATE_DIR_OK;
}

enum private_dir_verdict private_dir_judge_above(const struct stat *st, uid_t euid)
{
	if (!S_ISDIR(st->st_mode))
		return PRIVATE_DIR_NOT_A_DIR;
	if (st->st_uid != euid && st->st_uid != 0)
		return PRIVATE_DIR_NOT_OURS_ABOVE;
	if ((st->st_mode & 022u) && !(st->st_mode & S_ISVTX))
		return PRIVATE_DIR_OPEN_ABOVE;
	return PRIVATE_DIR_OK;
}

/* "uid 65534 (nobody)", or "uid 1234" without a name. */
static void owner_text(uid_t uid, char *out, size_t outlen)
{
	struct passwd pw, *found = NULL;
	char buf[1024];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found && found->pw_name)
		snprintf(out, outlen, "uid %u (%s)", (unsigned)uid, found->pw_name);
	else
		snprintf(out, outlen, "uid %u", (unsigned)uid);
}

/* The path the kernel knows fd by, for a message; "a folder above it" if it cannot say. */
static void fd_path(int fd, char *out, size_t outlen)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, out, outlen - 1);
	if (n <= 0)
		snprintf(out, outlen, "a folder above it");
	else
		out[n] = '\0';
}

/* The one-line refusal for verdict v about the folder (above == -1) or the folder above it
 * open as above, whose fstat is st. */
static void refuse(enum private_dir_verdict v, const char *what, const char *shown,
		   const struct stat *st, int above, char *err, size_t errlen)
{
	char owner[160], where[PATH_MAX];
	owner_text(st->st_uid, owner, sizeof(owner));
	if (above >= 0)
		fd_path(above, where, sizeof(where));
	unsigned mode = (unsigned)(st->st_mode & 07777);
	switch (v) {
	case PRIVATE_DIR_OK: break;
	case PRIVATE_DIR_NOT_A_DIR:
		snprintf(err, errlen, "%s %s is not a folder: refusing to use it", what, shown);
		break;
	case PRIVATE_DIR_NOT_OURS:
		snprintf(err, errlen, "%s %s is owned by %s, not by you: refusing to use it", what,
			 shown, owner);
		break;
	case PRIVATE_DIR_OPEN:
		snprintf(err, errlen, "%s %s is open to others (mode %04o): refusing to use it",
			 what, shown, mode);
		break;
	case PRIVATE_DIR_NOT_OURS_ABOVE:
		snprintf(err, errlen,
			 "%s %s is in %s, owned by %s, neither you nor root: refusing to use it",
			 what, shown, where, owner);
		break;
	case PRIVATE_DIR_OPEN_ABOVE:
		snprintf(err, errlen,
			 "%s %s is in %s, which others may write (mode %04o, not sticky): refusing "
			 "to use it",
			 what, shown, where, mode);
		break;
	}
}

/* Makes every missing folder above path (relative to at), mode 0700. Errors are left to the
 * mkdir or open of path itself, which then says what is wrong. */
static void make_parents(int at, const char *path)
{
	char buf[PATH_MAX];
	if ((size_t)snprintf(buf, sizeof(buf), "%s", path) >= sizeof(buf))
		return;
	for (char *slash = buf + 1; (slash = strchr(slash, '/')); slash++) {
		*slash = '\0';
		if (mkdirat(at, buf, 0700) != 0 && errno != EEXIST) {
			*slash = '/';
			return;
		}
		*slash = '/';
	}
}

/* Checks every real folder above fd, up to the root. 0, or -1 with err. */
static int check_above(int fd, const char *what, const char *shown, char *err, size_t errlen)
{
	int cur = fd;
	struct stat here, st;
	if (fstat(cur, &here) != 0)
		goto unreadable;
	for (int depth = 0; depth < ABOVE_MAX; depth++) {
		int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cur != fd)
			close(cur);
		cur = up;
		if (cur < 0 || fstat(cur, &st) != 0)
			goto unreadable;
		if (st.st_dev == here.st_dev && st.st_ino == here.st_ino)
			break; /* ".." of the root is the root */
		enum private_dir_verdict v = private_dir_judge_above(&st, geteuid());
		if (v != PRIVATE_DIR_OK) {
			refuse(v, what, shown, &st, cur, err, errlen);
			close(cur);
			return -1;
		}
		here = st;
		if (depth == ABOVE_MAX - 1) {
			snprintf(err, errlen,
				 "%s %s is more than %d folders deep: refusing to use it", what,
				 shown, ABOVE_MAX);
			close(cur);
			return -1;
		}
	}
	if (cur != fd)
		close(cur);
	return 0;
unreadable:
	snprintf(err, errlen, "cannot check the folders above %s %s: %s", what, shown,
		 strerror(errno));
	if (cur >= 0 && cur != fd)
		close(cur);
	return -1;
}

int private_dir_open(int at, const char *path, const char *what, const char *shown, unsigned flags,
		     char *err, size_t errlen)
{
	if (flags & PRIVATE_DIR_PARENTS)
		make_parents(at, path);
	if ((flags & (PRIVATE_DIR_CREATE | PRIVATE_DIR_PARENTS)) && mkdirat(at, path, 0700) != 0 &&
	    errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s %s: %s", what, shown, strerror(errno));
		return -1;
	}
	int fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			snprintf(err, errlen,
				 "%s %s is a symbolic link or not a folder: refusing to use it",
				 what, shown);
		else
			snprintf(err, errlen, "cannot open %s %s: %s", what, shown,
				 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	enum private_dir_verdict v =
		private_dir_judge(&st, geteuid(), (flags & PRIVATE_DIR_STRICT) != 0);
	if (v != PRIVATE_DIR_OK) {
		refuse(v, what, shown, &st, -1, err, errlen);
		close(fd);
		return -1;
	}
	if ((flags & PRIVATE_DIR_ANCESTORS) && check_above(fd, what, shown, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int private_dir_open_parent(const char *path, const char *what, unsigned flags, const char **base,
			    char *err, size_t errlen)
{
	char folder[PATH_MAX];
	if ((size_t)snprintf(folder, sizeof(folder), "%s", path) >= sizeof(folder)) {
		snprintf(err, errlen, "the path of the %s is too long", what);
		return -1;
	}
	char *slash = strrchr(folder, '/');
	*base = slash ? path + (slash - folder) + 1 : path;
	if (!**base) {
		snprintf(err, errlen, "%s names a folder, not a file in one", path);
		return -1;
	}
	if (!slash)
		snprintf(folder, sizeof(folder), ".");
	else if (slash == folder)
		slash[1] = '\0'; /* in / */
	else
		*slash = '\0';
	return private_dir_open(AT_FDCWD, folder, what, folder, flags, err, errlen);
}

void private_dir_env_get(struct private_dir_env *env)
{
	env->xdg_runtime_dir = getenv("XDG_RUNTIME_DIR");
	env->xdg_state_home = getenv("XDG_STATE_HOME");
	env->home = getenv("HOME");
	env->euid = (unsigned)geteuid();
}

static int absolute(const char *path)
{
	return path && path[0] == '/';
}

int private_dir_default(const struct private_dir_env *env, int on_disk, char *out, size_t outlen)
{
	int n;
	if (!on_disk && absolute(env->xdg_runtime_dir))
		n = snprintf(out, outlen, "%s/denali", env->xdg_runtime_dir);
	else if (env->euid == 0) /* root's alone, whatever $HOME sudo kept */
		n = snprintf(out, outlen, on_disk ? "/var/lib/denali" : "/run/denali");
	else if (absolute(env->xdg_state_home))
		n = snprintf(out, outlen, "%s/denali", env->xdg_state_home);
	else if (absolute(env->home))
		n = snprintf(out, outlen, "%s/.local/state/denali", env->home);
	else
		return -1;
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
