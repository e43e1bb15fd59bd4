/* Accepting on a listening socket when descriptors may run out: on EMFILE and the like the
 * listener pauses (its pollfd asks for nothing) rather than wake the loop again at once. */
#ifndef VMM_LISTENER_H
#define VMM_LISTENER_H

#include <poll.h>
#include <stdint.h>

#define LISTENER_PAUSE_NS 100000000ll /* out of descriptors: try again this much later */

struct listener {
	int fd;		      /* listening, non-blocking; -1: none */
	int64_t paused_until; /* host clock (ns), 0: not paused */
};

/* Its entry for poll: no events while paused. */
struct pollfd listener_pollfd(const struct listener *l);

/* Ends a pause that is over by now. */
void listener_resume(struct listener *l, int64_t now);

/* A new connection (non-blocking, close-on-exec), or -1 when none waits, or when the process
 * is out of descriptors or memory (then it pauses). */
int listener_accept(struct listener *l, int64_t now);

#endif
