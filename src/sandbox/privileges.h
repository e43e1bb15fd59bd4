/* Rights: PR_SET_NO_NEW_PRIVS in every process, and the switch from root to an unprivileged
 * user with no capability left once what needs root is open (docs/security.md#rights). */
#ifndef SANDBOX_PRIVILEGES_H
#define SANDBOX_PRIVILEGES_H

#include <stddef.h>
#include <sys/types.h>

/* Whom a fleet started as root runs as when no --user is given (docs/security.md#rights), and
 * the environment variable that may name another instead. */
#define PRIVILEGES_DEFAULT_USER "denali"
#define PRIVILEGES_USER_ENV "DENALI_USER"

/* Whom the monitor becomes after setup. */
struct privileges_target {
	int switch_user; /* become uid:gid; else keep the uid (root: uid 0, no capability) */
	uid_t uid;
	gid_t gid;
	char name[64]; /* the user's name, or its number, for messages and folder names */
};

/* Parses --user NAME|UID[:GID]: a user of the password database (its primary group unless
 * :GID is given), or a number (then :GID is needed unless the database knows the uid). A user
 * of uid 0 (root, 0), without :GID, is the explicit opt-out: switch_user 0, root keeps uid 0
 * with no capability. Group 0 is refused, and so is root with a group. 0, or -1 with a
 * one-line err. */
int privileges_parse_user(const char *spec, struct privileges_target *t, char *err, size_t errlen);

/* Whom root becomes without --user: env_user ($DENALI_USER) when set and not empty, parsed as
 * --user is, else the system user PRIVILEGES_DEFAULT_USER with its primary group. Without
 * that user (or if it is root), -1 with a one-line err that says how to make it. */
int privileges_default_user(const char *env_user, struct privileges_target *t, char *err,
			    size_t errlen);

/* PR_SET_NO_NEW_PRIVS for the calling thread and all it starts: no execve can grant rights
 * again (set-user-ID files, file capabilities). 0, or -1 with err. */
int privileges_no_new_privs(char *err, size_t errlen);

/* Gives up every right: when root, the capability bounding set is emptied, and with
 * t->switch_user the supplementary groups, gid and uid (real, effective, saved) become t's;
 * then the ambient, inheritable, permitted and effective sets are emptied, whoever we are
 * (without t->switch_user, root keeps uid 0 with no capability: it can no longer override file
 * modes, create TAP devices or bind low ports). Checks what it did. The calling process must have
 * one thread: capabilities are per thread. 0, or -1 with a one-line err (the process must then
 * stop: it may be half dropped). */
int privileges_drop(const struct privileges_target *t, char *err, size_t errlen);

/* 1 when this thread holds no capability at all (effective, permitted, inheritable, ambient,
 * bounding), else 0. */
int privileges_none_left(void);

#endif
