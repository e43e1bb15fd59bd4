/* A cell's disk worker thread. */
#include "vdisk_worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sandbox.h"

enum source_kind { SOURCE_KICK, SOURCE_COMPLETIONS };

struct source {
	struct vdisk_port *port;
	enum source_kind kind;
};

struct vdisk_port {
	struct vdisk_worker *worker;
	struct vdisk_dev *dev;
	struct source kick, completions;
	int closing;  /* a detach is waiting */
	int detached; /* the worker let go of it */
	struct vdisk_port *next;
};

static int watch(struct vdisk_worker *w, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
	return epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static void unwatch(struct vdisk_worker *w, int fd)
{
	epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

/* Serves one event; returns 1 if the device still has requests the kernel has not taken. */
static int serve(struct source *src)
{
	struct vdisk_dev *dev = src->port->dev;
	if (src->kind == SOURCE_COMPLETIONS) {
		vdisk_dev_reap(dev);
	} else {
		uint64_t count;
		if (read(dev->kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			perror("denali-run: disk kick eventfd");
		/* A closing port (its guest stopped, or is about to sleep) finishes what is in
		 * flight and takes nothing new. Not by halting the device: a sleep that cannot
		 * happen (its disk was busy) attaches it again, and the attach kicks. */
		if (!__atomic_load_n(&src->port->closing, __ATOMIC_ACQUIRE))
			vdisk_dev_kick(dev);
	}
	return io_uring_sq_ready(&dev->ring) > 0;
}

/* Submits again what a failed submit left behind, on every device; 1 if some still waits. */
static int retry_submits(struct vdisk_worker *w)
{
	int waiting = 0;
	pthread_mutex_lock(&w->lock);
	for (struct vdisk_port *p = w->ports; p; p = p->next)
		waiting |= vdisk_dev_unsubmitted(p->dev);
	pthread_mutex_unlock(&w->lock);
	return waiting;
}

/* Lets go of closing ports whose requests have all finished. Runs after a batch of events
 * is served, so that no event of the batch can name a port that is gone. */
static void release_closed(struct vdisk_worker *w)
{
	pthread_mutex_lock(&w->lock);
	for (struct vdisk_port **p = &w->ports; *p;) {
		struct vdisk_port *port = *p;
		if (port->closing && port->dev->inflight == 0) {
			unwatch(w, port->dev->kick_fd);
			unwatch(w, port->dev->cq_fd);
			*p = port->next;
			port->detached = 1;
			pthread_cond_broadcast(&w->detached);
		} else {
			p = &port->next;
		}
	}
	pthread_mutex_unlock(&w->lock);
}

/* Kicks the devices whose rate limit has tokens again by now (the requests that waited for
 * them are still in the guest's ring), and returns how many ms until the next one's, rounded
 * up so that the worker never wakes early and spins; -1 if none waits. */
static int kick_refilled(struct vdisk_worker *w)
{
	uint64_t next = UINT64_MAX;
	/* Only the worker unlinks ports (release_closed), and attaches add at the head: the list
	 * from the head read now is stable here without the lock, which a kick's hooks may need. */
	pthread_mutex_lock(&w->lock);
	struct vdisk_port *head = w->ports;
	pthread_mutex_unlock(&w->lock);
	for (struct vdisk_port *p = head; p; p = p->next) {
		struct vdisk_dev *dev = p->dev;
		if (!dev->ready_at || __atomic_load_n(&p->closing, __ATOMIC_ACQUIRE))
			continue;
		uint64_t now = dev->clock();
		if (dev->ready_at <= now)
			vdisk_dev_kick(dev); /* sets ready_at again if the limit still holds some */
		if (dev->ready_at) {
			uint64_t ms =
				dev->ready_at > now ? (dev->ready_at - now + 999999) / 1000000 : 1;
			next = ms < next ? ms : next;
		}
	}
	if (next == UINT64_MAX)
		return -1;
	return next > 1000 ? 1000 : (int)next;
}

static void *worker_main(void *arg)
{
	struct vdisk_worker *w = arg;
	/* Before its first request; stacked on the cell's filter it inherited. Privileges and
	 * Landlock (src/sandbox) come just before this, with the cell's. */
	sandbox_seal_or_exit(SANDBOX_DISK);
	struct epoll_event events[64];
	int retry = 0;	 /* some device has requests a failed submit left behind */
	int refill = -1; /* ms until some device's rate limit has tokens again; -1: none waits */
	for (;;) {
		int timeout = retry ? 10 : -1;
		if (refill >= 0 && (timeout < 0 || refill < timeout))
			timeout = refill;
		int n = epoll_wait(w->epoll_fd, events, 64, timeout);
		if (n < 0 && errno != EINTR) {
			/* Without the worker, detaches would wait forever: end the cell, whose
			 * services the supervisor then reports as lost. */
			perror("denali-run: disk worker: epoll_wait");
			abort();
		}
		for (int i = 0; i < n; i++) {
			if (events[i].data.ptr == NULL) {
				uint64_t count;
				if (read(w->ctl_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
					perror("denali-run: disk worker eventfd");
				continue;
			}
			retry |= serve(events[i].data.ptr);
		}
		if (retry)
			retry = retry_submits(w);
		refill = kick_refilled(w);
		release_closed(w);
		pthread_mutex_lock(&w->lock);
		int stop = w->stopping && !w->ports;
		pthread_mutex_unlock(&w->lock);
		if (stop)
			break;
	}
	return NULL;
}

int vdisk_worker_start(struct vdisk_worker *w, char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->detached, NULL);
	w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	w->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->epoll_fd < 0 || w->ctl_fd < 0 || watch(w, w->ctl_fd, NULL) != 0) {
		snprintf(err, errlen, "disk worker: %s", strerror(errno));
		goto fail;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256u << 10);
	int rc = pthread_create(&w->thread, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		snprintf(err, errlen, "disk worker: cannot create its thread: %s", strerror(rc));
		goto fail;
	}
	w->started = 1;
	return 0;
fail:
	if (w->epoll_fd >= 0)
		close(w->epoll_fd);
	if (w->ctl_fd >= 0)
		close(w->ctl_fd);
	w->epoll_fd = w->ctl_fd = -1;
	return -1;
}

static void poke(struct vdisk_worker *w)
{
	uint64_t one = 1;
	if (write(w->ctl_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("denali-run: disk worker eventfd");
}

void vdisk_worker_stop(struct vdisk_worker *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	pthread_mutex_unlock(&w->lock);
	poke(w);
	pthread_join(w->thread, NULL);
	w->started = 0;
	close(w->epoll_fd);
	close(w->ctl_fd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->detached);
}

struct vdisk_port *vdisk_worker_attach(struct vdisk_worker *w, struct vdisk_dev *dev, char *err,
				       size_t errlen)
{
	struct vdisk_port *port = calloc(1, sizeof(*port));
	if (!port) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	port->worker = w;
	port->dev = dev;
	port->kick = (struct source){port, SOURCE_KICK};
	port->completions = (struct source){port, SOURCE_COMPLETIONS};
	pthread_mutex_lock(&w->lock);
	port->next = w->ports;
	w->ports = port;
	pthread_mutex_unlock(&w->lock);
	if (watch(w, dev->kick_fd, &port->kick) != 0 ||
	    watch(w, dev->cq_fd, &port->completions) != 0) {
		snprintf(err, errlen, "disk worker: epoll_ctl: %s", strerror(errno));
		vdisk_worker_detach(port);
		return NULL;
	}
	/* Requests the guest published while no port served its device (a sleep that did not
	 * happen): a kick of our own has them looked at. */
	uint64_t one = 1;
	if (write(dev->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("denali-run: disk kick eventfd");
	return port;
}

void vdisk_worker_detach(struct vdisk_port *port)
{
	struct vdisk_worker *w = port->worker;
	pthread_mutex_lock(&w->lock);
	__atomic_store_n(&port->closing, 1, __ATOMIC_RELEASE);
	poke(w);
	while (!port->detached)
		pthread_cond_wait(&w->detached, &w->lock);
	pthread_mutex_unlock(&w->lock);
	free(port);
}
