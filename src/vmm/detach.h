/* --detach: denali-run goes to the background once its fleet is up. The parent waits for the
 * child's word that the control socket is open and the cells started, prints the socket's path
 * and exits 0; if the child fails first, the parent prints what it wrote and exits with its
 * status. The child's consoles and messages go to a log file, never to the caller's terminal
 * or pipe (a shell's $(...) must not wait on them). */
#ifndef VMM_DETACH_H
#define VMM_DETACH_H

#include <stddef.h>

#include "privileges.h"

/* The log's name in the state folder. */
#define DETACH_LOG "denali-run.log"

/* Opens (appending, creating it 0600) the log DETACH_LOG in the state folder state_fd, checked
 * by guestmem_state_open, without following a symbolic link: a regular file of ours. Returns
 * its fd, or -1 with err naming state_dir. */
int detach_open_log(int state_fd, const char *state_dir, char *err, size_t errlen);

/* Forks. Returns 0 in the child, which is in its own session, with stdin from /dev/null,
 * stdout and stderr appended to log (an fd open O_RDWR|O_APPEND, which it takes over), and
 * *ready_fd to pass to detach_ready; -1 with err if it cannot (log is closed). The parent does
 * not return: it gives up rights (privileges_drop) before it waits. */
int detach_start(int log, const char *socket_path, const struct privileges_target *rights,
		 int *ready_fd, char *err, size_t errlen);

/* The fleet is up: the parent may print the path and go. fd < 0: not detached, nothing to do. */
void detach_ready(int fd);

#endif
