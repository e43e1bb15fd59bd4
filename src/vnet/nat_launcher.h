/* The supervisor's handle on the NAT launcher: denali-nat exec'd once, at setup, before any
 * thread of the supervisor seals, holding only its socket to the supervisor. It forks each NAT
 * process (the first and every restart) when asked, so that the network thread never forks,
 * execs or maps code (docs/security.md). The NAT processes are the launcher's children: it
 * reaps them and says how they ended. */
#ifndef VNET_NAT_LAUNCHER_H
#define VNET_NAT_LAUNCHER_H

#include <stddef.h>
#include <sys/types.h>

struct nat_launcher;

/* Opens denali-nat for a later nat_launcher_start_fd (O_PATH, close-on-exec): the one in the
 * folder of the running executable (helper: another path, for the tests; NULL for that one).
 * Call while this process may still reach it: before it gives up its rights. The fd, or -1
 * with err. */
int nat_launcher_open_helper(const char *helper, char *err, size_t errlen);

/* Starts the launcher: the denali-nat helper_fd opened, exec'd with the seal denali-run's
 * --seccomp asks for (sandbox_seccomp_on). Call before this process seals (it forks and
 * execs) and after it gave up its rights (the launcher and its NATs keep what it kept). The
 * caller still closes helper_fd. NULL with err set. */
struct nat_launcher *nat_launcher_start_fd(int helper_fd, char *err, size_t errlen);

/* nat_launcher_open_helper, nat_launcher_start_fd, then the fd closed: for the tests. */
struct nat_launcher *nat_launcher_start(const char *helper, char *err, size_t errlen);

/* Asks for a NAT process serving sock (a SOCK_SEQPACKET socket: the NAT's end, which the
 * caller still closes). Waits for the answer (at most 5 s). Returns the NAT's pidfd (close-on-
 * exec) with *pid set, or -1 with err (the launcher refused, or is gone: then
 * nat_launcher_gone says so from now on). */
int nat_launcher_spawn(struct nat_launcher *l, int sock, pid_t *pid, char *err, size_t errlen);

/* How NAT process pid ended, once its pidfd said it did: waits up to timeout_ms for the
 * launcher's word (it reaps it). 0 with *code (CLD_EXITED, CLD_KILLED, CLD_DUMPED) and
 * *status, or -1 (no word in time, or the launcher is gone). */
int nat_launcher_ended(struct nat_launcher *l, pid_t pid, int timeout_ms, int *code, int *status);

/* 1 once the launcher was found gone (its socket closed or broken): no NAT can start again. */
int nat_launcher_gone(const struct nat_launcher *l);

/* The launcher's pid (for the tests), 0 if none. */
pid_t nat_launcher_pid(const struct nat_launcher *l);

/* Ends the launcher (its socket closed, then SIGKILL), reaps it, frees l. NULL is allowed.
 * NAT processes still running are the caller's to end first. */
void nat_launcher_stop(struct nat_launcher *l);

#endif
