/* Rights: PR_SET_NO_NEW_PRIVS in every process, and the switch from root to an unprivileged
 * user with no capability left once what needs root is open (docs/security.md#rights). */
#ifndef SANDBOX_PRIVILEGES_H
#define SANDBOX_PRIVILEGES_H

#include <stddef.h>
#include <sys/types.h>

/* Whom the monitor becomes after setup. */
struct privileges_target {
	int switch_user; /* --user given: become uid:gid; else keep the uid */
	uid_t uid;
	gid_t gid;
	char name[64]; /* the user's name, or its number, for messages and folder names */
};

/* Parses --user NAME|UID[:GID]: a user of the password database (its primary group unless
 * :GID is given), or a number (then :GID is needed unless the database knows the uid). Root
 * (uid 0) and group 0 are refused: the point is to leave them. 0, or -1 with a one-line err. */
int privileges_parse_user(const char *spec, struct privileges_target *t, char *err, size_t errlen);

/* PR_SET_NO_NEW_PRIVS for the calling thread and all it starts: no execve can grant rights
 * again (set-user-ID files, file capabilities). 0, or -1 with err. */
int privileges_no_new_privs(char *err, size_t errlen);

/* Gives up every right: when root, the capability bounding set is emptied, and with
 * t->switch_user the supplementary groups, gid and uid (real, effective, saved) become t's;
 * then the ambient, inheritable, permitted and effective sets are emptied, whoever we are
 * (without --user, root keeps uid 0 with no capability: it can no longer override file modes,
 * create TAP devices or bind low ports). Checks what it did. The calling process must have one
 * thread: capabilities are per thread. 0, or -1 with a one-line err (the process must then
 * stop: it may be half dropped). */
int privileges_drop(const struct privileges_target *t, char *err, size_t errlen);

/* 1 when this thread holds no capability at all (effective, permitted, inheritable, ambient,
 * bounding), else 0. */
int privileges_none_left(void);

#endif
