/* Accepting connections without spinning when descriptors run out. */
#include "listener.h"

#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>

struct pollfd listener_pollfd(const struct listener *l)
{
	return (struct pollfd){.fd = l->fd, .events = l->paused_until ? 0 : POLLIN};
}

void listener_resume(struct listener *l, int64_t now)
{
	if (l->paused_until && now >= l->paused_until)
		l->paused_until = 0;
}

int listener_accept(struct listener *l, int64_t now)
{
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM))
		l->paused_until = now + LISTENER_PAUSE_NS;
	return fd;
}
