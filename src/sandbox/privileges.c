/* Giving up root: groups, gid, uid and every capability set, with the raw capget/capset calls
 * (no libcap) and prctl. */
#include "privileges.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A number of at most 10 digits, nothing else. */
static int parse_id(const char *s, size_t len, unsigned long *out)
{
	if (len == 0 || len > 10)
		return -1;
	unsigned long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v >= UINT_MAX) /* (uid_t)-1 means "unchanged" to setresuid */
		return -1;
	*out = v;
	return 0;
}

/* Parses spec (NAME|UID[:GID]) for a message prefix what ("--user", "DENALI_USER"). Root (uid
 * 0, without a group) is the opt-out: the ids stay, only the capabilities go. */
static int parse_user(const char *spec, const char *what, struct privileges_target *t, char *err,
		      size_t errlen)
{
	memset(t, 0, sizeof(*t));
	const char *colon = strchr(spec, ':');
	size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
	char user[64];
	if (ulen == 0 || ulen >= sizeof(user)) {
		snprintf(err, errlen, "%s: \"%.64s\" is not NAME, UID or UID:GID", what, spec);
		return -1;
	}
	memcpy(user, spec, ulen);
	user[ulen] = '\0';
	unsigned long id;
	struct passwd *pw = NULL;
	int numeric = parse_id(user, ulen, &id) == 0;
	pw = numeric ? getpwuid((uid_t)id) : getpwnam(user);
	if (!numeric && !pw) {
		snprintf(err, errlen, "%s: no user named \"%s\"", what, user);
		return -1;
	}
	t->uid = pw ? pw->pw_uid : (uid_t)id;
	if (t->uid == 0) {
		if (colon) {
			snprintf(err, errlen,
				 "%s: \"%.64s\": root keeps its own ids: give it without a group",
				 what, spec);
			return -1;
		}
		snprintf(t->name, sizeof(t->name), "root");
		return 0; /* switch_user 0: root stays uid 0 without capabilities */
	}
	if (colon) {
		unsigned long g;
		if (parse_id(colon + 1, strlen(colon + 1), &g) != 0) {
			snprintf(err, errlen, "%s: \"%.64s\": the group is not a number", what,
				 colon + 1);
			return -1;
		}
		t->gid = (gid_t)g;
	} else if (pw) {
		t->gid = pw->pw_gid;
	} else {
		snprintf(err, errlen,
			 "%s: uid %lu has no entry in the password database: give UID:GID", what,
			 id);
		return -1;
	}
	if (t->gid == 0) {
		snprintf(err, errlen,
			 "%s: \"%s\" has group 0 (root's): name an unprivileged user and group",
			 what, spec);
		return -1;
	}
	snprintf(t->name, sizeof(t->name), "%s", pw ? pw->pw_name : user);
	t->switch_user = 1;
	return 0;
}

int privileges_parse_user(const char *spec, struct privileges_target *t, char *err, size_t errlen)
{
	return parse_user(spec, "--user", t, err, errlen);
}

int privileges_default_user(const char *env_user, struct privileges_target *t, char *err,
			    size_t errlen)
{
	if (env_user && *env_user)
		return parse_user(env_user, PRIVILEGES_USER_ENV, t, err, errlen);
	struct passwd *pw = getpwnam(PRIVILEGES_DEFAULT_USER);
	if (!pw) {
		snprintf(err, errlen,
			 "started as root, the fleet runs as the system "
			 "user " PRIVILEGES_DEFAULT_USER
			 ", which does not exist: create it (useradd --system --no-create-home "
			 "--shell /usr/sbin/nologin " PRIVILEGES_DEFAULT_USER
			 "), or name a user with --user (docs/security.md#rights)");
		memset(t, 0, sizeof(*t));
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errlen,
			 "the system user " PRIVILEGES_DEFAULT_USER
			 " has uid %u gid %u: the fleet's default user must not be root",
			 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
		memset(t, 0, sizeof(*t));
		return -1;
	}
	return parse_user(PRIVILEGES_DEFAULT_USER, "user " PRIVILEGES_DEFAULT_USER, t, err, errlen);
}

int privileges_no_new_privs(char *err, size_t errlen)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The highest capability number the kernel knows. */
static int cap_last(void)
{
	int last = CAP_LAST_CAP;
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f) {
		int v;
		if (fscanf(f, "%d", &v) == 1 && v >= 0 && v < 64)
			last = v;
		fclose(f);
	}
	return last;
}

static int threads_of_self(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	int n = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

static int caps_clear(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	return (int)syscall(SYS_capset, &h, d);
}

int privileges_none_left(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		return 0;
	for (int i = 0; i < 2; i++)
		if (d[i].effective || d[i].permitted || d[i].inheritable)
			return 0;
	for (int c = 0; c <= cap_last(); c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 0 ||
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) > 0)
			return 0;
	return 1;
}

/* Whether this thread holds capability c in its effective set. */
static int has_cap(int c)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		return 0;
	return (d[c / 32].effective >> (c % 32)) & 1;
}

int privileges_drop(const struct privileges_target *t, char *err, size_t errlen)
{
	int threads = threads_of_self();
	if (threads != 1) {
		snprintf(err, errlen,
			 "cannot drop rights: %d threads run (capabilities are per "
			 "thread)",
			 threads);
		return -1;
	}
	int root = geteuid() == 0;
	if (t->switch_user && !root && (getuid() != t->uid || getgid() != t->gid)) {
		snprintf(err, errlen, "--user %s: only root can switch to another user", t->name);
		return -1;
	}
	/* The bounding set can only be emptied with CAP_SETPCAP, which setresuid takes away. */
	if (has_cap(CAP_SETPCAP)) {
		for (int c = 0; c <= cap_last(); c++)
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
				snprintf(err, errlen, "PR_CAPBSET_DROP %d: %s", c, strerror(errno));
				return -1;
			}
		/* Root that stays root: uid 0 must not bring capabilities back at an execve,
		 * and may never undo this. */
		if (!t->switch_user && root &&
		    prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0) != 0) {
			snprintf(err, errlen, "PR_SET_SECUREBITS: %s", strerror(errno));
			return -1;
		}
	}
	if (t->switch_user && root) {
		if (setgroups(1, &t->gid) != 0 || setresgid(t->gid, t->gid, t->gid) != 0 ||
		    setresuid(t->uid, t->uid, t->uid) != 0) {
			snprintf(err, errlen, "--user %s: cannot switch to uid %u gid %u: %s",
				 t->name, (unsigned)t->uid, (unsigned)t->gid, strerror(errno));
			return -1;
		}
		/* A change of uid makes the process undumpable: its /proc files become root's,
		 * and a cell could no longer read its own /proc/self/pagemap (swap.c). The user
		 * is the fleet's own (docs/security.md#rights). */
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
			snprintf(err, errlen, "PR_SET_DUMPABLE: %s", strerror(errno));
			return -1;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		snprintf(err, errlen, "PR_CAP_AMBIENT_CLEAR_ALL: %s", strerror(errno));
		return -1;
	}
	if (caps_clear() != 0) {
		snprintf(err, errlen, "capset: %s", strerror(errno));
		return -1;
	}
	/* Check rather than trust: a uid that can come back, or a capability left, is a failure. */
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
	    (t->switch_user && (ru != t->uid || eu != t->uid || su != t->uid || rg != t->gid ||
				eg != t->gid || sg != t->gid))) {
		snprintf(err, errlen, "--user %s: the ids did not change", t->name);
		return -1;
	}
	if (t->switch_user && root && setresuid(0, 0, 0) == 0) {
		snprintf(err, errlen, "--user %s: uid 0 could be taken back", t->name);
		return -1;
	}
	if (root && !privileges_none_left()) {
		snprintf(err, errlen, "capabilities are left after dropping them");
		return -1;
	}
	return 0;
}
